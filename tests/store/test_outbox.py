"""The webhook outbox: written in the transaction of the violation change it announces,
delivered per webhook in order, each attempt's error kept."""

from __future__ import annotations

import pytest

from charter.store import NotificationRecord, Store, ViolationRecord
from tests.store.factories import at, policy


def announce(webhooks: tuple[str, ...] = ("hook",)):
    """An outbox callback, as the notifier gives one: one entry per change per webhook."""
    seen: list[ViolationRecord] = []

    def outbox(changes: list[ViolationRecord]):
        seen.extend(changes)
        for n, change in enumerate(changes):
            kind = "violation.cleared" if change.resolved_at else "violation.appeared"
            for hook in webhooks:
                yield NotificationRecord(
                    0, f"{change.row}-{kind}-{n}", hook, kind, change.policy,
                    {"row": list(change.row), "event": kind}, "pending", 0, at(0), at(0))

    outbox.seen = seen  # type: ignore[attr-defined]
    return outbox


def test_changes_are_announced_with_the_history(store: Store):
    out = announce(("a", "b"))
    changes = store.record_violations("p", "error", [("vm1",), ("vm2",)], [], at(1), outbox=out)
    assert changes == out.seen == [ViolationRecord("p", "error", ("vm1",), at(1), None),
                                   ViolationRecord("p", "error", ("vm2",), at(1), None)]
    assert len(store.notifications()) == 4
    # appearing again while open: no change, nothing announced
    assert store.record_violations("p", "error", [("vm1",)], [], at(2), outbox=out) == []
    assert len(store.notifications()) == 4
    closed = store.record_violations("p", "error", [], [("vm1",), ("gone",)], at(3), outbox=out)
    assert closed == [ViolationRecord("p", "error", ("vm1",), at(1), at(3))]
    assert [n.event for n in store.notifications(webhook="a")] == [
        "violation.cleared", "violation.appeared", "violation.appeared"]


def test_an_outbox_that_fails_writes_no_history(store: Store):
    def broken(_changes):
        raise RuntimeError("cannot build the notification")

    with pytest.raises(RuntimeError):
        store.record_violations("p", "error", [("vm1",)], [], at(0), outbox=broken)
    assert store.violations("p") == [] and store.notifications() == []


def test_each_webhook_gets_its_oldest_pending_entry_first(store: Store):
    store.record_violations("p", "error", [("vm1",)], [], at(0), outbox=announce(("a", "b")))
    store.record_violations("p", "error", [], [("vm1",)], at(1), outbox=announce(("a", "b")))
    due, later = store.due_notifications(at(5))
    assert [(n.webhook, n.event) for n in due] == [("a", "violation.appeared"),
                                                   ("b", "violation.appeared")]
    assert later is None
    first_a = due[0]
    store.finish_notification(first_a.id, status="pending", attempts=1, at=at(5),
                              next_attempt_at=at(8), error="HTTP 500: nope")
    due, later = store.due_notifications(at(6))
    # a's head waits for its retry, and its next entry waits behind it
    assert [(n.webhook, n.event) for n in due] == [("b", "violation.appeared")]
    assert later == at(8)
    store.finish_notification(first_a.id, status="delivered", attempts=2, at=at(8))
    due, _ = store.due_notifications(at(8))
    assert sorted((n.webhook, n.event) for n in due) == [("a", "violation.cleared"),
                                                         ("b", "violation.appeared")]
    (done,) = store.notifications(status="delivered")
    assert (done.attempts, done.delivered_at) == (2, at(8))
    assert done.errors == ({"at": at(5).isoformat(), "error": "HTTP 500: nope"},)


def test_a_failed_entry_no_longer_blocks_its_webhook(store: Store):
    store.record_violations("p", "error", [("vm1",), ("vm2",)], [], at(0), outbox=announce())
    due, _ = store.due_notifications(at(0))
    store.finish_notification(due[0].id, status="failed", attempts=3, at=at(1),
                              error="gave up")
    due, _ = store.due_notifications(at(1))
    assert [n.payload["row"] for n in due] == [["vm2"]]


def test_deleting_a_policy_announces_its_open_violations_as_cleared(store: Store):
    p = policy("p")
    store.create_policy(p)
    store.record_violations("p", "error", [("vm1",)], [("x",)], at(0))
    store.record_violations("p", "warning", [("vm2",)], [], at(1))
    out = announce()
    store.delete_policy(p.id, at=at(5), outbox=out)
    assert out.seen == [ViolationRecord("p", "error", ("vm1",), at(0), at(5)),
                        ViolationRecord("p", "warning", ("vm2",), at(1), at(5))]
    assert store.violations("p", include_resolved=True) == []
    assert [n.event for n in store.notifications()] == ["violation.cleared"] * 2
