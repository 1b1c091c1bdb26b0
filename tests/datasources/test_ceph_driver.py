"""The ceph driver against a real Ceph 16 cluster (1 mon, 1 mgr, 3 memstore OSDs).

Everything goes through Charter's API (in-process TestClient over a real store): create the
datasource, refresh, compare its tables with what the ceph CLI says, change the cluster for
real (stop an OSD, mark one out, stop the mon or the mgr) and see the change arrive as a
delta and as a violation that appears and clears. One cluster serves the whole module; each
test leaves it as it found it (CephCluster.restore).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from charter.datasources.driver import DriverError
from charter.datasources.drivers.ceph import TABLES, CephDriver
from tests.api import conftest as api
from tests.realservices import ceph as realceph
from tests.realservices.ceph import CephCluster

pytestmark = [pytest.mark.ceph, pytest.mark.slow]

# Fixtures from elsewhere (an import of the names would trip ruff's F811).
ceph_cluster = realceph.ceph_cluster
service = api.service
settings = api.settings
client = api.client

DS = "ceph"
POLICY = "cephops"
RULES = [
    'error(osd) :- ceph:osds(id=osd, up="False")',
    'error(osd) :- ceph:osds(id=osd, in="False")',
    'warning(pg) :- ceph:pg_states(pg, "degraded")',
]


# ---------------------------------------------------------------- helpers


@pytest.fixture
def cluster(ceph_cluster: CephCluster) -> Iterator[CephCluster]:
    """The session's cluster (healthy: it starts so and each test puts it back)."""
    try:
        yield ceph_cluster
    finally:
        ceph_cluster.restore()


@pytest.fixture
def ceph(client: TestClient, cluster: CephCluster) -> TestClient:
    """A client with the ``ceph`` datasource (polled only on request) and the policy."""
    config = {"conf": str(cluster.conf), "timeout_seconds": 20, "poll_time": 3600}
    r = client.post("/v1/data-sources", json={"name": DS, "driver": "ceph", "config": config})
    assert r.status_code == 201, r.text
    refresh(client)
    r = client.post("/v1/policies", json={"name": POLICY, "rules": [{"rule": x} for x in RULES]})
    assert r.status_code == 201, r.text
    return client


def refresh(client: TestClient, name: str = DS) -> None:
    r = client.post(f"/v1/data-sources/{name}?action=request-refresh")
    assert r.status_code == 200, r.text


def rows(client: TestClient, table: str, name: str = DS) -> set[tuple]:
    r = client.get(f"/v1/data-sources/{name}/tables/{table}/rows")
    assert r.status_code == 200, r.text
    return {tuple(x["data"]) for x in r.json()["results"]}


def violations(client: TestClient) -> set[tuple]:
    r = client.get(f"/v1/policies/{POLICY}/violations")
    assert r.status_code == 200, r.text
    return {(v["table"], *v["row"]) for v in r.json()["results"]}


def refresh_until(client: TestClient, what: str, check: Callable[[], bool],
                  timeout: float = 90) -> None:
    """Refresh (the mgr's PG stats lag a few seconds behind the OSD map) until ``check``."""
    deadline = time.monotonic() + timeout
    while True:
        refresh(client)
        if check():
            return
        assert time.monotonic() < deadline, f"no {what} after {timeout} s of refreshes"
        time.sleep(1)


def execute(client: TestClient, action: str, **named: Any) -> Any:
    return client.post(f"/v1/data-sources/{DS}?action=execute",
                       json={"name": action, "args": {"named": named}})


def osd_row(client: TestClient, osd: int) -> tuple:
    (row,) = [r for r in rows(client, "osds") if r[0] == osd]
    return row


# ---------------------------------------------------------------- tables


def test_driver_schema_documents_every_column(client: TestClient):
    info = client.get("/v1/system/drivers/ceph").json()
    tables = {t["table_id"]: t["columns"] for t in info["tables"]}
    assert list(tables) == [t.name for t in TABLES]
    assert set(tables) >= {"health", "health_checks", "osds", "crush_buckets", "crush_types",
                           "crush_rules", "pools", "erasure_code_profiles", "placement_groups",
                           "pg_states", "pg_acting", "osd_df", "monitors"}
    assert [c["name"] for c in tables["osds"]] == [
        "id", "name", "host", "up", "in", "status", "crush_weight", "reweight", "device_class"]
    assert all(c["description"] for cols in tables.values() for c in cols)
    assert {"conf", "ceph_bin", "timeout_seconds", "poll_time"} <= set(info["config"])


