"""Enforcement in the store: each policy's mode, the action records (derived set and
outbox), and their audit entries written in the same transaction."""

from __future__ import annotations

import pytest

from charter.store import ActionRecord, AuditRecord, NotFound, Store
from tests.store.factories import at, policy

TABLE = "execute[nova:servers.pause]"


def action(row: tuple, status: str = "pending", policy_name: str = "p", **fields) -> ActionRecord:
    values = {
        "id": 0, "policy": policy_name, "table_name": TABLE, "datasource": "nova",
        "action": "servers.pause", "row": row, "rule": "execute[nova:servers.pause(x)] :- e(x)",
        "mode": "enforce", "status": status, "attempts": 0, "derived_at": at(0),
        "next_attempt_at": at(0) if status == "pending" else None,
    } | fields
    return ActionRecord(**values)


def audit(row: tuple, result: str) -> AuditRecord:
    return AuditRecord(0, at(0), "charter", "p", "rule", row, "nova:servers.pause",
                       {"positional": list(row)}, "dry-run", result, "")


def test_policies_start_in_dry_run_and_the_mode_is_kept(store: Store):
    p = policy("p")
    store.create_policy(p)
    assert store.list_policies()[0].enforcement == "dry-run"
    store.set_enforcement(p.id, "enforce", audit((), "mode-changed"))
    assert store.list_policies()[0].enforcement == "enforce"
    assert [a.result for a in store.audit(policy="p")] == ["mode-changed"]
    with pytest.raises(NotFound):
        store.set_enforcement("nope", "enforce")


def test_record_actions_opens_once_per_row_with_its_audit(store: Store):
    written = store.record_actions(
        [(action(("vm1",)), None), (action(("vm2",), "dry-run"), audit(("vm2",), "dry-run"))],
        [], at(0))
    assert [(r.row, r.status) for r in written] == [(("vm1",), "pending"), (("vm2",), "dry-run")]
    assert len({r.id for r in written}) == 2 and all(r.id > 0 for r in written)
    # the same rows again while open: skipped, and so are their audit entries
    again = store.record_actions([(action(("vm2",), "dry-run"), audit(("vm2",), "dry-run"))],
                                 [], at(1))
    assert again == [] and len(store.audit()) == 1
    assert [r.row for r in store.open_actions()] == [("vm1",), ("vm2",)]


def test_a_cleared_row_opens_a_new_record_when_it_reappears(store: Store):
    store.record_actions([(action(("vm1", 1)), None)], [], at(0))
    store.record_actions([], [("p", TABLE, ("vm1", 1))], at(5))
    assert store.open_actions() == []
    (old,) = store.actions()
    assert old.cleared_at == at(5)
    # clearing and reappearing in one call: cleared first, then a new record
    store.record_actions([(action(("vm1", 1)), None)], [("p", TABLE, ("vm1", 1))], at(9))
    assert [(r.derived_at, r.cleared_at) for r in store.actions()] == [(at(0), None),
                                                                       (at(0), at(5))]
    assert len(store.open_actions()) == 1


def test_rows_are_told_apart_by_value_type_and_table(store: Store):
    store.record_actions([(action((1,)), None), (action(("1",)), None),
                          (action((1,), table_name="execute[nova:servers.stop]"), None),
                          (action((1,), policy_name="q"), None)], [], at(0))
    assert len(store.open_actions()) == 4


def test_due_and_finish_an_action(store: Store):
    (rec,) = store.record_actions([(action(("vm1",), next_attempt_at=at(10)), None)], [], at(0))
    assert store.due_actions(at(9)) == [] and store.next_action_at() == at(10)
    assert [r.id for r in store.due_actions(at(10))] == [rec.id]
    store.finish_action(rec.id, status="pending", attempts=1, at=at(10),
                        next_attempt_at=at(12), detail="503: down",
                        audit=audit(("vm1",), "retried"))
    assert store.due_actions(at(11)) == [] and store.next_action_at() == at(12)
    store.finish_action(rec.id, status="done", attempts=2, at=at(12), detail='{"ok": 1}',
                        audit=audit(("vm1",), "ok"))
    (done,) = store.actions(status="done")
    assert (done.attempts, done.finished_at, done.detail, done.next_attempt_at) == (
        2, at(12), '{"ok": 1}', None)
    assert store.next_action_at() is None
    assert [a.result for a in store.audit()] == ["ok", "retried"]
    with pytest.raises(NotFound):
        store.finish_action(999, status="done", attempts=1, at=at(0))


def test_actions_filters(store: Store):
    store.record_actions([(action(("a",), derived_at=at(0)), None),
                          (action(("b",), "capped", policy_name="q", derived_at=at(60)), None)],
                         [], at(60))
    assert [r.row for r in store.actions(policy="q")] == [("b",)]
    assert [r.row for r in store.actions(status="pending")] == [("a",)]
    assert [r.row for r in store.actions(since=at(30))] == [("b",)]
    assert [r.row for r in store.actions(limit=1)] == [("b",)]  # newest first
