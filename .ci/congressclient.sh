#!/usr/bin/env bash
# Install python-congressclient + python-openstackclient (the `openstack congress ...`
# commands) into their own venv for the congressclient integration tests;
# tests/integration/conftest.py runs this before it uses the client. Idempotent: a venv
# installed for the same package list is left as it is.
# The client is kept out of Charter's venv on purpose: its pins (keystoneauth1,
# oslo.*, cliff) must not decide Charter's own dependency versions.
#
# The venv is per checkout (<repo>/.ci-venvs/congressclient, gitignored;
# CHARTER_CONGRESSCLIENT_VENV overrides), so two checkouts on one host never share it; two
# runs that do share a path are safe too (.ci/svc-venv.sh builds aside and publishes with
# an atomic rename).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=svc-venv.sh
. "$HERE/svc-venv.sh"

V="${CHARTER_CONGRESSCLIENT_VENV:-$HERE/../.ci-venvs/congressclient}"
PACKAGES="python-congressclient python-openstackclient"

svc_venv_install "$V" "$PACKAGES" \
    "python -c 'import congressclient, openstackclient' && openstack --version >/dev/null"
