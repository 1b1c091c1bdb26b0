"""Diffs in columns: a base table's new contents (or changes), given as columns, against its
stored rows, set at a time.

A poll or a push hands over a whole table of which about 1% changed. Row by row, the
difference costs a Python set of every stored row and a look-up per new row (half a second
at 100k rows). Here the new rows are found in the stored columns by sorted search
(``ColumnStore.find_rows``: packed int keys, or a dense index on an id column), the stored
rows no new row found are the deleted ones, and only the rows that changed become Python
tuples. The difference then enters the engine as one ordinary batch of row changes, so
derived tables, subscribers and deltas are exactly those of the same change as row deltas.

Where NumPy could decide differently from Python's ``==`` the row path decides: values that
are not all ints, all floats or all strings (None, booleans, kinds mixed in a column), NaN,
ints past 64 bits, ints among floats, and stored columns of other kinds than the new ones.

Finding a difference needs no lock, by either path: ``StoredTable`` is a snapshot of a
table (its immutable column stores, copies of its dead marks and of its overlay's rows)
taken under whatever guards the engine, and ``version`` tells whether the table changed
since (``Engine.fresh``).

>>> import numpy as np
>>> from charter.engine import Engine
>>> eng = Engine(columnar_threshold=1)
>>> _ = eng.load_columns({"p:t": [np.array([1, 2, 3]), np.array(["a", "b", "c"])]})
>>> d = eng.replace_columns({"p:t": [np.array([1, 2, 4]), np.array(["a", "x", "d"])]})
>>> sorted(d["p:t"].inserted), sorted(d["p:t"].deleted)
([(2, 'x'), (4, 'd')], [(2, 'b'), (3, 'c')])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress
from typing import Any

import numpy as np

from charter.engine.columnar import ColumnStore, NotColumnar, int_packing, kind_of, pack_ints
from charter.engine.delta import Delta
from charter.engine.relation import Relation
from charter.lang.errors import DataError

Row = tuple
Columns = list[np.ndarray]


# ---------------------------------------------------------------- values as typed columns


def typed_column(values: Any) -> np.ndarray | None:
    """One column as int64, float64 or an object array of str; None when its values are
    not all of one of those Python types (the row path then decides: a bool among ints
    would become 1, an int among floats lose its bits past 2**53, NaN never be found).

    A list's types are read once (``set(map(type, ...))``) and its values then copied
    into an array of the known type: together no slower than NumPy guessing the type.

    >>> typed_column([1, 2]).dtype, typed_column(["a", 1]), typed_column([1.5, float("nan")])
    (dtype('int64'), None, None)
    """
    if isinstance(values, np.ndarray):
        return _typed_array(values)
    values = values if isinstance(values, list) else list(values)
    return _typed_list(values, set(map(type, values)))


def _typed_list(values: list, kinds: set[type]) -> np.ndarray | None:
    """``typed_column`` of a list whose values' types are ``kinds``."""
    if kinds == {str}:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    if kinds == {int}:
        try:
            return np.fromiter(values, dtype=np.int64, count=len(values))
        except OverflowError:
            return None
    if kinds == {float}:
        return _no_nan(np.fromiter(values, dtype=np.float64, count=len(values)))
    if not kinds:
        return np.zeros(0, dtype=np.int64)
    return None


def _typed_array(array: np.ndarray) -> np.ndarray | None:
    if array.ndim != 1:
        return None
    kind = array.dtype.kind
    if kind in "iu":
        if kind == "u" and len(array) and array.max() >= 2**63:
            return None
        return array.astype(np.int64, copy=False)
    if kind == "f":
        return _no_nan(array.astype(np.float64, copy=False))
    if kind == "U":
        return array.astype(object)
    if kind == "O":
        return typed_column(array.tolist())
    return None  # bools, bytes, dates: as Python values, through the row path


def _no_nan(array: np.ndarray) -> np.ndarray | None:
    """NaN equals nothing, itself included: Python finds it by identity, NumPy never."""
    if array.dtype.kind == "f" and np.isnan(array).any():
        return None
    return array


