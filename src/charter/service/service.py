"""The running system: one engine, one store, the datasources, kept consistent.

Every change goes through :meth:`Service.apply` while holding the service's lock: the
engine applies the batch, then violation history (with its webhook outbox), enforcement
(with its action outbox), live listeners and the tables kept for readers get the deltas.
Readers of a policy's tables and violations answer from those copies (``published.py``)
without the lock, so a large batch or a what-if never holds them up; other readers take the
lock. Either way a reader sees the state between two batches, never half of one.

A change the store must keep goes through :meth:`Service.commit`: the engine checks and
applies it, the store writes it, and only then is it published and acknowledged. If the
store write fails, whatever the error, the engine change is undone (its ``Step.undo``: the
inverse row and rule changes, or of a datasource's table differences) before anyone saw it,
so a client never sees a failure for a change that took effect. What takes time in
proportion to the input (parsing a rule, checking it against the program) is done before
the lock is taken, against a copy of the program (``Engine.view``); inside it, the engine
only applies the change, checking again only if the program changed meanwhile.

The rebuild at start publishes nothing to history or enforcement: its deltas re-derive what
was already there. Instead the stored open violations and action rows are matched with the
rebuilt engine, and those not derived again are *settled* (closed) only once every
datasource has reported, since a polled datasource starts empty.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from charter.engine import Delta, Engine, RuleChange, TableDelta
from charter.engine.rule_check import CheckedRules
from charter.service.config import EnforcementSettings, NotificationSettings
from charter.service.errors import Conflict, NotFound, ServiceError, Unavailable
from charter.service.events import Event, EventBus
from charter.service.published import PublishedTables
from charter.service.violations import ViolationTracker, violation_table
from charter.store.errors import Conflict as StoreConflict
from charter.store.errors import NotFound as StoreNotFound
from charter.store.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from charter.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

SETTLE_CHECK_S = 0.2


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service:
    """Policies, library, datasources and their tables, over one engine and one store."""

    def __init__(self, store: Store, *, engine: Engine | None = None,
                 library_dir: Path | None = None,
                 enforcement: EnforcementSettings | None = None,
                 notifications: NotificationSettings | None = None):
        from charter.service.datasources import Datasources
        from charter.service.enforcement import Enforcement
        from charter.service.library import Library
        from charter.service.notifications import Notifier
        from charter.service.packs import Packs
        from charter.service.policies import Policies

        self.store = store
        self.engine = engine or Engine()
        self.lock = threading.RLock()
        self.events = EventBus()
        self.notifier = Notifier(store, notifications or NotificationSettings())
        self.violations = ViolationTracker(store, self.notifier.outbox, self.notifier.wake)
        self.enforcement = Enforcement(self, enforcement or EnforcementSettings())
        self.policies = Policies(self)
        self.library = Library(self, library_dir)
        self.datasources = Datasources(self)
        self.packs = Packs(self)
        self.started_at = utcnow()
        self.batches = 0
        self.batch_seconds = 0.0
        # Bumped whenever a batch may have changed the open violations; with
        # ``engine.generation`` (bumped by a deleted policy) it tells a reader's cache of
        # them (service/dashboard.py) when to rebuild.
        self.violation_changes = 0
        self.published = PublishedTables()
        self.restoring = False
        self.settled = False
        self._closing = threading.Event()
        self._settler: threading.Thread | None = None

    def start(self) -> None:
        """Rebuild the engine from the store (datasources, then policies and their rules),
        match the stored violations and action rows with it, then start the background work:
        polls, the action worker, the webhook sender."""
        with self.lock:
            self.restoring = True
            try:
                fresh = not self.stored(self.store.list_policies)
                self.library.restore(seed=fresh)
                self.datasources.restore()
                self.policies.restore()
                self.packs.restore(seed=fresh)
            finally:
                self.restoring = False
            now = utcnow()
            self.stored(self.violations.restore, self.policies.violation_rows(), now)
            self.violation_changes += 1
            self.enforcement.restore(now)
        self.datasources.start_polling()
        self.enforcement.start()
        self.notifier.start()
        if not self.settle_if_ready():
            self._settler = threading.Thread(target=self._settle_when_ready, daemon=True,
                                             name="charter-settle")
            self._settler.start()

    def settle_if_ready(self) -> bool:
        """Once every datasource has reported since the start, close the violations and
        action rows recorded before it that were not derived again. True once done."""
        with self.lock:
            if self.settled:
                return True
            if any(d.record.enabled and not d.driver.pushed and not d.status.initialized
                   for d in self.datasources.live.values()):
                return False  # a polled datasource has not reported yet: absence means nothing
            now = utcnow()
            try:
                self.violations.settle(now)
                self.violation_changes += 1  # the history changed
                self.enforcement.settle(now)
            except Exception as exc:  # the store is down: try again at the next check
                log.error("could not settle the state recorded before the restart: %s", exc)
                return False
            self.settled = True
            return True

    def _settle_when_ready(self) -> None:
        while not self._closing.wait(SETTLE_CHECK_S):
            if self.settle_if_ready():
                return

    def close(self) -> None:
        self._closing.set()
        self.enforcement.close()  # outside the lock: the worker takes it before each action
        self.notifier.close()
        if self._settler is not None:
            self._settler.join(5.0)
        with self.lock:
            self.datasources.close()
            self.store.close()

    # ------------------------------------------------------------ changes

    def apply(self, changes: Iterable[Delta | RuleChange], *, checked: CheckedRules | None = None,
              publish: bool = True) -> dict[str, TableDelta]:
        """Apply one batch to the engine and publish its deltas (call with the lock held)."""
        return self.run(lambda engine: engine.apply(changes, checked=checked), publish=publish)

    def run(
        self, step: Callable[[Engine], dict[str, TableDelta]], *, publish: bool = True
    ) -> dict[str, TableDelta]:
        """Run one batch, ``step``, on the engine, count it, and publish its deltas (call
        with the lock held)."""
        start = time.perf_counter()
        deltas = step(self.engine)
        self.batch_seconds += time.perf_counter() - start
        self.batches += 1
        if publish:
            self.publish(deltas)
        return deltas

    def commit(self, changes: Sequence[Delta | RuleChange] | Step, write: Callable[[], object],
               *, forget: Callable[[], object] = lambda: None,
               checked: CheckedRules | None = None) -> dict[str, TableDelta]:
        """Apply ``changes`` (rows and rules, or any ``Step``), make them durable with
        ``write``, then publish them (call with the lock held).

        If ``write`` fails, whatever its error, the engine change is undone by its inverse
        (``Step.undo``) before anything was published (no history, action, webhook or event
        saw it), ``forget`` drops what the caller put in memory for it, and the failure is
        raised as a ServiceError: 404/409 as the store says, 503 for a store that cannot be
        reached, 500 otherwise (its type only: a driver's message may quote the SQL and its
        values; the log has them). Engine errors (a rule that does not check, rows that do
        not fit) are raised before anything changed.
        """
        step = changes if isinstance(changes, Step) else Step.of(changes, checked)
        mark = self.engine.bookmark()
        deltas = self.run(step.run, publish=False)
        try:
            self.stored(write)
        except BaseException as exc:
            try:
                step.undo(self.engine)
                self.engine.rewind(mark)
                forget()
            except Exception:  # pragma: no cover - the engine refused its own inverse
                log.exception("could not undo an engine change after a store failure")
            if isinstance(exc, ServiceError) or not isinstance(exc, Exception):
                raise
            log.exception("the store could not write a change; it was undone")
            raise ServiceError(f"the store could not write the change ({type(exc).__name__}); "
                               "nothing was changed, and the server log has the details",
                               status=500) from exc
        self.publish(deltas)
        return deltas

    def publish(self, deltas: dict[str, TableDelta]) -> None:
        if not deltas:
            return
        self.published.update(deltas)
        now = utcnow()
        if not self.restoring:
            self.violations.update(deltas, now)
            if any(violation_table(table) for table in deltas):
                self.violation_changes += 1
            self.enforcement.update(deltas, now)
        if len(self.events):
            events = [
                Event("delta", table, list(d.inserted), list(d.deleted), now)
                for table, d in deltas.items()
                if d and "#" not in table
            ]
            self.events.publish(events)

    @contextmanager
    def reading(self) -> Iterator[Engine]:
        """The engine between two batches."""
        with self.lock:
            yield self.engine

    # ------------------------------------------------------------ store access

    def stored(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the store, turning its errors into the API's (404, 409, 503)."""
        try:
            return fn(*args, **kwargs)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from exc
        except StoreConflict as exc:
            raise Conflict(str(exc)) from exc
        except StoreUnavailable as exc:
            raise Unavailable(f"the store is unavailable: {exc}") from exc
        except StoreError as exc:
            raise ServiceError(f"the store refused the change: {exc}", status=500) from exc


@dataclass(frozen=True, slots=True)
class Step:
    """One batch for ``Service.commit``: ``run`` applies it to the engine (returning its
    deltas), ``undo`` applies its inverse after the store failed to write it."""

    run: Callable[[Engine], dict[str, TableDelta]]
    undo: Callable[[Engine], object]

    @classmethod
    def of(cls, changes: Sequence[Delta | RuleChange], checked: CheckedRules | None = None) -> Step:
        """Row and rule changes, undone by the inverse of each, last first."""
        return cls(
            lambda engine: engine.apply(changes, checked=checked),
            lambda engine: engine.apply([_inverse(c) for c in reversed(changes)]),
        )


def _inverse(change: Delta | RuleChange) -> Delta | RuleChange:
    if isinstance(change, RuleChange):
        return RuleChange(change.policy, change.rule, -change.sign)
    return Delta(change.table, change.row, -change.sign)
