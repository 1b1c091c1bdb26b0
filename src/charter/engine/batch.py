"""Large batches, set at a time: bulk row changes and counting delta rules over columns.

A poll of a datasource changes thousands of rows at once. Row by row, each change costs a
few microseconds of Python per look-up (a sorted search in a columnar base is 5-10), and the
delta rules of a non-recursive stratum do several look-ups per changed row. Here the same
work runs on NumPy arrays over the relations' columns and sorted indexes, so that Python
work is per batch, not per row:

- ``apply_rows``: a table's row changes, found in its columns with one sorted search,
  applied with ``Relation.apply_batch`` (dead marks; new rows to the tail).
- ``delta_counts``: one counting delta rule (``incremental.py``): the literal's delta
  (``+1`` for rows gained, ``-1`` for rows lost) joined with the other literals, those
  before it read as they were before the batch, those after as they are now. Bindings are
  columns, one array per variable, plus each binding's sign. A relation is read as *parts*,
  each a column store with a sign: now = the live rows of base and tail, and the overlay;
  before the batch = now - rows gained + rows lost (exact, since counts are summed with
  their signs). A negated literal holds for a binding when the parts' signed match
  counts sum to 0. Joins search the parts' sorted indexes, the keys sorted once.
- ``apply_counts``: the head rows' signed counts summed per row, applied to the table set
  at a time (``Relation.change_counts``), as the Python path would one by one.

Both paths give the same tables and deltas (the differential test runs every batch
through here). What NumPy would compute differently from Python makes a delta rule raise
``Fallback``, and the caller runs it in Python: builtins, aggregates, arithmetic,
comparisons between ints and floats (precision) or ordering across kinds (Python counts
the error), columns of mixed kinds.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from charter.engine.batch_delta import BatchDelta
from charter.engine.columnar import (
    ColumnStore,
    NotColumnar,
    SearchKeys,
    column_array,
    int_packing,
    kind_of,
    pack_ints,
)
from charter.engine.execute import State
from charter.engine.program import CompiledRule
from charter.engine.relation import Relation
from charter.lang.ast import Atom, Comparison, Constant, Expr, Modal, Negation, Variable

Row = tuple
_COMPARE: dict[str, Callable] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
}
_DTYPES = {"i": np.int64, "f": np.float64, "s": object}


class Fallback(Exception):
    """This delta rule (or batch of rows) must go through the Python path."""


# ---------------------------------------------------------------- row changes


def row_columns(rows: Sequence[Row]) -> list[np.ndarray] | None:
    """Rows as typed columns (ints, floats or strings), None when they do not fit."""
    if not rows or not rows[0]:
        return None
    columns = []
    for j in range(len(rows[0])):  # no object per row (``zip(*rows)`` makes one each)
        array = column_array(list(map(itemgetter(j), rows)))
        if array is None:
            return None
        columns.append(array)
    return columns


#: A batch's rows as the rows (``list(changes)``), their columns and their signs.
PreparedRows = tuple[list[Row], list[np.ndarray], np.ndarray]


def apply_rows(
    relation: Relation, changes: dict[Row, int], prepared: PreparedRows | None = None
) -> BatchDelta | None:
    """Apply a base table's net row changes (row -> sign) set at a time; return its delta,
    or None (nothing done) when the rows do not fit the relation's columns. ``prepared``:
    the same changes as columns already (``column_diff``), not made again from the rows."""
    found = prepared if prepared is not None else _as_columns(changes)
    if found is None:
        return None
    rows, columns, signs = found
    changed = relation.apply_batch(rows, columns, signs)
    return None if changed is None else _delta_of(rows, columns, *changed)


def _as_columns(changes: dict[Row, int]) -> PreparedRows | None:
    """Rows -> numbers as the rows, their columns and the numbers (None: not columnar)."""
    rows = list(changes)
    columns = row_columns(rows)
    if columns is None:
        return None
    return rows, columns, np.fromiter(changes.values(), dtype=np.int64, count=len(rows))


def _delta_of(
    rows: list[Row], columns: list[np.ndarray], inserted: np.ndarray, deleted: np.ndarray
) -> BatchDelta:
    """The batch delta of the rows (also as columns) at the indexes that came and went."""
    row = rows.__getitem__
    return BatchDelta.of_lists(
        list(map(row, inserted.tolist())),
        list(map(row, deleted.tolist())),
        _subset(columns, inserted),
        _subset(columns, deleted),
    )


def _subset(columns: list[np.ndarray], index: np.ndarray) -> ColumnStore | None:
    return ColumnStore([c[index] for c in columns]) if len(index) else None


# ---------------------------------------------------------------- bindings as columns


@dataclass
class _Part:
    """Rows of one version of a relation: a column store, its dead rows, a sign."""

    store: ColumnStore
    dead: np.ndarray | None
    sign: int


class _Frame:
    """Bindings as columns: variable -> array (one element per binding), and signs."""

    __slots__ = ("columns", "sign")

    def __init__(self, columns: dict[str, np.ndarray], sign: np.ndarray):
        self.columns = columns
        self.sign = sign

    @classmethod
    def unit(cls) -> _Frame:
        """The one empty binding a delta rule starts from."""
        return cls({}, np.ones(1, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.sign)

    def take(self, index: np.ndarray) -> _Frame:
        return _Frame({v: c[index] for v, c in self.columns.items()}, self.sign[index])


def _concat(frames: list[_Frame], names: list[str]) -> _Frame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _Frame({}, np.zeros(0, dtype=np.int64))
    if len(frames) == 1:
        return frames[0]
    columns = {}
    for name in names:
        arrays = [f.columns[name] for f in frames]
        if len({kind_of(a) for a in arrays}) > 1:
            raise Fallback(f"variable {name} takes values of several kinds")
        columns[name] = np.concatenate(arrays)
    return _Frame(columns, np.concatenate([f.sign for f in frames]))


def _value_kind(value: object) -> str:
    if isinstance(value, bool):
        raise Fallback("boolean constant")
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise Fallback("integer beyond 64 bits")
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    raise Fallback(f"constant {value!r}")


def _full(value: object, kind: str, n: int) -> np.ndarray:
    return np.full(n, value, dtype=_DTYPES[kind])


def _same_kind(a: str, b: str) -> bool:
    """Whether values of kinds ``a`` and ``b`` can be equal; ints against floats are left
    to Python (NumPy would compare them as floats)."""
    if a == b:
        return True
    if a != "s" and b != "s":
        raise Fallback("ints compared with floats")
    return False


# ---------------------------------------------------------------- relations as parts


def _current(state: State, table: str) -> list[_Part]:
    relation = state.relations.get(table)
    if relation is None:
        return []
    parts = []
    if relation.base is not None:
        masks = relation.dead_masks()
        for store, mask in zip(relation.stores(), masks, strict=False):
            if store.n:
                parts.append(_Part(store, mask if mask.any() else None, 1))
    overlay = relation.overlay_store()
    if overlay is not None:
        parts.append(_Part(overlay, None, 1))
    return parts


def _delta_part(delta: BatchDelta, plus: bool, sign: int) -> list[_Part]:
    store = delta.store(plus)
    return [_Part(store, None, sign)] if store is not None else []


def _parts(state: State, table: str, old: bool) -> list[_Part]:
    """The table now, or (``old``) as it was before the batch."""
    delta = state.batch.get(table) if old else None
    if not delta:
        return _current(state, table)
    lost = _delta_part(delta, False, 1)
    if delta.all_new:  # it was empty: before the batch it held only what it lost
        return lost
    return _current(state, table) + _delta_part(delta, True, -1) + lost


def _changes(state: State, table: str) -> list[_Part]:
    """The table's delta: rows gained (sign +1) and lost (-1)."""
    delta = state.batch.get(table)
    if not delta:
        return []
    gained = _current(state, table) if delta.all_new else _delta_part(delta, True, 1)
    return gained + _delta_part(delta, False, -1)


