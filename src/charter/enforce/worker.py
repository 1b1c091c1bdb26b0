"""Running due actions in the background, with retries and exponential backoff.

Actions are slow network calls; they never run under the service's lock, so no reader or
poll waits for a remote API. The outbox is the store: the worker reads what is due, runs
it, and records each attempt's outcome (and its audit entry) before going on, so a process
killed at any point finds every unfinished action again after a restart. Each attempt is
marked ``running`` before its call: one found so after a restart may have run, and runs
again only if its row is still derived once every datasource has reported (the service
decides: ``charter.service.enforcement``), so an action whose effect the policy observes
(a repair) is neither lost nor doubled.

Only transient failures are retried: the service was unreachable or answered badly (502,
503). A 400 or 404 says the request itself is wrong, and asking again cannot help.

>>> step(1, ActionFailed("down", 503), retries=3, backoff=1.0)
Step(status='pending', result='retried', delay=1.0)
>>> step(3, ActionFailed("down", 503), retries=3, backoff=1.0)
Step(status='pending', result='retried', delay=4.0)
>>> step(4, ActionFailed("down", 503), retries=3, backoff=1.0)
Step(status='failed', result='failed', delay=None)
>>> step(1, ActionFailed("no such user", 404), retries=3, backoff=1.0)
Step(status='failed', result='failed', delay=None)
>>> step(1, None, retries=3, backoff=1.0)
Step(status='done', result='ok', delay=None)
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

log = logging.getLogger(__name__)

TRANSIENT = frozenset({502, 503})
IDLE_S = 1.0  # the longest a loop sleeps without being woken: a safety net, not the schedule
DETAIL_CHARS = 2000


class ActionFailed(Exception):
    """An action the datasource refused or could not run; ``status`` as the API gives it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Step:
    """What one attempt leads to: the action's new status, the audit result, when to retry."""

    status: str  # done, pending (retry), failed
    result: str  # ok, retried, failed
    delay: float | None


def backoff_delay(attempt: int, backoff: float, cap: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling from
    ``backoff``, at most ``cap``."""
    delay = backoff * 2 ** min(attempt - 1, 32)
    return delay if cap is None else min(delay, cap)


def step(attempt: int, error: ActionFailed | None, *, retries: int, backoff: float) -> Step:
    """The outcome of attempt number ``attempt`` (1-based), given its error or None."""
    if error is None:
        return Step("done", "ok", None)
    if error.status in TRANSIENT and attempt <= retries:
        return Step("pending", "retried", backoff_delay(attempt, backoff))
    return Step("failed", "failed", None)


class Due(Protocol):
    """What the worker needs of an action record (``charter.store.ActionRecord`` fits)."""

    id: int
    attempts: int


class Outbox(Protocol):
    def due(self, now: datetime) -> list[Any]: ...

    def next_due(self) -> datetime | None: ...

    def running(self, action: Any, now: datetime) -> None: ...

    def finish(self, action: Any, status: str, result: str, attempts: int,
               next_attempt_at: datetime | None, detail: str, now: datetime) -> None: ...


class Loop:
    """A daemon thread that runs ``work`` whenever woken or when its next item is due.

    ``work`` returns the seconds until it has something due again (None: nothing; wait to
    be woken). An exception in ``work`` (say the store is down) is logged and retried a
    second later, so the loop never dies.
    """

    def __init__(self, name: str, work: Callable[[], float | None]) -> None:
        self.name = name
        self.work = work
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, wait: float = 15.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait)
        self._thread = None

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                delay = self.work()
            except Exception:
                log.exception("%s: will try again", self.name)
                delay = IDLE_S
            timeout = IDLE_S if delay is None else max(0.0, min(delay, IDLE_S))
            self._wake.wait(timeout)


class ActionWorker:
    """Runs the outbox's due actions one at a time, each attempt's outcome recorded."""

    def __init__(
        self,
        outbox: Outbox,
        run: Callable[[Any], Any],
        may_run: Callable[[Any], str | None],
        *,
        retries: int,
        backoff: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.outbox = outbox
        self.run = run
        self.may_run = may_run
        self.retries = retries
        self.backoff = backoff
        self.clock = clock
        self.loop = Loop("charter-actions", self.work)

    def start(self) -> None:
        self.loop.start()

    def wake(self) -> None:
        self.loop.wake()

    def stop(self) -> None:
        self.loop.stop()

    def work(self) -> float | None:
        for action in self.outbox.due(self.clock()):
            if self.loop.stopping:
                return None
            self.attempt(action)
        upcoming = self.outbox.next_due()
        if upcoming is None:
            return None
        return max(0.0, (upcoming - self.clock()).total_seconds())

    def attempt(self, action: Due) -> None:
        """Run one due action (unless it should no longer run) and record the outcome."""
        why_not = self.may_run(action)
        if why_not is not None:
            self.outbox.finish(action, "cancelled", "cancelled", action.attempts, None,
                               why_not, self.clock())
            return
        attempt = action.attempts + 1
        error: ActionFailed | None = None
        detail = ""
        self.outbox.running(action, self.clock())  # a crash from here on: outcome unknown
        try:
            detail = describe(self.run(action))
        except ActionFailed as exc:
            error, detail = exc, f"{exc.status}: {exc.message}"
        except Exception as exc:  # a driver bug: report it, never retry it blindly
            log.exception("action %s raised", action.id)
            error = ActionFailed(f"{type(exc).__name__}: {exc}", 500)
            detail = f"500: {error.message}"
        outcome = step(attempt, error, retries=self.retries, backoff=self.backoff)
        now = self.clock()
        retry_at = now + timedelta(seconds=outcome.delay) if outcome.delay is not None else None
        if outcome.result == "retried":
            detail += f" (attempt {attempt} of {self.retries + 1}; next at {retry_at:%H:%M:%S})"
        self.outbox.finish(action, outcome.status, outcome.result, attempt, retry_at,
                           detail[:DETAIL_CHARS], now)


def describe(result: Any) -> str:
    """A driver's result as audit text: JSON when it is JSON, else its repr."""
    if result is None:
        return ""
    try:
        return json.dumps(result, default=str, sort_keys=True)[:DETAIL_CHARS]
    except (TypeError, ValueError):
        return repr(result)[:DETAIL_CHARS]
