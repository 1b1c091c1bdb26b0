"""The service over a real SQLite store: restart, violation history, simulate isolation,
consistency under concurrent readers and writers, and failures of the store."""

from __future__ import annotations

import threading

import pytest

from charter.service.errors import NotFound, ServiceError, Unavailable
from charter.service.service import Service
from charter.service.simulate import simulate
from charter.store import Store

KEY = Store.generate_key()
SCHEMA = {"tables": {"servers": ["id", "host"], "hosts": ["host", "capacity"]}}
RULE = "error(h) :- inv:servers(_, h), n = count : { inv:servers(_, h) }, inv:hosts(h, c), n > c"


def open_service(db_url: str) -> Service:
    svc = Service(Store(db_url, secret_key=KEY))
    svc.start()
    return svc


@pytest.fixture
def svc(db_url):
    s = open_service(db_url)
    yield s
    s.close()


def setup_capacity(svc: Service) -> None:
    svc.datasources.create({"name": "inv", "driver": "push", "config": SCHEMA})
    svc.datasources.replace_rows("inv", "hosts", [["h1", 1], ["h2", 5]])
    svc.datasources.replace_rows("inv", "servers", [["vm1", "h1"], ["vm2", "h1"], ["vm3", "h2"]])
    svc.policies.create("cap", rules=[{"rule": RULE, "name": "over"}])


def test_builtin_policies_exist_from_the_first_start(svc):
    assert [p.name for p in svc.policies.list()] == ["classification", "action"]
    assert svc.policies.get("action").record.kind == "action"


def test_everything_comes_back_after_a_restart(db_url):
    svc = open_service(db_url)
    setup_capacity(svc)
    rule = svc.policies.add_rule("classification", "p(x) :- q(x)", "pq", "a comment")
    svc.library.create({"name": "mine", "rules": [{"rule": "z(1)"}]})
    first_seen = svc.violations.current("cap")[0][2]
    svc.close()

    again = open_service(db_url)
    try:
        assert again.policies.rows("cap", "error") == [("h1",)]
        assert again.policies.rule("classification", "pq") == rule
        assert again.policies.rule("cap", "over").rule == RULE
        assert again.datasources.rows("inv", "servers") == [("vm1", "h1"), ("vm2", "h1"),
                                                             ("vm3", "h2")]
        assert again.library.get("mine").rules == [{"rule": "z(1)", "name": None,
                                                     "comment": ""}]
        # the violation kept its first-seen time across the restart
        assert again.violations.current("cap") == [("error", ("h1",), first_seen)]
        # a deleted shipped library policy stays deleted (the store is seeded once)
        shipped = again.library.list()[0].name
        again.library.delete(shipped)
    finally:
        again.close()
    third = open_service(db_url)
    assert shipped not in [lib.name for lib in third.library.list()]
    third.close()


def test_violation_history_records_appearing_and_clearing(svc):
    setup_capacity(svc)
    assert [(t, r) for t, r, _ in svc.violations.current("cap")] == [("error", ("h1",))]
    svc.datasources.replace_rows("inv", "hosts", [["h1", 2], ["h2", 5]])
    assert svc.violations.current("cap") == []
    history = svc.store.violations("cap", include_resolved=True)
    assert [(v.row, v.resolved_at is not None) for v in history] == [(("h1",), True)]


def test_simulate_is_never_seen_by_readers_or_listeners(svc):
    setup_capacity(svc)
    listener = svc.events.listen()
    before = svc.engine.rows("cap:error")
    out = simulate(svc, "cap", "error(h)", 'inv:servers+("vm9", "h2") inv:hosts-("h1", 1)',
                   delta=True)
    assert out["result"] == ['error-("h1")']
    assert svc.engine.rows("cap:error") == before
    assert svc.engine.rows("inv:servers") == {("vm1", "h1"), ("vm2", "h1"), ("vm3", "h2")}
    assert listener.queue.empty()
    assert [r for _, r, _ in svc.violations.current("cap")] == [("h1",)]


def test_simulate_results_and_deltas(svc):
    setup_capacity(svc)
    # h2 gets 5 more servers: over capacity; h1's capacity raised: clears
    seq = " ".join(f'inv:servers+("x{i}", "h2")' for i in range(5))
    seq += ' inv:hosts-("h1", 1) inv:hosts+("h1", 9)'
    assert simulate(svc, "cap", "error(h)", seq)["result"] == ['error("h2")']
    delta = simulate(svc, "cap", "error(h)", seq, delta=True)["result"]
    assert sorted(delta) == ['error+("h2")', 'error-("h1")']
    # a rule added in the sequence, and a fact: both undone afterwards
    out = simulate(svc, "classification", "q(x)", "q+(x) :- inv:hosts(x, _)  q+(7)",
                   trace=True)
    assert sorted(out["result"]) == sorted(["q(7)", 'q("h1")', 'q("h2")'])
    assert "q+(7)" in out["trace"]
    assert svc.engine.rules("classification") == []
    assert "classification:q" not in svc.engine.tables()


def test_simulate_refuses_what_it_cannot_do(svc):
    with pytest.raises(ServiceError) as bad:
        simulate(svc, "classification", "p(x)", "p(1)")
    assert "not an update" in bad.value.message
    with pytest.raises(ServiceError) as missing:
        simulate(svc, "classification", "", "p+(1)")
    assert missing.value.code == 1004
    with pytest.raises(NotFound):
        simulate(svc, "nope", "p(x)", "p+(1)")


def test_a_failed_store_write_leaves_the_engine_unchanged(svc, monkeypatch):
    def down(*args, **kwargs):
        from charter.store import StoreUnavailable

        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(svc.store, "add_rule", down)
    with pytest.raises(Unavailable):
        svc.policies.add_rule("classification", "p(x) :- q(x)")
    assert svc.engine.rules("classification") == []
    assert svc.policies.rules("classification") == []


def test_readers_see_whole_batches_under_concurrent_writes(svc):
    """A reader never sees a push half applied: both tables of a pair change together."""
    svc.datasources.create({"name": "inv", "driver": "push",
                            "config": {"tables": {"pairs": ["a", "b"]}}})
    svc.policies.create("mirror", rules=[{"rule": "error(a) :- inv:pairs(a, b), a != b"}])
    stop = threading.Event()
    seen_bad: list = []

    def writer() -> None:
        for i in range(200):
            svc.datasources.replace_rows("inv", "pairs", [[i, i], [i + 1, i + 1]])
        stop.set()

    def reader() -> None:
        while not stop.is_set():
            with svc.reading() as engine:
                rows = engine.rows("inv:pairs")
                if len(rows) != 2 or engine.rows("mirror:error"):
                    seen_bad.append(rows)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader)
                                                    for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen_bad == []
