"""The running system: one engine, one store, the datasources, kept consistent.

Every change goes through :meth:`Service.apply` while holding the service's lock: the
engine applies the batch, then violation history and live listeners get the deltas. Readers
take the same lock, so they always see the state between two batches, never half of one.
A write is checked by the engine first, then made durable in the store, and only then
acknowledged; if the store fails, the engine change is undone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from charter.engine import Delta, Engine, RuleChange, TableDelta
from charter.service.errors import Conflict, NotFound, ServiceError, Unavailable
from charter.service.events import Event, EventBus
from charter.service.violations import ViolationTracker
from charter.store.errors import Conflict as StoreConflict
from charter.store.errors import NotFound as StoreNotFound
from charter.store.errors import StoreError, StoreUnavailable

if TYPE_CHECKING:
    from charter.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Service:
    """Policies, library, datasources and their tables, over one engine and one store."""

    def __init__(self, store: Store, *, engine: Engine | None = None,
                 library_dir: Path | None = None):
        from charter.service.datasources import Datasources
        from charter.service.library import Library
        from charter.service.policies import Policies

        self.store = store
        self.engine = engine or Engine()
        self.lock = threading.RLock()
        self.events = EventBus()
        self.violations = ViolationTracker(store)
        self.policies = Policies(self)
        self.library = Library(self, library_dir)
        self.datasources = Datasources(self)
        self.started_at = utcnow()
        self.batches = 0
        self.batch_seconds = 0.0

    def start(self) -> None:
        """Rebuild the engine from the store: datasources, then policies and their rules."""
        with self.lock:
            fresh = not self.stored(self.store.list_policies)
            self.library.restore(seed=fresh)
            self.datasources.restore()
            self.policies.restore()
        self.datasources.start_polling()

    def close(self) -> None:
        with self.lock:
            self.datasources.close()
            self.store.close()

    # ------------------------------------------------------------ changes

    def apply(self, changes: Iterable[Delta | RuleChange]) -> dict[str, TableDelta]:
        """Apply one batch to the engine and publish its deltas (call with the lock held)."""
        start = time.perf_counter()
        deltas = self.engine.apply(changes)
        self.batch_seconds += time.perf_counter() - start
        self.batches += 1
        self.publish(deltas)
        return deltas

    def publish(self, deltas: dict[str, TableDelta]) -> None:
        if not deltas:
            return
        now = utcnow()
        self.violations.update(deltas, now)
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

    def durable(self, write: Callable[[], T], undo: Callable[[], object]) -> T:
        """Make an engine change durable; if the store write fails, undo the engine change."""
        try:
            return self.stored(write)
        except ServiceError:
            try:
                undo()
            except Exception:  # pragma: no cover - the engine refused its own inverse
                log.exception("could not undo an engine change after a store failure")
            raise
