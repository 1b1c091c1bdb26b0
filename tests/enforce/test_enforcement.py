"""Enforcement in a running service: execute[...] rows of a real (file-backed) datasource
become calls of its declared actions: once per appearance, dry-run by default, within the
limits, retried on 502/503 only, audited, and neither repeated nor lost across restarts."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from charter.service.service import Service
from charter.service.simulate import simulate
from tests.enforce.conftest import MakeService, wait_for
from tests.enforce.ledger import Ledger

FIX = [
    {"rule": 'error(x) :- src:items(x, "broken")'},
    {"rule": "execute[src:items.fix(x)] :- error(x)", "name": "repair"},
]
NOTE = [{"rule": 'execute[src:items.note(x)] :- src:items(x, "broken")'}]


def setup(svc: Service, ledger: Ledger, rules: list[dict], items=(), mode: str | None = None):
    """Datasource ``src`` over the ledger, policy ``ops``; then the items arrive."""
    ledger.write([])
    svc.datasources.create({"name": "src", "driver": "ledger",
                            "config": {"dir": str(ledger.dir), "poll_time": 3600}})
    svc.policies.create("ops", rules=rules)
    if mode is not None:
        svc.policies.set_enforcement("ops", mode, "admin")
    if items:
        arrive(svc, ledger, list(items))


def arrive(svc: Service, ledger: Ledger, items: list[tuple[str, str]]) -> None:
    ledger.write(items)
    svc.datasources.refresh("src")


def results(svc: Service, policy: str = "ops") -> list[str]:
    """The audit results of the policy's actions, oldest first."""
    return [a.result for a in reversed(svc.store.audit(policy=policy))
            if a.action != "enforcement.mode"]


def test_dry_run_is_the_default_and_audits_what_it_would_do(make_service, ledger):
    svc = make_service()
    setup(svc, ledger, FIX, [("a", "broken"), ("b", "ok")])
    assert svc.policies.get("ops").record.enforcement == "dry-run"
    (entry,) = svc.store.audit(policy="ops")
    assert (entry.result, entry.mode, entry.actor) == ("dry-run", "dry-run", "charter")
    assert (entry.action, entry.row, entry.arguments) == ("src:items.fix", ("a",),
                                                          {"positional": ["a"]})
    assert entry.rule == "execute[src:items.fix(x)] :- error(x)"
    assert "would call src:items.fix('a')" in entry.detail
    time.sleep(0.3)
    assert ledger.calls() == [] and ledger.items() == [("a", "broken"), ("b", "ok")]


def test_enforce_acts_once_per_appearance(make_service, ledger):
    svc = make_service()
    setup(svc, ledger, FIX, [("a", "ok")], mode="enforce")
    arrive(svc, ledger, [("a", "broken"), ("b", "ok")])
    wait_for(lambda: results(svc) == ["ok"])
    assert ledger.calls() == [{"action": "items.fix", "args": ["a"]}]
    assert ledger.items() == [("a", "ok"), ("b", "ok")]  # the action really repaired it
    entry = svc.store.audit(policy="ops")[0]
    assert (entry.mode, entry.row) == ("enforce", ("a",))
    assert '"item": "a"' in entry.detail  # the driver's result

    svc.datasources.refresh("src")  # the next poll sees the repair: the violation clears
    assert svc.violations.current("ops") == []
    (record,) = svc.store.actions(policy="ops")
    assert (record.status, record.attempts) == ("done", 1) and record.cleared_at is not None
    svc.datasources.refresh("src")
    time.sleep(0.2)
    assert len(ledger.calls()) == 1

    arrive(svc, ledger, [("a", "broken"), ("b", "ok")])  # breaks again: a new transition
    wait_for(lambda: len(ledger.calls()) == 2)
    wait_for(lambda: results(svc) == ["ok", "ok"])


