"""An immutable block of rows stored as NumPy columns, with sorted indexes.

Bulk work (a first load, a whole evaluation) produces rows by the million; as Python tuples
in dicts they would cost a microsecond and ~100 bytes each. A ``ColumnStore`` keeps them as
typed arrays and answers the look-ups incremental maintenance needs from sorted indexes
(``argsort`` once, ``searchsorted`` per look-up, about a microsecond). Only homogeneous
int, float and str columns are stored this way; anything else stays in Python.

>>> import numpy as np
>>> block = ColumnStore([np.array([3, 1, 2, 1]), np.array(["c", "a", "b", "z"])])
>>> block.lookup((0,), 1)
[(1, 'a'), (1, 'z')]
>>> block.find((2, "b")) >= 0, block.find((2, "x"))
(True, -1)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

Row = tuple


def column_array(values: Sequence[Any]) -> np.ndarray | None:
    """``values`` as a typed array, or None when they are not all ints, all floats or all str."""
    if not len(values):
        return np.array([], dtype=np.int64)
    first = type(values[0])
    if first is bool or first not in (int, float, str):
        return None
    try:
        array = np.array(values)
    except (OverflowError, ValueError):
        return None
    kind = array.dtype.kind
    if kind == "i" and array.dtype != np.int64:
        array = array.astype(np.int64)
    if kind in "iu" and first is int or kind == "f" and first is float:
        return array if kind != "u" else None
    if kind == "U" and first is str:
        return array.astype(object)
    return None


class _SortedIndex:
    """Row positions sorted by some columns; the first column's sorted values for search."""

    __slots__ = ("columns", "perm", "first")

    @classmethod
    def from_sorted(cls, columns: tuple[int, ...], perm: np.ndarray, first: np.ndarray):
        index = cls.__new__(cls)
        index.columns, index.perm, index.first = columns, perm, first
        return index

    def __init__(self, columns: tuple[int, ...], data: list[np.ndarray]):
        self.columns = columns
        keys = [data[c] for c in reversed(columns)]
        self.perm = np.lexsort(keys) if len(keys) > 1 else np.argsort(keys[0], kind="stable")
        self.first = data[columns[0]][self.perm]


class ColumnStore:
    """Rows as NumPy columns, with per-row derivation counts (None: every row counts 1)."""

    def __init__(self, columns: Sequence[np.ndarray], counts: np.ndarray | None = None):
        self.columns = [np.asarray(c) for c in columns]
        self.n = len(self.columns[0])
        self.counts = counts
        self._indexes: dict[tuple[int, ...], _SortedIndex] = {}
        self._is_str = [c.dtype == object for c in self.columns]
        # element -> Python value: ``item`` for numbers, plain indexing for str objects
        self._getters = [c.__getitem__ if c.dtype == object else c.item for c in self.columns]

    @classmethod
    def from_rows(
        cls, rows: Sequence[Row], counts: Sequence[int] | None = None
    ) -> ColumnStore | None:
        """Columns from Python rows, or None when a column is not homogeneous."""
        if not rows or not rows[0]:
            return None
        arrays = []
        for values in zip(*rows, strict=True):
            array = column_array(values)
            if array is None:
                return None
            arrays.append(array)
        count_array = None
        if counts is not None and any(c != 1 for c in counts):
            count_array = np.asarray(counts, dtype=np.int64)
        return cls(arrays, count_array)

    @classmethod
    def from_arrays(cls, arrays: Sequence[Any]) -> ColumnStore | None:
        """A store of distinct rows from equal-length 1-D arrays (None: not typed columns)."""
        columns = []
        for array in arrays:
            array = np.asarray(array)
            if array.ndim != 1 or (columns and len(array) != len(columns[0])):
                raise ValueError("columns must be 1-D arrays of one length")
            kind = array.dtype.kind
            if kind in "iu":
                if kind == "u" and len(array) and array.max() >= 2**63:
                    return None
                array = array.astype(np.int64, copy=False)
            elif kind == "f":
                array = array.astype(np.float64, copy=False)
            elif kind in "UO":
                array = array.astype(object)
                if not all(type(v) is str for v in array.tolist()):
                    return None
            else:
                return None
            columns.append(array)
        if not columns or not len(columns[0]):
            return None
        return cls(columns).unique()

    def unique(self) -> ColumnStore:
        """The same rows without repeats (set semantics), in sorted order if any repeated.

        Inputs usually have a key column first: when column 0 has no repeats the rows are
        distinct, and the sort that showed it becomes the index on column 0.
        """
        first = self.columns[0]
        perm = np.argsort(first, kind="stable")
        ordered = first[perm]
        if not (ordered[1:] == ordered[:-1]).any():
            self._indexes[(0,)] = _SortedIndex.from_sorted((0,), perm, ordered)
            return self
        order = np.lexsort(list(reversed(self.columns)))
        sorted_columns = [c[order] for c in self.columns]
        repeat = np.ones(self.n, dtype=bool)
        repeat[0] = False
        for c in sorted_columns:
            repeat[1:] &= c[1:] == c[:-1]
        if not repeat.any():
            return self
        keep = ~repeat
        return ColumnStore([c[keep] for c in sorted_columns])

    def __len__(self) -> int:
        return self.n

    @property
    def arity(self) -> int:
        return len(self.columns)

    def index(self, columns: tuple[int, ...]) -> _SortedIndex:
        index = self._indexes.get(columns)
        if index is None:
            index = self._indexes[columns] = _SortedIndex(columns, self.columns)
        return index

    def positions(self, columns: tuple[int, ...], key: Any) -> Sequence[int]:
        """Positions of rows whose ``columns`` equal ``key`` (index-key convention).

        The hot path of incremental maintenance: one ``searchsorted`` (a miss ends there),
        a second for the end of the run, NumPy only for multi-column filters.
        """
        if not columns:
            return range(self.n)
        values = (key,) if len(columns) == 1 else key
        is_str = self._is_str
        for c, v in zip(columns, values, strict=True):
            kind = type(v)
            if is_str[c]:
                if kind is not str:
                    return ()
            elif kind is not int and kind is not float:
                return ()
        index = self._indexes.get(columns) or self.index(columns)
        first, v0 = index.first, values[0]
        lo = int(first.searchsorted(v0))
        if lo == self.n or first[lo] != v0:
            return ()
        hi = int(first.searchsorted(v0, "right"))
        found = index.perm[lo:hi]
        for c, v in zip(columns[1:], values[1:], strict=True):
            found = found[self.columns[c][found] == v]
            if not len(found):
                return ()
        return found.tolist()

    def row(self, i: int) -> Row:
        return tuple(get(i) for get in self._getters)

    def rows_at(self, positions: Sequence[int]) -> list[Row]:
        if not len(positions):
            return []
        if len(positions) == 1:
            return [self.row(positions[0])]
        return list(zip(*(c[positions].tolist() for c in self.columns), strict=True))

    def lookup(self, columns: tuple[int, ...], key: Any) -> list[Row]:
        return self.rows_at(self.positions(columns, key))

    def find(self, row: Row) -> int:
        """The position of ``row``, or -1."""
        key = row[0]
        for i in self.positions((0,), key):
            if self.row(i) == row:
                return i
        return -1

    def count_at(self, i: int) -> int:
        return 1 if self.counts is None else int(self.counts[i])

    def __iter__(self) -> Iterator[Row]:
        return zip(*(c.tolist() for c in self.columns), strict=True)

    def counts_list(self) -> list[int]:
        return [1] * self.n if self.counts is None else self.counts.tolist()
