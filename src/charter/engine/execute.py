"""Runs plans: a list of bindings goes through the steps, one step at a time.

Breadth-first (the whole list through one step, then the next) keeps the Python work to
one tight loop per step. A step reads its table's *old* version (before the batch) when
its literal is in ``old``; otherwise the current one.

A builtin or comparison that raises on a binding makes that literal false for it; the
error is counted against the rule (``RuleStats``), never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from typing import Any

from charter.engine.batch_delta import BatchDelta
from charter.engine.columnar import ColumnStore
from charter.engine.plan import (
    Absent,
    AggregateLookup,
    AggregateSeed,
    Assign,
    AtomSeed,
    Call,
    HeadSeed,
    NegationSeed,
    Plan,
    Scan,
    Test,
)
from charter.engine.relation import Relation
from charter.lang.builtins import BUILTINS, COMPARISONS, call_builtin

MISSING = object()


@dataclass
class RuleStats:
    """Errors raised by builtins or comparisons while evaluating one rule."""

    errors: int = 0
    last_error: str | None = None

    def record(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"


@dataclass
class State:
    """What plans read: relations, this batch's deltas, and aggregate values."""

    relations: dict[str, Relation] = field(default_factory=dict)
    batch: dict[str, BatchDelta] = field(default_factory=dict)
    aggregates: dict = field(default_factory=dict)  # table -> AggregateState
    columnar_threshold: int = 50_000  # relations this large from bulk work become columnar
    vectorize_threshold: int | None = 5_000  # strata reading this many rows go to DuckDB
    batch_threshold: int | None = 1_000  # deltas this large are applied set at a time
    _duckdb: object = None

    def duckdb(self):
        """The DuckDB connection of the bulk path, opened on first use."""
        if self._duckdb is None:
            import duckdb

            self._duckdb = duckdb.connect(":memory:")
            self._duckdb.execute("SET enable_progress_bar = false")
        return self._duckdb

    def freeze(self, relation: Relation) -> Relation:
        """Install a freshly built relation, as columns when it is large and typed."""
        if (
            relation.base is None
            and not relation.dead
            and len(relation.rows) >= self.columnar_threshold
        ):
            store = ColumnStore.from_rows(list(relation.rows), list(relation.rows.values()))
            if store is not None:
                relation = Relation.from_store(relation.name, store)
        self.relations[relation.name] = relation
        return relation

    def relation(self, table: str) -> Relation:
        rel = self.relations.get(table)
        if rel is None:
            rel = self.relations[table] = Relation(table)
        return rel

    def delta(self, table: str, old: bool) -> BatchDelta | None:
        if not old:
            return None
        delta = self.batch.get(table)
        return delta if delta else None


def _scan(step: Scan, bindings: list[tuple], state: State, old: bool) -> list[tuple]:
    rel = state.relation(step.table)
    delta = state.delta(step.table, old)
    if delta is None and not rel.rows and rel.base is None:  # empty (a facts table)
        return []
    if step.full:  # every column bound: keep the bindings whose row is there
        row = step.key
        if delta is not None:
            return [b for b in bindings if delta.old_contains(rel, row(b))]
        if rel.base is None:
            return [b for b in bindings if row(b) in rel]
        found = rel.contains_many([row(b) for b in bindings])
        return [b for b, there in zip(bindings, found, strict=True) if there]
    out: list[tuple] = []
    append = out.append
    extend, same = step.out, step.same
    if not step.columns:
        rows = list(delta.old_rows(rel)) if delta else list(rel)
        if same:
            rows = [r for r in rows if all(r[a] == r[b] for a, b in same)]
        values = [extend(r) for r in rows]
        for b in bindings:
            for v in values:
                append(b + v)
        return out
    key, columns = step.key, step.columns
    if step.counted:  # each binding once per matching row: count them, make none
        if delta is not None:
            count = _remembered(lambda k: delta.old_count(rel, columns, k), len(bindings))
        else:
            count = _remembered(lambda k: rel.count_key(columns, k), len(bindings))
        for b in bindings:
            n = count(key(b))
            if n:
                out += [b] * n
        return out
    if delta is not None:
        old = _remembered(lambda k: delta.old_bucket(rel, columns, k), len(bindings))
        for b in bindings:
            for r in old(key(b)):
                if not same or all(r[x] == r[y] for x, y in same):
                    append(b + extend(r))
        return out
    get = rel.getter(columns)
    if rel.base is not None:  # a column store's look-up builds its rows each time
        get = _remembered(get, len(bindings))
    for b in bindings:
        bucket = get(key(b))
        if bucket:
            if same:
                for r in bucket:
                    if all(r[x] == r[y] for x, y in same):
                        append(b + extend(r))
            else:
                for r in bucket:
                    append(b + extend(r))
    return out


def _remembered(get: Callable[[Any], Any], calls: int) -> Callable[[Any], Any]:
    """``get`` remembering its answers, for one step over ``calls`` bindings.

    Bindings of one step often share their key: a recursive rule's frontier moves up a
    tree in step, so every row of a round looks up the same parent. The relation does not
    change during a step, so a step's answers can be reused within it."""
    if calls < 2:
        return get
    answers: dict[Any, Any] = {}

    def remembered(key: Any) -> Any:
        rows = answers.get(key, MISSING)
        if rows is MISSING:
            rows = answers[key] = get(key)
        return rows

    return remembered


