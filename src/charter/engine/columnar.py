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

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

Row = tuple


def column_array(values: Sequence[Any]) -> np.ndarray | None:
    """``values`` as a typed array, or None when they are not all ints, all floats or all str."""
    if not len(values):
        return np.array([], dtype=np.int64)
    first = type(values[0])
    if first is str:  # NumPy would turn other values into strings: check each
        if not all(type(v) is str for v in values):
            return None
        return np.array(values, dtype=object)
    if first is bool or first not in (int, float):
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
    return None


#: Int arrays at least this long are ordered by radix sort (below it NumPy's sort is as fast).
RADIX_MIN = 50_000
#: Radix sort takes 16-bit digits; past three of them (a span of 2**48) it is no faster.
_DIGIT_BITS, _MAX_DIGITS = 16, 3


def stable_order(values: np.ndarray) -> np.ndarray:
    """The stable ``argsort`` of a 1-D array.

    Int arrays of ids (spans up to 2**48) are sorted by least-significant-digit radix sort:
    each 16-bit digit is ordered by NumPy's stable sort of ``uint16``, itself a counting
    sort, linear in the rows. Measured here on 2M int64 ids: 45-65 ms against 190-240 ms
    for ``np.argsort``; building a table's sorted index is what a first look-up waits for.

    >>> stable_order(np.array([3, 1, 2, 1]))
    array([1, 3, 2, 0])
    """
    if values.dtype.kind != "i" or not len(values) or len(values) < RADIX_MIN:
        return np.argsort(values, kind="stable")
    low = int(values.min())
    span = int(values.max()) - low
    if span >> (_DIGIT_BITS * _MAX_DIGITS):
        return np.argsort(values, kind="stable")
    shifted = values - low
    order: np.ndarray | None = None
    shift = 0
    while True:
        digit = ((shifted >> shift) & 0xFFFF).astype(np.uint16)
        if order is None:
            order = np.argsort(digit, kind="stable")
        else:
            order = order[np.argsort(digit[order], kind="stable")]
        shift += _DIGIT_BITS
        if not span >> shift:
            return order


#: Packed keys stay below this, so that a key plus one never overflows int64.
_KEY_LIMIT = 2**62


def int_packing(columns: Sequence[np.ndarray]) -> tuple[list[int], list[int]] | None:
    """Each column's lowest value and span for packing rows into one int64 (mixed radix,
    column 0 most significant, so keys sort as the rows do), or None when a column is not
    ints or the spans multiply past ``_KEY_LIMIT``. Spans are doubled when that still fits,
    so that rows appended later (ids past the current largest) usually fit the same keys."""
    lows, spans, product = [], [], 1
    for column in columns:
        if column.dtype.kind != "i" or not len(column):
            return None
        low = int(column.min())
        span = int(column.max()) - low + 1
        product *= span
        if product >= _KEY_LIMIT:
            return None
        lows.append(low)
        spans.append(span)
    if product << len(spans) < _KEY_LIMIT:
        spans = [2 * span for span in spans]
    return lows, spans


def pack_ints(columns: Sequence[np.ndarray], lows: list[int], spans: list[int]) -> np.ndarray | None:
    """The rows' packed keys, or None when some value falls outside the packing's ranges."""
    key = None
    for column, low, span in zip(columns, lows, spans, strict=True):
        if column.dtype.kind != "i":
            return None
        shifted = column - low
        if len(shifted) and (shifted.min() < 0 or shifted.max() >= span):
            return None
        key = shifted if key is None else key * span + shifted
    return key


