#!/usr/bin/env bash
# Install Prometheus 2.x and the node exporter from Debian for the prometheus-marked tests;
# tests/realservices/prometheus.py starts both itself (127.0.0.1, free ports, temp dirs).
# Idempotent: nothing is done when both binaries are already there. Debian's
# policy-rc.d keeps apt from starting the packaged daemons.
set -euo pipefail

if command -v prometheus >/dev/null && command -v prometheus-node-exporter >/dev/null; then
    echo "prometheus ready: $(command -v prometheus), $(command -v prometheus-node-exporter)"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# (the lock timeout waits for another apt-get run instead of failing at once)
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus prometheus-node-exporter
# The packages' own services (when an init system starts them) are not used by the tests.
prometheus --version | head -1
echo "prometheus ready"
