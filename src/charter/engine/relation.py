"""Materialized relations: a columnar base plus a Python overlay, and one batch's deltas.

A relation maps each row (a tuple) to its derivation count: 1 for a base row, the number of
derivations for a row of a non-recursive derived table (counting lets a deletion be applied
without re-deriving), 1 for rows of recursive tables.

Rows live in two places. Bulk work leaves them in a :class:`ColumnStore` (NumPy columns,
sorted indexes); changes after that go to a Python dict (``rows``) with hash indexes built
on first use. A base row that is deleted or re-counted is marked ``dead`` and, if still
present, moves to the dict. Readers never see the split: ``lookup``, ``count``, ``in``.

Index keys follow one convention everywhere (``key_getter``): no columns give ``()``, one
column gives the bare value, several give a tuple.

>>> r = Relation("p:q")
>>> r.add((1, "a")); r.add((2, "a")); r.add((2, "b"))
>>> sorted(r.lookup((1,), "a"))
[(1, 'a'), (2, 'a')]
>>> r.discard((1, "a")); sorted(r.lookup((1,), "a"))
[(2, 'a')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

from charter.engine.columnar import ColumnStore

Row = tuple
Key = Any


# A columnar base this small moves to Python dicts at its first look-up: hash look-ups cost
# well under a microsecond against 5-10 for a sorted search, and the dicts stay small.
THAW_LIMIT = 200_000


def key_getter(positions: tuple[int, ...]) -> Callable[[tuple], Key]:
    """A function taking a tuple to its key on ``positions`` (see the module's convention)."""
    if not positions:
        return lambda _row: ()
    return itemgetter(*positions)


class Relation:
    """One table's rows with their derivation counts, and its indexes."""

    __slots__ = ("name", "arity", "rows", "base", "dead", "_indexes")

    def __init__(self, name: str, arity: int | None = None):
        self.name = name
        self.arity = arity
        self.rows: dict[Row, int] = {}  # the overlay: rows not (alive) in the base
        self.base: ColumnStore | None = None
        self.dead: set[Row] = set()  # base rows that are gone or moved to the overlay
        self._indexes: dict[tuple[int, ...], tuple[Callable, dict[Key, set[Row]]]] = {}

    @classmethod
    def from_counts(cls, name: str, counts: dict[Row, int]) -> Relation:
        relation = cls(name)
        relation.rows = counts
        return relation

    @classmethod
    def from_store(cls, name: str, store: ColumnStore) -> Relation:
        relation = cls(name, store.arity)
        relation.base = store
        return relation

    def __len__(self) -> int:
        base = len(self.base) - len(self.dead) if self.base is not None else 0
        return len(self.rows) + base

    @property
    def columnar_only(self) -> bool:
        """All rows are in the columnar base (nothing changed since bulk work)."""
        return self.base is not None and not self.rows and not self.dead

    def width(self) -> int:
        """The number of columns of a non-empty relation, read without iterating it."""
        if self.rows:
            return len(next(iter(self.rows)))
        if self.base is not None:
            return self.base.arity
        return self.arity or 0

    def _thaw(self) -> None:
        """Move a small columnar base into the Python dict (and its hash indexes)."""
        base, dead = self.base, self.dead
        self.base, self.dead = None, set()
        for row, n in zip(base, base.counts_list(), strict=True):  # type: ignore[arg-type]
            if row not in dead:
                self.rows[row] = n
        self._indexes.clear()

    def _in_base(self, row: Row) -> bool:
        return self.base is not None and row not in self.dead and self.base.find(row) >= 0

    def __contains__(self, row: Row) -> bool:
        if self.base is not None and len(self.base) <= THAW_LIMIT:
            self._thaw()
        return row in self.rows or self._in_base(row)

    def count(self, row: Row) -> int:
        """The row's derivation count (0 when absent)."""
        if self.base is not None and len(self.base) <= THAW_LIMIT:
            self._thaw()
        n = self.rows.get(row)
        if n is not None:
            return n
        if self.base is not None and row not in self.dead:
            i = self.base.find(row)
            if i >= 0:
                return self.base.count_at(i)
        return 0

    def __iter__(self) -> Iterator[Row]:
        yield from self.rows
        if self.base is not None:
            dead = self.dead
            for row in self.base:
                if row not in dead:
                    yield row

    def items(self) -> Iterator[tuple[Row, int]]:
        """``(row, count)`` pairs."""
        yield from self.rows.items()
        if self.base is not None:
            dead = self.dead
            for row, n in zip(self.base, self.base.counts_list(), strict=True):
                if row not in dead:
                    yield row, n

    def to_dict(self) -> dict[Row, int]:
        return dict(self.items()) if self.base is not None else self.rows

    def __repr__(self) -> str:
        return f"Relation({self.name!r}, {len(self)} rows)"

    # -- look-ups

    def index(self, columns: tuple[int, ...]) -> dict[Key, set[Row]]:
        """The hash index of the overlay on ``columns`` (key -> rows), built on first use."""
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

    def lookup(self, columns: tuple[int, ...], key: Key) -> list[Row] | set[Row]:
        """Rows whose ``columns`` equal ``key``."""
        if self.base is not None and len(self.base) <= THAW_LIMIT:
            self._thaw()
        found = self.index(columns).get(key, ())
        if self.base is None:
            return found
        rows = self.base.lookup(columns, key)
        if self.dead:
            dead = self.dead
            rows = [r for r in rows if r not in dead]
        if found:
            rows.extend(found)
        return rows

    def has(self, columns: tuple[int, ...], key: Key) -> bool:
        """Whether some row's ``columns`` equal ``key``."""
        if self.base is not None and len(self.base) <= THAW_LIMIT:
            self._thaw()
        if key in self.index(columns):
            return True
        if self.base is None:
            return False
        if not self.dead:
            return len(self.base.positions(columns, key)) > 0
        return any(r not in self.dead for r in self.base.lookup(columns, key))

    def keys(self, columns: tuple[int, ...]) -> set[Key]:
        """Every distinct key on ``columns``."""
        getter = key_getter(columns)
        return {getter(row) for row in self}

    # -- changes

    def _index_add(self, row: Row) -> None:
        for getter, buckets in self._indexes.values():
            key = getter(row)
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = {row}
            else:
                bucket.add(row)

    def _index_remove(self, row: Row) -> None:
        for getter, buckets in self._indexes.values():
            key = getter(row)
            bucket = buckets[key]
            bucket.discard(row)
            if not bucket:
                del buckets[key]

    def add(self, row: Row, count: int = 1) -> None:
        """Insert a row that is not present."""
        self.rows[row] = count
        self._index_add(row)

    def set_count(self, row: Row, count: int) -> None:
        """Change the count of a present row (to a positive number)."""
        if row in self.rows:
            self.rows[row] = count
            return
        self.dead.add(row)  # a base row moves to the overlay with its new count
        self.add(row, count)

    def discard(self, row: Row) -> None:
        """Remove a row that is present."""
        if row in self.rows:
            del self.rows[row]
            self._index_remove(row)
        else:
            self.dead.add(row)

    def load(self, rows: Iterable[Row]) -> list[Row]:
        """Insert many base rows; returns those that were new."""
        new = [row for row in dict.fromkeys(rows) if row not in self]
        if not self._indexes and not self.rows and self.base is None:
            self.rows = dict.fromkeys(new, 1)
        else:
            for row in new:
                self.add(row)
        return new


class BatchDelta:
    """What one table gained and lost in the current batch, for reading its old version.

    After a bulk load into an empty table every row is new; ``BatchDelta.everything`` says
    so without building a set of a million rows unless someone reads ``plus``.
    """

    __slots__ = ("_plus", "minus", "_minus_indexes", "_all")

    def __init__(self, plus: set[Row] | None = None, minus: set[Row] | None = None):
        self._plus: set[Row] | None = plus if plus is not None else set()
        self.minus: set[Row] = minus if minus is not None else set()
        self._minus_indexes: dict[tuple[int, ...], dict[Key, list[Row]]] = {}
        self._all: Relation | None = None

    @classmethod
    def everything(cls, relation: Relation) -> BatchDelta:
        """Every row of ``relation`` is new in this batch (it was empty before)."""
        delta = cls()
        delta._plus = None
        delta._all = relation
        return delta

    @property
    def plus(self) -> set[Row]:
        if self._plus is None:
            self._plus = set(self._all) if self._all is not None else set()
        return self._plus

    @property
    def all_new(self) -> bool:
        """Whether the table was empty before the batch (so its old version is empty)."""
        return self._all is not None

    def size(self) -> int:
        """Rows changed, without materializing a lazy ``plus``."""
        if self._plus is None and self._all is not None:
            return len(self._all) + len(self.minus)
        return len(self.plus) + len(self.minus)

    def __bool__(self) -> bool:
        return self.size() > 0

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
        if self.all_new:
            return list(self.minus_index(columns).get(key, ()))
        rows = [r for r in relation.lookup(columns, key) if r not in self.plus]
        rows += self.minus_index(columns).get(key, ())
        return rows

    def old_rows(self, relation: Relation) -> Iterable[Row]:
        """All rows of ``relation`` before the batch."""
        if self.all_new:
            yield from self.minus
            return
        plus = self.plus
        for row in relation:
            if row not in plus:
                yield row
        yield from self.minus

    def old_contains(self, relation: Relation, row: Row) -> bool:
        if self.all_new:
            return row in self.minus
        return row in self.minus or (row in relation and row not in self.plus)