def test_tables_match_what_ceph_reports(ceph: TestClient, cluster: CephCluster):
    health_before = cluster.json("health", "detail")
    refresh(ceph)
    health_after = cluster.json("health", "detail")
    dump = cluster.json("osd", "dump")
    tree = cluster.json("osd", "tree")
    pgs = cluster.json("pg", "dump", "pgs_brief")["pg_stats"]
    rules = cluster.json("osd", "crush", "rule", "dump")
    crush = cluster.json("osd", "crush", "dump")
    df = cluster.json("osd", "df")

    schema = ceph.get(f"/v1/data-sources/{DS}/schema").json()["tables"]
    assert {t["table_id"] for t in schema} == {t.name for t in TABLES}

    # Health can change between two reads (a slow-ops warning on a loaded machine): the
    # driver's must be what the CLI said just before or just after its poll.
    health = rows(ceph, "health"), {c for c, *_ in rows(ceph, "health_checks")}
    assert health in [({(h["status"],)}, set(h["checks"])) for h in (health_before, health_after)]
    weights = {n["id"]: n["crush_weight"] for n in tree["nodes"] if n["type"] == "osd"}
    assert rows(ceph, "osds") == {
        (osd, f"osd.{osd}", host, "True", "True", "up", weights[osd], 1.0, "hdd")
        for osd, host in cluster.osd_hosts.items()}
    assert len(cluster.osd_hosts) == 3
    hosts = {(n["id"], n["name"], "host", "default") for n in tree["nodes"]
             if n["type"] == "host"}
    root = {(n["id"], "default", "root", None) for n in tree["nodes"] if n["type"] == "root"}
    assert rows(ceph, "crush_buckets") == hosts | root
    assert {r[1] for r in hosts} == set(cluster.osd_hosts.values())
    # The fixture's conf has osd crush chooseleaf type 0: its one rule chooses OSDs.
    assert rows(ceph, "crush_rules") == {
        (r["rule_id"], r["rule_name"], "replicated", r["min_size"], r["max_size"], "default",
         "osd", None) for r in rules}
    assert rows(ceph, "crush_types") == {(t["type_id"], t["name"]) for t in crush["types"]}
    assert {(0, "osd"), (1, "host"), (3, "rack")} <= rows(ceph, "crush_types")
    assert rows(ceph, "erasure_code_profiles") == {
        (name, int(p["k"]), int(p["m"]), p["plugin"], p.get("crush-failure-domain"))
        for name, p in dump["erasure_code_profiles"].items()}
    assert ("default", 2, 2, "jerasure", None) in rows(ceph, "erasure_code_profiles")
    assert rows(ceph, "monitors") == {
        ("a", 0, f"{realceph.HOST}:{cluster.mon_port_v1}/0", "True")}
    pools = {r[1]: r for r in rows(ceph, "pools")}
    assert set(pools) == {p["pool_name"] for p in dump["pools"]}
    test_pool = next(p for p in dump["pools"] if p["pool_name"] == realceph.POOL)
    assert pools[realceph.POOL] == (test_pool["pool"], realceph.POOL, "replicated", 2, 1,
                                    realceph.POOL_PGS, 0, "rbd", 0, 0, None)
    assert rows(ceph, "placement_groups") == {
        (p["pgid"], int(p["pgid"].split(".")[0]), "active+clean", p["up_primary"],
         p["acting_primary"]) for p in pgs}
    assert len([p for p in pgs if p["pgid"].startswith(f"{test_pool['pool']}.")]) == 8
    assert rows(ceph, "pg_states") == {(p["pgid"], s) for p in pgs for s in ("active", "clean")}
    assert rows(ceph, "pg_acting") == {
        (p["pgid"], at, osd) for p in pgs for at, osd in enumerate(p["acting"])}
    assert {len(p["acting"]) for p in pgs if p["pgid"].startswith(f"{test_pool['pool']}.")} \
        == {2}
    df_rows = {r[0]: r for r in rows(ceph, "osd_df")}
    assert set(df_rows) == set(cluster.osd_hosts)
    for n in df["nodes"]:  # usage moves a little between two reads; sizes do not
        assert df_rows[n["id"]][1] == n["kb"] == 512 * 1024
        assert 0 < df_rows[n["id"]][2] < n["kb"]
    assert set(rows(ceph, "osd_flags")) == {(f,) for f in dump["flags_set"]}
    status = ceph.get(f"/v1/data-sources/{DS}/status").json()
    assert status["initialized"] and status["last_error"] is None
    assert status["rows"]["osds"] == 3
    assert violations(ceph) == set()


