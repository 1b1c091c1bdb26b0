#!/usr/bin/env bash
# Install a real Keystone (plus uwsgi to serve it) into its own venv for the
# keystone-marked tests; tests/realservices/keystone.py runs this if the venv is
# missing. Idempotent: a working venv is left as it is.
# Keystone is kept out of Charter's venv on purpose: its pins (SQLAlchemy,
# oslo.*, eventlet) must not decide Charter's own dependency versions.
set -euo pipefail

V="${CHARTER_KEYSTONE_VENV:-/tmp/svc-venvs/keystone}"
PY="${PYTHON:-python3}"
# The versions the tests were written against; uwsgi compiles (~1 minute).
PACKAGES="${CHARTER_KEYSTONE_PACKAGES:-keystone==30.0.0 uwsgi==2.0.31}"

if [ -x "$V/bin/keystone-manage" ] && [ -x "$V/bin/uwsgi" ] \
    && "$V/bin/python" -c 'import keystone' 2>/dev/null; then
    echo "keystone venv ready: $V"
    exit 0
fi

if [ -e "$V" ] && [ ! -f "$V/pyvenv.cfg" ] && [ -n "$(ls -A "$V" 2>/dev/null)" ]; then
    echo "$V exists and is not a venv; set CHARTER_KEYSTONE_VENV to another path" >&2
    exit 1
fi

echo "installing $PACKAGES into $V"
mkdir -p "$(dirname "$V")"
rm -rf "$V"
"$PY" -m venv "$V"
# (grep drops this machine's notes about absent local package mirrors.)
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
quiet "$V/bin/pip" install --quiet --upgrade pip
# shellcheck disable=SC2086  # PACKAGES is a list
quiet "$V/bin/pip" install --quiet $PACKAGES
"$V/bin/python" -c 'import keystone' >/dev/null
echo "keystone venv ready: $V"