# ---------------------------------------------------------------- steps


class _Pattern:
    """An atom against the current bindings: its bound terms (the search keys, variables
    first: constants are often flags), the columns a repeated new variable makes equal,
    and the new named variables. The keys are sorted once for all parts."""

    def __init__(self, frame: _Frame, atom: Atom):
        self.n = len(frame)
        self.keys: list[tuple[int, np.ndarray, str]] = []
        constants: list[tuple[int, np.ndarray, str]] = []
        first: dict[str, int] = {}
        self.same: list[tuple[int, int]] = []
        self.new: dict[str, int] = {}
        for j, term in enumerate(atom.args):
            if isinstance(term, Constant):
                kind = _value_kind(term.value)
                constants.append((j, _full(term.value, kind, self.n), kind))
            elif term.name in frame.columns:
                column = frame.columns[term.name]
                self.keys.append((j, column, kind_of(column)))
            elif term.name in first:
                self.same.append((first[term.name], j))
            else:
                first[term.name] = j
                if not term.anonymous:
                    self.new[term.name] = j
        self.keys += constants
        self.columns = tuple(j for j, _, _ in self.keys)
        self.search = SearchKeys(self.keys[0][1]) if self.keys else None

    def matches(self, part: _Part) -> tuple[np.ndarray, np.ndarray] | None:
        """(binding, row position) pairs of the part's live rows that match; None when
        none can (a key of another kind: a string never equals a number)."""
        store = part.store
        kinds = store.kinds()
        for j, _, kind in self.keys:
            if not _same_kind(kind, kinds[j]):
                return None
        if self.keys:
            keys = [k for _, k, _ in self.keys]
            owner, found = store.match(self.columns, keys, self.search)
        else:  # nothing bound: every row, for every binding
            owner = np.repeat(np.arange(self.n), store.n)
            found = np.tile(np.arange(store.n), self.n)
        keep = None
        if part.dead is not None:
            keep = ~part.dead[found]
        for a, b in self.same:
            equal = store.columns[a][found] == store.columns[b][found]
            keep = equal if keep is None else keep & equal
        if keep is not None:
            owner, found = owner[keep], found[keep]
        return owner, found


