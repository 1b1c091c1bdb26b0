#!/usr/bin/env bash
# Install a real Ceph (Debian's Pacific packages: mon, mgr, osd and the ceph CLI) for
# the ceph-marked tests; tests/realservices/ceph.py runs this if the binaries are
# missing. Idempotent: nothing is installed when every binary is already there.
# The packages only install: the fixture starts its own 1 mon + 1 mgr + 3 memstore
# OSDs on 127.0.0.1 in a temp dir (policy-rc.d keeps apt from starting daemons).
set -euo pipefail

PACKAGES="ceph-mon ceph-mgr ceph-osd ceph-common"

missing=0
for bin in ceph ceph-mon ceph-mgr ceph-osd monmaptool rados; do
    command -v "$bin" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 0 ]; then
    echo "ceph ready: $(ceph --version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi
echo "installing $PACKAGES"
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # PACKAGES is a list
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $PACKAGES
echo "ceph ready: $(ceph --version)"
