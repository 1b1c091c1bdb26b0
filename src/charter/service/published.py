"""Copies of the policy tables that readers ask for, as of the last published batch.

A read of a policy's table (``GET /v1/policies/p/tables/error/rows``, the dashboard's pages)
used to take the service's lock, so it waited for whatever held it: a poll of a million rows
being applied, a what-if run on the engine, a rule being checked. Readers now answer from a
copy of the table kept here, which :meth:`Service.publish` brings up to date after every
batch from the batch's deltas, under a lock of this class's own that is held only for as
long as a delta takes to apply (or a read to copy its rows). A reader therefore sees the
state after the last finished batch and waits at most for one delta's bookkeeping, never
for the batch itself.

A table is copied the first time it is read (under the service's lock, once), then kept: the
memory is spent only on tables someone reads, usually the small ``error`` and ``warning``
tables. Datasource tables (often the large ones) are not kept here; their reads still take
the service's lock.

>>> from charter.engine import TableDelta
>>> kept = PublishedTables()
>>> kept.rows("p:error") is None
True
>>> kept.keep("p:error", [("a",)])
>>> kept.update({"p:error": TableDelta({("b",)}, {("a",)})})
>>> kept.rows("p:error")
[('b',)]
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from charter.engine import TableDelta


class PublishedTables:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[str, dict[tuple, None]] = {}

    def rows(self, table: str) -> list[tuple] | None:
        """The table's rows after the last published batch; None if it is not kept."""
        with self._lock:
            rows = self._tables.get(table)
            return None if rows is None else list(rows)

    def keep(self, table: str, rows: Iterable[tuple]) -> None:
        """Start keeping ``table`` with its current rows (call with the service's lock held,
        so that no batch is published between reading ``rows`` and this)."""
        copy = dict.fromkeys(rows)
        with self._lock:
            self._tables[table] = copy

    def update(self, deltas: Mapping[str, TableDelta]) -> None:
        """Apply a published batch's deltas to the tables kept (service lock held)."""
        with self._lock:
            for table, delta in deltas.items():
                rows = self._tables.get(table)
                if rows is None:
                    continue
                for row in delta.deleted:
                    rows.pop(row, None)
                rows.update(dict.fromkeys(delta.inserted))

    def forget(self, policy: str) -> None:
        """Stop keeping a deleted policy's tables."""
        prefix = policy + ":"
        with self._lock:
            for table in [t for t in self._tables if t.startswith(prefix)]:
                del self._tables[table]