def _scan(frame: _Frame, atom: Atom, parts: list[_Part]) -> _Frame:
    """Join the bindings with the parts' rows, binding the atom's new named variables."""
    pattern = _Pattern(frame, atom)
    out = []
    for part in parts:
        found = pattern.matches(part)
        if found is None or not len(found[0]):
            continue
        owner, positions = found
        columns = {v: c[owner] for v, c in frame.columns.items()}
        for name, j in pattern.new.items():
            columns[name] = part.store.columns[j][positions]
        sign = frame.sign[owner]
        out.append(_Frame(columns, sign if part.sign > 0 else -sign))
    return _concat(out, [*frame.columns, *pattern.new])


def _exists(frame: _Frame, atom: Atom, parts: list[_Part]) -> np.ndarray:
    """Whether some row of the parts (summed with their signs) matches each binding."""
    pattern = _Pattern(frame, atom)
    total = np.zeros(len(frame), dtype=np.int64)
    for part in parts:
        found = pattern.matches(part)
        if found is not None and len(found[0]):
            total += part.sign * np.bincount(found[0], minlength=len(frame))
    return total > 0


def _net(frame: _Frame) -> _Frame:
    """The bindings with the signs of equal ones summed, those summing to 0 dropped.

    A poll reports an updated row as its old version lost and its new one gained; a rule
    reading only columns the update kept (a server's tenant, not its status) sees the
    same binding lost and gained, which cancel here instead of going through every join
    twice. Bindings of int columns that pack are grouped by one sort of a packed key."""
    sign = frame.sign
    if len(frame) < 2 or not (sign > 0).any() or not (sign < 0).any():
        return frame
    columns, net = _group(list(frame.columns.values()), sign)
    return _Frame(dict(zip(frame.columns, columns, strict=True)), net)


def _negation_seed(atom: Atom, state: State) -> _Frame:
    """Bindings whose ``not atom`` became true (+1) or false (-1) in this batch."""
    table = atom.qualified
    touched = _scan(_Frame.unit(), atom, _changes(state, table))
    if not len(touched):
        return touched
    touched = touched.take(_distinct(list(touched.columns.values()), len(touched))[0])
    touched.sign = np.ones(len(touched), dtype=np.int64)
    now = _exists(touched, atom, _parts(state, table, False))
    before = _exists(touched, atom, _parts(state, table, True))
    flipped = now != before
    touched = touched.take(flipped)
    touched.sign = np.where(before[flipped], 1, -1)
    return touched


def _expression(frame: _Frame, expr: Expr) -> tuple[np.ndarray, str]:
    if isinstance(expr, Constant):
        kind = _value_kind(expr.value)
        return _full(expr.value, kind, len(frame)), kind
    if isinstance(expr, Variable) and expr.name in frame.columns:
        column = frame.columns[expr.name]
        return column, kind_of(column)
    raise Fallback(f"expression {expr}")  # arithmetic: Python's ints do not overflow


def _comparison(frame: _Frame, literal: Comparison) -> _Frame:
    left, right = literal.left, literal.right
    if literal.op == "=":
        for side, other in ((left, right), (right, left)):
            if isinstance(side, Variable) and side.name not in frame.columns:
                value, _ = _expression(frame, other)
                return _Frame({**frame.columns, side.name: value}, frame.sign)
    a, a_kind = _expression(frame, left)
    b, b_kind = _expression(frame, right)
    if _same_kind(a_kind, b_kind):
        keep = np.asarray(_COMPARE[literal.op](a, b), dtype=bool)
        return frame.take(keep)
    if literal.op in ("=", "!="):  # a string and a number: never equal
        return frame if literal.op == "!=" else frame.take(np.zeros(len(frame), dtype=bool))
    raise Fallback("ordering across kinds")  # Python raises, and counts the error


