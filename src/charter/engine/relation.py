"""Materialized relations: a columnar base plus a Python overlay.

A relation maps each row (a tuple) to its derivation count: 1 for a base row, the number of
derivations for a row of a non-recursive derived table (counting lets a deletion be applied
without re-deriving), 1 for rows of recursive tables.

Rows live in two places. Bulk work leaves them in a :class:`ColumnStore` (NumPy columns,
sorted indexes); changes after that go to a Python dict (``rows``) with hash indexes built
on first use. A base row that is deleted or re-counted is marked ``dead`` and, if still
present, moves to the dict. Readers never see the split: ``lookup``, ``count``, ``in``.

A large batch of row changes (``apply_batch``) stays in columns: deleted base rows are
marked dead, new rows go to a second, small store (``tail``) after the base, merged into
the base once it holds an eighth as many rows. Copying the base per batch would cost time
linear in the table (and, fresh memory being slow to map, a lot of it) for a 1% change.

A small relation (base and tail up to ``HASH_LIMIT`` rows) is also hashed at its first
look-up: its hash indexes then hold every live row, stored or in the overlay, and a dict
maps stored rows to their positions. A hash look-up costs well under a microsecond
against 1-5 for a search of the columns. The columns stay for set-at-a-time work (``batch.py``),
which reads a relation through ``dead_masks`` and ``overlay_store``; what a large batch
changes in the columns reaches the hash indexes at their next use (``_hash_log``).

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

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from itertools import chain, filterfalse
from operator import itemgetter
from typing import Any

import numpy as np

from charter.engine.collector import collector_paused
from charter.engine.columnar import ColumnStore, NotColumnar, SearchKeys, kind_of
from charter.lang.errors import EngineError

Row = tuple
Key = Any


# A relation with this few stored rows (base and tail) is hashed at its first look-up.
HASH_LIMIT = 20_000
# Building a hash index or position map of at least this many rows pauses the collector.
COLLECTOR_PAUSE_ROWS = 20_000
# Membership of at least this many rows at once is tested set at a time in column stores.
MANY_ROWS = 16
# The tail is merged into the base when it holds this fraction of the base's rows.
TAIL_FRACTION = 1 / 8


def key_getter(positions: tuple[int, ...]) -> Callable[[tuple], Key]:
    """A function taking a tuple to its key on ``positions`` (see the module's convention)."""
    if not positions:
        return lambda _row: ()
    return itemgetter(*positions)


def _paused_for(rows: int) -> AbstractContextManager[None]:
    """The collector paused while hashing this many rows, if that is many (see collector.py)."""
    return collector_paused() if rows >= COLLECTOR_PAUSE_ROWS else nullcontext()


def _count_keys(getter: Callable[[tuple], Key], counts: dict[Key, int], rows: Iterable[Row]):
    """Add each row's key (``getter``) to ``counts``."""
    for row in rows:
        key = getter(row)
        counts[key] = counts.get(key, 0) + 1


def _no_dead(n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool)


def _keys(key_columns: tuple[int, ...], columns: list[np.ndarray]) -> Iterable[Key]:
    """The index keys of rows given as columns (``tolist`` makes them in one call each)."""
    if len(key_columns) == 1:
        return columns[key_columns[0]].tolist()
    if not key_columns:
        return [()] * len(columns[0])
    return zip(*(columns[j].tolist() for j in key_columns), strict=True)


class Relation:
    """One table's rows with their derivation counts, and its indexes."""

    __slots__ = (
        "name",
        "arity",
        "rows",
        "base",
        "tail",
        "dead",
        "_indexes",
        "_stored_at",
        "_hashed_now",
        "_big",
        "_hash_log",
        "_hash_logged",
        "_masks",
        "_dead_log",
        "_overlay_store",
        "_dead_keys",
    )

    def __init__(self, name: str, arity: int | None = None):
        self.name = name
        self.arity = arity
        self.rows: dict[Row, int] = {}  # the overlay: rows not (alive) in base or tail
        self.base: ColumnStore | None = None
        self.tail: ColumnStore | None = None  # rows of large batches since the base was made
        self.dead: set[Row] = set()  # base/tail rows that are gone or moved to the overlay
        # Hash indexes (columns -> (key getter, key -> rows)), built at their first use:
        # of the overlay, or of every live row once the relation is hashed.
        self._indexes: dict[tuple[int, ...], tuple[Callable, dict[Key, set[Row]]]] = {}
        # Hashed (a small relation): each live stored row's position (the tail's follow
        # the base's). ``_hash_log`` holds what large batches did to base and tail since
        # (rows added, rows that died): applied at the next look-up, so that a stream of
        # polls read set at a time never pays for the hash indexes. ``_hashed_now``: hashed
        # and up to date.
        self._stored_at: dict[Row, int] | None = None
        self._hashed_now = False
        self._big = False  # too large to hash (until compacted)
        self._hash_log: list[tuple] = []
        self._hash_logged = 0  # rows in the log: past the table's size, hash anew instead
        # ``dead`` as masks over base and tail positions, for set-at-a-time work: built on
        # demand, then kept current from ``_dead_log`` (rows marked dead since).
        self._masks: tuple[np.ndarray, np.ndarray] | None = None
        self._dead_log: list[Row] = []
        self._overlay_store: ColumnStore | None = None  # the overlay as columns, cached
        # Dead rows counted by their key on some columns (``count_key``), built on demand,
        # kept by ``_kill`` and dropped when a batch changes ``dead`` set at a time.
        self._dead_keys: dict[tuple[int, ...], tuple[Callable, dict[Key, int]]] = {}

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

    def stores(self) -> list[ColumnStore]:
        """Base and tail (when there is a base)."""
        if self.base is None:
            return []
        return [self.base] if self.tail is None else [self.base, self.tail]

    def _stored(self) -> int:
        """Rows in base and tail, dead ones included."""
        if self.base is None:
            return 0
        return self.base.n + (self.tail.n if self.tail is not None else 0)

    def __len__(self) -> int:
        return len(self.rows) + self._stored() - len(self.dead)

    @property
    def columnar_only(self) -> bool:
        """All rows are in the columnar base (nothing changed since bulk work)."""
        return self.base is not None and not self.rows and not self.dead and self.tail is None

    def width(self) -> int:
        """The number of columns of a non-empty relation, read without iterating it."""
        if self.rows:
            return len(next(iter(self.rows)))
        if self.base is not None:
            return self.base.arity
        return self.arity or 0

    # -- hashing a small relation

    def _hashed(self) -> bool:
        """Whether every live row is in the hash indexes (no columns, or a small relation
        hashed at this first look-up), bringing them up to date."""
        if self._hashed_now or self.base is None:
            return True
        if self._stored_at is None:
            if self._stored() > HASH_LIMIT:
                self._big = True
                return False
            dead, rows = self.dead, chain.from_iterable(self.stores())
            with _paused_for(self._stored()):
                self._stored_at = {r: i for i, r in enumerate(rows) if r not in dead}
            self._indexes = {}  # overlay-only until now: rebuilt over every live row
        else:
            self._replay()
        self._hashed_now = True
        return True

    def _replay(self) -> None:
        """Apply the batches' changes of base and tail to the hash indexes."""
        stored_at = self._stored_at
        assert stored_at is not None
        for entry in self._hash_log:
            if entry[0] == "remove":  # rows that died, or left the overlay
                for row in entry[1]:
                    stored_at.pop(row, None)
                    self._index_remove(row)
            else:  # rows added to base or tail (positions), or to the overlay (None)
                _, rows, positions, columns = entry
                if positions is not None:
                    stored_at.update(zip(rows, positions, strict=True))
                for key_columns, (_, index) in self._indexes.items():
                    get = index.get
                    for key, row in zip(_keys(key_columns, columns), rows, strict=True):
                        bucket = get(key)
                        if bucket is None:
                            index[key] = {row}
                        else:
                            bucket.add(row)
        self._hash_log, self._hash_logged = [], 0

    def _log_hash(self, entry: tuple) -> None:
        """A change of base or tail, for the hash indexes at their next use (when the log
        outgrows the table they are dropped instead, to be built anew then)."""
        if self._stored_at is None:
            return
        self._hashed_now = False
        self._hash_log.append(entry)
        self._hash_logged += len(entry[1])
        if self._hash_logged > self._stored():
            self._unhash()

    def _unhash(self) -> None:
        self._stored_at, self._hashed_now = None, False
        self._hash_log, self._hash_logged = [], 0
        self._indexes = {}  # rebuilt over the overlay, or the live rows when hashed again

    # -- reading

    def _find(self, row: Row) -> int:
        """The row's position in base or tail (the tail's follow the base's), or -1."""
        base = self.base
        i = base.find(row)  # type: ignore[union-attr]
        if i < 0 and self.tail is not None:
            i = self.tail.find(row)
            if i >= 0:
                i += base.n  # type: ignore[union-attr]
        return i

    def _count_at(self, i: int) -> int:
        base = self.base
        if i < base.n:  # type: ignore[union-attr]
            return base.count_at(i)  # type: ignore[union-attr]
        return self.tail.count_at(i - base.n)  # type: ignore[union-attr]

    def __contains__(self, row: Row) -> bool:
        if row in self.rows:
            return True
        if self.base is None:
            return False
        if self._hashed_now or (not self._big and self._hashed()):
            return row in self._stored_at  # type: ignore[operator]
        return row not in self.dead and self._find(row) >= 0

    def contains_many(self, rows: list[Row]) -> list[bool]:
        """``[row in self for row in rows]``; a column store's rows are found set at a
        time when there are many (one vectorized search: 130 rows in 30 us, not 150)."""
        base = self.base
        if (
            base is None
            or len(rows) < MANY_ROWS
            or self._hashed_now
            or (not self._big and self._hashed())
        ):
            return [row in self for row in rows]
        where = self._find_ints(rows, base.arity)
        if where is None:
            return [row in self for row in rows]
        dead, overlay = self.dead, self.rows
        return [
            (i >= 0 and row not in dead) or row in overlay
            for i, row in zip(where.tolist(), rows, strict=True)
        ]

    def _find_ints(self, rows: list[Row], width: int) -> np.ndarray | None:
        """Positions in base and tail (-1: not stored) of rows of ``width`` ints (None:
        some row is not, so the caller looks them up one by one)."""
        flat = list(chain.from_iterable(rows))
        if len(flat) != width * len(rows) or {*map(type, flat)} != {int}:
            return None
        try:
            values = np.array(flat, dtype=np.int64)
        except OverflowError:
            return None
        return self._positions(rows, [values[j::width] for j in range(width)])

    def count(self, row: Row) -> int:
        """The row's derivation count (0 when absent)."""
        n = self.rows.get(row)
        if n is not None:
            return n
        base = self.base
        if base is None:
            return 0
        if self._hashed_now or (not self._big and self._hashed()):
            i = self._stored_at.get(row)  # type: ignore[union-attr]
            if i is None:
                return 0
            store = base if i < base.n else self.tail
            counts = store.counts  # type: ignore[union-attr]
            return 1 if counts is None else int(counts[i if store is base else i - base.n])
        i = -1 if row in self.dead else self._find(row)
        return self._count_at(i) if i >= 0 else 0

    def __iter__(self) -> Iterator[Row]:
        # Iterators chained in C: results of a million rows are read without a Python
        # frame per row.
        if self.base is None:
            return iter(self.rows)
        if self._hashed_now:
            return chain(self.rows, self._stored_at)  # type: ignore[arg-type]
        stored = chain.from_iterable(self.stores())
        if self.dead:
            stored = filterfalse(self.dead.__contains__, stored)
        return chain(self.rows, stored) if self.rows else stored

    def items(self) -> Iterator[tuple[Row, int]]:
        """``(row, count)`` pairs."""
        yield from self.rows.items()
        if self.base is None:
            return
        if self._hashed_now:
            count_at = self._count_at
            for row, i in self._stored_at.items():  # type: ignore[union-attr]
                yield row, count_at(i)
            return
        dead = self.dead
        for store in self.stores():
            for row, n in zip(store, store.counts_list(), strict=True):
                if row not in dead:
                    yield row, n

    def to_dict(self) -> dict[Row, int]:
        return dict(self.items()) if self.base is not None else self.rows

    def __repr__(self) -> str:
        return f"Relation({self.name!r}, {len(self)} rows)"

    # -- look-ups

    def index(self, columns: tuple[int, ...]) -> dict[Key, set[Row]]:
        """The hash index on ``columns`` (key -> rows), built on first use: of every live
        row when hashed (see ``_hashed``), else of the overlay."""
        entry = self._indexes.get(columns)
        if entry is None:  # the collector is paused while a large one is built
            with _paused_for(len(self.rows) if self._stored_at is None else len(self)):
                entry = self._indexes[columns] = self._hash_rows(columns)
        return entry[1]

    def _hash_rows(self, columns: tuple[int, ...]) -> tuple[Callable, dict[Key, set[Row]]]:
        """The hash index on ``columns`` of the overlay, or of every live row when hashed."""
        getter = key_getter(columns)
        buckets: dict[Key, set[Row]] = {}
        rows: Iterable[Row] = self.rows
        if self._stored_at is not None:
            rows = chain(self.rows, self._stored_at)
            for store in self.stores():  # a large batch, read set at a time, uses them
                if columns:
                    store.index(columns)
        for row in rows:
            key = getter(row)
            bucket = buckets.get(key)
            if bucket is None:
                buckets[key] = {row}
            else:
                bucket.add(row)
        return getter, buckets

    def lookup(self, columns: tuple[int, ...], key: Key) -> Collection[Row]:
        """Rows whose ``columns`` equal ``key`` (the caller must not change the collection)."""
        if self.base is None or self._hashed_now or (not self._big and self._hashed()):
            return self.index(columns).get(key, ())
        rows = self.base.lookup(columns, key)
        if self.tail is not None:
            rows += self.tail.lookup(columns, key)
        if self.dead:
            dead = self.dead
            rows = [r for r in rows if r not in dead]
        if self.rows:
            rows.extend(self.index(columns).get(key, ()))
        return rows

    def getter(self, columns: tuple[int, ...]) -> Callable[[Key], Collection[Row] | None]:
        """``key -> rows`` on ``columns`` (None or empty when none): the fastest for the
        current representation, valid until the relation changes."""
        if self.base is None or self._hashed_now or (not self._big and self._hashed()):
            return self.index(columns).get
        lookup = self.lookup
        return lambda key: lookup(columns, key)

    def has(self, columns: tuple[int, ...], key: Key) -> bool:
        """Whether some row's ``columns`` equal ``key``."""
        if self.base is None or self._hashed_now or (not self._big and self._hashed()):
            return key in self.index(columns)
        if self.rows and key in self.index(columns):
            return True
        dead = self.dead
        if not dead:
            return any(len(s.positions(columns, key)) > 0 for s in self.stores())
        return any(r not in dead for s in self.stores() for r in s.lookup(columns, key))

    def count_key(self, columns: tuple[int, ...], key: Key) -> int:
        """How many rows have ``key`` on ``columns``: ``len(lookup(...))`` without making
        the rows (a join literal that binds nothing used later only needs this)."""
        if self.base is None or self._hashed_now or (not self._big and self._hashed()):
            return len(self.index(columns).get(key, ()))
        n = self.base.count(columns, key)
        if self.tail is not None:
            n += self.tail.count(columns, key)
        if self.dead:
            n -= self._dead_count(columns, key)
        if self.rows:
            n += len(self.index(columns).get(key, ()))
        return n

    def _dead_count(self, columns: tuple[int, ...], key: Key) -> int:
        entry = self._dead_keys.get(columns)
        if entry is None:
            entry = self._dead_keys[columns] = (key_getter(columns), {})
            _count_keys(*entry, self.dead)
        return entry[1].get(key, 0)

    def keys(self, columns: tuple[int, ...]) -> set[Key]:
        """Every distinct key on ``columns``."""
        getter = key_getter(columns)
        return {getter(row) for row in self}

    def prepare(self, columns: tuple[int, ...] | None) -> list[tuple[ColumnStore, Any]]:
        """Get ready for look-ups on ``columns`` (None: whole-row finds): a small relation
        is hashed now; a large one returns its stores' part (``ColumnStore.prepare``),
        NumPy work that may run on another thread, the stores being immutable."""
        if self.base is None:
            return []
        if not self._big and self._hashed():
            if columns:
                self.index(columns)
            return []
        return [(store, columns) for store in self.stores()]

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

    def _kill(self, row: Row) -> None:
        """Mark a live row of base or tail dead."""
        self.dead.add(row)
        for getter, counts in self._dead_keys.values():
            _count_keys(getter, counts, (row,))
        if self._masks is not None:
            self._dead_log.append(row)
        if self._stored_at is not None:
            if not self._hashed_now:
                self._hashed()
            del self._stored_at[row]
            self._index_remove(row)

    def add(self, row: Row, count: int = 1) -> None:
        """Insert a row that is not present."""
        if self._stored_at is not None and not self._hashed_now:
            self._hashed()  # the batches' changes go to the hash indexes first
        self.rows[row] = count
        self._index_add(row)
        self._overlay_store = None

    def set_count(self, row: Row, count: int) -> None:
        """Change the count of a present row (to a positive number)."""
        if row in self.rows:
            self.rows[row] = count
            self._overlay_store = None
            return
        self._kill(row)  # a stored row moves to the overlay with its new count
        self.add(row, count)

    def discard(self, row: Row) -> None:
        """Remove a row that is present."""
        if row in self.rows:
            if self._stored_at is not None and not self._hashed_now:
                self._hashed()
            del self.rows[row]
            self._index_remove(row)
            self._overlay_store = None
        else:
            self._kill(row)

    def discard_many(self, rows: Collection[Row]) -> None:
        """Remove rows that are present (``discard`` each), stored ones marked dead in
        one step: a recursive deletion removes rows by the hundred."""
        if self.base is None or self._stored_at is not None or len(rows) < MANY_ROWS:
            for row in rows:
                self.discard(row)
            return
        overlay = self.rows
        stored = [row for row in rows if row not in overlay]
        if len(stored) < len(rows):
            for row in rows:
                if row in overlay:
                    del overlay[row]
                    self._index_remove(row)
            self._overlay_store = None
        self.dead.update(stored)
        for getter, counts in self._dead_keys.values():
            _count_keys(getter, counts, stored)
        if self._masks is not None:
            self._dead_log.extend(stored)

    def load(self, rows: Iterable[Row]) -> list[Row]:
        """Insert many base rows; returns those that were new."""
        new = [row for row in dict.fromkeys(rows) if row not in self]
        if not self._indexes and not self.rows and self.base is None:
            self.rows = dict.fromkeys(new, 1)
        else:
            for row in new:
                self.add(row)
        return new

    # -- set at a time (batch.py)

    def dead_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Which positions of base and of tail hold dead rows (empty masks: no base)."""
        if self.base is None:
            return _no_dead(0), _no_dead(0)
        if self._masks is None:
            tail = self.tail.n if self.tail is not None else 0
            self._masks = (_no_dead(self.base.n), _no_dead(tail))
            pending: Sequence[Row] = list(self.dead)
        else:
            pending = self._dead_log
        if pending:
            where = self._positions(pending)
            assert (where >= 0).all(), f"dead rows of {self.name} not stored"
            self._mark(where, True)
        self._dead_log = []
        return self._masks

    def _mark(self, positions: np.ndarray, dead: bool) -> None:
        base_mask, tail_mask = self._masks  # type: ignore[misc]
        n = len(base_mask)
        in_base = positions < n
        base_mask[positions[in_base]] = dead
        tail_mask[positions[~in_base] - n] = dead

    def _positions(
        self,
        rows: Sequence[Row],
        columns: list[np.ndarray] | None = None,
        search: SearchKeys | None = None,
    ) -> np.ndarray:
        """Positions in base and tail of rows (also given as ``columns``, the first one's
        keys sorted in ``search``), -1 if not stored (dead or alive)."""
        if columns is None:
            store = ColumnStore.from_rows(rows)
            if store is None:
                raise NotColumnar(f"rows of {self.name} do not fit its columns")
            columns = store.columns
        base = self.base
        where = base.find_rows(columns, search)  # type: ignore[union-attr]
        if self.tail is not None:
            missing = np.flatnonzero(where < 0)
            found = self.tail.find_rows([c[missing] for c in columns])
            hit = found >= 0
            where[missing[hit]] = found[hit] + base.n  # type: ignore[union-attr]
        return where

    def overlay_store(self) -> ColumnStore | None:
        """The overlay's rows (with counts) as columns, None when empty; cached until it
        changes. Raises NotColumnar when they do not fit typed columns."""
        if not self.rows:
            return None
        store = self._overlay_store
        if store is None:
            store = ColumnStore.from_rows(list(self.rows), list(self.rows.values()))
            if store is None:
                raise NotColumnar(f"rows of {self.name} have columns of mixed kinds")
            self._overlay_store = store
        return store

    def live_columns(self) -> list[np.ndarray] | None:
        """Every row as typed columns (None when empty); raises NotColumnar if mixed."""
        if self.columnar_only:
            return self.base.columns  # type: ignore[union-attr]
        parts = []
        if self.base is not None:
            for store, mask in zip(self.stores(), self.dead_masks(), strict=False):
                parts.append([c[~mask] for c in store.columns] if mask.any() else store.columns)
        overlay = self.overlay_store()
        if overlay is not None:
            parts.append(overlay.columns)
        if not parts or not sum(len(p[0]) for p in parts):
            return None
        kinds = {tuple(kind_of(c) for c in p) for p in parts}
        if len(kinds) > 1:
            raise NotColumnar(f"rows of {self.name} have columns of mixed kinds")
        return [np.concatenate(cs) for cs in zip(*parts, strict=True)]

    def _locate(self, rows: list[Row], columns: list[np.ndarray]):
        """Where many rows (also given as columns) are: their positions in base and tail
        (-1: not stored), whether stored there and alive, whether in the overlay."""
        base = self.base
        search = SearchKeys(columns[0])  # for base and overlay alike
        where = self._positions(rows, columns, search)
        base_mask, tail_mask = self.dead_masks()
        in_base = (where >= 0) & (where < base.n)  # type: ignore[union-attr]
        in_tail = where >= base.n  # type: ignore[union-attr]
        alive = np.zeros(len(rows), dtype=bool)
        alive[in_base] = ~base_mask[where[in_base]]
        alive[in_tail] = ~tail_mask[where[in_tail] - base.n]  # type: ignore[union-attr]
        return where, alive, self._in_overlay(rows, columns, search)

    def _fits(self, columns: list[np.ndarray]) -> bool:
        return self.base is not None and tuple(kind_of(c) for c in columns) == self.base.kinds()

    def _pick(self, rows: list[Row], index: np.ndarray) -> list[Row]:
        return list(map(rows.__getitem__, index.tolist()))

    def _remove_many(self, rows: list[Row], where: np.ndarray, alive, in_overlay) -> None:
        """Remove present rows: overlay rows from the overlay, stored ones marked dead."""
        if in_overlay.any():
            gone = self._pick(rows, np.flatnonzero(in_overlay))
            overlay = self.rows
            for row in gone:
                del overlay[row]
            self._overlay_store = None
            if self._stored_at is None:
                for row in gone:
                    self._index_remove(row)
            else:
                self._log_hash(("remove", gone))
        kill = np.flatnonzero(alive)
        if len(kill):
            killed = self._pick(rows, kill)
            self.dead.update(killed)
            self._dead_keys = {}
            self._mark(where[kill], True)
            self._log_hash(("remove", killed))

    def apply_batch(
        self, rows: list[Row], columns: list[np.ndarray], signs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Insert (sign > 0) or delete (sign < 0) many distinct rows, also given as columns;
        returns the indexes of the rows inserted and deleted (those that changed the
        relation), or None (nothing done) when the columns do not fit the base's.

        Deleted stored rows are marked dead, new rows go to the tail: the work and the
        memory are those of the batch, not of the table.
        """
        if not self._fits(columns):
            return None
        where, alive, in_overlay = self._locate(rows, columns)
        stored = where >= 0
        insert = (signs > 0) & ~(alive | in_overlay)
        delete = (signs < 0) & (alive | in_overlay)
        self._remove_many(rows, where, delete & alive, delete & in_overlay)
        revive = np.flatnonzero(insert & stored)  # dead stored rows (counting 1) come back
        if len(revive):
            revived = self._pick(rows, revive)
            self.dead.difference_update(revived)
            self._dead_keys = {}
            self._mark(where[revive], False)
            self._log_hash(("add", revived, where[revive].tolist(), [c[revive] for c in columns]))
        new = np.flatnonzero(insert & ~stored)
        if len(new):
            self._append([c[new] for c in columns], self._pick(rows, new))
        self._compact_if_dead()
        return np.flatnonzero(insert), np.flatnonzero(delete)

    def change_counts(
        self, rows: list[Row], columns: list[np.ndarray], changes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Add ``changes`` to the derivation counts of many distinct rows (also given as
        columns); returns the indexes of the rows that appeared and disappeared, or None
        (nothing done) when the columns do not fit the base's. Set at a time, as
        ``apply_batch``; a row whose count changes and stays positive goes to the overlay
        with its new count, as ``set_count`` does."""
        if self.base is None and not self.rows:  # empty: the rows become its base
            if (changes <= 0).any():
                raise EngineError(f"internal error: {self.name} would lose rows it lacks")
            self.base = ColumnStore(columns, None if (changes == 1).all() else changes)
            return np.arange(len(rows)), np.zeros(0, dtype=np.int64)
        if not self._fits(columns):
            return None
        where, alive, in_overlay = self._locate(rows, columns)
        before = np.zeros(len(rows), dtype=np.int64)
        base_n = self.base.n  # type: ignore[union-attr]
        for store, mask, offset in (
            (self.base, alive & (where < base_n), 0),
            (self.tail, alive & (where >= base_n), base_n),
        ):
            if store is not None and mask.any():
                before[mask] = 1 if store.counts is None else store.counts[where[mask] - offset]
        overlay = self.rows
        for i in np.flatnonzero(in_overlay).tolist():
            before[i] = overlay[rows[i]]
        after = before + changes
        if (after < 0).any():
            i = int(np.flatnonzero(after < 0)[0])
            raise EngineError(
                f"internal error: {self.name}{rows[i]} would have {after[i]} derivations"
            )
        present = before > 0
        moved = present & (after > 0) & (changes != 0) & ~in_overlay  # stored: to the overlay
        self._remove_many(rows, where, alive & ((after == 0) | moved), in_overlay & (after == 0))
        counts = after.tolist()
        for i in np.flatnonzero(in_overlay & (after > 0) & (changes != 0)).tolist():
            overlay[rows[i]] = counts[i]
        to_overlay = np.flatnonzero(moved | (~present & (after > 0) & (where >= 0)))
        if len(to_overlay):  # (dead stored rows coming back, with their new count)
            added = self._pick(rows, to_overlay)
            overlay.update(zip(added, after[to_overlay].tolist(), strict=True))
            if self._stored_at is None:
                for row in added:
                    self._index_add(row)
            else:
                self._log_hash(("add", added, None, [c[to_overlay] for c in columns]))
        self._overlay_store = None
        new = np.flatnonzero(~present & (after > 0) & (where < 0))
        if len(new):
            self._append([c[new] for c in columns], self._pick(rows, new), after[new])
        self._compact_if_dead()
        return np.flatnonzero(~present & (after > 0)), np.flatnonzero(present & (after == 0))

    def _compact_if_dead(self) -> None:
        if len(self.dead) * 2 > self._stored():  # mostly dead: keep the live rows only
            self._compact()

    def _in_overlay(
        self, rows: list[Row], columns: list[np.ndarray], search: SearchKeys
    ) -> np.ndarray:
        """Which of the rows (also given as columns) are in the overlay."""
        overlay, n = self.rows, len(rows)
        if not overlay:
            return np.zeros(n, dtype=bool)
        if len(overlay) < n:  # a few rows: find them among the batch's, set at a time
            try:
                store = self.overlay_store()
            except NotColumnar:
                store = None
            if store is not None and store.kinds() == tuple(kind_of(c) for c in columns):
                return store.find_rows(columns, search) >= 0
        return np.fromiter(map(overlay.__contains__, rows), dtype=bool, count=n)

    def _append(
        self, columns: list[np.ndarray], rows: list[Row], counts: np.ndarray | None = None
    ) -> None:
        """New rows after base and tail (rows: the same, as tuples; counts: 1 if None)."""
        base_mask, tail_mask = self._masks  # type: ignore[misc]
        if counts is not None and (counts == 1).all():
            counts = None
        start = self._stored()
        if self.tail is not None:
            self.tail = self.tail.append(columns, counts)
        else:
            self.tail = ColumnStore(columns, counts)
        self._masks = (base_mask, np.concatenate([tail_mask, _no_dead(len(rows))]))
        self._log_hash(("add", rows, range(start, start + len(rows)), columns))
        if self.tail.n > TAIL_FRACTION * self.base.n:  # type: ignore[union-attr]
            self._merge_tail()

    def _merge_tail(self) -> None:
        """Append the tail to the base (positions do not change)."""
        tail = self.tail
        if tail is None:
            return
        base_mask, tail_mask = self.dead_masks()
        self.base = self.base.append(tail.columns, tail.counts)  # type: ignore[union-attr]
        self.tail = None
        self._masks = (np.concatenate([base_mask, tail_mask]), _no_dead(0))

    def _compact(self) -> None:
        """Drop the dead rows from the columns (their positions change)."""
        self._merge_tail()
        base_mask, _ = self.dead_masks()
        keep = ~base_mask
        self.base = self.base.select(keep) if keep.any() else None  # type: ignore[union-attr]
        self.dead = set()
        self._dead_keys = {}
        self._masks, self._dead_log = None, []
        self._unhash()
        self._big = False
