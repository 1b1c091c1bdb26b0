"""Tables changed in bulk: loaded from rows or columns, replaced whole, patched.

A load into an empty table takes NumPy columns as they are (no Python row built); a
replace or a patch finds its difference from the stored rows set at a time
(``column_diff.py``), against a snapshot of the table (``stored_table``) that needs no
lock, and applies it as one ordinary batch (``changes.py``), refused when the table
changed since (``fresh``).

>>> from charter.engine import Engine
>>> eng = Engine()
>>> _ = eng.load_rows({"p:t": [(1,), (2,)]})
>>> d = eng.replace_rows("p:t", [(2,), (3,)])
>>> sorted(d["p:t"].inserted), sorted(d["p:t"].deleted)
([(3,)], [(1,)])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from charter.engine import column_diff
from charter.engine.batch import PreparedRows
from charter.engine.batch_delta import BatchDelta
from charter.engine.collector import collector_paused
from charter.engine.column_diff import StoredTable, TableDiff
from charter.engine.columnar import ColumnStore
from charter.engine.delta import TableDelta
from charter.engine.relation import Relation
from charter.lang.errors import EngineError


class BulkTables:
    """The part of :class:`~charter.engine.engine.Engine` that changes tables in bulk; the
    engine's ``__init__`` makes the state it reads."""

    # ------------------------------------------------------------ rows

    def replace_rows(self, table: str, rows: Iterable[tuple]) -> dict[str, TableDelta]:
        """Make ``rows`` the whole content of a base table, as one batch of differences."""
        return self.apply_diffs([self.diff_rows(table, rows)])

    # ------------------------------------------------------------ tables as columns

    def replace_columns(self, tables: Mapping[str, Sequence[Any]]) -> dict[str, TableDelta]:
        """Make the rows of these columns (one array or list per column) the whole content
        of each base table, in one batch: the difference from the stored rows is found set
        at a time (``column_diff.py``) and applied as that batch of row changes would be."""
        return self.apply_diffs([self.diff_columns(t, c) for t, c in tables.items()])

    def patch_columns(
        self, table: str, insert: Sequence[Any] | None = None, delete: Sequence[Any] | None = None
    ) -> dict[str, TableDelta]:
        """Insert and delete the rows of these columns in one batch, as ``apply`` of the
        deletions then the insertions (a row in both ends up present)."""
        return self.apply_diffs([self.diff_patch(table, insert, delete)])

    def table_version(self, table: str) -> int:
        """A number that moves whenever a batch may have changed ``table``'s rows."""
        storage = self._storage(table, self.program.derived)
        return max(self._row_stamps.get(storage, 0), self._rule_stamp)

    def stored_table(self, table: str) -> StoredTable:
        """A snapshot of a base table (cheap: its column stores are immutable, its dead
        marks and overlay copied) that ``column_diff.difference`` reads without whatever
        guards the engine; ``fresh`` tells later whether it still holds."""
        version, arity = self.table_version(table), self._arity.get(table)
        return StoredTable.of(table, self._stored(table), version, arity)

    def fresh(self, diff: TableDiff) -> bool:
        """Whether ``diff`` was found against ``diff.table``'s current rows."""
        return diff.version == self.table_version(diff.table)

    def diff_rows(
        self, table: str, rows: Iterable[tuple], columns: list[np.ndarray] | None = None
    ) -> TableDiff:
        """The difference from ``table``'s rows to ``rows``: in columns where the values
        allow (``columns``: the rows' ``rows_to_columns``, if made already), else by
        Python sets."""
        rows = rows if isinstance(rows, list) else list(rows)
        return column_diff.any_difference(self.stored_table(table), rows, columns)

    def diff_columns(self, table: str, columns: Sequence[Any]) -> TableDiff:
        """``diff_rows`` for rows given as columns (arrays or lists)."""
        return column_diff.diff_columns(self.stored_table(table), columns)

    def diff_patch(
        self, table: str, insert: Sequence[Any] | None, delete: Sequence[Any] | None
    ) -> TableDiff:
        """The change ``patch_columns`` makes, found against the stored rows."""
        stored, relation = self.stored_table(table), self._stored(table)
        return column_diff.diff_patch(stored, relation, insert, delete)

    def _stored(self, table: str) -> Relation | None:
        """The relation holding a table's stored rows (a derived table's: its facts)."""
        return self.state.relations.get(self._storage(table, self.program.derived))

    def apply_diffs(self, diffs: Sequence[TableDiff]) -> dict[str, TableDelta]:
        """Apply differences (``diff_rows``, ``diff_columns``, ``diff_patch``, or found by
        ``column_diff`` against a ``stored_table``) as one batch. A table that was empty
        takes its columns as they are (``load_columns``) when they hold at least
        ``columnar_threshold`` rows; the others, their changed rows.

        Raises EngineError when a table changed since its difference was found (``fresh``),
        and what ``apply`` raises for rows that do not fit; nothing changes then.
        """
        stores: dict[str, ColumnStore] = {}
        rows: dict[str, dict[tuple, int]] = {}
        columns: dict[str, PreparedRows] = {}
        for diff in diffs:
            if diff.table in stores or diff.table in rows:
                raise EngineError(f"two differences for {diff.table} in one batch")
            if not self.fresh(diff):
                raise EngineError(
                    f"the difference for {diff.table} was found against rows that changed "
                    "since: find it again"
                )
            arity = self._arity.get(diff.table)
            if diff.load is None:
                rows[diff.table] = diff.changes()
                prepared = diff.prepared()
                if prepared is not None:
                    columns[diff.table] = prepared
            elif (arity is not None and arity != len(diff.load)) or (
                len(diff.load[0]) < self.state.columnar_threshold
            ):  # the rows' error, in their order; a small table kept as rows, as they are
                rows[diff.table] = dict.fromkeys(diff.inserted, 1)
            else:
                stores[diff.table] = ColumnStore(diff.load).unique()
        return self._load_batch(stores, rows, columns)

    # ------------------------------------------------------------ loads

    def load_rows(self, tables: Mapping[str, Iterable[tuple]]) -> dict[str, TableDelta]:
        """Insert rows into several tables in one batch (the fast path for bulk loads)."""
        return self._apply(
            {t: dict.fromkeys(map(tuple, rows), 1) for t, rows in tables.items()}, []
        )

    def load_columns(self, tables: Mapping[str, Sequence[Any]]) -> dict[str, TableDelta]:
        """Load tables from NumPy columns (one array per column) in one batch.

        An empty table takes the columns as they are, with no Python row built; a table
        that already has rows, or columns that are not all ints, floats or strings, goes
        through ``load_rows``.
        """
        stores: dict[str, ColumnStore] = {}
        rows: dict[str, dict[tuple, int]] = {}
        derived = self.program.derived
        for table, columns in tables.items():
            storage = self._storage(table, derived)
            current = self.state.relations.get(storage)
            store = ColumnStore.from_arrays(columns) if not current or not len(current) else None
            if store is None:
                values = [np.asarray(c).tolist() for c in columns]
                rows[table] = dict.fromkeys(zip(*values, strict=True), 1)
            else:
                stores[table] = store
        return self._load_batch(stores, rows)

    def _load_batch(
        self,
        stores: dict[str, ColumnStore],
        rows: dict[str, dict[tuple, int]],
        columns: dict[str, PreparedRows] | None = None,
    ) -> dict[str, TableDelta]:
        """One batch: empty tables take these stores as their rows, others row changes
        (``columns``: some of them as columns already)."""
        if not stores:
            return self._apply(rows, [], columns=columns)
        if self._indexing is not None:  # the last bulk work's indexes: wait for them
            self._indexing.join()
            self._indexing = None
        probe = {t: {s.row(0): 1} for t, s in stores.items()}  # checks table and arity
        learned = self._check_rows({**rows, **probe}, self._arity)
        if learned:
            self._arity.update(learned)
            self.generation += 1
        derived = self.program.derived
        for table, store in stores.items():
            storage = self._storage(table, derived)
            relation = Relation.from_store(storage, store)
            self.state.relations[storage] = relation
            self.state.batch[storage] = BatchDelta.everything(relation)
            self._stamp += 1
            self._row_stamps[storage] = self._stamp
        with collector_paused():  # a bulk load, however few rows went through ``rows``
            return self._apply(rows, [], columns=columns)