def test_stopped_osd_is_a_violation_as_a_delta_and_clears(ceph: TestClient,
                                                          cluster: CephCluster,
                                                          service):
    listener = service.events.listen([f"{DS}:osds"])
    before = osd_row(ceph, 1)
    cluster.stop_osd(1)
    # Degraded PGs show once the mgr has the OSDs' new PG stats, a few seconds later.
    refresh_until(ceph, "degraded PG", lambda: any(
        t == "warning" for t, *_ in violations(ceph)))
    assert ("error", 1) in violations(ceph)
    after = osd_row(ceph, 1)
    assert after == (*before[:3], "False", "True", "down", *before[6:])
    states = rows(ceph, "pg_states")
    degraded = {pg for pg, s in states if s == "degraded"}
    assert {("warning", pg) for pg in degraded} <= violations(ceph)
    assert rows(ceph, "health") == {("HEALTH_WARN",)}
    assert "OSD_DOWN" in {r[0] for r in rows(ceph, "health_checks")}
    # The osds table changed by exactly one row: osd.1's old row out, its new row in.
    events = []
    while not listener.queue.empty():
        events.append(listener.queue.get_nowait())
    service.events.close(listener)
    assert [(e.deleted, e.inserted) for e in events] == [([before], [after])]

    cluster.restart_osd(1)
    cluster.wait_healthy()
    refresh_until(ceph, "cleared violations", lambda: violations(ceph) == set())
    assert osd_row(ceph, 1) == before
    history = ceph.get(f"/v1/policies/{POLICY}/violations?include_resolved=true").json()
    resolved = {(v["table"], *v["row"]): v["resolved_at"] for v in history["results"]}
    assert resolved[("error", 1)] is not None
    assert all(resolved[("warning", pg)] is not None for pg in degraded)


def test_erasure_pool_profile_rule_steps_and_acting_shards(ceph: TestClient,
                                                           cluster: CephCluster):
    """An erasure-coded pool (k=2 m=1 by host) and a replicated rule restricted to a device
    class: the driver reads the profile, each rule's root, failure domain and class from
    its steps, and the PGs' acting sets shard by shard. They are removed again after."""
    profile, pool, rule = "charter-k2m1", "charter-ec", "charter-hdd-by-host"
    cluster.run("osd", "erasure-code-profile", "set", profile, "k=2", "m=1",
                "crush-failure-domain=host")
    try:
        cluster.run("osd", "crush", "rule", "create-replicated", rule, "default", "host", "hdd")
        cluster.run("osd", "pool", "create", pool, "4", "4", "erasure", profile,
                    "--autoscale-mode=off")
        realceph.wait_for("the erasure pool's PGs active+clean", cluster.all_pgs_clean, 120)
        refresh(ceph)
        assert ("charter-k2m1", 2, 1, "jerasure", "host") in rows(ceph, "erasure_code_profiles")
        rules = {r[1]: r for r in rows(ceph, "crush_rules")}
        # `ceph osd pool create ... erasure` makes a rule named for the pool
        assert rules[pool][2:] == ("erasure", 3, 3, "default", "host", None)
        assert rules[rule][2] == "replicated" and rules[rule][5:] == ("default", "host", "hdd")
        (ec,) = [r for r in rows(ceph, "pools") if r[1] == pool]
        assert ec[2:5] == ("erasure", 3, 2) and ec[6] == rules[pool][0] and ec[10] == profile
        pgs = {pg for pg, pool_id, *_ in rows(ceph, "placement_groups") if pool_id == ec[0]}
        assert len(pgs) == 4
        acting = [r for r in rows(ceph, "pg_acting") if r[0] in pgs]
        hosts = cluster.osd_hosts
        for pg in pgs:  # three shards, one per host (so one per OSD here)
            shards = {at: osd for p, at, osd in acting if p == pg}
            assert set(shards) == {0, 1, 2}
            assert {hosts[osd] for osd in shards.values()} == set(hosts.values())
    finally:  # each step alone, so a failed one leaves the others done
        for undo in (("osd", "pool", "rm", pool, pool, "--yes-i-really-really-mean-it"),
                     ("osd", "crush", "rule", "rm", pool), ("osd", "crush", "rule", "rm", rule),
                     ("osd", "erasure-code-profile", "rm", profile)):
            with contextlib.suppress(realceph.CephError):
                cluster.run(*undo)


