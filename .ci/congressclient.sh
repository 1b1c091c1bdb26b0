#!/usr/bin/env bash
# Install python-congressclient + python-openstackclient (the `openstack congress ...`
# commands) into their own venv for the congressclient integration tests.
# Idempotent: an existing, working venv is left as it is (a quick import check).
# The client is kept out of Charter's venv on purpose: its pins (keystoneauth1,
# oslo.*, cliff) must not decide Charter's own dependency versions.
set -euo pipefail

V="${CHARTER_CONGRESSCLIENT_VENV:-/tmp/svc-venvs/congressclient}"
PY="${PYTHON:-python3}"

if [ -x "$V/bin/openstack" ] \
    && "$V/bin/python" -c 'import congressclient, openstackclient' 2>/dev/null; then
    echo "congressclient venv ready: $V"
    exit 0
fi

echo "installing python-congressclient + python-openstackclient into $V (about a minute)"
mkdir -p "$(dirname "$V")"
rm -rf "$V"
"$PY" -m venv "$V"
"$V/bin/pip" install --quiet --upgrade pip
"$V/bin/pip" install --quiet python-congressclient python-openstackclient
"$V/bin/python" -c 'import congressclient, openstackclient' >/dev/null
"$V/bin/openstack" --version >/dev/null
echo "congressclient venv ready: $V"
