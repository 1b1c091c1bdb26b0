"""The ceph pack on a real Ceph 16 cluster finds exactly the planted problems.

The cluster is this module's own (``realceph.running_ceph``: another temp dir, other ports),
not the session's ``ceph_cluster`` other tests share, because the test breaks it for real.
It starts as the fixture makes it (1 mon, 1 mgr, 3 memstore OSDs, each on a host bucket of
its own: host0..host2 under the root ``default``; every pool of one copy, its CRUSH rule
choosing OSDs) and is first brought to what the pack calls healthy: a rule by host, every
pool of 3 copies with min_size 2 on it, a quota and an application on each. Through
Charter's API (a ``ceph`` datasource, the pack enabled with its default parameters) every
control passes. Then two problems are planted: a pool of one copy whose rule chooses OSDs
(``badpool``), and one OSD stopped (the one holding most of badpool's placement groups).
The posture must then fail exactly the controls these explain, each with exactly the
planted rows, and pass every other.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api import conftest as api
from tests.realservices import ceph as realceph
from tests.realservices.ceph import CephCluster

pytestmark = [pytest.mark.ceph, pytest.mark.slow]

service = api.service
settings = api.settings
client = api.client

PACK = "ceph"
RULE = "by-host"
GOOD_POOL = "data"
BAD_POOL = "badpool"
QUOTA_BYTES = str(1 << 30)
# What stopping one OSD (on a host of its own) and a one-copy pool raise: the OSD and its
# host down, the 3-copy pools' PGs degraded, badpool's PGs on that OSD stale (reported once
# stuck, after mon_pg_stuck_threshold), badpool itself (mon_warn_on_pool_no_redundancy).
PLANTED_CHECKS = {"OSD_DOWN", "OSD_HOST_DOWN", "PG_DEGRADED", "PG_AVAILABILITY",
                  "POOL_NO_REDUNDANCY"}
CONTROLS = {"CEPH-HLT-001", "CEPH-MON-001", "CEPH-MON-002", "CEPH-FLG-001", "CEPH-OSD-001",
            "CEPH-OSD-002", "CEPH-OSD-003", "CEPH-OSD-004", "CEPH-OSD-005", "CEPH-PG-001",
            "CEPH-PG-002", "CEPH-POOL-001", "CEPH-POOL-002", "CEPH-POOL-003", "CEPH-POOL-004",
            "CEPH-CRUSH-001", "CEPH-CRUSH-002"}
TIMEOUT = 180.0


def health_checks(cluster: CephCluster) -> set[str]:
    return set(cluster.json("health", "detail", timeout=20)["checks"])


def pgs(cluster: CephCluster) -> list[dict[str, Any]]:
    stats = cluster.json("pg", "dump", "pgs_brief", timeout=20)
    return stats.get("pg_stats", stats) if isinstance(stats, dict) else stats


def pool_ids(cluster: CephCluster) -> dict[str, int]:
    return {p["pool_name"]: p["pool"] for p in cluster.json("osd", "dump", timeout=20)["pools"]}


def put_objects(cluster: CephCluster, pool: str, count: int) -> None:
    """``count`` small objects (the conf file's text), so a lost copy degrades their PGs."""
    for n in range(count):
        done = subprocess.run(["rados", "-c", str(cluster.conf), "-p", pool, "put",
                               f"obj-{n}", str(cluster.conf)], capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode != 0:
            raise realceph.CephError(f"rados put into {pool}: {done.stderr.strip()[-1000:]}")


def make_healthy(cluster: CephCluster) -> None:
    """The fixture's cluster made what the pack calls healthy (see the module's doc)."""
    # Options the conf file does not set, so the mon's config database applies them: a
    # stuck PG is reported after 10 s (not 60), a down OSD is not marked out for an hour
    # (so the stopped OSD stays in). POOL_NO_REDUNDANCY is off in the conf; a runtime
    # override (tell) wins over it.
    cluster.run("config", "set", "global", "mon_pg_stuck_threshold", "10")
    cluster.run("config", "set", "mon", "mon_osd_down_out_interval", "3600")
    cluster.run("tell", "mon.a", "config", "set", "mon_warn_on_pool_no_redundancy", "true")
    cluster.run("osd", "crush", "rule", "create-replicated", RULE, "default", "host")
    # The fixture's pool holds thousands of objects: 3 copies of them would take minutes
    # of recovery on a loaded machine. A small pool of our own serves as well.
    cluster.run("osd", "pool", "rm", realceph.POOL, realceph.POOL,
                "--yes-i-really-really-mean-it")
    cluster.run("osd", "pool", "create", GOOD_POOL, "8", "8", "--autoscale-mode=off")
    cluster.run("osd", "pool", "application", "enable", GOOD_POOL, "rbd")
    for pool in pool_ids(cluster):
        cluster.run("osd", "pool", "set", pool, "crush_rule", RULE)
        cluster.run("osd", "pool", "set", pool, "size", "3")
        cluster.run("osd", "pool", "set", pool, "min_size", "2")
        cluster.run("osd", "pool", "set-quota", pool, "max_bytes", QUOTA_BYTES)
    put_objects(cluster, GOOD_POOL, 16)
    realceph.wait_for("every PG active+clean", cluster.all_pgs_clean, TIMEOUT)
    realceph.wait_for("HEALTH_OK", lambda: health_checks(cluster) == set(), TIMEOUT)


@pytest.fixture(scope="module")
def cluster() -> Iterator[CephCluster]:
    with realceph.running_ceph() as started:
        make_healthy(started)
        yield started


def refresh(client: TestClient) -> None:
    r = client.post("/v1/data-sources/ceph?action=request-refresh")
    assert r.status_code == 200, r.text


def posture(client: TestClient) -> dict[str, Any]:
    r = client.get(f"/v1/packs/{PACK}/posture?rows=true")
    assert r.status_code == 200, r.text
    return r.json()


def failing(report: dict[str, Any]) -> dict[str, set[str]]:
    """Control id -> the resources of its rows, for each control that is not passing."""
    return {c["id"]: {row["resource"] for row in c["rows"]} for c in report["controls"]
            if c["status"] != "passing"}


def refresh_until(client: TestClient, what: str, check: Callable[[dict], bool]) -> dict:
    """Poll the cluster again until the posture satisfies ``check`` (the mgr's PG stats
    lag the OSD map by a few seconds); fail with the last posture after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        refresh(client)
        report = posture(client)
        if check(report):
            return report
        assert time.monotonic() < deadline, (
            f"no {what} after {TIMEOUT:.0f} s of polls; last failing controls: "
            f"{failing(report)}")
        time.sleep(1)


def test_ceph_pack_finds_exactly_the_planted_problems(client: TestClient,
                                                      cluster: CephCluster):
    config = {"conf": str(cluster.conf), "timeout_seconds": 30, "poll_time": 3600}
    r = client.post("/v1/data-sources", json={"name": "ceph", "driver": "ceph",
                                               "config": config})
    assert r.status_code == 201, r.text
    r = client.post(f"/v1/packs/{PACK}?action=enable")
    assert r.status_code == 200, r.text

    # ---- the healthy baseline: every control is judged, and passes
    report = refresh_until(client, "posture with every control passing",
                           lambda rep: failing(rep) == {})
    assert {c["id"] for c in report["controls"]} == CONTROLS
    assert report["summary"] == {"passing": 17, "failing": 0, "not_evaluated": 0, "total": 17}

    # ---- plant a pool of one copy whose CRUSH rule chooses OSDs (the fixture's rule 0,
    # made with osd crush chooseleaf type 0) ...
    cluster.run("osd", "pool", "create", BAD_POOL, "8", "8", "--autoscale-mode=off")
    cluster.run("osd", "pool", "set", BAD_POOL, "crush_rule", "replicated_rule")
    cluster.run("osd", "pool", "set", BAD_POOL, "size", "1", "--yes-i-really-mean-it")
    cluster.run("osd", "pool", "set", BAD_POOL, "min_size", "1")
    cluster.run("osd", "pool", "application", "enable", BAD_POOL, "rbd")
    cluster.run("osd", "pool", "set-quota", BAD_POOL, "max_objects", "1000")
    put_objects(cluster, BAD_POOL, 16)
    realceph.wait_for("every PG active+clean", cluster.all_pgs_clean, TIMEOUT)
    ids = pool_ids(cluster)
    before = pgs(cluster)
    bad = [p for p in before if p["pgid"].startswith(f"{ids[BAD_POOL]}.")]
    assert len(bad) == 8 and all(len(p["acting"]) == 1 for p in bad)
    # ... and stop the OSD holding most of badpool's PGs: they go stale (their one copy is
    # gone), every PG of the 3-copy pools (one copy on each host) degraded.
    victim = max(cluster.osd_hosts, key=lambda osd: sum(p["acting"] == [osd] for p in bad))
    stale = {p["pgid"] for p in bad if p["acting"] == [victim]}
    degraded = {p["pgid"] for p in before if p not in bad}
    assert stale and len(degraded) == 9  # device_health_metrics' 1 PG and data's 8
    cluster.stop_osd(victim)
    realceph.wait_for(f"health checks {sorted(PLANTED_CHECKS)}",
                      lambda: health_checks(cluster) == PLANTED_CHECKS, TIMEOUT)

    expected = {
        "CEPH-HLT-001": PLANTED_CHECKS,
        "CEPH-OSD-001": {f"osd.{victim}"},
        "CEPH-PG-001": stale | degraded,
        "CEPH-POOL-001": {BAD_POOL},
        "CEPH-POOL-002": {BAD_POOL},
        "CEPH-CRUSH-001": {BAD_POOL},
    }
    def settled(rep: dict) -> bool:
        """exactly the planted problems, and every degraded PG past peering (a PG passes
        through "peering" on its way to undersized+degraded: not a state to judge)"""
        if failing(rep) != expected:
            return False
        pg = next(c for c in rep["controls"] if c["id"] == "CEPH-PG-001")
        return all("peering" not in r["columns"]["state"].split("+") for r in pg["rows"])

    report = refresh_until(client, "posture of exactly the planted problems", settled)
    assert report["summary"] == {"passing": 11, "failing": 6, "not_evaluated": 0, "total": 17}
    controls = {c["id"]: c for c in report["controls"]}
    assert all(controls[c]["status"] == "failing" for c in expected)
    # The rows say what is wrong, and where.
    (osd,) = controls["CEPH-OSD-001"]["rows"]
    assert osd["columns"] == {"osd": f"osd.{victim}", "host": cluster.osd_hosts[victim],
                              "detail": "the OSD is down: its placement groups run on fewer "
                                        "copies"}
    states = {row["resource"]: row["columns"] for row in controls["CEPH-PG-001"]["rows"]}
    for pg in stale:
        assert states[pg]["pool"] == BAD_POOL and "stale" in states[pg]["state"].split("+")
    for pg in degraded:
        assert states[pg]["pool"] in {GOOD_POOL, "device_health_metrics"}
        assert "undersized" in states[pg]["state"].split("+")
    (size,) = controls["CEPH-POOL-001"]["rows"]
    assert size["columns"]["size"] == 1
    (min_size,) = controls["CEPH-POOL-002"]["rows"]
    assert min_size["columns"]["min_size"] == 1
    (rule,) = controls["CEPH-CRUSH-001"]["rows"]
    assert rule["columns"] == {"pool": BAD_POOL, "rule": "replicated_rule",
                               "rule_failure_domain": "osd",
                               "detail": "the pool's CRUSH rule keeps copies apart per osd "
                                         "only, not per host"}
    checks = {row["resource"]: row["columns"] for row in controls["CEPH-HLT-001"]["rows"]}
    assert all(c["severity"] == "HEALTH_WARN" and c["detail"].startswith(code + ": ")
               for code, c in checks.items())