def test_execute_actions_change_the_cluster(ceph: TestClient, cluster: CephCluster):
    r = execute(ceph, "osd.out", id=2)
    assert r.status_code == 200, r.text
    assert "marked out osd.2" in r.json()["result"]["message"]
    assert 2 not in cluster.osds_in()
    refresh(ceph)
    row = osd_row(ceph, 2)
    assert row[3:6] == ("True", "False", "up") and row[7] == 0.0
    assert ("error", 2) in violations(ceph)
    r = execute(ceph, "osd.in", id="osd.2")
    assert r.status_code == 200, r.text
    assert 2 in cluster.osds_in()
    r = execute(ceph, "osd.reweight", id=2, weight=0.5)
    assert r.status_code == 200, r.text
    refresh(ceph)
    assert osd_row(ceph, 2)[4] == "True" and osd_row(ceph, 2)[7] == 0.5
    assert ("error", 2) not in violations(ceph)

    r = execute(ceph, "pool.set_quota", pool=realceph.POOL, field="max_objects", value=1000)
    assert r.status_code == 200, r.text
    assert execute(ceph, "osd.set_flag", flag="noout").status_code == 200
    refresh(ceph)
    (pool,) = [p for p in rows(ceph, "pools") if p[1] == realceph.POOL]
    assert pool[8:10] == (1000, 0)
    assert ("noout",) in rows(ceph, "osd_flags")
    dump = cluster.json("osd", "dump")
    assert "noout" in dump["flags_set"]
    assert next(p for p in dump["pools"] if p["pool_name"] == realceph.POOL)[
        "quota_max_objects"] == 1000
    assert execute(ceph, "osd.unset_flag", flag="noout").status_code == 200
    assert "noout" not in cluster.json("osd", "dump")["flags_set"]

    # The caller's mistakes, caught by the driver or refused by Ceph: 400 with the reason.
    for action, args, words in [
        ("osd.out", {"id": 99}, "does not exist"),
        ("osd.reweight", {"id": 1, "weight": 2}, "between 0.0 and 1.0"),
        ("osd.set_flag", {"flag": "bogus"}, "not in full|pause"),
        ("pool.set_quota", {"pool": "nopool", "field": "max_bytes", "value": 1},
         "unrecognized pool"),
        ("pool.set_quota", {"pool": realceph.POOL, "field": "max_kb", "value": 1},
         "max_objects or max_bytes"),
        ("osd.out", {}, "missing id"),
    ]:
        r = execute(ceph, action, **args)
        assert r.status_code == 400, (action, r.text)
        assert words in r.json()["error"]["message"], r.text
    assert ceph.post(f"/v1/data-sources/{DS}?action=execute",
                     json={"name": "osd.destroy", "args": {}}).status_code == 400


# ---------------------------------------------------------------- faults


def test_mon_down_keeps_tables_says_unreachable_and_recovers(client: TestClient,
                                                             cluster: CephCluster):
    config = {"conf": str(cluster.conf), "timeout_seconds": 8, "poll_time": 3600}
    r = client.post("/v1/data-sources", json={"name": DS, "driver": "ceph", "config": config})
    assert r.status_code == 201, r.text
    refresh(client)
    good = {t.name: rows(client, t.name) for t in TABLES}
    assert len(good["osds"]) == 3

    cluster.stop_daemon("mon.a")
    start = time.monotonic()
    r = client.post(f"/v1/data-sources/{DS}?action=request-refresh")
    took = time.monotonic() - start
    assert r.status_code == 503, r.text
    assert "unreachable" in r.json()["error"]["message"]
    assert took < 8 + 5, f"a poll of a dead mon took {took:.1f} s with timeout_seconds=8"
    status = client.get(f"/v1/data-sources/{DS}/status").json()
    assert "unreachable" in status["last_error"] and str(cluster.conf) in status["last_error"]
    assert status["consecutive_failures"] >= 1
    assert {t.name: rows(client, t.name) for t in TABLES} == good

    cluster.start_mon()
    # Once the cluster answers again (mgr included), the next poll succeeds by itself.
    realceph.wait_for("the cluster to answer again", cluster.all_pgs_clean, 120)
    deadline = time.monotonic() + 90
    while client.post(f"/v1/data-sources/{DS}?action=request-refresh").status_code != 200:
        assert time.monotonic() < deadline, "no successful poll 90 s after the mon came back"
        time.sleep(1)
    status = client.get(f"/v1/data-sources/{DS}/status").json()
    assert status["last_error"] is None and status["consecutive_failures"] == 0
    assert rows(client, "osds") == good["osds"]


