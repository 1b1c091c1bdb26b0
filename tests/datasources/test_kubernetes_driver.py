"""The ``kubernetes`` driver, with the real ``kubernetes`` client, against RECORDED responses.

No kube-apiserver can run here, so the server is tests/realservices/fake_kube.py: a real HTTP
server on 127.0.0.1 answering with the recorded lists of tests/datasources/fixtures/kube/
(paging, watch streams, 410 Gone, the action endpoints). First the driver alone (schema,
config, paging, list and watch, faults), then through Charter's API: create the datasource,
refresh, compare every table with the recording, push watch events and see the delta and a
violation come and go, run the actions, stop the server, refuse the token; and the
kubernetes-pod-security pack's posture of the recorded cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from charter.datasources.driver import DriverError
from charter.datasources.drivers.kubernetes import KubernetesDriver
from tests.api import conftest as api
from tests.realservices import fake_kube as realkube
from tests.realservices.fake_kube import TOKEN, FakeKube, Seen

# The fixtures (assigned, not imported: an import would trip ruff's F811).
client, service, settings = api.client, api.service, api.settings
fake_kube = realkube.fake_kube

DS = "kubernetes"
MINER = "miner-5f7d9c-qq2zt"
RULE = 'error(ns, pod) :- kubernetes:containers(ns, pod, _, _, "True", _, _, _)'

COLUMNS = {
    "namespaces": ("name", "phase"),
    "namespace_labels": ("namespace", "key", "value"),
    "nodes": ("name", "ready", "unschedulable", "kubelet_version", "os_image"),
    "node_labels": ("node", "key", "value"),
    "pods": ("namespace", "name", "node", "phase", "service_account", "host_network", "uid"),
    "pod_labels": ("namespace", "pod", "key", "value"),
    "pod_security": ("namespace", "pod", "host_pid", "host_ipc", "run_as_non_root",
                     "run_as_user", "seccomp_profile", "apparmor_profile", "selinux_type",
                     "selinux_user", "selinux_role", "host_process", "automount_token"),
    "containers": ("namespace", "pod", "name", "image", "privileged", "run_as_non_root",
                   "cpu_limit", "memory_limit"),
    "container_security": ("namespace", "pod", "container", "kind", "privileged",
                           "allow_privilege_escalation", "run_as_non_root", "run_as_user",
                           "read_only_root_filesystem", "proc_mount", "seccomp_profile",
                           "apparmor_profile", "apparmor_annotation", "selinux_type",
                           "selinux_user", "selinux_role", "host_process"),
    "container_capabilities": ("namespace", "pod", "container", "action", "capability"),
    "container_ports": ("namespace", "pod", "container", "container_port", "host_port",
                        "protocol"),
    "pod_volumes": ("namespace", "pod", "name", "type", "host_path"),
    "pod_sysctls": ("namespace", "pod", "name", "value"),
    "deployments": ("namespace", "name", "replicas", "ready_replicas", "available_replicas"),
    "services": ("namespace", "name", "type", "cluster_ip"),
    "service_ports": ("namespace", "service", "port", "protocol", "node_port"),
    "service_accounts": ("namespace", "name", "automount_token"),
    "network_policies": ("namespace", "name", "pod_selector"),
    "role_bindings": ("namespace", "name", "role_kind", "role_name", "subject_kind",
                      "subject_name", "subject_namespace"),
    "role_rules": ("namespace", "role_kind", "role_name", "api_group", "resource", "verb",
                   "resource_names", "non_resource_url"),
}

# What the recording holds, written out by hand from the fixtures (not by the driver's code).
API_IMAGE = "ghcr.io/example/payments-api:2.4.1"
EXPECTED = {
    "namespaces": {("default", "Active"), ("kube-system", "Active"), ("monitoring", "Active"),
                   ("payments", "Active"), ("legacy-batch", "Terminating")},
    "nodes": {("node-a", "True", "False", "v1.30.4", "Ubuntu 22.04.4 LTS"),
              ("node-b", "True", "True", "v1.30.4", "Ubuntu 22.04.4 LTS"),
              ("node-c", "Unknown", "False", "v1.29.7", "Debian GNU/Linux 12 (bookworm)")},
    "pods": {
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "node-a", "Running", "coredns", "False",
         "11aa22bb-33cc-44dd-85ee-66ff77aa8801"),
        ("kube-system", "kube-proxy-x7t2q", "node-a", "Running", "kube-proxy", "True",
         "22bb33cc-44dd-45ee-96ff-77aa88bb9902"),
        ("payments", "api-6c9f7b5d8-2xk4p", "node-a", "Running", "payments-api", "False",
         "33cc44dd-55ee-46ff-a7aa-88bb99cc0a03"),
        ("payments", "api-6c9f7b5d8-9dq7m", "node-b", "Running", "payments-api", "False",
         "44dd55ee-66ff-47aa-b8bb-99cc00dd1b04"),
        ("monitoring", "node-exporter-h7k2l", "node-c", "Running", "node-exporter", "True",
         "55ee66ff-77aa-48bb-89cc-00dd11ee2c05"),
        ("default", "debug-shell", "", "Pending", "default", "False",
         "66ff77aa-88bb-49cc-9add-11ee22ff3d06"),
    },
    "containers": {
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "coredns",
         "registry.k8s.io/coredns/coredns:v1.11.1", "False", "False", "", "170Mi"),
        ("kube-system", "kube-proxy-x7t2q", "kube-proxy", "registry.k8s.io/kube-proxy:v1.30.4",
         "True", "False", "", ""),
        ("payments", "api-6c9f7b5d8-2xk4p", "migrate", API_IMAGE, "False", "True", "200m",
         "128Mi"),
        ("payments", "api-6c9f7b5d8-2xk4p", "api", API_IMAGE, "False", "True", "500m", "256Mi"),
        ("payments", "api-6c9f7b5d8-9dq7m", "migrate", API_IMAGE, "False", "True", "200m",
         "128Mi"),
        ("payments", "api-6c9f7b5d8-9dq7m", "api", API_IMAGE, "False", "True", "500m", "256Mi"),
        ("monitoring", "node-exporter-h7k2l", "node-exporter",
         "quay.io/prometheus/node-exporter:v1.8.2", "False", "True", "250m", "180Mi"),
        ("default", "debug-shell", "shell", "busybox:1.36", "False", "False", "", ""),
    },
    # the security tables: "" where the recording leaves a field unset
    "pod_security": {
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "False", "False") + ("",) * 9,
        ("kube-system", "kube-proxy-x7t2q", "False", "False") + ("",) * 9,
        ("payments", "api-6c9f7b5d8-2xk4p", "False", "False", "True", "10001",
         "RuntimeDefault", "", "", "", "", "", "False"),
        ("payments", "api-6c9f7b5d8-9dq7m", "False", "False", "True", "10001",
         "RuntimeDefault", "", "", "", "", "", "False"),
        ("monitoring", "node-exporter-h7k2l", "True", "False") + ("",) * 9,
        ("default", "debug-shell", "False", "False") + ("",) * 9,
    },
    "container_security": {
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "coredns", "container", "", "False", "",
         "", "True", "", "", "", "", "", "", "", ""),
        ("kube-system", "kube-proxy-x7t2q", "kube-proxy", "container", "True") + ("",) * 12,
        ("payments", "api-6c9f7b5d8-2xk4p", "migrate", "init") + ("",) * 13,
        ("payments", "api-6c9f7b5d8-2xk4p", "api", "container", "", "False", "", "", "True",
         "", "", "", "", "", "", "", ""),
        ("payments", "api-6c9f7b5d8-9dq7m", "migrate", "init") + ("",) * 13,
        ("payments", "api-6c9f7b5d8-9dq7m", "api", "container", "", "False", "", "", "True",
         "", "", "", "", "", "", "", ""),
        ("monitoring", "node-exporter-h7k2l", "node-exporter", "container", "", "", "True",
         "65534", "True", "", "", "", "", "", "", "", ""),
        ("default", "debug-shell", "shell", "container", "", "", "", "", "", "", "", "",
         "unconfined", "", "", "", ""),
    },
    "container_capabilities": {
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "coredns", "add", "NET_BIND_SERVICE"),
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "coredns", "drop", "ALL"),
        ("payments", "api-6c9f7b5d8-2xk4p", "api", "drop", "ALL"),
        ("payments", "api-6c9f7b5d8-9dq7m", "api", "drop", "ALL"),
    },
    "container_ports": {
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "coredns", 53, 0, "UDP"),
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "coredns", 53, 0, "TCP"),
        ("kube-system", "coredns-7db6d8ff4d-4kz8w", "coredns", 9153, 0, "TCP"),
        ("payments", "api-6c9f7b5d8-2xk4p", "api", 8080, 0, "TCP"),
        ("payments", "api-6c9f7b5d8-9dq7m", "api", 8080, 0, "TCP"),
        ("monitoring", "node-exporter-h7k2l", "node-exporter", 9100, 9100, "TCP"),
    },
    "pod_volumes": {
        ("kube-system", "kube-proxy-x7t2q", "kube-proxy", "configMap", ""),
        ("kube-system", "kube-proxy-x7t2q", "lib-modules", "hostPath", "/lib/modules"),
        ("kube-system", "kube-proxy-x7t2q", "xtables-lock", "hostPath", "/run/xtables.lock"),
        ("payments", "api-6c9f7b5d8-2xk4p", "tmp", "emptyDir", ""),
        ("payments", "api-6c9f7b5d8-9dq7m", "tmp", "emptyDir", ""),
        ("monitoring", "node-exporter-h7k2l", "root", "hostPath", "/"),
        ("default", "debug-shell", "kube-api-access-7h2kq", "projected", ""),
    },
    "pod_sysctls": {
        ("payments", "api-6c9f7b5d8-2xk4p", "net.ipv4.ip_unprivileged_port_start", "0"),
        ("payments", "api-6c9f7b5d8-9dq7m", "net.ipv4.ip_unprivileged_port_start", "0"),
    },
    "service_accounts": {("default", "default", ""), ("payments", "default", "False"),
                         ("payments", "payments-api", "True"), ("kube-system", "coredns", "")},
    "role_rules": {  # one row per group x resource x verb of each rule, and per URL x verb
        ("payments", "Role", "secret-reader", "", "secrets", "get", "", ""),
        ("payments", "Role", "secret-reader", "", "secrets", "list", "", ""),
        ("payments", "Role", "secret-reader", "", "configmaps", "get", "api-config,api-flags",
         ""),
        ("payments", "Role", "deployer", "apps", "*", "*", "", ""),
        ("payments", "Role", "deployer", "", "*", "*", "", ""),
        ("", "ClusterRole", "cluster-admin", "*", "*", "*", "", ""),
        ("", "ClusterRole", "cluster-admin", "", "", "*", "", "*"),
        ("", "ClusterRole", "view", "", "pods", "get", "", ""),
        ("", "ClusterRole", "view", "", "pods", "list", "", ""),
        ("", "ClusterRole", "view", "", "pods", "watch", "", ""),
        ("", "ClusterRole", "view", "", "services", "get", "", ""),
        ("", "ClusterRole", "view", "", "services", "list", "", ""),
        ("", "ClusterRole", "view", "", "services", "watch", "", ""),
        ("", "ClusterRole", "system:monitoring", "", "", "get", "", "/metrics"),
        ("", "ClusterRole", "system:monitoring", "", "", "get", "", "/livez"),
    },
    "deployments": {("kube-system", "coredns", 1, 1, 1), ("payments", "api", 3, 2, 2)},
    "services": {("default", "kubernetes", "ClusterIP", "10.96.0.1"),
                 ("kube-system", "kube-dns", "ClusterIP", "10.96.0.10"),
                 ("payments", "api", "NodePort", "10.96.120.15")},
    "service_ports": {("default", "kubernetes", 443, "TCP", 0),
                      ("kube-system", "kube-dns", 53, "UDP", 0),
                      ("kube-system", "kube-dns", 53, "TCP", 0),
                      ("kube-system", "kube-dns", 9153, "TCP", 0),
                      ("payments", "api", 80, "TCP", 30080)},
    "network_policies": {("payments", "default-deny", "{}"),
                         ("payments", "allow-api-ingress", '{"matchLabels": {"app": "api"}}')},
    "role_bindings": {
        ("kube-system", "system:controller:bootstrap-signer", "Role",
         "system:controller:bootstrap-signer", "ServiceAccount", "bootstrap-signer",
         "kube-system"),
        ("payments", "api-reader", "ClusterRole", "view", "ServiceAccount", "payments-api",
         "payments"),
        ("payments", "api-reader", "ClusterRole", "view", "User", "jane@example.com", ""),
        ("", "cluster-admin", "ClusterRole", "cluster-admin", "Group", "system:masters", ""),
        ("", "ops-admins", "ClusterRole", "cluster-admin", "User", "alice@example.com", ""),
        ("", "ops-admins", "ClusterRole", "cluster-admin", "ServiceAccount", "deployer", "ci"),
    },
}


def labels(kube: FakeKube, plural: str) -> set[tuple]:
    """Label rows as the recording has them: (namespace,) name, key, value."""
    out = set()
    for obj in kube.items(plural):
        md = obj["metadata"]
        lead = (md["name"],) if plural in ("nodes", "namespaces") else \
            (md["namespace"], md["name"])
        out |= {lead + (k, v) for k, v in md.get("labels", {}).items()}
    return out


def expected(kube: FakeKube) -> dict[str, set[tuple]]:
    return EXPECTED | {"node_labels": labels(kube, "nodes"),
                       "pod_labels": labels(kube, "pods"),
                       "namespace_labels": labels(kube, "namespaces")}


def config(kube: FakeKube, **more) -> dict:
    return {"host": kube.url, "token": TOKEN, "timeout_seconds": 3} | more


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def lists(kube: FakeKube, path: str) -> list[Seen]:
    return [r for r in kube.seen("GET", path) if r.query.get("watch") not in ("1", "true")]


@pytest.fixture
def driver(fake_kube):
    made: list[KubernetesDriver] = []

    def make(**more) -> KubernetesDriver:
        made.append(KubernetesDriver(DS, config(fake_kube, **more)))
        return made[-1]

    yield make
    for d in made:
        d.close()


# ---------------------------------------------------------------- the driver alone

def test_schema_has_the_documented_columns_each_described():
    specs = {s.name: s for s in KubernetesDriver.static_tables()}
    assert {t: s.column_names for t, s in specs.items()} == COLUMNS
    assert all(c.description for s in specs.values() for c in s.columns)
    d = KubernetesDriver(DS, {"host": "http://127.0.0.1:1"})
    assert [(a.name, [x.name for x in a.args]) for a in d.actions()] == [
        ("pods.delete", ["namespace", "name"]),
        ("deployments.scale", ["namespace", "name", "replicas"]),
        ("nodes.cordon", ["name"]), ("nodes.uncordon", ["name"])]
    assert set(d.tables()) == set(COLUMNS)
    d.close()
    assert KubernetesDriver.info()["secret"] == ["token"]


@pytest.mark.parametrize("cfg, says", [
    ({}, "either 'kubeconfig'"),
    ({"host": "http://x", "kubeconfig": "/k"}, "not both"),
    ({"host": "10.0.0.1:6443"}, "'host' must be the API server's URL"),
    ({"host": "http://x", "namespaces": ["Bad_NS"]}, "'namespaces' must be a list"),
    ({"host": "http://x", "page_size": 0}, "'page_size' must be a positive integer"),
    ({"host": "http://x", "watch": "sometimes"}, "'watch' must be true or false"),
    ({"host": "http://x", "timeout_seconds": "soon"}, "'timeout_seconds' must be a positive"),
    ({"host": "http://x", "ca_cert": "/nonexistent/ca.pem"}, "'ca_cert' /nonexistent/ca.pem"),
    ({"host": "http://x", "context": "prod"}, "'context' goes with 'kubeconfig'"),
    ({"kubeconfig": "/nonexistent/kubeconfig"}, "is not a readable file"),
    ({"host": "http://x", "colour": "blue"}, "no config key 'colour'"),
])
def test_config_errors_name_the_key_and_the_fix(cfg, says):
    with pytest.raises(DriverError) as err:
        KubernetesDriver(DS, cfg)
    assert says in str(err.value) and err.value.status == 400


def test_a_poll_returns_every_table_as_recorded(fake_kube, driver):
    tables = driver(watch=False).poll()
    assert {t: set(rows) for t, rows in tables.items()} == expected(fake_kube)
    assert all(len(rows) == len(set(rows)) for rows in tables.values())


def test_lists_are_read_in_pages_with_continue_tokens(fake_kube, driver):
    tables = driver(watch=False, page_size=2).poll()
    assert {r[1] for r in tables["pods"]} == {r[1] for r in EXPECTED["pods"]}
    pages = lists(fake_kube, "/api/v1/pods")
    assert [r.query.get("limit") for r in pages] == ["2", "2", "2"]
    assert "continue" not in pages[0].query
    assert all(r.query.get("continue") for r in pages[1:])


def test_an_expired_continue_token_starts_the_list_again(fake_kube, driver):
    compacted = threading.Event()

    def compact_once(seen: Seen) -> None:  # a change, and the history compacted past it,
        if seen.path == "/api/v1/pods" and seen.query.get("continue") and \
                not compacted.is_set():  # between two pages
            compacted.set()
            fake_kube.add("pods", FakeKube.fixture("privileged_pod.json"), announce=False)

    fake_kube.hook = compact_once
    tables = driver(watch=False, page_size=4).poll()
    assert {r[1] for r in tables["pods"]} == {r[1] for r in EXPECTED["pods"]} | {MINER}
    pages = [r.query.get("continue") is not None for r in lists(fake_kube, "/api/v1/pods")]
    assert pages == [False, True, False, True]  # page, page (410), page, page


def test_without_watch_every_poll_lists_everything(fake_kube, driver):
    d = driver(watch=False)
    d.poll()
    fake_kube.add("pods", FakeKube.fixture("privileged_pod.json"))
    assert MINER in {r[1] for r in d.poll()["pods"]}
    assert len(lists(fake_kube, "/api/v1/pods")) == 2
    assert not fake_kube.seen("GET", "/api/v1/")  # no probe: the lists are the check
    assert not [r for r in fake_kube.seen("GET") if r.query.get("watch")]


def test_with_watch_a_poll_reads_memory_and_events_arrive(fake_kube, driver):
    d = driver()
    d.poll()
    listed = len([r for r in fake_kube.requests if r.query.get("watch") is None])
    added = fake_kube.add("pods", FakeKube.fixture("privileged_pod.json"))
    eventually(lambda: MINER in {r[1] for r in d.poll()["pods"]}, "the ADDED pod")
    fake_kube.modify("pods", "payments", MINER, {"spec": {"nodeName": "node-c"}})
    eventually(lambda: ("payments", MINER, "node-c") in {r[:3] for r in d.poll()["pods"]},
               "the MODIFIED pod")
    fake_kube.remove("pods", "payments", MINER)
    eventually(lambda: MINER not in {r[1] for r in d.poll()["pods"]}, "the DELETED pod")
    requests = [r for r in fake_kube.requests if r.query.get("watch") is None]
    # after the first poll, only the cheap probe (GET /api/v1/): nothing is listed again
    assert {r.path for r in requests[listed:]} == {"/api/v1/"}
    watches = [r for r in fake_kube.seen("GET", "/api/v1/pods") if r.query.get("watch")]
    assert int(watches[0].query["resourceVersion"]) < int(added["metadata"]["resourceVersion"])


def test_watches_resume_from_the_last_version_when_the_server_ends_them(fake_kube, driver):
    fake_kube.max_watch_seconds = 0.2
    d = driver()
    d.poll()
    eventually(lambda: len([r for r in fake_kube.seen("GET", "/api/v1/nodes")
                            if r.query.get("watch")]) >= 2, "a resumed watch")
    fake_kube.modify("nodes", "", "node-c", {"spec": {"unschedulable": True}})
    eventually(lambda: ("node-c", "Unknown", "True") in {r[:3] for r in d.poll()["nodes"]},
               "the cordoned node")
    assert len(lists(fake_kube, "/api/v1/nodes")) == 1  # resumed, never re-listed


def test_410_gone_on_a_watch_lists_again(fake_kube, driver):
    d = driver()
    d.poll()
    # a pod the watch never hears about, then the history is compacted: only a list shows it
    fake_kube.add("pods", FakeKube.fixture("privileged_pod.json"), announce=False)
    assert MINER not in {r[1] for r in d.poll()["pods"]}
    fake_kube.expire_watches()
    eventually(lambda: MINER in {r[1] for r in d.poll()["pods"]}, "the re-listed pod")
    assert len(lists(fake_kube, "/api/v1/pods")) == 2


def test_namespaces_limit_what_is_read_and_acted_on(fake_kube, driver):
    d = driver(namespaces="payments")
    tables = d.poll()
    assert tables["namespaces"] == [("payments", "Active")]
    assert {r[0] for r in tables["pods"]} == {"payments"}
    assert {r[0] for r in tables["role_bindings"]} == {"payments", ""}
    assert len(tables["nodes"]) == 3  # cluster-wide
    assert lists(fake_kube, "/api/v1/namespaces/payments/pods")
    assert not lists(fake_kube, "/api/v1/pods")
    with pytest.raises(DriverError, match="covers namespaces payments, not 'kube-system'"):
        d.execute("pods.delete", ["kube-system", "kube-proxy-x7t2q"], {})


def test_kubeconfig_and_context(fake_kube, driver, tmp_path: Path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(f"""\
apiVersion: v1
kind: Config
current-context: stale
clusters:
- name: fake
  cluster: {{server: "{fake_kube.url}"}}