def typed_columns(columns: Sequence[Any]) -> Columns | None:
    """Every column typed (``typed_column``) and of one length, or None."""
    out = []
    for values in columns:
        array = typed_column(values)
        if array is None or (out and len(array) != len(out[0])):
            return None
        out.append(array)
    return out if out else None


def rows_to_columns(rows: Sequence[Row]) -> Columns | None:
    """Rows of one width as typed columns, None when their widths differ or a column is
    not typed.

    The values are laid end to end in one list (``chain``, in C; ``zip(*rows)`` would
    make a tuple per row): a table of one type throughout (all ints, say) is then one
    array read column by column, others a list slice per column. At a million rows of
    six ints, half the time of a list per column."""
    if not rows:
        return None
    width = len(rows[0])
    if not width or set(map(len, rows)) != {width}:
        return None
    flat = list(chain.from_iterable(rows))
    return split_columns(flat, set(map(type, flat)), width)


def split_columns(flat: list, kinds: set[type], width: int) -> Columns | None:
    """``rows_to_columns`` of rows laid end to end in ``flat`` (``kinds``: its values'
    types), ``width`` values a row."""
    if not width:
        return None
    if len(kinds) == 1:
        whole = _typed_list(flat, kinds)
        return None if whole is None else [whole[j::width].copy() for j in range(width)]
    return typed_columns([flat[j::width] for j in range(width)])


def rows_of(table: str, columns: Sequence[Any]) -> list[tuple]:
    """Rows from columns (arrays or lists) as Python values, for the row path."""
    values = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in columns]
    if any(np.ndim(c) != 1 for c in columns if isinstance(c, np.ndarray)) or (
        len({len(v) for v in values}) > 1
    ):
        raise DataError(
            f"the columns given for {table} are not lists of one length: give one list or "
            "1-D array per column, each with a value for every row"
        )
    return list(zip(*values, strict=True))


def as_rows(columns: Sequence[np.ndarray], at: np.ndarray | None = None) -> list[Row]:
    """The rows of typed columns (at positions ``at``) as tuples of Python values."""
    picked = columns if at is None else [c[at] for c in columns]
    return list(zip(*(c.tolist() for c in picked), strict=True))


# ---------------------------------------------------------------- the stored table


@dataclass
class _Part:
    """Stored rows: a column store and which of its positions are dead (None: none)."""

    store: ColumnStore
    dead: np.ndarray | None

    def live(self) -> int:
        return self.store.n - (int(self.dead.sum()) if self.dead is not None else 0)


@dataclass
class StoredTable:
    """What a diff reads of a table, safe to read while the engine goes on: its column
    stores (immutable; the index on column 0 a search reads built beforehand, as the
    engine's index builder would, so that reading adds nothing to a store the engine may
    be copying), copies of their dead marks, and its overlay's rows (a list)."""

    table: str
    version: int
    arity: int | None
    parts: list[_Part] = field(default_factory=list)
    overlay: list[Row] = field(default_factory=list)
    copied: list[Row] | None = None  # every row, when the columns cannot be read (rare)

    @classmethod
    def of(
        cls, table: str, relation: Relation | None, version: int, arity: int | None
    ) -> StoredTable:
        """The snapshot (take it under the engine's guard: it reads the relation once)."""
        if relation is None or not len(relation):
            return cls(table, version, arity)
        parts = []
        if relation.base is not None:
            try:
                masks = relation.dead_masks() if relation.dead else (None, None)
            except NotColumnar:  # dead rows that do not fit the columns: copy the rows
                return cls(table, version, arity, copied=list(relation))
            for store, mask in zip(relation.stores(), masks, strict=False):
                dead = mask.copy() if mask is not None and mask.any() else None
                store.index((0,))  # built now: a search later adds no index to the store
                parts.append(_Part(store, dead))
        return cls(table, version, arity, parts, list(relation.rows))

    def __bool__(self) -> bool:
        return bool(self.copied or self.overlay) or any(p.live() for p in self.parts)

    def live_rows(self) -> list[Row]:
        """Every row as Python values, as ``Engine.rows`` gives them (for the row path)."""
        if self.copied is not None:
            return self.copied
        out: list[Row] = []
        for part in self.parts:
            columns = part.store.columns
            out += as_rows(columns if part.dead is None else [c[~part.dead] for c in columns])
        return out + self.overlay

    def _stores(self) -> list[_Part] | None:
        """The parts holding live rows, the overlay made one (None: not typed columns)."""
        if self.copied is not None:
            return None
        parts = [p for p in self.parts if p.live()]
        if self.overlay:
            columns = rows_to_columns(self.overlay)
            if columns is None:
                return None
            parts.append(_Part(ColumnStore(columns), None))
        return parts


