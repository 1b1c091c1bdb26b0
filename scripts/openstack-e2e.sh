#!/usr/bin/env bash
# End-to-end check of Charter's nova, glancev2 and neutronv2 drivers against a real,
# small OpenStack on this machine (everything on 127.0.0.1, free ports, one temp dir):
#
#   PostgreSQL 15 (nova_api, nova_cell0, nova, placement, glance), MariaDB (neutron),
#   RabbitMQ, Keystone 30, Placement 16, Nova 34 (api, conductor, scheduler, compute with
#   the fake virt driver), Glance 33 (file store), Neutron 29 (ML2, flat, no agents).
#
# It then creates flavors, an image, a network and an external network with a subnet
# each, a router (gateway + interface), a port (DOWN: nothing binds ports without agents)
# with a floating IP, a security group rule opening SSH to 0.0.0.0/0, a server that goes
# ACTIVE and one that goes to ERROR (its port cannot be bound), an anti-affinity server
# group whose two servers an administrator forces onto the one compute host, and host
# aggregates; starts `charter serve`, creates the datasources through Charter's API,
# compares every table with the services' own REST answers, checks a policy's violations,
# and runs actions through ?action=execute (servers.pause -> Nova shows PAUSED,
# ports.update_admin_state, images.deactivate), checking each in the service and in
# Charter's tables and violations. It enables the openstack-placement and
# openstack-security packs through the API and checks their posture: OS-PLC-001 fails
# with exactly the two forced servers, OS-NET-001 with exactly the SSH rule. Last, Nova
# asks Charter (docs/decisions.md): its policy file routes servers:create to an http: check
# (a server into a zone whose aggregate is marked closed gets Nova's 403), and, with
# contrib/nova-filter installed and a second compute host (fakehost2), the scheduler's
# CharterFilter alone keeps an anti-affinity group's two servers on different hosts and
# leaves a third with no valid host.
#
# Usage: scripts/openstack-e2e.sh [--keep]      (--keep: leave the stack running)
# Env:   CHARTER_OPENSTACK_VENV (default /tmp/svc-venvs/openstack),
#        CHARTER_KEYSTONE_VENV (default /tmp/svc-venvs/keystone), E2E_DIR (temp dir),
#        CHARTER_PYTHON (default <checkout>/.venv/bin/python: a Python with Charter's
#        dependencies; Charter itself is always this checkout's src/).
# Needs root (PostgreSQL/MariaDB/RabbitMQ run as their own users), ~3 GB of RAM, and
# the installs of scripts/openstack/install.sh on a new machine (6 min measured here, apt
# and pip together), then 6-9 min to run on a busy 2-core machine (521 s measured: most
# of it Keystone's start and the database migrations). Every process it starts is stopped
# by its PID at the end, also on failure; on failure its logs stay in the temp dir.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
KEEP=0; [ "${1:-}" = "--keep" ] && KEEP=1