def _distinct(columns: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first index of each distinct row of ``columns``, and each row's group number."""
    if not columns:
        return np.zeros(1 if n else 0, dtype=np.int64), np.zeros(n, dtype=np.int64)
    packing = int_packing(columns)  # int columns that pack: one sort of one key
    key = pack_ints(columns, *packing) if packing is not None else None
    if key is not None:
        _, first, code = np.unique(key, return_index=True, return_inverse=True)
        return first, code.reshape(-1)
    code = np.zeros(n, dtype=np.int64)
    for column in columns:
        values, inverse = np.unique(column, return_inverse=True)
        code = code * len(values) + inverse.reshape(-1)
        _, code = np.unique(code, return_inverse=True)  # renumber: codes stay below n
        code = code.reshape(-1)
    _, first = np.unique(code, return_index=True)
    return first, code


HeadChanges = tuple[list[np.ndarray], np.ndarray]  # distinct head rows as columns, changes


def _group(columns: list[np.ndarray], changes: np.ndarray) -> HeadChanges:
    """The distinct rows of ``columns`` with the sums of their ``changes``, where not 0."""
    first, group = _distinct(columns, len(changes))
    net = np.bincount(group, weights=changes, minlength=len(first)).astype(np.int64)
    at = first[net != 0]
    return [c[at] for c in columns], net[net != 0]


def _head_counts(frame: _Frame, compiled: CompiledRule) -> HeadChanges:
    head = compiled.rule.head
    atom = head.atom if isinstance(head, Modal) else head
    if not atom.args:
        raise Fallback("zero-arity head")
    return _group([_expression(frame, term)[0] for term in atom.args], frame.sign)


def apply_counts(
    relation: Relation, found: list[HeadChanges], counts: dict[Row, int]
) -> BatchDelta | None:
    """Apply the head count changes of a stratum's delta rules, those found set at a time
    and those (``counts``) of the rules run in Python, to its table; return its delta, or
    None (nothing done) when they do not fit its columns."""
    if relation.base is None and len(relation):
        return None
    if counts:
        extra = _as_columns(counts)
        if extra is None:
            return None
        found = [*found, extra[1:]]
    kinds = {tuple(kind_of(c) for c in columns) for columns, _ in found}
    if len(kinds) != 1:
        return None
    columns = [np.concatenate(c) for c in zip(*(f[0] for f in found), strict=True)]
    columns, changes = _group(columns, np.concatenate([f[1] for f in found]))
    if not len(changes):
        return BatchDelta()
    rows = list(zip(*(c.tolist() for c in columns), strict=True))
    applied = relation.change_counts(rows, columns, changes)
    return None if applied is None else _delta_of(rows, columns, *applied)


def delta_counts(
    compiled: CompiledRule, position: int, order: Sequence[int], state: State
) -> HeadChanges | None:
    """The head rows whose derivation count changes through the delta of literal
    ``position``, with the change (None: none): literals before it read as before the
    batch, those after as now, in the planner's ``order``. Raises Fallback for what it
    cannot do."""
    body = compiled.rule.body
    literal = body[position]
    try:
        if isinstance(literal, Atom):
            frame = _net(_scan(_Frame.unit(), literal, _changes(state, literal.qualified)))
        elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
            frame = _negation_seed(literal.atom, state)
        else:
            raise Fallback(f"delta of {literal}")
        for i in order:
            if i == position:
                continue
            if not len(frame):
                return None
            literal = body[i]
            if isinstance(literal, Atom):
                frame = _scan(frame, literal, _parts(state, literal.qualified, i < position))
            elif isinstance(literal, Negation) and isinstance(literal.atom, Atom):
                parts = _parts(state, literal.atom.qualified, i < position)
                frame = frame.take(~_exists(frame, literal.atom, parts))
            elif isinstance(literal, Comparison):
                frame = _comparison(frame, literal)
            else:
                raise Fallback(f"literal {literal}")
        if not len(frame):
            return None
        columns, changes = _head_counts(frame, compiled)
        return (columns, changes) if len(changes) else None
    except NotColumnar as exc:
        raise Fallback(str(exc)) from exc