def test_mgr_down_hangs_the_cli_and_the_timeout_cuts_it(client: TestClient,
                                                        cluster: CephCluster):
    """With the mon up and the mgr gone, `ceph pg dump` waits forever: only the driver's
    subprocess timeout ends the poll."""
    config = {"conf": str(cluster.conf), "timeout_seconds": 8, "poll_time": 3600}
    assert client.post("/v1/data-sources", json={"name": DS, "driver": "ceph",
                                                 "config": config}).status_code == 201
    refresh(client)
    good = rows(client, "placement_groups")
    cluster.stop_daemon("mgr.x")
    start = time.monotonic()
    r = client.post(f"/v1/data-sources/{DS}?action=request-refresh")
    assert r.status_code == 503, r.text
    assert "within 8 s" in r.json()["error"]["message"]
    assert time.monotonic() - start < 8 + 5
    assert rows(client, "placement_groups") == good

    cluster.start_mgr()
    realceph.wait_for("the mgr's PG stats", cluster.all_pgs_clean, 120)
    deadline = time.monotonic() + 90
    while client.post(f"/v1/data-sources/{DS}?action=request-refresh").status_code != 200:
        assert time.monotonic() < deadline, "no successful poll 90 s after the mgr came back"
        time.sleep(1)
    assert rows(client, "placement_groups") == good


def test_cephx_without_keyring_is_bad_config_and_a_wrong_key_is_refused(
        client: TestClient, cluster: CephCluster, tmp_path):
    """This cluster runs without cephx; a client conf that insists on it is refused by the
    real mon, as a cluster with cephx refuses a wrong key."""
    conf = tmp_path / "cephx.conf"
    conf.write_text(cluster.conf.read_text().replace("auth client required = none",
                                                     "auth client required = cephx"))
    keyring = tmp_path / "client.keyring"
    subprocess.run(["ceph-authtool", "--create-keyring", str(keyring), "--gen-key",
                    "-n", "client.admin"], check=True, capture_output=True, timeout=60)
    for name, extra, status, words in [
        ("nokeyring", {}, 400, "set the 'keyring'"),
        ("wrongkey", {"keyring": str(keyring), "user": "admin"}, 502,
         "refused the credentials"),
    ]:
        config = {"conf": str(conf), "timeout_seconds": 20, "poll_time": 3600, **extra}
        r = client.post("/v1/data-sources", json={"name": name, "driver": "ceph",
                                                  "config": config})
        assert r.status_code == 201, r.text
        r = client.post(f"/v1/data-sources/{name}?action=request-refresh")
        assert r.status_code == status and words in r.json()["error"]["message"], r.text
        message = client.get(f"/v1/data-sources/{name}/status").json()["last_error"]
        assert words in message and "BEGIN" not in message and "key =" not in message
        r = client.post(f"/v1/data-sources/{name}?action=execute",
                        json={"name": "osd.out", "args": {"positional": [1]}})
        assert r.status_code == status, r.text
    assert 1 in cluster.osds_in()


def test_bad_ceph_bin_and_non_json_output(client: TestClient, cluster: CephCluster):
    r = client.post("/v1/data-sources", json={
        "name": "nobin", "driver": "ceph",
        "config": {"conf": str(cluster.conf), "ceph_bin": "/nonexistent/ceph"}})
    assert r.status_code == 400 and "ceph_bin" in r.json()["error"]["message"], r.text
    r = client.post("/v1/data-sources", json={
        "name": "noconf", "driver": "ceph", "config": {"conf": "/nonexistent/ceph.conf"}})
    assert r.status_code == 400 and "'conf'" in r.json()["error"]["message"], r.text
    # A program that answers, but not with JSON: echo prints the arguments it was given.
    r = client.post("/v1/data-sources", json={
        "name": "garbage", "driver": "ceph",
        "config": {"conf": str(cluster.conf), "ceph_bin": "echo", "poll_time": 3600}})
    assert r.status_code == 201, r.text
    r = client.post("/v1/data-sources/garbage?action=request-refresh")
    assert r.status_code == 502 and "not JSON" in r.json()["error"]["message"], r.text
    status = client.get("/v1/data-sources/garbage/status").json()
    assert not status["initialized"] and "not JSON" in status["last_error"]


def test_driver_rejects_bad_config_values(tmp_path):
    conf = tmp_path / "ceph.conf"
    conf.write_text("[global]\n")
    for config, key in [({"timeout_seconds": 0}, "timeout_seconds"),
                        ({"poll_time": "often"}, "poll_time"),
                        ({"keyring": "/nonexistent/keyring"}, "keyring"),
                        ({"colour": "red"}, "colour")]:
        with pytest.raises(DriverError, match=key) as caught:
            CephDriver("c", {"conf": str(conf), **config})
        assert caught.value.status == 400