# ---------------------------------------------------------------- differences


class TableDiff:
    """A base table's change: the rows it gains and loses (distinct, disjoint), found
    against its stored rows as of ``version``.

    ``load``: the table was empty, and these typed columns (rows may repeat; ``rows``: the
    same rows as the caller's tuples) are its whole new content, loaded as they are; the
    rows it gains are made only if asked for. ``given``: the batch to apply instead, no-ops
    included (a patch by the row path: ``apply`` checks and learns from every row it is
    given, a deleted row that is absent too).
    """

    __slots__ = ("table", "version", "_inserted", "deleted", "load", "rows", "given", "columns")

    def __init__(
        self,
        table: str,
        version: int,
        inserted: list[Row] | None,
        deleted: list[Row],
        load: Columns | None = None,
        rows: Sequence[Row] | None = None,
        given: dict[Row, int] | None = None,
        columns: Columns | None = None,
    ):
        self.table, self.version = table, version
        self._inserted, self.deleted = inserted, deleted
        self.load, self.rows, self.given = load, rows, given
        self.columns = columns  # the deleted rows then the inserted ones, as columns

    @property
    def inserted(self) -> list[Row]:
        if self._inserted is None:
            if self.rows is not None:
                self._inserted = list(dict.fromkeys(map(tuple, self.rows)))
            else:
                self._inserted = list(dict.fromkeys(as_rows(self.load or [])))
        return self._inserted

    def __len__(self) -> int:
        return len(self.inserted) + len(self.deleted)

    def changes(self) -> dict[Row, int]:
        """Row -> sign, as ``Engine.apply`` nets a batch of row deltas."""
        if self.given is not None:
            return self.given
        changes = dict.fromkeys(self.deleted, -1)
        changes.update(dict.fromkeys(self.inserted, 1))
        return changes

    def prepared(self) -> tuple[list[Row], Columns, np.ndarray] | None:
        """``changes()`` as ``batch.apply_rows`` takes them: rows, columns, signs (None:
        no columns); a large change is then applied without making its columns again."""
        if self.columns is None or self.given is not None or self.load is not None:
            return None
        signs = np.ones(len(self.deleted) + len(self.inserted), dtype=np.int64)
        signs[: len(self.deleted)] = -1
        return self.deleted + self.inserted, self.columns, signs

    def deltas(self) -> list[Delta]:
        """The same change as row deltas (deletions first)."""
        table = self.table
        out = [Delta(table, r, -1) for r in self.deleted]
        out += [Delta(table, r, 1) for r in self.inserted]
        return out


def _first_of_each(columns: Columns, at: np.ndarray) -> np.ndarray:
    """The positions ``at`` less those repeating an earlier one's row (input order kept).

    Int columns that pack are one key; others are numbered column by column
    (``np.unique``), the numbers of a row combined into one code per distinct row."""
    if len(at) < 2:
        return at
    picked = [c[at] for c in columns]
    packing = int_packing(picked)
    key = pack_ints(picked, *packing) if packing is not None else None
    if key is None:
        key = np.zeros(len(at), dtype=np.int64)
        for column in picked:
            values, inverse = np.unique(column, return_inverse=True)
            key = key * len(values) + inverse.reshape(-1)
            _, key = np.unique(key, return_inverse=True)  # renumbered: codes stay below n
            key = key.reshape(-1)
    _, first = np.unique(key, return_index=True)  # the first occurrence of each
    if len(first) == len(at):
        return at
    return at[np.sort(first)]


