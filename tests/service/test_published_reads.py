"""Readers of a policy's tables and violations do not wait for a batch in progress.

``Policies.rows`` and ``ViolationTracker.current`` answer from copies that every published
batch updates (service/published.py). Two things must hold: the copies always equal the
engine between batches (a differential run of random pushes, rule changes, what-ifs, policy
deletes and re-creates), and a read answers while a batch holds the service's lock, with the
state before that batch (the batch is held at a known point, so the test does not race it).
"""

from __future__ import annotations

import contextlib
import random
import threading

import pytest

from charter.service.errors import NotFound, ServiceError
from charter.service.service import Service
from charter.service.simulate import simulate
from charter.store import Store

WAIT_S = 60  # only a stall or a deadlock reaches it
TABLES = ("error", "seen", "pair", "q", "none")
RULES = [
    "seen(x) :- inv:t(x, y)",
    'error(x) :- inv:t(x, "down")',
    "pair(x, z) :- inv:t(x, y), inv:t(z, y), x != z",
    "q(1)",
    'q(x) :- inv:t(x, "up")',
    "error(x) :- q(x), seen(x)",
]


@pytest.fixture
def service(tmp_path):
    svc = Service(Store(f"sqlite:///{tmp_path / 'charter.db'}", secret_key=Store.generate_key()))
    svc.start()
    svc.datasources.create({"name": "inv", "driver": "push",
                            "config": {"tables": {"t": ["id", "state"]}}})
    yield svc
    svc.close()


def truth(svc: Service, table: str) -> list[tuple] | str:
    """What the engine holds, read under the lock the old way (or 'missing')."""
    with svc.lock:
        live = svc.policies.find("p")
        if live is None:
            return "missing"
        if not svc.engine.has_table(f"p:{table}"):
            return [] if table in svc.policies.tables("p") else "missing"
        return sorted(svc.engine.rows(f"p:{table}"), key=repr)


def read(svc: Service, table: str) -> list[tuple] | str:
    try:
        return svc.policies.rows("p", table)
    except NotFound:
        return "missing"


def open_violations(svc: Service) -> set[tuple]:
    with svc.lock:
        return {("error", r) for r in svc.engine.rows("p:error")} if svc.engine.has_table(
            "p:error") else set()


@pytest.mark.parametrize("seed", range(4))
def test_kept_tables_equal_the_engine_after_every_change(service, seed):
    rnd = random.Random(seed)
    svc = service
    svc.policies.create("p", rules=[{"rule": RULES[0]}])
    rule_ids: dict[str, str] = {}
    for step in range(40):
        op = rnd.choice(["push", "push", "add", "delete", "whatif", "recreate"])
        if op == "push":
            rows = [[f"s{rnd.randrange(8)}", rnd.choice(["up", "down"])]
                    for _ in range(rnd.randrange(0, 10))]
            svc.datasources.replace_rows("inv", "t", rows)
        elif op == "add" and svc.policies.find("p") is not None:
            text = rnd.choice(RULES)
            if text not in rule_ids:
                rule_ids[text] = svc.policies.add_rule("p", text).id
        elif op == "delete" and rule_ids:
            text = rnd.choice(sorted(rule_ids))
            svc.policies.delete_rule("p", rule_ids.pop(text))
        elif op == "whatif" and svc.policies.find("p") is not None:
            with contextlib.suppress(ServiceError):  # p may have no seen rule now
                simulate(svc, "p", "seen(x)", 'inv:t+("s9", "down") inv:t+("s1", "down")')
        elif op == "recreate":
            if svc.policies.find("p") is not None:
                svc.policies.delete("p")
            rule_ids.clear()
            first = rnd.choice(RULES)
            svc.policies.create("p", rules=[{"rule": first}])
            rule_ids[first] = svc.policies.rules("p")[0].id
        for table in rnd.sample(TABLES, 3):  # reads make tables kept, at random moments
            assert read(svc, table) == truth(svc, table), (seed, step, op, table)
        if svc.policies.find("p") is not None:
            current = {(t, r) for t, r, _ in svc.violations.current("p")}
            assert current == open_violations(svc), (seed, step, op)


def test_a_read_answers_while_a_batch_holds_the_lock(service, monkeypatch):
    """A push's batch is held inside the engine (the service's lock taken); reads of the
    policy's rows and violations answer meanwhile, with the state before it."""
    svc = service
    svc.policies.create("p", rules=[{"rule": 'error(x) :- inv:t(x, "down")'}])
    svc.datasources.replace_rows("inv", "t", [["a", "down"], ["b", "up"]])
    assert svc.policies.rows("p", "error") == [("a",)]  # now kept

    applying, release = threading.Event(), threading.Event()

    def held(real):  # a push's batch enters the engine by apply_diffs (rows: apply)
        def held_batch(changes, **kwargs):
            applying.set()
            assert release.wait(WAIT_S), "the test never released the batch"
            return real(changes, **kwargs)

        return held_batch

    monkeypatch.setattr(svc.engine, "apply", held(svc.engine.apply))
    monkeypatch.setattr(svc.engine, "apply_diffs", held(svc.engine.apply_diffs))
    pusher = threading.Thread(target=svc.datasources.replace_rows,
                              args=("inv", "t", [["a", "up"], ["b", "down"]]))
    pusher.start()
    try:
        assert applying.wait(WAIT_S)
        answers: list = []
        reader = threading.Thread(target=lambda: answers.append(
            (svc.policies.rows("p", "error"),
             [(t, r) for t, r, _ in svc.violations.current("p")])))
        reader.start()
        reader.join(WAIT_S)  # without the copies it would wait for the held batch: forever
        assert not reader.is_alive(), "the read waited for the batch"
        assert answers == [([("a",)], [("error", ("a",))])]
    finally:
        release.set()
        pusher.join(WAIT_S)
    assert svc.policies.rows("p", "error") == [("b",)]
    assert [(t, r) for t, r, _ in svc.violations.current("p")] == [("error", ("b",))]