def test_a_row_that_stays_derived_never_acts_again(make_service, ledger):
    svc = make_service()
    setup(svc, ledger, NOTE, mode="enforce")
    arrive(svc, ledger, [("a", "broken")])
    wait_for(lambda: len(ledger.calls()) == 1)
    for i in range(3):  # more batches, the row still derived
        arrive(svc, ledger, [("a", "broken"), (f"x{i}", "ok")])
    time.sleep(0.3)
    assert ledger.calls() == [{"action": "items.note", "args": ["a"]}]


def test_the_mode_is_persisted_and_derived_rows_do_not_fire_after_a_restart(
        make_service, ledger):
    svc = make_service()
    setup(svc, ledger, NOTE, mode="enforce")
    arrive(svc, ledger, [("a", "broken"), ("b", "broken")])
    wait_for(lambda: len(ledger.calls()) == 2)
    svc.close()

    svc = make_service()  # rebuild, then the first poll refills src from nothing
    assert svc.policies.get("ops").record.enforcement == "enforce"
    wait_for(lambda: svc.settled)
    svc.datasources.refresh("src")
    time.sleep(0.3)
    assert len(ledger.calls()) == 2 and results(svc) == ["ok", "ok"]

    svc.close()  # "a" is repaired while the service is down ...
    ledger.write([("a", "ok"), ("b", "broken")])
    svc = make_service()
    wait_for(lambda: svc.settled)
    records = {r.row: r for r in svc.store.actions(policy="ops")}
    assert records[("a",)].cleared_at is not None  # ... which the restart notices
    assert records[("b",)].cleared_at is None
    arrive(svc, ledger, [("a", "broken"), ("b", "broken")])  # and breaks again: acts again
    wait_for(lambda: len(ledger.calls()) == 3)
    assert ledger.calls()[-1] == {"action": "items.note", "args": ["a"]}


def test_a_due_action_interrupted_by_a_stop_runs_after_the_restart(make_service, ledger):
    svc = make_service(retries=3, backoff_seconds=1.5)
    setup(svc, ledger, NOTE, mode="enforce")
    ledger.fail(503, 1)
    arrive(svc, ledger, [("a", "broken")])
    wait_for(lambda: results(svc) == ["retried"])
    (record,) = svc.store.actions(policy="ops")
    assert (record.status, record.attempts) == ("pending", 1)
    svc.close()  # the retry is due in 1.5 s: it waits in the store

    svc = make_service(retries=3, backoff_seconds=1.5)
    wait_for(lambda: results(svc) == ["retried", "ok"])
    assert ledger.calls() == [{"action": "items.note", "args": ["a"]}]
    (record,) = svc.store.actions(policy="ops")
    assert (record.status, record.attempts) == ("done", 2)