def _match(parts: list[_Part], columns: Columns) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """Which given rows are stored and alive, and for each part which of its positions
    some given row matched; None when a part's columns are of other kinds.

    A source usually lists its rows in the order it listed them last time, which is the
    base's order: the rows are first compared with the base's at the same positions (a
    few passes of ``==``), and only those that differ are searched. A live row is in one
    part only, so each later part is searched for the rows not found yet: the tail and
    the overlay see about the rows that changed, not the whole table."""
    n = len(columns[0])
    kinds = tuple(kind_of(c) for c in columns)
    found = np.zeros(n, dtype=bool)
    matched = []
    for part in parts:
        if part.store.kinds() != kinds:
            return None
        kept = np.zeros(part.store.n, dtype=bool)
        matched.append(kept)
        if len(matched) == 1:
            _aligned(part, columns, found, kept)
        todo = np.flatnonzero(~found) if found.any() else None
        if todo is not None and not len(todo):
            continue
        where = part.store.find_rows(columns if todo is None else [c[todo] for c in columns])
        hit = where >= 0
        if part.dead is not None:
            hit[hit] = ~part.dead[where[hit]]
        found[hit if todo is None else todo[hit]] = True
        kept[where[hit]] = True
    return found, matched


def _aligned(part: _Part, columns: Columns, found: np.ndarray, kept: np.ndarray) -> None:
    """Mark the given rows equal to the part's live row at the same position (when at
    least half of the first column is: else the rows are in another order, and left to
    the search)."""
    m = min(len(found), part.store.n)
    stored = part.store.columns
    same = stored[0][:m] == columns[0][:m]
    if m == 0 or same.sum() * 2 < m:
        return
    for a, b in zip(stored[1:], columns[1:], strict=True):
        same &= a[:m] == b[:m]
    if part.dead is not None:
        same &= ~part.dead[:m]
    found[:m] = same
    kept[:m] = same


def difference(
    stored: StoredTable, columns: Columns, rows: Sequence[Row] | None = None
) -> TableDiff | None:
    """``stored``'s change into the rows of ``columns`` (typed, equal lengths; ``rows``:
    the same rows as the caller's tuples, whose values then enter the engine); None when
    only the row path can tell (a part of mixed kinds, other kinds, another width).

    Rows repeated in the input count once; the inserted ones keep the input's order.
    """
    n = len(columns[0])
    if not stored:
        if not n:
            return TableDiff(stored.table, stored.version, [], [])
        return TableDiff(stored.table, stored.version, None, [], load=columns, rows=rows)
    if stored.arity is not None and len(columns) != stored.arity:
        return None  # the row path raises the engine's error naming the first bad row
    parts = stored._stores()
    if parts is None:
        return None
    if n:
        found_kept = _match(parts, columns)
        if found_kept is None:
            return None
        found, kept = found_kept
    else:
        found, kept = np.zeros(0, dtype=bool), [np.zeros(p.store.n, dtype=bool) for p in parts]
    deleted: list[Row] = []
    pieces: list[Columns] = []  # the deleted rows', then the inserted rows' columns
    overlay_part = parts[-1] if stored.overlay else None
    for part, keep in zip(parts, kept, strict=True):
        gone = ~keep
        if part.dead is not None:
            gone &= ~part.dead
        if not gone.any():
            continue
        at = np.flatnonzero(gone)
        pieces.append([c[at] for c in part.store.columns])
        if part is overlay_part:  # its own tuples, as ``Engine.rows`` gives them
            deleted += compress(stored.overlay, gone.tolist())
        else:
            deleted += as_rows(pieces[-1])
    new = _first_of_each(columns, np.flatnonzero(~found))
    pieces.append([c[new] for c in columns])
    if rows is not None:
        inserted = [tuple(r) for r in map(rows.__getitem__, new.tolist())]
    else:
        inserted = as_rows(pieces[-1])
    return TableDiff(
        stored.table, stored.version, inserted, deleted, columns=_joined(pieces, len(columns))
    )


