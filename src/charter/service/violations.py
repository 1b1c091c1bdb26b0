"""Violation history: when each row of a policy's ``error`` (or ``warning``) table appeared.

Congress's convention puts violations in ``error``; Charter keeps, for every such row, the
time it was first seen and, once it clears, when. The store holds the history (and, in the
same transaction, the webhook notifications announcing each change); this keeps the open
intervals in memory so listing the current violations needs no query, nor the service's
lock: the open intervals change under a lock of their own, held only while they change.

After a restart the stored open intervals are matched with the rebuilt engine's rows:
a row still there keeps its first sighting and is not announced again. A stored row not
(yet) derived again is *unsettled*: polled datasources start empty, so its absence may only
mean its data has not arrived. When its row comes back it continues its interval; once every
datasource has reported (:meth:`ViolationTracker.settle`) the rest are closed, announced as
cleared while the service was down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from charter.engine import TableDelta
from charter.store.store import Outbox

log = logging.getLogger(__name__)

VIOLATION_TABLES = ("error", "warning")


def violation_table(table: str) -> tuple[str, str] | None:
    """``"p:error"`` -> ``("p", "error")``; None for other tables."""
    policy, sep, name = table.partition(":")
    if sep and name in VIOLATION_TABLES:
        return policy, name
    return None


class ViolationTracker:
    def __init__(self, store, outbox: Callable[[str], Outbox | None] = lambda _p: None,
                 written: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.outbox = outbox  # the notifications for a policy's changes (None: no webhook)
        self.written = written  # called after a change that may have queued notifications
        self.open: dict[tuple[str, str], dict[tuple, datetime]] = {}
        self.unsettled: dict[tuple[str, str], dict[tuple, datetime]] = {}
        self.write_errors = 0
        self._reading = threading.Lock()  # ``open`` as readers see it: see current()

    def restore(self, current: Mapping[str, Mapping[str, set[tuple]]], now: datetime) -> None:
        """Match the stored open violations with the rebuilt engine's rows, for every policy
        in ``current`` (policy -> table -> rows).

        Rows still present keep their first-seen time; rows that are new appear now; stored
        rows not present wait, unsettled, for their data or for :meth:`settle`.
        """
        self.open, self.unsettled = {}, {}
        for policy, tables in current.items():
            stored: dict[str, dict[tuple, datetime]] = {t: {} for t in VIOLATION_TABLES}
            for v in self.store.violations(policy):
                stored.setdefault(v.table, {})[v.row] = v.first_seen
            for table in VIOLATION_TABLES:
                rows = tables.get(table, set())
                known = stored.get(table, {})
                appeared = [r for r in sorted(rows, key=repr) if r not in known]
                if appeared:
                    self._record(policy, table, appeared, [], now)
                opened = {r: known[r] for r in rows if r in known}
                opened.update(dict.fromkeys(appeared, now))
                self.open[(policy, table)] = opened
                waiting = {r: seen for r, seen in known.items() if r not in rows}
                if waiting:
                    self.unsettled[(policy, table)] = waiting

    def update(self, deltas: Mapping[str, TableDelta], now: datetime) -> None:
        for name, delta in deltas.items():
            key = violation_table(name)
            if key is None or not delta:
                continue
            opened = self.open.get(key, {})
            waiting = self.unsettled.get(key, {})
            appeared, back = [], {}
            for r in sorted(delta.inserted, key=repr):
                if r in opened:
                    continue
                if r in waiting:  # back after a restart: its stored interval goes on
                    back[r] = waiting.pop(r)
                else:
                    appeared.append(r)
            cleared = [r for r in sorted(delta.deleted, key=repr) if r in opened]
            with self._reading:
                opened = self.open.setdefault(key, opened)
                for r in cleared:
                    del opened[r]
                opened.update(back)
                opened.update(dict.fromkeys(appeared, now))
            try:
                self._record(key[0], key[1], appeared, cleared, now)
            except Exception as exc:  # the engine has moved on; keep serving, say so
                self.write_errors += 1
                log.error("violation history of %s:%s not written: %s", *key, exc)

    def settle(self, now: datetime) -> None:
        """Every datasource has reported since the restart: unsettled rows cleared while the
        service was down. Close (and announce) them now."""
        for (policy, table), rows in list(self.unsettled.items()):
            if rows:
                self._record(policy, table, [], sorted(rows, key=repr), now)
            del self.unsettled[(policy, table)]

    def _record(self, policy: str, table: str, appeared: list[tuple], cleared: list[tuple],
                now: datetime) -> None:
        if not appeared and not cleared:
            return
        outbox = self.outbox(policy)
        changes = self.store.record_violations(policy, table, appeared, cleared, now,
                                               outbox=outbox)
        if outbox is not None and changes:
            self.written()

    def forget(self, policy: str) -> None:
        with self._reading:
            for d in (self.open, self.unsettled):
                for key in [k for k in d if k[0] == policy]:
                    del d[key]

    def current(self, policy: str) -> list[tuple[str, tuple, datetime]]:
        """The policy's open violations (table, row, first seen): callable without the
        service's lock, as of the last batch whose deltas were applied here."""
        out = []
        with self._reading:
            for table in VIOLATION_TABLES:
                out += [(table, row, seen)
                        for row, seen in self.open.get((policy, table), {}).items()]
        out.sort(key=lambda v: (v[0], v[2], repr(v[1])))
        return out
