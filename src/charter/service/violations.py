"""Violation history: when each row of a policy's ``error`` (or ``warning``) table appeared.

Congress's convention puts violations in ``error``; Charter keeps, for every such row, the
time it was first seen and, once it clears, when. The store holds the history; this keeps
the open intervals in memory so listing the current violations needs no query.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from charter.engine import TableDelta

log = logging.getLogger(__name__)

VIOLATION_TABLES = ("error", "warning")


def violation_table(table: str) -> tuple[str, str] | None:
    """``"p:error"`` -> ``("p", "error")``; None for other tables."""
    policy, sep, name = table.partition(":")
    if sep and name in VIOLATION_TABLES:
        return policy, name
    return None


class ViolationTracker:
    def __init__(self, store) -> None:
        self.store = store
        self.open: dict[tuple[str, str], dict[tuple, datetime]] = {}
        self.write_errors = 0

    def restore(self, policy: str, current: Mapping[str, set[tuple]], now: datetime) -> None:
        """Reconcile the stored open violations of ``policy`` with its rows after a restart.

        Rows still present keep their first-seen time; stored rows no longer present are
        resolved now; rows that are new appear now.
        """
        stored: dict[str, dict[tuple, datetime]] = {t: {} for t in VIOLATION_TABLES}
        for v in self.store.violations(policy):
            stored.setdefault(v.table, {})[v.row] = v.first_seen
        for table in VIOLATION_TABLES:
            rows = current.get(table, set())
            known = stored.get(table, {})
            appeared = [r for r in rows if r not in known]
            cleared = [r for r in known if r not in rows]
            if appeared or cleared:
                self.store.record_violations(policy, table, appeared, cleared, now)
            opened = {r: known[r] for r in rows if r in known}
            opened.update(dict.fromkeys(appeared, now))
            self.open[(policy, table)] = opened

    def update(self, deltas: Mapping[str, TableDelta], now: datetime) -> None:
        for name, delta in deltas.items():
            key = violation_table(name)
            if key is None or not delta:
                continue
            opened = self.open.setdefault(key, {})
            appeared = [r for r in delta.inserted if r not in opened]
            cleared = [r for r in delta.deleted if r in opened]
            for r in cleared:
                del opened[r]
            for r in appeared:
                opened[r] = now
            try:
                self.store.record_violations(key[0], key[1], appeared, cleared, now)
            except Exception as exc:  # the engine has moved on; keep serving, say so
                self.write_errors += 1
                log.error("violation history of %s:%s not written: %s", *key, exc)

    def forget(self, policy: str) -> None:
        for key in [k for k in self.open if k[0] == policy]:
            del self.open[key]

    def current(self, policy: str) -> list[tuple[str, tuple, datetime]]:
        out = []
        for table in VIOLATION_TABLES:
            for row, seen in self.open.get((policy, table), {}).items():
                out.append((table, row, seen))
        out.sort(key=lambda v: (v[0], v[2], repr(v[1])))
        return out