OSV="${CHARTER_OPENSTACK_VENV:-/tmp/svc-venvs/openstack}"
KSV="${CHARTER_KEYSTONE_VENV:-/tmp/svc-venvs/keystone}"
CHARTER_PY="${CHARTER_PYTHON:-$ROOT/.venv/bin/python}"
charter_py() { PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" "$CHARTER_PY" "$@"; }
W="${E2E_DIR:-$(mktemp -d /tmp/charter-os-e2e.XXXXXX)}"
mkdir -p "$W"
chmod 755 "$W"
T0=$(date +%s)
log() { printf '[e2e %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

export CHARTER_OPENSTACK_VENV="$OSV" CHARTER_KEYSTONE_VENV="$KSV"
bash scripts/openstack/install.sh
"$OSV/bin/pip" install --quiet "$ROOT/contrib/nova-filter" >"${TMPDIR:-/tmp}/charter-nova-filter-pip.log" 2>&1 \
    || { cat "${TMPDIR:-/tmp}/charter-nova-filter-pip.log"; exit 1; }
log "installs ready (and contrib/nova-filter in $OSV)"

free_port() { "$CHARTER_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port); MY_PORT=$(free_port); RMQ_PORT=$(free_port); RMQ_DIST=$(free_port)
KS_PORT=$(free_port); NOVA_PORT=$(free_port); PLACEMENT_PORT=$(free_port)
GLANCE_PORT=$(free_port); NEUTRON_PORT=$(free_port); CHARTER_PORT=$(free_port)
KS_URL="http://127.0.0.1:$KS_PORT/v3"

PIDS=()            # processes started here, stopped by PID
UWSGI_PIDFILES=()  # uwsgi masters (their pidfiles)
EPMD_BEFORE=" $(pgrep -x epmd | tr '\n' ' ' || true) "
cleanup() {
    local code=$?
    if [ "$KEEP" = 1 ] && [ "$code" = 0 ]; then
        log "--keep: stack left running in $W (PIDs ${PIDS[*]})"; return
    fi
    log "stopping the stack"
    # uwsgi workers outlive a master that is SIGKILLed after the grace period (a nova-api
    # worker was found running after a passed run): note them now, stop them with the rest.
    for p in "${PIDS[@]}"; do
        for c in $(pgrep -P "$p" 2>/dev/null || true); do PIDS+=("$c"); done
    done
    for f in "${UWSGI_PIDFILES[@]}"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for _ in $(seq 40); do  # up to 20 s for them to exit, then SIGKILL what is left
        alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break; sleep 0.5
    done
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${RMQ_NODE:-}" ]; then
        rabbitmqctl -n "$RMQ_NODE" stop >/dev/null 2>&1 || true
        for p in $(pgrep -x epmd || true); do
            case "$EPMD_BEFORE" in *" $p "*) ;; *) kill "$p" 2>/dev/null || true ;; esac
        done
    fi
    [ -f "$W/mysql/pid" ] && kill "$(cat "$W/mysql/pid")" 2>/dev/null || true
    [ -d "$W/pg/data" ] && su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $W/pg/data -m fast stop" >/dev/null 2>&1 || true
    if [ "$code" != 0 ]; then
        log "FAILED (exit $code); logs are in $W (kept)"
    elif [ -z "${E2E_DIR:-}" ]; then
        rm -rf "$W"
    fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ databases, bus
mkdir -p "$W/pg" && chown postgres "$W/pg"
su postgres -c "/usr/lib/postgresql/15/bin/initdb -D $W/pg/data -A trust -U postgres" >"$W/pg/initdb.log"
su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D $W/pg/data -l $W/pg/log -o '-p $PG_PORT -k $W/pg -c listen_addresses=127.0.0.1 -c max_connections=300' -w start" >/dev/null
for db in nova_api nova_cell0 nova placement glance; do
    psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "create database $db"
done
PG="postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT"
log "PostgreSQL on $PG_PORT"

mkdir -p "$W/mysql" && chown mysql "$W/mysql"
mariadb-install-db --user=mysql --datadir="$W/mysql/data" --auth-root-authentication-method=normal \
    --skip-test-db >"$W/mysql/install.log" 2>&1
mariadbd --user=mysql --datadir="$W/mysql/data" --socket="$W/mysql/sock" --pid-file="$W/mysql/pid" \
    --bind-address=127.0.0.1 --port="$MY_PORT" --skip-name-resolve --innodb-buffer-pool-size=128M \
    --log-error="$W/mysql/err.log" >/dev/null 2>&1 &
PIDS+=($!)
until mariadb -uroot -h127.0.0.1 -P"$MY_PORT" -e 'select 1' >/dev/null 2>&1; do sleep 0.3; done
mariadb -uroot -h127.0.0.1 -P"$MY_PORT" -e "create database neutron; create user 'os'@'127.0.0.1' identified by 'ospw'; grant all on *.* to 'os'@'127.0.0.1';"
log "MariaDB on $MY_PORT"

R="$W/rmq"; mkdir -p "$R"; echo '[].' >"$R/enabled_plugins"; chown -R rabbitmq:rabbitmq "$R"
RMQ_NODE="charter-e2e-$$@localhost"
(
    export RABBITMQ_MNESIA_BASE="$R/mnesia" RABBITMQ_LOG_BASE="$R/log" RABBITMQ_NODENAME="$RMQ_NODE" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$RMQ_PORT" RABBITMQ_DIST_PORT="$RMQ_DIST" \
        RABBITMQ_PID_FILE="$R/rabbit.pid" RABBITMQ_ENABLED_PLUGINS_FILE="$R/enabled_plugins" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    exec rabbitmq-server >"$R/out.log" 2>&1
) &
PIDS+=($!)
# await_startup fails at once while the node is not yet registered with epmd: retry.
deadline=$(( $(date +%s) + 180 ))
until rabbitmqctl -n "$RMQ_NODE" -q await_startup --timeout 60 >"$R/await.log" 2>&1; do
    if [ "$(date +%s)" -gt "$deadline" ]; then cat "$R/await.log"; log "RabbitMQ did not start"; exit 1; fi
    sleep 1
done
TRANSPORT="rabbit://guest:guest@127.0.0.1:$RMQ_PORT/"
log "RabbitMQ on $RMQ_PORT"

# ------------------------------------------------------------------ keystone
uwsgi_app() {  # name dir port module [extra uwsgi args...]; env vars are set by the caller
    local name=$1 dir=$2 port=$3 module=$4; shift 4
    "$OSV/bin/uwsgi" --http-socket "127.0.0.1:$port" --module "$module" --master --processes 1 \
        --threads 4 --add-header 'Connection: close' --die-on-term --pidfile "$dir/$name.pid" \
        "$@" >"$dir/$name.out" 2>&1 &
    PIDS+=($!)
    UWSGI_PIDFILES+=("$dir/$name.pid")
}
wait_http() {  # url seconds
    local deadline=$(( $(date +%s) + $2 ))
    until curl -s -o /dev/null "$1"; do
        if [ "$(date +%s)" -gt "$deadline" ]; then log "no answer from $1"; exit 1; fi
        sleep 0.5
    done
}

K="$W/keystone"; mkdir -p "$K"
cat >"$K/keystone.conf" <<EOF
[DEFAULT]
log_file = $K/keystone.log
[database]
connection = sqlite:///$K/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $K/fernet-keys
[fernet_receipts]
key_repository = $K/fernet-keys
[credential]
key_repository = $K/credential-keys
[identity]
password_hash_rounds = 4
EOF
KM="$KSV/bin/keystone-manage --config-file $K/keystone.conf"
$KM fernet_setup --keystone-user root --keystone-group root >"$K/manage.log" 2>&1
$KM credential_setup --keystone-user root --keystone-group root >>"$K/manage.log" 2>&1
$KM db_sync >>"$K/manage.log" 2>&1
$KM bootstrap --bootstrap-password adminpw --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$KS_URL/" --bootstrap-internal-url "$KS_URL/" \
    --bootstrap-public-url "$KS_URL/" >>"$K/manage.log" 2>&1
OS_KEYSTONE_CONFIG_DIR="$K" "$KSV/bin/uwsgi" --http-socket "127.0.0.1:$KS_PORT" \
    --module keystone.wsgi.api:application --master --processes 1 --threads 4 \
    --add-header 'Connection: close' --die-on-term --pidfile "$K/uwsgi.pid" >"$K/uwsgi.out" 2>&1 &
PIDS+=($!); UWSGI_PIDFILES+=("$K/uwsgi.pid")
wait_http "$KS_URL/" 180
log "Keystone on $KS_PORT"

export E2E_KEYSTONE_URL="$KS_URL" E2E_ADMIN_PASSWORD=adminpw E2E_NOVA_PORT="$NOVA_PORT" \
    E2E_PLACEMENT_PORT="$PLACEMENT_PORT" E2E_GLANCE_PORT="$GLANCE_PORT" \
    E2E_NEUTRON_PORT="$NEUTRON_PORT" E2E_CHARTER_URL="http://127.0.0.1:$CHARTER_PORT"
charter_py scripts/openstack/cloud.py register

# ------------------------------------------------------------------ configs
authtoken() {  # user
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $KS_URL
auth_url = $KS_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = ${1}pw
EOF
}
service_auth() {  # section user
    cat <<EOF
[$1]
auth_url = $KS_URL
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = ${2}pw
region_name = RegionOne
EOF
}

P="$W/placement"; mkdir -p "$P"
{ cat <<EOF
[DEFAULT]
log_file = $P/placement.log
[placement_database]
connection = $PG/placement
[api]
auth_strategy = keystone
EOF
authtoken placement; } >"$P/placement.conf"

N="$W/nova"; mkdir -p "$N/state" "$N/log" "$N/lock"
cp "$OSV/etc/nova/api-paste.ini" "$N/"
{ cat <<EOF
[DEFAULT]
transport_url = $TRANSPORT
compute_driver = fake.FakeDriver
host = fakehost1
my_ip = 127.0.0.1
state_path = $N/state
log_dir = $N/log
[api]
auth_strategy = keystone
[api_database]
connection = $PG/nova_api
[database]
connection = $PG/nova
[scheduler]
discover_hosts_in_cells_interval = 5
# The anti-affinity servers are forced onto the one compute host by an administrator
# (availability_zone nova:fakehost1, which skips the scheduler's filters); without the
# compute's late group check (the "upcall") Nova lets them share it. The filter itself
# stays enabled: the conductor refuses an anti-affinity group when it is not.
[workarounds]
disable_group_policy_check_upcall = true
# Nova's own policy checks read this file; the decisions step routes servers:create through
# Charter (an http: check) by rewriting it (oslo.policy reloads a changed file).
[oslo_policy]
policy_file = $N/policy.yaml
# contrib/nova-filter, installed into this venv; enabled by the decisions step
# (charter-filter.conf, for the scheduler only).
[filter_scheduler]
available_filters = nova.scheduler.filters.all_filters
available_filters = charter_nova_filter.filter.CharterFilter
[charter]
url = http://127.0.0.1:$CHARTER_PORT
policy = nova_hosts
timeout = 30
fail = closed
[oslo_concurrency]
lock_path = $N/lock
[vnc]
enabled = false
[oslo_messaging_notifications]
driver = noop
[wsgi]
api_paste_config = $N/api-paste.ini
EOF
authtoken nova; service_auth placement placement; service_auth neutron neutron; } >"$N/nova.conf"
echo '{}' >"$N/policy.yaml"
# A second compute host (fake driver): its own host name, state (its compute node id) and logs.
mkdir -p "$N/state2" "$N/log2"
cat >"$N/compute2.conf" <<EOF
[DEFAULT]
host = fakehost2
state_path = $N/state2
log_dir = $N/log2
EOF
# The scheduler's filters once Charter decides: CharterFilter in, ServerGroupAntiAffinityFilter
# out, so only Charter keeps an anti-affinity group apart (the conductor keeps the default list,
# with which it accepts anti-affinity groups).
cat >"$N/charter-filter.conf" <<EOF
[filter_scheduler]
enabled_filters = ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAffinityFilter,CharterFilter
EOF

G="$W/glance"; mkdir -p "$G/images" "$G/staging" "$G/tasks"
cp "$OSV/etc/glance/glance-api-paste.ini" "$G/"
{ cat <<EOF
[DEFAULT]
enabled_backends = fs:file
log_file = $G/glance.log
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $G/images
[os_glance_staging_store]
filesystem_store_datadir = $G/staging
[os_glance_tasks_store]
filesystem_store_datadir = $G/tasks
[database]
connection = $PG/glance
[paste_deploy]
flavor = keystone
config_file = $G/glance-api-paste.ini
EOF
authtoken glance; } >"$G/glance-api.conf"

Q="$W/neutron"; mkdir -p "$Q/state" "$Q/lock"
cp "$OSV/etc/neutron/api-paste.ini" "$Q/"
{ cat <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins = router
transport_url = $TRANSPORT
auth_strategy = keystone
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
api_paste_config = $Q/api-paste.ini
state_path = $Q/state
log_file = $Q/neutron.log
[database]
connection = mysql+pymysql://os:ospw@127.0.0.1:$MY_PORT/neutron
[oslo_concurrency]
lock_path = $Q/lock
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers = port_security
[ml2_type_flat]
flat_networks = physnet1,physnet2
EOF
authtoken neutron; } >"$Q/neutron.conf"

# ------------------------------------------------------------------ schemas (side by side)
(   "$OSV/bin/placement-manage" --config-file "$P/placement.conf" db sync ) >"$P/dbsync.log" 2>&1 &
DB1=$!
(   NM="$OSV/bin/nova-manage --config-file $N/nova.conf"
    $NM api_db sync
    $NM cell_v2 map_cell0 --database_connection "$PG/nova_cell0"
    $NM db sync
    $NM cell_v2 create_cell --name cell1 ) >"$N/dbsync.log" 2>&1 &
DB2=$!
"$OSV/bin/glance-manage" --config-file "$G/glance-api.conf" db_sync >"$G/dbsync.log" 2>&1 &
DB3=$!
"$OSV/bin/neutron-db-manage" --config-file "$Q/neutron.conf" upgrade heads >"$Q/dbsync.log" 2>&1 &
DB4=$!
for job in $DB1:"$P/dbsync.log" $DB2:"$N/dbsync.log" $DB3:"$G/dbsync.log" $DB4:"$Q/dbsync.log"; do
    if ! wait "${job%%:*}"; then log "schema setup failed, see ${job#*:}:"; tail -20 "${job#*:}"; exit 1; fi
done
log "schemas created"

# ------------------------------------------------------------------ services
OS_PLACEMENT_CONFIG_DIR="$P" uwsgi_app placement "$P" "$PLACEMENT_PORT" placement.wsgi.api:application
OS_NOVA_CONFIG_DIR="$N" uwsgi_app nova-api "$N" "$NOVA_PORT" nova.wsgi.osapi_compute:application
OS_GLANCE_CONFIG_DIR="$G" uwsgi_app glance "$G" "$GLANCE_PORT" glance.wsgi.api:application
OS_NEUTRON_CONFIG_DIR="$Q" OS_NEUTRON_CONFIG_FILES=neutron.conf \
    uwsgi_app neutron "$Q" "$NEUTRON_PORT" neutron.wsgi.api:application --lazy-apps
for svc in conductor scheduler compute; do
    "$OSV/bin/nova-$svc" --config-file "$N/nova.conf" >"$N/nova-$svc.out" 2>&1 &
    PIDS+=($!)
    [ "$svc" = scheduler ] && SCHEDULER_PID=$!
done
"$OSV/bin/nova-compute" --config-file "$N/nova.conf" --config-file "$N/compute2.conf" \
    >"$N/nova-compute2.out" 2>&1 &
PIDS+=($!)
for url in "http://127.0.0.1:$PLACEMENT_PORT/" "http://127.0.0.1:$NOVA_PORT/" \
           "http://127.0.0.1:$GLANCE_PORT/" "http://127.0.0.1:$NEUTRON_PORT/"; do
    wait_http "$url" 180
done
log "Placement, Nova API, Glance and Neutron answer"

charter_py scripts/openstack/cloud.py populate
log "cloud populated"

# ------------------------------------------------------------------ charter
C="$W/charter"; mkdir -p "$C"
env CHARTER_DATA_DIR="$C" CHARTER_HOST=127.0.0.1 CHARTER_PORT="$CHARTER_PORT" \
    CHARTER_DECISIONS__ANONYMOUS=true \
    CHARTER_LOG_LEVEL=info PYTHONPATH="$ROOT/src" "$CHARTER_PY" -m charter.cli.main serve \
    >"$C/serve.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$CHARTER_PORT/healthz" 60
log "charter serve on $CHARTER_PORT"

charter_py scripts/openstack/cloud.py check
log "tables, policy, actions and packs checked"

# Nova asks Charter: its policy file routes servers:create through Charter; then the
# scheduler, restarted with CharterFilter (and without ServerGroupAntiAffinityFilter).
export E2E_NOVA_POLICY_FILE="$N/policy.yaml"
charter_py scripts/openstack/nova_decisions.py servers
started() { grep -c "Starting scheduler node" "$N/log/nova-scheduler.log" || true; }
before=$(started)
kill "$SCHEDULER_PID"
wait "$SCHEDULER_PID" 2>/dev/null || true
"$OSV/bin/nova-scheduler" --config-file "$N/nova.conf" --config-file "$N/charter-filter.conf" \
    >"$N/nova-scheduler-charter.out" 2>&1 &
PIDS+=($!)
deadline=$(( $(date +%s) + 180 ))
consuming() {  # the new scheduler has logged its start and consumes its topic queue
    [ "$(started)" -gt "$before" ] && rabbitmqctl -n "$RMQ_NODE" -q list_queues name consumers \
        2>/dev/null | awk '$1 == "scheduler" && $2 > 0 {ok=1} END {exit !ok}'
}
until consuming; do
    if [ "$(date +%s)" -gt "$deadline" ]; then log "nova-scheduler did not restart"; exit 1; fi
    sleep 1
done
log "nova-scheduler restarted with CharterFilter"
charter_py scripts/openstack/nova_decisions.py scheduler
log "PASSED: nova, glancev2 and neutronv2 tables equal the services' answers; policy, actions and the placement and security packs' posture checked; Nova's servers:create and scheduling decided by Charter"
