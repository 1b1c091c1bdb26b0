#!/usr/bin/env bash
# Install a real Keystone (uwsgi to serve it, psycopg2 for its PostgreSQL database) into its
# own venv for the keystone-marked tests; tests/realservices/keystone.py runs this before it
# starts Keystone. Idempotent: a venv installed for the same package list is left as it is.
# Keystone is kept out of Charter's venv on purpose: its pins (SQLAlchemy,
# oslo.*, eventlet) must not decide Charter's own dependency versions.
#
# The venv is per checkout (<repo>/.ci-venvs/keystone, gitignored; CHARTER_KEYSTONE_VENV
# overrides), so two checkouts on one host never share it; two runs that do share a path
# are safe too (.ci/svc-venv.sh builds aside and publishes with an atomic rename).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=svc-venv.sh
. "$HERE/svc-venv.sh"

V="${CHARTER_KEYSTONE_VENV:-$HERE/../.ci-venvs/keystone}"
# The versions the tests were written against; uwsgi compiles (~1 minute, then pip's wheel
# cache has it). psycopg2 is the driver of oslo.db's postgresql:// URLs.
PACKAGES="${CHARTER_KEYSTONE_PACKAGES:-keystone==30.0.0 uwsgi==2.0.31 psycopg2-binary==2.9.13}"

svc_venv_install "$V" "$PACKAGES" \
    "python -c 'import keystone, psycopg2' && command -v keystone-manage uwsgi >/dev/null"
