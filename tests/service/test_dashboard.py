"""service/dashboard.py against a real service and store: every filter, sort and page
against a brute-force list, the index following batches, rules and deleted policies, pack
metadata, the datasources in trouble, and history buckets against hand-counted intervals."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from charter.engine import Delta
from charter.packs.load import load_pack
from charter.packs.registry import Installed
from charter.packs.schemas import driver_tables
from charter.service.dashboard import (
    NO_SEVERITY,
    SORT_KEYS,
    ViolationQuery,
    history,
    recent,
    row_key,
    summary,
    violation_page,
)
from charter.service.errors import ServiceError
from tests.api.conftest import make_service
from tests.packs.conftest import write_pack

RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


@pytest.fixture
def service(tmp_path):
    svc = make_service(tmp_path)
    yield svc
    svc.close()


def populate(service, tmp_path, n: int = 300) -> None:
    """``inv`` (push) feeding policies ``ops`` (error), ``lab`` (error and warning, reading
    ``ops`` and a second datasource ``cmdb``), and the tiny pack's control TINY_001 fed by a
    ``nova`` push datasource."""
    svc = service
    svc.datasources.create(
        {"name": "inv", "driver": "push", "config": {"tables": {"servers": ["id", "tenant", "n"]}}}
    )
    svc.datasources.create(
        {"name": "cmdb", "driver": "push", "config": {"tables": {"owners": ["tenant", "who"]}}}
    )
    nova = {t: list(cols) for t, cols in (driver_tables("nova") or {}).items()}
    svc.datasources.create({"name": "nova", "driver": "push", "config": {"tables": nova}})
    svc.policies.create(
        "ops", rules=[{"rule": "error(id, t) :- inv:servers(id=id, tenant=t, n=k), k > 1"}]
    )
    svc.policies.create(
        "lab",
        rules=[
            {"rule": "error(id, who) :- ops:error(id, t), cmdb:owners(tenant=t, who=who)"},
            {"rule": "warning(id, n) :- inv:servers(id=id, n=n), n = 0"},
        ],
    )
    pack = load_pack(write_pack(tmp_path / "tiny"))
    svc.packs.installed = Installed(packs={pack.id: pack})
    svc.packs.enable("tiny")
    rng = random.Random(7)
    servers = [(f"vm{i}", f"t{i % 7}", rng.randrange(4)) for i in range(n)]
    svc.datasources.replace_rows("inv", "servers", [list(s) for s in servers])
    svc.datasources.replace_rows(
        "cmdb", "owners", [[f"t{i}", f"=owner{i}"] for i in range(0, 7, 2)]
    )
    svc.datasources.replace_rows(
        "nova",
        "servers",
        [
            {"id": f"nv{i}", "tenant_id": f"p{i % 3}", "flavor_id": f"f{i % 2}"}
            for i in range(n // 3)
        ],
    )
    svc.datasources.replace_rows(
        "nova", "flavors", [{"id": "f0", "name": "m1.small"}, {"id": "f1", "name": "m1.big"}]
    )


def brute(service) -> list[dict]:
    """Every current violation with what the page must say of it, built the slow way."""
    out = []
    deps = {
        ("ops", "error"): ("inv",),
        ("ops", "warning"): ("inv",),  # a rule added by a test
        ("lab", "error"): ("cmdb", "inv"),  # through ops:error
        ("lab", "warning"): ("inv",),
        ("TINY_001", "error"): ("nova",),
    }
    with service.lock:
        for (policy, table), rows in service.violations.open.items():
            for row, seen in rows.items():
                tiny = policy == "TINY_001"
                out.append(
                    {
                        "policy": policy,
                        "table": table,
                        "row": row,
                        "first_seen": seen,
                        "severity": "low" if tiny else None,
                        "pack": "tiny" if tiny else None,
                        "control": "TINY-001" if tiny else None,
                        "datasources": deps[(policy, table)],
                    }
                )
    return out


def ordered(items: list[dict], key: str, descending: bool) -> list[dict]:
    base = sorted(items, key=lambda v: (v["policy"], v["table"], row_key(v["row"])))
    keys = {
        "policy": lambda v: 0,
        "first_seen": lambda v: v["first_seen"],
        "severity": lambda v: RANK.get(v["severity"], 5),
        "row": lambda v: row_key(v["row"]),
    }
    out = sorted(base, key=keys[key])
    return out[::-1] if descending else out


def matches(v: dict, q: ViolationQuery) -> bool:
    text = [v["policy"], *map(str, v["row"])]
    return (
        (q.policy is None or v["policy"] == q.policy)
        and (q.table is None or v["table"] == q.table)
        and (q.severity is None or (v["severity"] or NO_SEVERITY) == q.severity)
        and (q.pack is None or v["pack"] == q.pack)
        and (q.datasource is None or q.datasource in v["datasources"])
        and (not q.q or any(q.q.lower() in t.lower() for t in text))
    )


def as_dicts(rows) -> list[dict]:
    return [
        {
            "policy": v.policy,
            "table": v.table,
            "row": v.row,
            "first_seen": v.first_seen,
            "severity": v.severity,
            "pack": v.pack,
            "control": v.control,
            "datasources": v.datasources,
        }
        for v in rows
    ]


QUERIES = [
    {},
    {"policy": "lab"},
    {"table": "warning"},
    {"severity": "low"},
    {"severity": NO_SEVERITY, "table": "error"},
    {"pack": "tiny"},
    {"datasource": "inv"},
    {"datasource": "cmdb"},
    {"datasource": "nova"},
    {"q": "VM1"},
    {"q": "owner"},
    {"q": "lab"},
    {"q": "m1.BIG", "pack": "tiny"},
    {"policy": "nothing"},
]


def test_pages_match_brute_force(service, tmp_path):
    populate(service, tmp_path)
    everything = brute(service)
    assert {v["policy"] for v in everything} == {"ops", "lab", "TINY_001"}
    assert len(everything) > 200
    for filters in QUERIES:
        for key in SORT_KEYS:
            for descending in (False, True):
                want = ordered(
                    [v for v in everything if matches(v, ViolationQuery(**filters))],
                    key,
                    descending,
                )
                for offset, limit in ((0, 1000), (0, 7), (13, 50), (len(want), 10)):
                    query = ViolationQuery(
                        **filters, sort=key, descending=descending, offset=offset, limit=limit
                    )
                    rows, total = violation_page(service, query)
                    assert total == len(want), (filters, key)
                    assert as_dicts(rows) == want[offset : offset + limit], (filters, key, offset)
    rows, total = violation_page(service, ViolationQuery(limit=None, offset=5))
    assert total == len(everything) and len(rows) == total - 5


def test_columns(service, tmp_path):
    populate(service, tmp_path)
    columns = {
        (v.policy, v.table): v.columns
        for v in violation_page(service, ViolationQuery(limit=None))[0]
    }
    assert columns[("TINY_001", "error")] == ("server", "project", "flavor", "detail")
    assert columns[("ops", "error")] == ("id", "t")  # the head's variables
    assert columns[("lab", "warning")] == ("id", "n")


def test_index_follows_batches_rules_and_deleted_policies(service, tmp_path):
    populate(service, tmp_path, n=30)
    total = violation_page(service, ViolationQuery())[1]
    with service.lock:
        service.apply([Delta("inv:servers", ("new", "t1", 3), +1)])
    rows, after = violation_page(service, ViolationQuery(q="new", policy="ops"))
    assert after == 1 and rows[0].row == ("new", "t1")
    assert violation_page(service, ViolationQuery())[1] == total + 1
    service.policies.add_rule("ops", "warning(id) :- inv:servers(id=id, n=3)")
    rows, count = violation_page(service, ViolationQuery(policy="ops", table="warning"))
    assert count > 0 and rows[0].datasources == ("inv",) and rows[0].columns == ("id",)
    service.policies.delete("lab")
    assert violation_page(service, ViolationQuery(policy="lab"))[1] == 0
    assert summary(service)["by_policy"].get("lab") is None
    assert violation_page(service, ViolationQuery())[1] == len(brute(service))


def test_bad_queries_name_the_parameter():
    for kwargs, name in (
        ({"sort": "when"}, "sort"),
        ({"offset": -1}, "offset"),
        ({"limit": 0}, "limit"),
        ({"severity": "severe"}, "severity"),
        ({"table": "errors"}, "table"),
    ):
        with pytest.raises(ServiceError) as caught:
            ViolationQuery(**kwargs)
        assert caught.value.status == 400 and repr(name) in caught.value.message
    assert ViolationQuery.parse_sort("-row") == ("row", True)


def test_summary(service, tmp_path):
    populate(service, tmp_path)
    everything = brute(service)
    out = summary(service)
    assert out["total"] == len(everything)
    for policy in ("ops", "lab", "TINY_001"):
        assert out["by_policy"][policy] == sum(v["policy"] == policy for v in everything)
    assert out["by_pack"] == {"tiny": out["by_policy"]["TINY_001"]}
    assert out["by_severity"]["low"] == out["by_policy"]["TINY_001"]
    assert out["by_severity"]["none"] == out["total"] - out["by_severity"]["low"]
    assert out["datasources"] == []
    live = service.datasources.find("inv")
    live.status.failed("connection refused", 0.1)
    (trouble,) = summary(service)["datasources"]
    assert (trouble["name"], trouble["problem"], trouble["error"]) == (
        "inv",
        "failing",
        "connection refused",
    )


def test_history_buckets_against_hand_counts(service):
    store = service.store
    now = datetime(2026, 3, 10, 12, 10, tzinfo=UTC)  # the last day bucket starts at 12:00
    at = lambda h, m=0: datetime(2026, 3, 10, h, m, tzinfo=UTC)  # noqa: E731
    store.record_violations("p", "error", [("old",)], [], at(1) - timedelta(days=3))
    store.record_violations("p", "error", [("gone",)], [], at(1) - timedelta(days=3))
    store.record_violations("p", "error", [], [("gone",)], at(1) - timedelta(days=2))
    store.record_violations("p", "error", [("a",), ("b",)], [], at(9, 5))
    store.record_violations("p", "error", [], [("a",)], at(9, 40))
    store.record_violations("q", "warning", [("blip",)], [], at(10, 1))
    store.record_violations("q", "warning", [], [("blip",)], at(10, 2))
    store.record_violations("p", "error", [], [("old",)], at(11))
    series = dict(history(service, "day", now=now))
    assert len(series) == 48 and max(series) == at(12)
    want = {
        at(8, 30): 1,  # old
        at(9): 3,  # old, a, b
        at(9, 30): 3,  # a clears at 9:40: open during part of the bucket
        at(10): 3,  # old, b, blip (appeared and cleared within the bucket)
        at(10, 30): 2,  # old, b
        at(11): 1,  # old cleared at 11:00 exactly: not open in [11:00, 11:30)
        at(12): 1,  # b
    }
    for start, n in want.items():
        assert series[start] == n, start
    assert series[min(series)] == 1
    assert dict(history(service, "day", now=now, policy="q"))[at(10)] == 1
    week = history(service, "week", now=now)
    assert len(week) == 42 and week[-1] == (at(12), 1)
    events = recent(service, 3)
    assert [(e.event, e.row, e.at) for e in events] == [
        ("cleared", ("old",), at(11)),
        ("cleared", ("blip",), at(10, 2)),
        ("appeared", ("blip",), at(10, 1)),
    ]
    with pytest.raises(ServiceError):
        history(service, "year")