def test_transient_failures_are_retried_with_backoff_then_given_up(make_service, ledger):
    svc = make_service(retries=2, backoff_seconds=0.2)
    setup(svc, ledger, NOTE, mode="enforce")
    ledger.fail(503, 10)
    arrive(svc, ledger, [("a", "broken")])
    wait_for(lambda: results(svc) == ["retried", "retried", "failed"])
    entries = list(reversed(svc.store.audit(policy="ops")))[1:]  # after the mode change
    gaps = [(b.at - a.at).total_seconds() for a, b in zip(entries, entries[1:], strict=False)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4  # doubling
    assert "503" in entries[-1].detail and "told to fail" in entries[-1].detail
    (record,) = svc.store.actions(policy="ops")
    assert (record.status, record.attempts) == ("failed", 3)
    assert ledger.calls() == []


@pytest.mark.parametrize("status", [400, 404])
def test_a_refused_action_is_not_retried(make_service, ledger, status):
    svc = make_service(retries=5)
    setup(svc, ledger, NOTE, mode="enforce")
    ledger.fail(status, 10)
    arrive(svc, ledger, [("a", "broken")])
    wait_for(lambda: results(svc) == ["failed"])
    time.sleep(0.3)
    assert results(svc) == ["failed"]
    assert svc.store.actions(policy="ops")[0].detail.startswith(f"{status}: ")


def test_at_most_max_actions_per_batch_the_rest_capped(make_service, ledger):
    svc = make_service(max_actions_per_batch=3)
    setup(svc, ledger, NOTE, mode="enforce")
    arrive(svc, ledger, [(f"i{n}", "broken") for n in range(5)])
    wait_for(lambda: len(ledger.calls()) == 3)
    wait_for(lambda: sorted(results(svc)) == ["capped", "capped", "ok", "ok", "ok"])
    capped = [a for a in svc.store.audit(policy="ops") if a.result == "capped"]
    assert {a.row for a in capped} == {("i3",), ("i4",)}  # a fixed order: by row
    assert "max_actions_per_batch" in capped[0].detail
    svc.datasources.refresh("src")
    time.sleep(0.3)
    assert len(ledger.calls()) == 3  # a capped row is not run later


def test_at_most_max_actions_per_minute_per_policy(make_service, ledger):
    svc = make_service(max_actions_per_minute=2)
    rules = NOTE + [{"rule": 'warning(x) :- src:items(x, "broken")'}]
    setup(svc, ledger, rules, mode="enforce")
    svc.policies.create("other", rules=[
        {"rule": 'execute[src:items.note(x)] :- src:items(x, "broken")'}])
    svc.policies.set_enforcement("other", "enforce", "admin")
    broken: list[tuple[str, str]] = []
    for n in range(3):
        broken.append((f"i{n}", "broken"))
        arrive(svc, ledger, broken)
    # the limit is decided with the batch, the outcome of a run when it ends: sort them
    wait_for(lambda: sorted(results(svc, "other")) == ["ok", "ok", "rate-limited"])
    wait_for(lambda: sorted(results(svc)) == ["ok", "ok", "rate-limited"])
    limited = next(a for a in svc.store.audit(policy="ops") if a.result == "rate-limited")
    assert limited.row == ("i2",) and "max_actions_per_minute" in limited.detail


def test_back_to_dry_run_cancels_a_waiting_retry(make_service, ledger):
    svc = make_service(retries=5, backoff_seconds=0.5)
    setup(svc, ledger, NOTE, mode="enforce")
    ledger.fail(503, 1)
    arrive(svc, ledger, [("a", "broken")])
    wait_for(lambda: results(svc) == ["retried"])
    svc.policies.set_enforcement("ops", "dry-run", "editor-1")
    wait_for(lambda: results(svc) == ["retried", "cancelled"])
    assert "switched to dry-run" in svc.store.audit(policy="ops")[0].detail
    assert ledger.calls() == []
    change = next(a for a in svc.store.audit(policy="ops") if a.action == "enforcement.mode")
    assert (change.actor, change.detail) == ("editor-1", "enforce -> dry-run")


def test_a_row_that_cleared_while_its_retry_waited_is_not_acted_on(make_service, ledger):
    svc = make_service(retries=5, backoff_seconds=0.5)
    setup(svc, ledger, NOTE, mode="enforce")
    ledger.fail(503, 1)
    arrive(svc, ledger, [("a", "broken")])
    wait_for(lambda: results(svc) == ["retried"])
    arrive(svc, ledger, [("a", "ok")])
    wait_for(lambda: results(svc) == ["retried", "cancelled"])
    assert "no longer derived" in svc.store.audit(policy="ops")[0].detail
    assert ledger.calls() == []


def test_a_simulation_never_acts(make_service, ledger):
    svc = make_service()
    setup(svc, ledger, FIX, [("a", "ok")], mode="enforce")
    out = simulate(svc, "ops", "error(x)", 'src:items+("z", "broken")')
    assert out["result"] == ['error("z")']
    time.sleep(0.3)
    assert results(svc) == [] and ledger.calls() == []
    assert svc.store.actions() == []


def test_rows_derived_before_enforcement_existed_are_a_baseline(make_service, ledger, tmp_path):
    """A store written before enforcement (migration 0002) has no record of the rows the
    rebuild derives (from pushed rows); at the first start they are the baseline: no action."""
    svc = make_service()
    setup(svc, ledger, [], [("a", "ok")])
    svc.datasources.create({"name": "mon", "driver": "push"})
    svc.datasources.replace_rows("mon", "alarms", [["a"]])
    svc.policies.add_rule("ops", "execute[src:items.note(x)] :- mon:alarms(x)")
    svc.policies.set_enforcement("ops", "enforce", "admin")
    svc.close()
    with sqlite3.connect(tmp_path / "charter.db") as db:
        db.execute("DELETE FROM actions")
        db.execute("DELETE FROM audit")

    svc = make_service()
    (record,) = svc.store.actions(policy="ops")
    assert (record.status, record.row) == ("baseline", ("a",))
    assert results(svc) == ["baseline"]
    wait_for(lambda: svc.settled)
    svc.datasources.refresh("src")
    time.sleep(0.3)
    assert ledger.calls() == [] and len(svc.store.actions(policy="ops")) == 1


def test_unknown_mode_is_refused(make_service: MakeService):
    from charter.service.errors import ServiceError

    svc = make_service()
    svc.policies.create("ops")
    with pytest.raises(ServiceError, match="one of dry-run, enforce"):
        svc.policies.set_enforcement("ops", "yolo", "admin")


class _Died(BaseException):
    """The worker thread's end, as a SIGKILL would end it: nothing after it runs."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("called", [True, False], ids=["after-the-call", "before-the-call"])
def test_an_action_interrupted_while_running_is_neither_lost_nor_doubled(
        make_service, ledger, called):
    """The process dies during an attempt, after the action's call or before it; either way
    its outcome was never recorded. After the restart it runs again only if, once every
    datasource has reported, its row is still derived: once in all."""
    svc = make_service()
    setup(svc, ledger, FIX, mode="enforce")
    entered, release = threading.Event(), threading.Event()
    real_run = svc.enforcement.worker.run

    def dying(action):
        if called:
            real_run(action)
        entered.set()
        release.wait(30)
        raise _Died  # not an Exception: the worker records nothing

    svc.enforcement.worker.run = dying
    arrive(svc, ledger, [("a", "broken")])
    assert entered.wait(10)
    (record,) = svc.store.actions(policy="ops")
    assert record.status == "running"
    release.set()
    svc.close()

    svc = make_service()  # the restart: the ledger reports at once
    wait_for(lambda: svc.store.actions(policy="ops")[0].status in ("done", "cancelled"))
    (record,) = svc.store.actions(policy="ops")
    assert ledger.items() == [("a", "ok")]
    assert ledger.calls() == [{"action": "items.fix", "args": ["a"]}]
    if called:
        assert record.status == "cancelled" and "interrupted by a restart" in record.detail
    else:
        assert record.status == "done"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_interrupted_action_stays_interrupted_through_a_second_restart(make_service, ledger):
    """The process dies after an action's call; it restarts, and dies again before every
    datasource has reported (here the ledger answers garbage). The third start must still
    know the call may have run: it is not called again, since the repair took effect."""
    svc = make_service()
    setup(svc, ledger, FIX, mode="enforce")
    entered, release = threading.Event(), threading.Event()
    real_run = svc.enforcement.worker.run

    def dying(action):
        real_run(action)
        entered.set()
        release.wait(30)
        raise _Died

    svc.enforcement.worker.run = dying
    arrive(svc, ledger, [("a", "broken")])
    assert entered.wait(10)
    release.set()
    svc.close()
    assert ledger.calls() == [{"action": "items.fix", "args": ["a"]}]

    good = ledger.path.read_text()
    ledger.path.write_text("{not json")  # the ledger's polls fail: the service never settles
    svc = make_service()
    wait_for(lambda: svc.datasources.find("src").status.last_error is not None)
    time.sleep(0.3)  # time enough for the worker to run a due action, were one due
    assert not svc.settled
    (record,) = svc.store.actions(policy="ops")
    assert record.status == "running"
    svc.close()

    ledger.path.write_text(good)
    svc = make_service()
    wait_for(lambda: svc.store.actions(policy="ops")[0].status == "cancelled")
    assert ledger.calls() == [{"action": "items.fix", "args": ["a"]}]
    (record,) = svc.store.actions(policy="ops")
    assert "interrupted by a restart" in record.detail