def _joined(pieces: list[Columns], width: int) -> Columns:
    """Column pieces (of one kind each column) laid end to end."""
    if len(pieces) == 1:
        return pieces[0]
    return [np.concatenate([p[j] for p in pieces]) for j in range(width)]


def patch(
    stored: StoredTable,
    insert: Columns | None,
    delete: Columns | None,
    insert_rows: Sequence[Row] | None = None,
    delete_rows: Sequence[Row] | None = None,
) -> TableDiff | None:
    """The change that inserting ``insert`` and deleting ``delete`` makes to ``stored``, as
    ``Engine.apply`` of the deletions then the insertions makes it (a row in both ends up
    present); None when only the row path can tell. Rows may repeat."""
    ins_n = len(insert[0]) if insert else 0
    del_n = len(delete[0]) if delete else 0
    table, version = stored.table, stored.version
    if not stored:
        if del_n:  # nothing to delete, but the row path checks the rows' width and table
            return None
        if not ins_n:
            return TableDiff(table, version, [], [])
        return TableDiff(table, version, None, [], load=insert, rows=insert_rows)
    if stored.arity is not None and any(
        c is not None and len(c) != stored.arity for c in (insert, delete)
    ):
        return None
    parts = stored._stores()
    if parts is None:
        return None
    inserted: list[Row] = []
    pieces: list[Columns] = []  # the deleted rows', then the inserted rows' columns
    if ins_n:
        assert insert is not None
        found_kept = _match(parts, insert)
        if found_kept is None:
            return None
        new = _first_of_each(insert, np.flatnonzero(~found_kept[0]))
        pieces.append([c[new] for c in insert])
        inserted = (
            [tuple(r) for r in map(insert_rows.__getitem__, new.tolist())]
            if insert_rows is not None
            else as_rows(pieces[-1])
        )
    deleted: list[Row] = []
    if del_n:
        assert delete is not None
        found_kept = _match(parts, delete)
        if found_kept is None:
            return None
        present = found_kept[0]
        if ins_n:  # a row inserted too stays
            assert insert is not None
            if tuple(kind_of(c) for c in insert) != tuple(kind_of(c) for c in delete):
                return None
            also = ColumnStore(insert).find_rows(delete) >= 0
            present &= ~also
        gone = _first_of_each(delete, np.flatnonzero(present))
        pieces.insert(0, [c[gone] for c in delete])
        deleted = (
            [tuple(r) for r in map(delete_rows.__getitem__, gone.tolist())]
            if delete_rows is not None
            else as_rows(pieces[0])
        )
    columns = _joined(pieces, len(pieces[0])) if pieces else None
    return TableDiff(table, version, inserted, deleted, columns=columns)


def row_difference(stored: StoredTable, rows: Iterable[Row]) -> TableDiff:
    """The row path: ``difference`` by Python sets, for values the columns cannot hold
    (it reads the snapshot too: no guard needed)."""
    new = dict.fromkeys(map(tuple, rows))
    old = set(stored.live_rows())
    deleted = [r for r in old if r not in new]
    inserted = [r for r in new if r not in old]
    return TableDiff(stored.table, stored.version, inserted, deleted)


def any_difference(
    stored: StoredTable, rows: Sequence[Row], columns: Columns | None = None
) -> TableDiff:
    """``stored``'s change into ``rows`` (``columns``: their ``rows_to_columns``, if made
    already): in columns where the values allow, else by Python sets. No guard needed."""
    if columns is None:
        columns = rows_to_columns(rows)
    diff = difference(stored, columns, rows) if columns is not None else None
    return diff if diff is not None else row_difference(stored, rows)


# ---------------------------------------------------------------- for the engine