def _absent(step: Absent, bindings: list[tuple], state: State, old: bool) -> list[tuple]:
    rel = state.relation(step.table)
    delta = state.delta(step.table, old)
    key = step.key
    if delta is not None:
        if step.full:
            return [b for b in bindings if not delta.old_contains(rel, key(b))]
        return [b for b in bindings if not delta.old_bucket(rel, step.columns, key(b))]
    if step.full:
        rows = rel.rows if rel.base is None else rel
        return [b for b in bindings if key(b) not in rows]
    if rel.base is None or (not rel.rows and not rel.dead):
        get = rel.getter(step.columns)  # a plain hash look-up
        return [b for b in bindings if not get(key(b))]
    columns, has = step.columns, rel.has
    return [b for b in bindings if not has(columns, key(b))]


def _call(step: Call, bindings: list[tuple], stats: RuleStats) -> list[tuple]:
    builtin = BUILTINS[step.name]
    inputs, outputs = step.inputs, step.outputs
    out: list[tuple] = []
    for b in bindings:
        try:
            result = call_builtin(builtin, inputs(b))
        except Exception as exc:  # a builtin failing on a row makes the literal false
            stats.record(exc)
            continue
        if result is None:
            if step.negated:
                out.append(b)
            continue
        extended = b
        ok = True
        for expected, value in zip(outputs, result, strict=True):
            if expected is None:
                extended = extended + (value,)
            elif expected(extended) != value:
                ok = False
                break
        if step.negated:
            if not ok:
                out.append(b)
        elif ok:
            out.append(extended)
    return out


def _test(step: Test, bindings: list[tuple], stats: RuleStats) -> list[tuple]:
    op, left, right = COMPARISONS[step.op], step.left, step.right
    out = []
    for b in bindings:
        try:
            if op(left(b), right(b)):
                out.append(b)
        except Exception as exc:
            stats.record(exc)
    return out


def _assign(step: Assign, bindings: list[tuple], stats: RuleStats) -> list[tuple]:
    value = step.value
    out = []
    for b in bindings:
        try:
            out.append(b + (value(b),))
        except Exception as exc:
            stats.record(exc)
    return out


def _aggregate(
    step: AggregateLookup, bindings: list[tuple], state: State, old: bool
) -> list[tuple]:
    aggregate = state.aggregates[step.table]
    key, result = step.key, step.result
    if step.unused:
        return [b for b in bindings if aggregate.value(key(b), old) is not None]
    out = []
    for b in bindings:
        value = aggregate.value(key(b), old)
        if value is None:
            continue
        if result is None:
            out.append(b + (value,))
        elif result(b) == value:
            out.append(b)
    return out


def run(
    plan: Plan,
    bindings: list[tuple],
    state: State,
    old: Container[int] = frozenset(),
    stats: RuleStats | None = None,
) -> list[tuple]:
    """Push ``bindings`` through the plan's steps; return the head rows (with repeats)."""
    stats = stats if stats is not None else RuleStats()
    for step in plan.steps:
        if not bindings:
            return []
        kind = type(step)
        if kind is Scan:
            bindings = _scan(step, bindings, state, step.lit in old)
        elif kind is Absent:
            bindings = _absent(step, bindings, state, step.lit in old)
        elif kind is Test:
            bindings = _test(step, bindings, stats)
        elif kind is Assign:
            bindings = _assign(step, bindings, stats)
        elif kind is Call:
            bindings = _call(step, bindings, stats)
        else:
            bindings = _aggregate(step, bindings, state, step.lit in old)
    head = plan.head
    return [head(b) for b in bindings]


# ---------------------------------------------------------------- seeds


def _matches(row: tuple, consts, same) -> bool:
    for col, value in consts:
        if row[col] != value:
            return False
    return all(row[a] == row[b] for a, b in same)


def _seeds(out, consts, same, rows: Iterable[tuple]) -> list[tuple]:
    """``out`` of the rows that hold ``consts`` and whose ``same`` columns are equal."""
    if not consts and not same:
        return [out(r) for r in rows]
    if not consts and len(same) == 1:  # ``reach(x, x)``: one comparison, no generator
        ((a, b),) = same
        return [out(r) for r in rows if r[a] == r[b]]
    return [out(r) for r in rows if _matches(r, consts, same)]


def atom_seeds(seed: AtomSeed, rows: Iterable[tuple]) -> list[tuple]:
    """Bindings from rows of the seed literal's table."""
    return _seeds(seed.out, seed.consts, seed.same, rows)


def head_seeds(seed: HeadSeed, rows: Iterable[tuple]) -> list[tuple]:
    """Bindings of head variables from head rows (rows the head cannot produce are skipped)."""
    return _seeds(seed.out, seed.consts, seed.same, rows)


def negation_seeds(seed: NegationSeed, state: State) -> tuple[list[tuple], list[tuple]]:
    """Bindings for which ``not table(...)`` became true (+) or false (-) in this batch."""
    rel = state.relation(seed.table)
    delta = state.batch.get(seed.table)
    if not delta:
        return [], []
    touched: dict = {}
    for row in (*delta.plus, *delta.minus):
        if _matches(row, seed.consts, seed.same):
            touched.setdefault(seed.row_key(row), row)
    plus, minus = [], []
    for key, row in touched.items():
        now = rel.has(seed.columns, key)
        before = bool(delta.old_bucket(rel, seed.columns, key))
        if before and not now:
            plus.append(seed.out(row))
        elif now and not before:
            minus.append(seed.out(row))
    return plus, minus


def aggregate_seeds(seed: AggregateSeed, state: State) -> tuple[list[tuple], list[tuple]]:
    """Bindings (group key + value) for aggregate groups whose value changed."""
    aggregate = state.aggregates[seed.table]
    plus, minus = [], []
    for key, (before, after) in aggregate.changes().items():
        binding = () if seed.width == 0 else (key,) if seed.width == 1 else key
        if before is not None:
            minus.append(binding + (before,))
        if after is not None:
            plus.append(binding + (after,))
    return plus, minus
