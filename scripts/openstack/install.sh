#!/usr/bin/env bash
# Install what scripts/openstack-e2e.sh runs: RabbitMQ and MariaDB from Debian, and
# Nova 34 + Placement 16 + Glance 33 + Neutron 29 (the releases that go with Keystone 30)
# from PyPI into their own venv. Keystone comes from .ci/keystone.sh's venv.
# Idempotent: what is already there is left as it is.
set -euo pipefail
cd "$(dirname "$0")/../.."

V="${CHARTER_OPENSTACK_VENV:-/tmp/svc-venvs/openstack}"
PY="${PYTHON:-python3}"
PACKAGES="${CHARTER_OPENSTACK_PACKAGES:-nova==34.0.0 openstack-placement==16.0.0 glance==33.0.0 neutron==29.0.0 psycopg2-binary PyMySQL uwsgi==2.0.31 python-openstackclient}"

need=()
command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
command -v mariadbd >/dev/null || need+=(mariadb-server)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
if [ ${#need[@]} -gt 0 ]; then
    echo "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

bash .ci/keystone.sh

if [ -x "$V/bin/nova-manage" ] && [ -x "$V/bin/uwsgi" ] && [ -x "$V/bin/neutron-db-manage" ] \
        && [ -x "$V/bin/glance-manage" ] && [ -x "$V/bin/placement-manage" ] \
        && "$V/bin/python" -c 'import nova, placement, glance, neutron' 2>/dev/null; then
    echo "openstack venv ready: $V"
    exit 0
fi
echo "installing $PACKAGES into $V (about 2 minutes)"
rm -rf "$V"
mkdir -p "$(dirname "$V")"
"$PY" -m venv "$V"
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
quiet "$V/bin/pip" install --quiet --upgrade pip
# shellcheck disable=SC2086  # PACKAGES is a list
quiet "$V/bin/pip" install --quiet $PACKAGES
"$V/bin/python" -c 'import nova, placement, glance, neutron' 2>/dev/null
echo "openstack venv ready: $V"