def diff_columns(stored: StoredTable, columns: Sequence[Any]) -> TableDiff:
    """``Engine.diff_columns``: ``any_difference`` for rows given as columns."""
    typed = typed_columns(columns)
    diff = difference(stored, typed) if typed is not None else None
    return diff if diff is not None else row_difference(stored, rows_of(stored.table, columns))


def diff_patch(
    stored: StoredTable,
    relation: Relation | None,
    insert: Sequence[Any] | None,
    delete: Sequence[Any] | None,
) -> TableDiff:
    """``Engine.diff_patch``: ``patch`` where the columns allow, else the row path (which
    hands ``apply`` the whole batch: it checks, and learns a new table's width from, the
    rows a patch deletes too, present or not)."""
    given = [c if c is not None and len(c) and len(c[0]) else None for c in (insert, delete)]
    typed = [typed_columns(c) if c is not None else None for c in given]
    if all(t is not None or c is None for t, c in zip(typed, given, strict=True)):
        diff = patch(stored, *typed)
        if diff is not None:
            return diff
    changes = dict.fromkeys(rows_of(stored.table, delete or ()), -1)
    changes.update(dict.fromkeys(rows_of(stored.table, insert or ()), 1))
    present = relation.__contains__ if relation is not None else lambda _row: False
    inserted = [r for r, s in changes.items() if s > 0 and not present(r)]
    deleted = [r for r, s in changes.items() if s < 0 and present(r)]
    return TableDiff(stored.table, stored.version, inserted, deleted, given=changes)


# ---------------------------------------------------------------- a table's new rows as given


class GivenTable:
    """A table's new whole content as its source gave it: rows (tuples, or lists as JSON
    gives them), columns, or both, made into the other only when needed.

    ``columns`` are typed (``typed_column``) or None when the values are not (the row path
    then decides, without trying the columns again). A push checked set at a time
    (``PushDriver.given``) or a poll read column by column (the ``http`` driver) thus
    reaches the diff without a Python tuple per row; only the rows that changed become
    tuples (``difference``).

    >>> g = GivenTable.of_columns([[1, 2], ["a", "b"]])
    >>> g.columns[0].dtype, g.rows, len(g)
    (dtype('int64'), [(1, 'a'), (2, 'b')], 2)
    """

    __slots__ = ("_rows", "_raw", "columns", "table")

    def __init__(
        self,
        rows: Sequence[Sequence[Any]] | None,
        columns: Columns | None,
        raw: Sequence[Any] | None = None,
        table: str = "",
    ):
        self._rows, self.columns, self._raw, self.table = rows, columns, raw, table

    @classmethod
    def of_rows(cls, rows: Sequence[Sequence[Any]], columns: Columns | None = None) -> GivenTable:
        """Rows, with their ``rows_to_columns`` if made already (None: made here)."""
        return cls(rows, columns if columns is not None else rows_to_columns(rows))

    @classmethod
    def of_columns(cls, columns: Sequence[Any], table: str = "") -> GivenTable:
        """Columns (one list or 1-D array per column); their rows made only if asked for."""
        return cls(None, typed_columns(columns) if columns else None, columns, table)

    @property
    def rows(self) -> list[Row]:
        """The rows as tuples (made once)."""
        rows = self._rows
        if rows is None:
            self._rows = rows_of(self.table, self._raw or ())
        elif not (isinstance(rows, list) and (not rows or type(rows[0]) is tuple)):
            self._rows = list(map(tuple, rows))
        return self._rows  # type: ignore[return-value]

    def __len__(self) -> int:
        if self._rows is not None:
            return len(self._rows)
        if self.columns is not None:
            return len(self.columns[0])
        return len(self.rows)

    def difference(self, stored: StoredTable) -> TableDiff:
        """``stored``'s change into these rows: in columns where typed, else by sets."""
        if self.columns is not None:
            diff = difference(stored, self.columns, self._rows)
            if diff is not None:
                return diff
        return row_difference(stored, self.rows)
