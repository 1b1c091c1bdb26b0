"""The worker's retry policy and loop: transient failures retried with doubling waits, the
rest final; each attempt's outcome handed to the outbox; cancellation before each run."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from charter.enforce.worker import (
    ActionFailed,
    ActionWorker,
    Loop,
    backoff_delay,
    describe,
    step,
)


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_delay(n, 0.5) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(10, 1.0, cap=300.0) == 300.0
    assert backoff_delay(10_000, 1.0, cap=300.0) == 300.0  # no overflow


def test_only_502_and_503_are_retried_and_only_retries_times():
    assert step(1, ActionFailed("x", 502), retries=1, backoff=2.0).delay == 2.0
    assert step(2, ActionFailed("x", 502), retries=1, backoff=2.0).status == "failed"
    for status in (400, 401, 403, 404, 409, 500):
        assert step(1, ActionFailed("x", status), retries=9, backoff=1.0).result == "failed"
    assert step(1, ActionFailed("x", 503), retries=0, backoff=1.0).result == "failed"


def test_describe_results():
    assert describe(None) == ""
    assert describe({"b": 1, "a": [1, "x"]}) == '{"a": [1, "x"], "b": 1}'
    assert describe(object()).startswith('"<object object')  # JSON via str()


@dataclass(frozen=True)
class Item:
    id: int
    attempts: int = 0
    next_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    status: str = "pending"


class ListOutbox:
    """The worker's outbox contract over a list (the service's is the store)."""

    def __init__(self, items: list[Item]) -> None:
        self.items = {i.id: i for i in items}
        self.finished: list[tuple] = []
        self.lock = threading.Lock()

    def due(self, now):
        with self.lock:
            return [i for i in self.items.values() if i.status == "pending" and i.next_at <= now]

    def next_due(self):
        with self.lock:
            return min((i.next_at for i in self.items.values() if i.status == "pending"),
                       default=None)

    def running(self, action, now):
        with self.lock:
            self.items[action.id] = replace(action, status="running")

    def finish(self, action, status, result, attempts, next_attempt_at, detail, now):
        with self.lock:
            self.items[action.id] = replace(action, attempts=attempts, status=status,
                                            next_at=next_attempt_at or action.next_at)
            self.finished.append((action.id, result, attempts, detail))


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_the_worker_retries_then_succeeds_and_records_each_attempt():
    outbox = ListOutbox([Item(1)])
    failures = iter([ActionFailed("down", 503), ActionFailed("bad gateway", 502)])
    calls: list[float] = []

    def run(item):
        calls.append(time.monotonic())
        error = next(failures, None)
        if error is not None:
            raise error
        return {"done": item.id}

    worker = ActionWorker(outbox, run, lambda _i: None, retries=3, backoff=0.1,
                          clock=lambda: datetime.now(UTC))
    worker.start()
    try:
        wait_for(lambda: len(outbox.finished) == 3)
    finally:
        worker.stop()
    assert [(r, n) for _, r, n, _ in outbox.finished] == [("retried", 1), ("retried", 2),
                                                          ("ok", 3)]
    assert outbox.finished[0][3].startswith("503: down (attempt 1 of 4")
    assert outbox.finished[2][3] == '{"done": 1}'
    assert calls[1] - calls[0] >= 0.1 and calls[2] - calls[1] >= 0.2


def test_an_action_that_may_no_longer_run_is_cancelled_not_run():
    outbox = ListOutbox([Item(1), Item(2)])
    ran: list[int] = []
    worker = ActionWorker(outbox, lambda i: ran.append(i.id),
                          lambda i: "policy gone" if i.id == 1 else None,
                          retries=0, backoff=1.0, clock=lambda: datetime.now(UTC))
    worker.work()
    assert ran == [2]
    assert [(i, r, d) for i, r, _, d in outbox.finished] == [(1, "cancelled", "policy gone"),
                                                            (2, "ok", "")]


def test_a_driver_bug_fails_the_action_without_retry():
    outbox = ListOutbox([Item(1)])

    def run(_item):
        raise KeyError("oops")

    worker = ActionWorker(outbox, run, lambda _i: None, retries=5, backoff=0.01,
                          clock=lambda: datetime.now(UTC))
    worker.work()
    assert outbox.finished == [(1, "failed", 1, "500: KeyError: 'oops'")]


def test_the_worker_sleeps_until_the_next_due_item():
    later = datetime.now(UTC) + timedelta(seconds=30)
    worker = ActionWorker(ListOutbox([Item(1, next_at=later)]), lambda _i: None,
                          lambda _i: None, retries=0, backoff=1.0,
                          clock=lambda: datetime.now(UTC))
    assert 29 < worker.work() <= 30


def test_a_loop_survives_errors_and_wakes_at_once():
    runs: list[float] = []

    def work():
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RuntimeError("the store is down")
        return None

    loop = Loop("test-loop", work)
    loop.start()
    try:
        wait_for(lambda: len(runs) >= 2)  # retried after the error
        before = len(runs)
        loop.wake()
        wait_for(lambda: len(runs) > before, timeout=0.5)  # well before the idle second
    finally:
        loop.stop()