class _RowKeys:
    """Every row of a store packed into one int64, sorted, with the rows' positions: a row
    is found by one ``searchsorted``, however many rows share its first column."""

    __slots__ = ("lows", "spans", "keys", "perm", "find")

    def __init__(self, lows: list[int], spans: list[int], keys: np.ndarray, perm: np.ndarray):
        self.lows, self.spans, self.keys, self.perm = lows, spans, keys, perm
        self.find: Callable[[Row], int] = self._finder()

    @classmethod
    def build(cls, columns: Sequence[np.ndarray], index: _SortedIndex | None) -> _RowKeys | None:
        """The rows' keys, or None when they do not pack (a one-column store reuses its
        column-0 ``index``: its order is the keys' order)."""
        packing = int_packing(columns)
        if packing is None:
            return None
        key = pack_ints(columns, *packing)
        assert key is not None
        if index is not None and len(columns) == 1:
            return cls(*packing, key[index.perm], index.perm)
        perm = stable_order(key)
        return cls(*packing, key[perm], perm)

    def _finder(self) -> Callable[[Row], int]:
        """``find(row)``: the row's position, or -1. One search of the sorted keys (about
        0.6 us); packing the row in Python costs as much again, so rows of two columns,
        the most common (edges, memberships), get their packing unrolled."""
        keys, lows, spans = self.keys, self.lows, self.spans
        search, key_at, position, n = keys.searchsorted, keys.item, self.perm.item, len(keys)

        def find(row: Row) -> int:
            key = 0
            for value, low, span in zip(row, lows, spans, strict=True):
                if type(value) is not int:  # 2.0 is found as 2 is, as Python compares
                    if type(value) is not float or not value.is_integer():
                        return -1
                    value = int(value)
                value -= low
                if value < 0 or value >= span:
                    return -1
                key = key * span + value
            i = search(key)
            return position(i) if i < n and key_at(i) == key else -1

        if len(lows) != 2:
            return find
        (low0, low1), (span0, span1) = lows, spans

        def find_pair(row: Row) -> int:
            a, b = row
            if type(a) is not int or type(b) is not int:
                return find(row)
            a -= low0
            b -= low1
            if a < 0 or a >= span0 or b < 0 or b >= span1:
                return -1
            key = a * span1 + b
            i = search(key)
            return position(i) if i < n and key_at(i) == key else -1

        return find_pair

    def find_many(self, columns: Sequence[np.ndarray]) -> np.ndarray | None:
        """``find`` for many rows given as columns (None: not int columns). The keys are
        searched in sorted order: nearby searches share cache lines."""
        n = len(columns[0])
        if not len(self.keys):
            return np.full(n, -1, dtype=np.int64)
        fits = np.ones(n, dtype=bool)
        key = np.zeros(n, dtype=np.int64)
        for column, low, span in zip(columns, self.lows, self.spans, strict=True):
            if column.dtype.kind != "i":
                return None
            shifted = column - low
            fits &= (shifted >= 0) & (shifted < span)
            key = key * span + np.where(fits, shifted, 0)  # (no overflow past a misfit)
        order = stable_order(key)
        at = self.keys.searchsorted(key[order])
        np.minimum(at, len(self.keys) - 1, out=at)
        hit = (self.keys[at] == key[order]) & fits[order]
        positions = np.full(n, -1, dtype=np.int64)
        positions[order[hit]] = self.perm[at[hit]]
        return positions

    def merged(self, columns: Sequence[np.ndarray], start: int) -> _RowKeys | None:
        """These keys with rows appended at positions ``start..`` (None: they do not fit)."""
        key = pack_ints(columns, self.lows, self.spans)
        if key is None:
            return None
        order = stable_order(key)
        ordered = key[order]
        at = self.keys.searchsorted(ordered)
        return _RowKeys(
            self.lows,
            self.spans,
            np.insert(self.keys, at, ordered),
            np.insert(self.perm, at, order + start),
        )

    def selected(self, keep: np.ndarray, renumber: np.ndarray) -> _RowKeys:
        live = keep[self.perm]
        return _RowKeys(self.lows, self.spans, self.keys[live], renumber[self.perm[live]])


class NotColumnar(ValueError):
    """Rows whose values do not fit typed columns (mixed kinds, no columns)."""


def kind_of(array: np.ndarray) -> str:
    """A column's kind: ``i`` (int64), ``f`` (float64) or ``s`` (str objects)."""
    return "s" if array.dtype == object else array.dtype.kind


def expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranges ``lo[j]:hi[j]`` laid end to end: (``j`` of each element, the element)."""
    counts = hi - lo
    owner = np.repeat(np.arange(len(lo)), counts)
    if not len(owner):
        return owner, owner
    shift = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return owner, np.arange(len(owner)) + shift


class SearchKeys:
    """Keys to search for, sorted and made distinct once (for searches in several stores).

    Distinct keys are searched once each, and in sorted order: nearby searches share cache
    lines, about twice as fast on a table larger than the cache.
    """

    __slots__ = ("keys", "_unique", "_inverse")

    def __init__(self, keys: np.ndarray):
        self.keys = keys
        self._unique: np.ndarray | None = None  # sorted at the first search
        self._inverse: np.ndarray | None = None

    @property
    def unique(self) -> np.ndarray:
        if self._unique is None:
            unique, inverse = np.unique(self.keys, return_inverse=True)
            self._unique, self._inverse = unique, inverse.reshape(-1)
        return self._unique

    @property
    def inverse(self) -> np.ndarray:
        if self._inverse is None:
            self.unique  # noqa: B018  (sorts)
        return self._inverse  # type: ignore[return-value]

    def runs(self, index: _SortedIndex) -> tuple[np.ndarray, np.ndarray]:
        """For each key, the run ``lo:hi`` of the index's sorted first column equal to it
        (empty: none): read from its run starts where it has them (int keys), else
        searched, the end of a run only where it is longer than one."""
        keys, starts = self.keys, index.dense()
        if starts is not None and keys.dtype.kind == "i":
            high = index.low + len(starts) - 2
            inside = (keys >= index.low) & (keys <= high)
            at = np.where(inside, keys - index.low, 0)
            lo = starts[at]
            return lo, np.where(inside, starts[at + 1], lo)
        values = index.first
        n, unique = len(values), self.unique
        if not n:
            empty = np.zeros(len(self.inverse), dtype=np.int64)
            return empty, empty
        lo = values.searchsorted(unique, "left")
        hit = values[np.minimum(lo, n - 1)] == unique
        hi = lo + hit
        longer = hit & (hi < n)
        longer[longer] = values[hi[longer]] == unique[longer]
        if longer.any():
            hi[longer] = values.searchsorted(unique[longer], "right")
        return lo[self.inverse], hi[self.inverse]


#: A multi-column look-up whose first column's run is at most this long filters the run
#: in Python (about 0.1 us a value) rather than with NumPy (a few us a column).
SHORT_RUN = 16

#: An int index keeps run starts for every value of its first column's range (8 bytes
#: each) when that range is at most this many times its rows (plus ``DENSE_EXTRA``).
DENSE_SPAN_PER_ROW, DENSE_EXTRA = 4, 1024


def id_counts(column: np.ndarray) -> tuple[int, np.ndarray] | None:
    """For an int column of ids (its range at most ``DENSE_SPAN_PER_ROW`` times its rows,
    plus ``DENSE_EXTRA``), its lowest value and how many rows hold each value of its
    range, counted by ``bincount`` in one pass with no sort; None for other columns.

    >>> id_counts(np.array([3, 5, 3]))
    (3, array([2, 0, 1]))
    """
    if column.dtype.kind != "i" or not len(column):
        return None
    low, high = int(column.min()), int(column.max())
    if high - low > DENSE_SPAN_PER_ROW * len(column) + DENSE_EXTRA:
        return None
    if 0 <= low <= high - low:  # ids from 0 or 1: counted as they are, no shifted copy
        return low, np.bincount(column, minlength=high + 1)[low:]
    return low, np.bincount(column - low, minlength=high - low + 1)


class _SortedIndex:
    """Row positions sorted by some columns; the first column's sorted values for search.

    Searches use the first column only (then filter on the others), so rows appended later
    are merged in by that column alone: ties on it may be in any order.

    An int first column whose values are dense (ids) also gets, at its first search, the
    start of each value's run (``starts[v - low]``, a CSR layout): a look-up reads two
    numbers instead of a binary search, and a batch's runs are one gather.

    Its lazy parts (``starts``, ``first``, ``distinct``) may be made by two threads at
    once (``prepare.py``): each makes equal values and stores them in one assignment.
    """

    __slots__ = ("columns", "perm", "low", "starts", "_first", "_column", "_distinct")

    @classmethod
    def from_order(
        cls,
        columns: tuple[int, ...],
        perm: np.ndarray,
        column: np.ndarray,
        first: np.ndarray | None = None,
    ):
        """The index of ``column`` (the first of ``columns``) in the order ``perm``, known
        to sort it; its sorted values (``first``) are made when first asked for."""
        index = cls.__new__(cls)
        index._order(columns, perm, column, first)
        return index

    @classmethod
    def from_sorted(cls, columns: tuple[int, ...], perm: np.ndarray, first: np.ndarray):
        """The index whose first column's values in index order are ``first``."""
        return cls.from_order(columns, perm, first, first)

    def __init__(self, columns: tuple[int, ...], data: list[np.ndarray]):
        keys = [data[c] for c in reversed(columns)]
        perm = np.lexsort(keys) if len(keys) > 1 else stable_order(keys[0])
        self._order(columns, perm, data[columns[0]], None)

    def _order(
        self,
        columns: tuple[int, ...],
        perm: np.ndarray,
        column: np.ndarray,
        first: np.ndarray | None,
    ) -> None:
        self.columns, self.perm, self._column = columns, perm, column
        self._first: np.ndarray | None = first
        self.low, self.starts = 0, None
        self._distinct: bool | None = None

    @property
    def first(self) -> np.ndarray:
        """The first column's values in index order, made at the first call: a dense
        index reads its runs from ``starts`` and needs them only to merge or search."""
        if self._first is None:
            self._first = self._column[self.perm]
        return self._first

    def dense(self) -> np.ndarray | None:
        """The run starts (``len == span + 2``), built at the first call; None when the
        first column is not ints or too sparse for them."""
        starts = self.starts
        if starts is None:
            starts = self.starts = self._starts()
        return None if starts is False else starts  # type: ignore[return-value]

    def distinct(self) -> bool:
        """Whether no value of the first column repeats (an id column), for a dense
        index; known after its first call."""
        if self._distinct is None:
            starts = self.dense()
            self._distinct = starts is not None and bool((np.diff(starts) <= 1).all())
        return self._distinct

    def _starts(self) -> np.ndarray | bool:
        counted = id_counts(self._column)  # counted in any order: no sorted values needed
        if counted is None:
            return False
        self.low, sizes = counted
        starts = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=starts[1:])
        return starts

    def run(self, value: Any) -> tuple[int, int]:
        """The run ``lo:hi`` of the sorted first column equal to ``value`` (empty: none)."""
        starts = self.starts
        if starts is None:
            starts = self.starts = self._starts()
        if starts is not False and type(value) is int:
            at = value - self.low
            if 0 <= at < len(starts) - 1:
                return starts.item(at), starts.item(at + 1)
            return 0, 0
        first = self.first
        n = len(first)
        lo = int(first.searchsorted(value))
        if lo == n or first.item(lo) != value:
            return lo, lo
        if lo + 1 == n or first.item(lo + 1) != value:  # a run of one (a key column)
            return lo, lo + 1
        return lo, int(first.searchsorted(value, "right"))


