"""Materialized relations with lazily built hash indexes, and the deltas of one batch.

A relation maps each row (a tuple) to its derivation count: 1 for a base row, the number of
derivations for a row of a non-recursive derived table (counting lets a deletion be applied
without re-deriving), 1 for rows of recursive tables. Indexes are built the first time a
plan asks for a set of columns and then kept up to date on every change.

Index keys follow one convention everywhere (``key_getter``): no columns give ``()``, one
column gives the bare value, several give a tuple.

>>> r = Relation("p:q")
>>> r.add((1, "a")); r.add((2, "a")); r.add((2, "b"))
>>> sorted(r.index((1,))["a"])
[(1, 'a'), (2, 'a')]
>>> r.discard((1, "a")); sorted(r.index((1,))["a"])
[(2, 'a')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import Any

Row = tuple
Key = Any


def key_getter(positions: tuple[int, ...]) -> Callable[[tuple], Key]:
    """A function taking a tuple to its key on ``positions`` (see the module's convention)."""
    if not positions:
        return lambda _row: ()
    return itemgetter(*positions)


class Relation:
    """One table's rows with their derivation counts, and its indexes."""

    __slots__ = ("name", "arity", "rows", "_indexes")

    def __init__(self, name: str, arity: int | None = None):
        self.name = name
        self.arity = arity
        self.rows: dict[Row, int] = {}
        self._indexes: dict[tuple[int, ...], tuple[Callable, dict[Key, set[Row]]]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, row: Row) -> bool:
        return row in self.rows

    def __iter__(self):
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"Relation({self.name!r}, {len(self.rows)} rows)"

    def index(self, columns: tuple[int, ...]) -> dict[Key, set[Row]]:
        """The index on ``columns`` (key -> rows), built now if it does not exist yet."""
        entry = self._indexes.get(columns)
        if entry is None:
            getter = key_getter(columns)
            buckets: dict[Key, set[Row]] = {}
            for row in self.rows:
                key = getter(row)
                bucket = buckets.get(key)
                if bucket is None:
                    buckets[key] = {row}
                else:
                    bucket.add(row)
            entry = self._indexes[columns] = (getter, buckets)
        return entry[1]

    def add(self, row: Row, count: int = 1) -> None:
        """Insert a row that is not present."""
        self.rows[row] = count
        for getter, buckets in self._indexes.values():
            key = getter(row)
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = {row}
            else:
                bucket.add(row)

    def discard(self, row: Row) -> None:
        """Remove a row that is present."""
        del self.rows[row]
        for getter, buckets in self._indexes.values():
            key = getter(row)
            bucket = buckets[key]
            bucket.discard(row)
            if not bucket:
                del buckets[key]

    def replace_all(self, rows: dict[Row, int]) -> None:
        """Swap in a whole new content (a full evaluation); indexes are rebuilt on demand."""
        self.rows = rows
        self._indexes.clear()

    def load(self, rows: Iterable[Row]) -> list[Row]:
        """Insert many base rows; returns those that were new."""
        new = [row for row in dict.fromkeys(rows) if row not in self.rows]
        if not self._indexes and not self.rows:
            self.rows = dict.fromkeys(new, 1)
        else:
            for row in new:
                self.add(row)
        return new


class BatchDelta:
    """What one table gained and lost in the current batch, for reading its old version."""

    __slots__ = ("plus", "minus", "_minus_indexes")

    def __init__(self, plus: set[Row] | None = None, minus: set[Row] | None = None):
        self.plus: set[Row] = plus if plus is not None else set()
        self.minus: set[Row] = minus if minus is not None else set()
        self._minus_indexes: dict[tuple[int, ...], dict[Key, list[Row]]] = {}

    def __bool__(self) -> bool:
        return bool(self.plus or self.minus)

    def minus_index(self, columns: tuple[int, ...]) -> dict[Key, list[Row]]:
        """Removed rows by key, so the old version of a table can be looked up."""
        index = self._minus_indexes.get(columns)
        if index is None:
            getter = key_getter(columns)
            index = {}
            for row in self.minus:
                index.setdefault(getter(row), []).append(row)
            self._minus_indexes[columns] = index
        return index

    def old_bucket(self, relation: Relation, columns: tuple[int, ...], key: Key) -> list[Row]:
        """Rows of ``relation`` with ``key`` on ``columns``, as they were before the batch."""
        rows = [r for r in relation.index(columns).get(key, ()) if r not in self.plus]
        rows += self.minus_index(columns).get(key, ())
        return rows

    def old_rows(self, relation: Relation) -> Iterable[Row]:
        """All rows of ``relation`` before the batch."""
        plus = self.plus
        for row in relation.rows:
            if row not in plus:
                yield row
        yield from self.minus

    def old_contains(self, relation: Relation, row: Row) -> bool:
        return row in self.minus or (row in relation.rows and row not in self.plus)
