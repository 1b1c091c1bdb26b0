"""Table deltas fanned out to live listeners (the server-sent-events stream).

Each listener has a bounded queue; one that does not keep up loses its stream (it gets a
final ``overflow`` event and must reconnect and re-read) rather than holding the engine
back or growing without bound.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Event:
    kind: str  # "delta" or "overflow"
    table: str
    inserted: list[tuple]
    deleted: list[tuple]
    at: datetime

    def to_json(self, rows: bool = True) -> dict:
        """The event; with ``rows=False`` only how many rows came and went (a dashboard
        that re-reads a page needs no copy of a million-row push)."""
        return {
            "kind": self.kind,
            "table": self.table,
            "inserted": [list(r) for r in self.inserted] if rows else len(self.inserted),
            "deleted": [list(r) for r in self.deleted] if rows else len(self.deleted),
            "at": self.at.isoformat(),
        }


@dataclass(eq=False)
class Listener:
    """One stream: the tables it wants (empty: every table; ``*:error`` every policy's
    ``error``, shell-style) and its queue."""

    tables: frozenset[str]
    queue: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=1000))
    closed: bool = False

    def __post_init__(self) -> None:
        self.patterns = tuple(t for t in self.tables if "*" in t or "?" in t or "[" in t)

    def wants(self, table: str) -> bool:
        return (not self.tables or table in self.tables
                or any(fnmatchcase(table, p) for p in self.patterns))


class EventBus:
    def __init__(self) -> None:
        self._listeners: set[Listener] = set()
        self._lock = threading.Lock()

    def listen(self, tables: Iterable[str] = ()) -> Listener:
        listener = Listener(frozenset(tables))
        with self._lock:
            self._listeners.add(listener)
        return listener

    def close(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def publish(self, events: list[Event]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            for event in events:
                if not listener.wants(event.table):
                    continue
                try:
                    listener.queue.put_nowait(event)
                except queue.Full:
                    self.close(listener)
                    listener.closed = True
                    overflow = Event("overflow", event.table, [], [], event.at)
                    # make room for the final event that tells the client to reconnect
                    with contextlib.suppress(queue.Empty):
                        listener.queue.get_nowait()
                    listener.queue.put_nowait(overflow)
                    break

    def __len__(self) -> int:
        return len(self._listeners)