class ColumnStore:
    """Rows as NumPy columns, with per-row derivation counts (None: every row counts 1)."""

    def __init__(self, columns: Sequence[np.ndarray], counts: np.ndarray | None = None):
        self.columns = [np.asarray(c) for c in columns]
        self.n = len(self.columns[0])
        self.counts = counts
        self._indexes: dict[tuple[int, ...], _SortedIndex] = {}
        self._is_str = [c.dtype.kind in "OU" for c in self.columns]
        # element -> Python value: ``item`` for numbers, plain indexing for str objects
        self._getters = [c.__getitem__ if c.dtype == object else c.item for c in self.columns]
        # every row packed, for ``find`` (None: not built yet; False: the rows do not pack)
        self._row_keys: _RowKeys | None | bool = None

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
        """The same rows without repeats (set semantics); the sort that finds repeats
        becomes the index on column 0 (rows are sorted by it when some repeated).

        Int columns whose ranges fit are packed into one int64 key: one sort finds the
        repeats and orders the rows by column 0 at once. Otherwise column 0 is sorted
        first (inputs usually have a key column: no repeats there means distinct rows),
        then, if it repeats, every column.
        """
        first = self.columns[0]
        packing = int_packing(self.columns)
        if packing is not None:
            key = pack_ints(self.columns, *packing)
            assert key is not None
            order = stable_order(key)
            ordered_key = key[order]
            repeat = np.zeros(self.n, dtype=bool)
            repeat[1:] = ordered_key[1:] == ordered_key[:-1]
            if not repeat.any():  # the sort is also the index on column 0 and ``find``'s
                self._indexes[(0,)] = _SortedIndex.from_sorted((0,), order, first[order])
                self._row_keys = _RowKeys(*packing, ordered_key, order)
                return self
            store = self._sorted_store([c[order[~repeat]] for c in self.columns])
            store._row_keys = _RowKeys(*packing, ordered_key[~repeat], store.index((0,)).perm)
            return store
        perm = stable_order(first)
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
            return self._sorted_store(sorted_columns)
        return self._sorted_store([c[~repeat] for c in sorted_columns])

    @staticmethod
    def _sorted_store(columns: list[np.ndarray]) -> ColumnStore:
        """A store of rows already sorted by column 0, which is then its own index."""
        store = ColumnStore(columns)
        store._indexes[(0,)] = _SortedIndex.from_sorted((0,), np.arange(store.n), columns[0])
        return store

    def __len__(self) -> int:
        return self.n

    @property
    def arity(self) -> int:
        return len(self.columns)

    def index(self, columns: tuple[int, ...]) -> _SortedIndex:
        index = self._indexes.get(columns)
        if index is None:
            row_keys = self._keys() if columns == (0,) else None
            if row_keys:  # rows sorted by their packed keys are sorted by column 0
                perm = row_keys.perm  # type: ignore[union-attr]
                index = _SortedIndex.from_order(columns, perm, self.columns[0])
            else:
                index = _SortedIndex(columns, self.columns)
            self._indexes[columns] = index
        return index

    def _keys(self) -> _RowKeys | bool:
        """The packed row keys (built at the first call), or False: the rows do not pack."""
        row_keys = self._row_keys
        if row_keys is None:
            index = self._indexes.get((0,))
            row_keys = self._row_keys = _RowKeys.build(self.columns, index) or False
        return row_keys

    def prepared(self, columns: tuple[int, ...] | None) -> bool:
        """Whether ``prepare(columns)`` would find everything already built."""
        if columns is None:
            if self._row_keys is None:
                return False
            index = self._indexes.get((0,)) if self._row_keys else None
            return not self._row_keys or (index is not None and index._distinct is not None)
        index = self._indexes.get(columns)
        return index is not None and (len(columns) > 1 or index._distinct is not None)

    def prepare(self, columns: tuple[int, ...] | None) -> None:
        """Build what the first look-up on ``columns`` (None: the first ``find``) would.

        Safe on another thread while this one reads the store: each index is made whole
        and then stored in one assignment; two threads making the same index both make
        an equal one."""
        if columns is None:  # and the index on column 0 their order gives (id look-ups)
            if self._keys():
                self.index((0,)).distinct()
            return
        index = self.index(columns)
        if len(columns) == 1:
            index.distinct()  # (with its run starts)

    def positions(self, columns: tuple[int, ...], key: Any) -> Sequence[int]:
        """Positions of rows whose ``columns`` equal ``key`` (index-key convention).

        The hot path of incremental maintenance: one ``searchsorted`` (a miss ends there),
        a second for the end of a run longer than one, NumPy only for multi-column filters.
        """
        if not columns:
            return range(self.n)
        if len(columns) > 1:
            return self._positions_of_many(columns, key)
        if not self._fits(columns[0], key):
            return ()
        index = self._indexes.get(columns) or self.index(columns)
        lo, hi = index.run(key)
        if hi - lo == 1:
            return (index.perm.item(lo),)
        return index.perm[lo:hi].tolist()

    def count(self, columns: tuple[int, ...], key: Any) -> int:
        """``len(positions(columns, key))``; one column's run is counted, not listed."""
        if len(columns) != 1:
            return len(self.positions(columns, key))
        if not self._fits(columns[0], key):
            return 0
        lo, hi = (self._indexes.get(columns) or self.index(columns)).run(key)
        return hi - lo

    def _fits(self, column: int, value: Any) -> bool:
        """Whether ``value`` can equal a value of ``column`` (its kind matches)."""
        kind = type(value)
        if self._is_str[column]:
            return kind is str
        return kind is int or kind is float

    def _positions_of_many(self, columns: tuple[int, ...], key: Sequence[Any]) -> Sequence[int]:
        """``positions`` on several columns: the first one's run, filtered on the others
        value by value when it is short (a NumPy filter costs microseconds a column)."""
        for c, v in zip(columns, key, strict=True):
            if not self._fits(c, v):
                return ()
        index = self._indexes.get(columns) or self.index(columns)
        lo, hi = index.run(key[0])
        if hi - lo > SHORT_RUN:
            found = self._search(columns, key)
            return found.tolist() if found is not None else ()
        getters, at = self._getters, index.perm.item
        rest = list(zip(columns[1:], key[1:], strict=True))
        out = []
        for j in range(lo, hi):
            p = at(j)
            for c, v in rest:
                if getters[c](p) != v:
                    break
            else:
                out.append(p)
        return out

    def _search(self, columns: tuple[int, ...], values: Sequence[Any]) -> np.ndarray | None:
        """``positions`` as an array (None: none), searched on the index of ``columns``."""
        for c, v in zip(columns, values, strict=True):
            if not self._fits(c, v):
                return None
        index = self._indexes.get(columns) or self.index(columns)
        lo, hi = index.run(values[0])
        if lo == hi:
            return None
        found = index.perm[lo:hi]
        for c, v in zip(columns[1:], values[1:], strict=True):
            found = found[self.columns[c][found] == v]
            if not len(found):
                return None
        return found

    def kinds(self) -> tuple[str, ...]:
        return tuple(kind_of(c) for c in self.columns)

    def match(
        self,
        columns: tuple[int, ...],
        keys: Sequence[np.ndarray],
        search: SearchKeys | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every row whose ``columns`` equal some key, for many keys at once (one array per
        column, of the columns' kinds; ``search``: the first one's, if already sorted):
        (the key's index, the row's position) pairs.

        ``positions`` for a whole batch: sorted searches on the first column, then NumPy
        filters on the others; no Python work per key.
        """
        index = self.index(columns)
        search = search if search is not None else SearchKeys(keys[0])
        owner, flat = expand(*search.runs(index))
        found = index.perm[flat]
        for c, key in zip(columns[1:], keys[1:], strict=True):
            keep = self.columns[c][found] == key[owner]
            owner, found = owner[keep], found[keep]
        return owner, found

    def find_rows(
        self, columns: Sequence[np.ndarray], search: SearchKeys | None = None
    ) -> np.ndarray:
        """The position of each given row (one array per column; ``search``: the first
        one's keys, if already sorted), or -1 (rows are distinct)."""
        by_key = self._find_by_first(columns)
        if by_key is not None:
            return by_key
        row_keys = self._row_keys if self._row_keys is not None else self._keys()
        if row_keys:
            found = row_keys.find_many(columns)  # type: ignore[union-attr]
            if found is not None:
                return found
        owner, found = self.match((0,), columns[:1], search)
        for c in range(1, self.arity):
            keep = self.columns[c][found] == columns[c][owner]
            owner, found = owner[keep], found[keep]
        positions = np.full(len(columns[0]), -1, dtype=np.int64)
        positions[owner] = found
        return positions

    def _find_by_first(self, columns: Sequence[np.ndarray]) -> np.ndarray | None:
        """``find_rows`` through a dense index on column 0 where each key holds one row
        (an id column): one gather of run starts, then a comparison of the other
        columns, instead of a binary search per row (10x at 60k rows in 2M). None when
        there is no such index yet, or some key holds several rows."""
        index = self._indexes.get((0,))
        if index is None and isinstance(self._row_keys, _RowKeys):
            index = self.index((0,))  # the row keys' order: no sort
        keys = columns[0]
        if index is None or keys.dtype.kind != "i" or not len(keys) or not self.n:
            return None
        if not index.distinct():  # (and so dense: ``runs`` reads the run starts)
            return None
        lo, hi = SearchKeys(keys).runs(index)
        found = hi > lo
        positions = index.perm[np.where(found, lo, 0)]
        for c in range(1, self.arity):
            found &= self.columns[c][positions] == columns[c]
        return np.where(found, positions, -1)

    def append(
        self, columns: Sequence[np.ndarray], counts: np.ndarray | None = None
    ) -> ColumnStore:
        """A new store with these rows (with ``counts``; None: 1 each) after the current ones.

        Its sorted indexes are the current ones with the new rows merged in (``insert`` at
        ``searchsorted`` places): linear copies, no sort of the old rows.
        """
        k = len(columns[0])
        merged = [np.concatenate([a, b]) for a, b in zip(self.columns, columns, strict=True)]
        all_counts = None
        if self.counts is not None or counts is not None:
            mine = self.counts if self.counts is not None else np.ones(self.n, dtype=np.int64)
            theirs = counts if counts is not None else np.ones(k, dtype=np.int64)
            all_counts = np.concatenate([mine, theirs])
        store = ColumnStore(merged, all_counts)
        if isinstance(self._row_keys, _RowKeys):
            store._row_keys = self._row_keys.merged(columns, self.n)
        for key, index in self._indexes.items():
            values = columns[key[0]]
            order = stable_order(values)
            ordered = values[order]
            at = index.first.searchsorted(ordered, "right")
            store._indexes[key] = _SortedIndex.from_sorted(
                key, np.insert(index.perm, at, order + self.n), np.insert(index.first, at, ordered)
            )
        return store

    def select(self, keep: np.ndarray) -> ColumnStore:
        """A new store of the rows where ``keep`` holds, its indexes filtered, not re-sorted."""
        counts = None if self.counts is None else self.counts[keep]
        store = ColumnStore([c[keep] for c in self.columns], counts)
        renumber = np.cumsum(keep) - 1
        if isinstance(self._row_keys, _RowKeys):
            store._row_keys = self._row_keys.selected(keep, renumber)
        for key, index in self._indexes.items():
            live = keep[index.perm]
            store._indexes[key] = _SortedIndex.from_sorted(
                key, renumber[index.perm[live]], index.first[live]
            )
        return store

    def row(self, i: int) -> Row:
        return tuple([get(i) for get in self._getters])

    def rows_at(self, positions: Sequence[int]) -> list[Row]:
        """The rows at these positions. A few are read value by value (``item``: 0.1 us
        each); NumPy's gather and ``tolist`` cost 2-3 us a column however few."""
        n = len(positions)
        if not n:
            return []
        getters = self._getters
        if len(getters) == 2 and n <= 32:  # pairs (edges, memberships), unrolled
            first, second = getters
            return [(first(i), second(i)) for i in positions]
        if n <= 6:
            return [tuple([get(i) for get in getters]) for i in positions]
        return list(zip(*(c[positions].tolist() for c in self.columns), strict=True))

    def lookup(self, columns: tuple[int, ...], key: Any) -> list[Row]:
        return self.rows_at(self.positions(columns, key))

    def find(self, row: Row) -> int:
        """The position of ``row``, or -1.

        Int rows that pack are found by one search of their packed keys (built at the
        first ``find`` unless ``unique`` made them). Others are searched on column 0, then
        compared as tuples (small NumPy operations cost microseconds each: fewer than a few
        dozen candidate rows are compared faster in Python)."""
        if len(row) != len(self.columns):
            return -1
        row_keys = self._row_keys if self._row_keys is not None else self._keys()
        if row_keys:
            return row_keys.find(row)  # type: ignore[union-attr]
        found = self._search((0,), row[:1])
        if found is None:
            return -1
        if len(found) > 32:
            found = self._search_in(found, row)
        getters, rest = self._getters, range(1, len(row))
        for i in found.tolist():  # column 0 matches: compare the others, value by value
            for c in rest:
                if getters[c](i) != row[c]:
                    break
            else:
                return i
        return -1

    def _search_in(self, found: np.ndarray, row: Row) -> np.ndarray:
        """The positions among ``found`` whose other columns hold ``row``'s values."""
        for c in range(1, len(row)):
            value = row[c]
            if self._is_str[c] != (type(value) is str):
                return found[:0]
            found = found[self.columns[c][found] == value]
        return found

    def count_at(self, i: int) -> int:
        return 1 if self.counts is None else int(self.counts[i])

    def __iter__(self) -> Iterator[Row]:
        return zip(*(c.tolist() for c in self.columns), strict=True)

    def counts_list(self) -> list[int]:
        return [1] * self.n if self.counts is None else self.counts.tolist()