users:
- name: charter
  user: {{token: "{TOKEN}"}}
- name: old
  user: {{token: "expired-token"}}
contexts:
- name: fake
  context: {{cluster: fake, user: charter}}
- name: stale
  context: {{cluster: fake, user: old}}
""")
    d = KubernetesDriver(DS, {"kubeconfig": str(kubeconfig), "context": "fake"})
    try:
        assert set(d.poll()["deployments"]) == EXPECTED["deployments"]
    finally:
        d.close()
    stale = KubernetesDriver(DS, {"kubeconfig": str(kubeconfig)})  # its current-context
    try:
        with pytest.raises(DriverError, match="refused the credentials") as err:
            stale.poll()
        assert "expired-token" not in str(err.value)
    finally:
        stale.close()
    with pytest.raises(DriverError, match="with context 'nope'"):
        KubernetesDriver(DS, {"kubeconfig": str(kubeconfig), "context": "nope"})


@pytest.mark.parametrize("fail, says", [
    ((500, b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: '
      b'request timed out","reason":"InternalError","code":500}', "application/json"),
     "answered HTTP 500 while checking the API: etcdserver: request timed out"),
    ((200, b"<html>login</html>", "text/html"), "not the Kubernetes API's resource list"),
])
def test_500s_and_garbage_fail_the_poll_with_the_reason(fake_kube, driver, fail, says):
    d = driver()
    d.poll()
    fake_kube.fail = fail
    with pytest.raises(DriverError, match=says) as err:
        d.poll()
    assert err.value.status == 502


def test_a_slow_server_times_out(fake_kube, driver):
    d = driver(timeout_seconds=0.3)
    fake_kube.hook = lambda seen: time.sleep(1.0)
    with pytest.raises(DriverError, match=r"no answer within 0.3 s") as err:
        d.poll()
    assert err.value.status == 503


def test_close_ends_the_watches(fake_kube, driver):
    d = driver()
    d.poll()
    threads = [s.thread for s in d.streams]
    assert all(t is not None and t.is_alive() for t in threads)
    start = time.monotonic()
    d.close()
    assert time.monotonic() - start < 3
    assert not any(t.is_alive() for t in threads if t is not None)


# ---------------------------------------------------------------- through Charter's API

def refresh(client) -> None:
    r = client.post(f"/v1/data-sources/{DS}?action=request-refresh")
    assert r.status_code == 200, r.text


def rows(client, table: str) -> set[tuple]:
    r = client.get(f"/v1/data-sources/{DS}/tables/{table}/rows")
    assert r.status_code == 200, r.text
    return {tuple(x["data"]) for x in r.json()["results"]}


def violations(client) -> set[tuple]:
    r = client.get("/v1/policies/k8s/violations")
    assert r.status_code == 200, r.text
    return {tuple(v["row"]) for v in r.json()["results"] if v["table"] == "error"}


def status(client) -> dict:
    return client.get(f"/v1/data-sources/{DS}/status").json()


@pytest.fixture
def kube_api(client, fake_kube):
    r = client.post("/v1/data-sources", json={
        "name": DS, "driver": "kubernetes", "config": config(fake_kube, poll_time=3600)})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["token"] == "<hidden>"
    refresh(client)
    r = client.post("/v1/policies", json={"name": "k8s", "rules": [{"rule": RULE}]})
    assert r.status_code == 201, r.text
    return client


def test_through_the_api_every_table_is_the_cluster(kube_api, fake_kube):
    for table, want in expected(fake_kube).items():
        assert rows(kube_api, table) == want, table
    schema = kube_api.get(f"/v1/data-sources/{DS}/schema").json()["tables"]
    assert {t["table_id"]: tuple(c["name"] for c in t["columns"]) for t in schema} == COLUMNS
    assert status(kube_api)["initialized"] is True
    assert violations(kube_api) == {("kube-system", "kube-proxy-x7t2q")}


def test_a_watch_event_arrives_as_a_delta_and_a_violation_comes_and_goes(kube_api, fake_kube):
    fake_kube.add("pods", FakeKube.fixture("privileged_pod.json"))

    def arrived() -> bool:
        refresh(kube_api)
        return ("payments", MINER) in violations(kube_api)

    eventually(arrived, "the privileged pod's violation")
    assert ("payments", MINER, "miner", "docker.io/library/alpine:3.20", "True", "False", "",
            "") in rows(kube_api, "containers")
    assert ("payments", MINER, "app", "miner") in rows(kube_api, "pod_labels")
    assert ("payments", MINER, "miner", "container", "True", "", "", "0") + ("",) * 9 in \
        rows(kube_api, "container_security")
    before = status(kube_api)["number_of_updates"]
    fake_kube.remove("pods", "payments", MINER)

    def cleared() -> bool:
        refresh(kube_api)
        return ("payments", MINER) not in violations(kube_api)

    eventually(cleared, "the violation to clear")
    assert MINER not in {r[1] for r in rows(kube_api, "pods")}
    assert not {r for r in rows(kube_api, "pod_labels") if r[1] == MINER}
    assert not {r for r in rows(kube_api, "container_security") if r[1] == MINER}
    assert violations(kube_api) == {("kube-system", "kube-proxy-x7t2q")}
    assert status(kube_api)["number_of_updates"] > before


def execute(client, name: str, *positional) -> dict:
    r = client.post(f"/v1/data-sources/{DS}?action=execute",
                    json={"name": name, "args": {"positional": list(positional)}})
    assert r.status_code == 200, r.text
    return r.json()


def test_actions_reach_the_api_server(kube_api, fake_kube):
    victim = "api-6c9f7b5d8-9dq7m"
    assert execute(kube_api, "pods.delete", "payments", victim)["result"] == {
        "namespace": "payments", "name": victim}
    assert fake_kube.seen("DELETE", f"/api/v1/namespaces/payments/pods/{victim}")
    execute(kube_api, "deployments.scale", "payments", "api", 4)
    patch = fake_kube.seen("PATCH", "/apis/apps/v1/namespaces/payments/deployments/api/scale")
    assert patch[-1].body == {"spec": {"replicas": 4}}
    execute(kube_api, "nodes.cordon", "node-c")
    assert fake_kube.seen("PATCH", "/api/v1/nodes/node-c")[-1].body == {
        "spec": {"unschedulable": True}}

    def applied() -> bool:
        refresh(kube_api)
        return (victim not in {r[1] for r in rows(kube_api, "pods")}
                and ("payments", "api", 4, 2, 2) in rows(kube_api, "deployments")
                and ("node-c", "Unknown", "True", "v1.29.7", "Debian GNU/Linux 12 (bookworm)")
                in rows(kube_api, "nodes"))

    eventually(applied, "the actions' effects, by watch")
    execute(kube_api, "nodes.uncordon", "node-b")
    assert fake_kube.get("nodes", "", "node-b")["spec"]["unschedulable"] is False
    r = kube_api.post(f"/v1/data-sources/{DS}?action=execute",
                      json={"name": "pods.delete", "args": {"positional": ["payments", "gone"]}})
    assert r.status_code == 404 and 'pods \\"gone\\" not found' in r.text
    r = kube_api.post(f"/v1/data-sources/{DS}?action=execute",
                      json={"name": "pods.delete", "args": {"positional": ["payments"]}})
    assert r.status_code == 400 and "missing name" in r.text


def test_server_stopped_keeps_the_rows_and_says_unreachable_until_it_is_back(kube_api,
                                                                            fake_kube):
    fake_kube.stop()
    r = kube_api.post(f"/v1/data-sources/{DS}?action=request-refresh")
    assert r.status_code == 503 and "unreachable" in r.text
    st = status(kube_api)
    assert "unreachable" in st["last_error"] and fake_kube.url in st["last_error"]
    assert st["consecutive_failures"] >= 1
    assert rows(kube_api, "pods") == EXPECTED["pods"]  # the last good rows stay
    assert violations(kube_api) == {("kube-system", "kube-proxy-x7t2q")}
    fake_kube.add("pods", FakeKube.fixture("privileged_pod.json"))  # changed while down
    fake_kube.start()
    refresh(kube_api)
    assert status(kube_api)["last_error"] is None

    def caught_up() -> bool:
        refresh(kube_api)
        return MINER in {r[1] for r in rows(kube_api, "pods")}

    eventually(caught_up, "the pod added while the server was down")


def test_a_refused_token_says_so_and_keeps_the_rows(kube_api, fake_kube):
    fake_kube.token = "rotated-token"
    r = kube_api.post(f"/v1/data-sources/{DS}?action=request-refresh")
    assert r.status_code == 502
    last = status(kube_api)["last_error"]
    assert "refused the credentials" in last and "HTTP 401" in last and "'token'" in last
    assert TOKEN not in r.text and TOKEN not in last
    assert rows(kube_api, "nodes") == EXPECTED["nodes"]
    fake_kube.token = TOKEN
    refresh(kube_api)
    assert status(kube_api)["last_error"] is None


# ---------------------------------------------------------------- the pack on the recorded cluster

NODE_EXPORTER = "node-exporter-h7k2l"
API_PODS = ("api-6c9f7b5d8-2xk4p", "api-6c9f7b5d8-9dq7m")
NO_ESCALATION_OFF = "allowPrivilegeEscalation is not set to false, and it defaults to true"
NO_SECCOMP = "no seccomp profile is set, for the container or its pod"
NO_DROP = "does not drop ALL capabilities"
NO_NETPOL = "no NetworkPolicy: every pod accepts traffic from anywhere in the cluster"
NO_PSA = "no pod-security.kubernetes.io/enforce label: Pod Security admission enforces no profile"
# What kubernetes-pod-security finds in the recording (kube-system exempt), written out by
# hand from the fixtures: control -> {(resource, namespace, detail)}; the others pass.
POSTURE = {
    "K8S-PSS-001": {(NODE_EXPORTER, "monitoring", "shares the node's network namespace (hostNetwork)"),
                    (NODE_EXPORTER, "monitoring", "shares the node's process namespace (hostPID)")},
    "K8S-PSS-004": {(NODE_EXPORTER, "monitoring", "mounts the node's / (hostPath volume root)")},
    "K8S-PSS-005": {(NODE_EXPORTER, "monitoring", "opens a port on the node it runs on (hostPort)")},
    "K8S-PSS-006": {("debug-shell", "default",
                     "runs without AppArmor confinement (profile unconfined)")},
    "K8S-PSS-101": {(NODE_EXPORTER, "monitoring",
                     "volume root is of type hostPath, outside the allowed volume types")},
    # the api pods' init containers (migrate) set neither; their pod sets runAsNonRoot and
    # seccomp for them
    "K8S-PSS-102": {(p, "payments", NO_ESCALATION_OFF) for p in API_PODS} |
                   {("debug-shell", "default", NO_ESCALATION_OFF),
                    (NODE_EXPORTER, "monitoring", NO_ESCALATION_OFF)},
    "K8S-PSS-103": {("debug-shell", "default",
                     "runAsNonRoot is not set to true, for the container or its pod")},
    "K8S-PSS-105": {("debug-shell", "default", NO_SECCOMP),
                    (NODE_EXPORTER, "monitoring", NO_SECCOMP)},
    "K8S-PSS-106": {(p, "payments", NO_DROP) for p in API_PODS} |
                   {("debug-shell", "default", NO_DROP), (NODE_EXPORTER, "monitoring", NO_DROP)},
    "K8S-RBAC-001": {("ops-admins", "", "gives User alice@example.com cluster-admin in every "
                      "namespace"),
                     ("ops-admins", "", "gives service account ci/deployer cluster-admin in "
                      "every namespace")},
    "K8S-RBAC-002": {("deployer", "payments", "grants every verb on every resource")},
    "K8S-NET-001": {("default", "default", NO_NETPOL), ("monitoring", "monitoring", NO_NETPOL)},
    "K8S-NET-002": {("api", "payments", "type NodePort: reachable on a port of every node")},
    "K8S-WL-001": {("debug-shell", "default", "no CPU limit: it can take every core of its node"),
                   ("debug-shell", "default", "no memory limit: it can take its node's memory")},
    "K8S-WL-003": {("debug-shell", "default",
                    "runs as the default service account, with its API token mounted")},
    "K8S-WL-004": {("default", "default", "automountServiceAccountToken is not false: every "
                    "pod that names no account gets its token")},
    "K8S-WL-005": {("default", "default", NO_PSA), ("monitoring", "monitoring", NO_PSA)},
    "K8S-WL-006": {("debug-shell", "default",
                    "runs in the default namespace, which no policy of its own isolates")},
}


def posture(client) -> dict[str, tuple[str, set[tuple]]]:
    r = client.get("/v1/packs/kubernetes-pod-security/posture?rows=true")
    assert r.status_code == 200, r.text
    controls = r.json()["controls"]
    for row in (row for c in controls for row in c["rows"]):  # a namespace is the owner
        assert row["project"] == row["columns"].get("namespace"), row
    return {c["id"]: (c["status"], {(row["resource"], row["columns"].get("namespace"),
                                     row["detail"]) for row in c["rows"]})
            for c in controls}


def test_the_pod_security_pack_judges_the_recorded_cluster_and_its_changes(kube_api, fake_kube):
    r = kube_api.post("/v1/packs/kubernetes-pod-security?action=enable")
    assert r.status_code == 200, r.text
    found = posture(kube_api)
    assert {c for c, (status, _) in found.items() if status == "failing"} == set(POSTURE)
    assert {c: rows for c, (_, rows) in found.items() if rows} == POSTURE
    assert {status for status, _ in found.values()} == {"failing", "passing"}

    # a privileged pod running as root arrives by the watch, and two controls fail for it
    fake_kube.add("pods", FakeKube.fixture("privileged_pod.json"))

    def judged() -> bool:
        refresh(kube_api)
        return posture(kube_api)["K8S-PSS-002"][0] == "failing"

    eventually(judged, "the privileged pod in the posture")
    found = posture(kube_api)
    assert found["K8S-PSS-002"][1] == {(MINER, "payments", "runs privileged: it has every "
                                        "capability and the node's devices")}
    assert found["K8S-PSS-104"][1] == {(MINER, "payments",
                                        "runAsUser is 0: the container runs as root")}
