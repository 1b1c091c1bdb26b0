"""Incremental maintenance of one stratum from its inputs' deltas.

Non-recursive strata use *counting*: each row keeps its number of derivations, and for a
rule ``h :- L1, ..., Ln`` the change in derivations is the sum over each literal ``Li``
with a delta of ``L1..L(i-1) (old) x delta(Li) x L(i+1)..Ln (new)``, so a deletion costs
what the deleted row joins with, never a re-derivation.

Recursive strata use *delete and re-derive* (DRed): over-delete everything derivable
through a lost input (in the old state), take it out, put back what still has a
derivation in the new state, then add what the gained inputs derive, semi-naively.

A literal's delta is a positive table's gained/lost rows, a negated table's keys whose
truth flipped, or an aggregate's groups whose value changed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Container, Iterable
from functools import cache

from charter.engine.batch import Fallback, apply_counts, delta_counts
from charter.engine.batch_delta import BatchDelta
from charter.engine.evaluate import insert_to_fixpoint, sizer
from charter.engine.execute import (
    State,
    aggregate_seeds,
    atom_seeds,
    head_seeds,
    negation_seeds,
    run,
)
from charter.engine.plan import AggregateSeed, AtomSeed, NegationSeed, Plan
from charter.engine.planner import HEAD
from charter.engine.program import CompiledRule, Stratum
from charter.lang.errors import EngineError


def literal_seeds(plan: Plan, state: State) -> tuple[list[tuple], list[tuple]]:
    """Bindings where the plan's seed literal became true (+) and stopped being true (-)."""
    seed = plan.seed
    if isinstance(seed, AtomSeed):
        delta = state.batch.get(seed.table)
        if not delta:
            return [], []
        return atom_seeds(seed, delta.plus), atom_seeds(seed, delta.minus)
    if isinstance(seed, NegationSeed):
        return negation_seeds(seed, state)
    if isinstance(seed, AggregateSeed):
        return aggregate_seeds(seed, state)
    raise TypeError(seed)


def _changed_inputs(compiled: CompiledRule, changed: set[str]) -> list[tuple[int, str]]:
    return [(i, table) for i, table in compiled.inputs() if table in changed]


@cache
class _Before:
    """The literals a delta rule for literal ``i`` reads in their old version: those before
    it (a test, not a set: a rule of n literals has n delta rules)."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __contains__(self, literal: object) -> bool:
        return literal < self.i  # type: ignore[operator]


def _copy(stratum: Stratum, state: State) -> BatchDelta | None:
    """A stratum copying one table (a facts table, an aggregate's bindings) takes that
    table's delta as its own, without running the rule; None when it is not one, or the
    delta is large (set at a time is faster then)."""
    if len(stratum.rules) != 1:
        return None
    (table,) = stratum.tables
    source = stratum.rules[0].copies
    delta = state.batch.get(source) if source is not None else None
    threshold = state.batch_threshold
    if delta is None or (threshold is not None and delta.size() >= threshold):
        return None
    relation = state.relation(table)
    relation.discard_many(delta.minus)
    for row in delta.plus:
        relation.add(row)
    return BatchDelta(set(delta.plus), set(delta.minus))


def _cancel(plus: list[tuple], minus: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """Seeds gained and lost with one binding cancel: an updated row arrives as its old
    version lost and its new one gained, and a rule that reads only columns the update
    kept derives exactly what it derived before."""
    gained = Counter(plus)
    gained.subtract(minus)
    if len(gained) == len(plus) + len(minus):  # nothing in common
        return plus, minus
    return list(gained.elements()), list((-gained).elements())


def _derivations(
    plan: Plan, seeds: list[tuple], state: State, old: Container[int], compiled: CompiledRule
) -> Iterable[tuple[tuple, int]]:
    """The head rows the plan derives from ``seeds``, each with how many times.

    Seeds repeat when the changed rows differ only in columns the rule does not use (the
    ``y`` of ``reach(x, _)``: a cut in a hierarchy removes many rows of each ``x``). A
    plan's output is the union of each seed's, so a repeated seed is run once and its
    rows counted as often as it repeats."""
    if len(seeds) >= 8:
        distinct = Counter(seeds)
        if len(distinct) * 2 <= len(seeds):
            return [
                (row, n)
                for seed, n in distinct.items()
                for row in run(plan, [seed], state, old, compiled.stats)
            ]
    rows = run(plan, seeds, state, old, compiled.stats)
    if len(rows) < 8:
        return [(row, 1) for row in rows]
    return Counter(rows).items()  # counted in C: a counted scan repeats its rows


def update_counting(stratum: Stratum, state: State, changed: set[str]) -> BatchDelta:
    """Apply the inputs' deltas to a non-recursive stratum (one table); return its delta."""
    (table,) = stratum.tables
    copied = _copy(stratum, state)
    if copied is not None:
        return copied
    size = sizer(state)
    counts: dict[tuple, int] = defaultdict(int)
    found: list = []  # head changes found set at a time (batch.py)
    threshold = state.batch_threshold
    batch = state.batch
    for compiled in stratum.rules:
        for i, input_table in compiled.inputs():
            if input_table not in changed:
                continue
            plan = compiled.plan(i, size)
            delta = batch.get(input_table)
            if threshold is not None and delta is not None and delta.size() >= threshold:
                try:  # a large delta: set at a time
                    changes = delta_counts(compiled, i, plan.order, state)
                    if changes is not None:
                        found.append(changes)
                    continue
                except Fallback:
                    pass
            plus, minus = literal_seeds(plan, state)
            if plus and minus:
                plus, minus = _cancel(plus, minus)
            for seeds, sign in ((plus, 1), (minus, -1)):
                if seeds:
                    for row, n in _derivations(plan, seeds, state, _Before(i), compiled):
                        counts[row] += sign * n
    relation = state.relation(table)
    if found:
        applied = apply_counts(relation, found, counts)
        if applied is not None:
            return applied
        for columns, changes in found:
            rows = zip(*(c.tolist() for c in columns), strict=True)
            for row, change in zip(rows, changes.tolist(), strict=True):
                counts[row] += change
    delta = BatchDelta()
    for row, change in counts.items():
        if not change:
            continue
        before = relation.count(row)
        after = before + change
        if after < 0:
            raise EngineError(f"internal error: {table}{row} would have {after} derivations")
        if before == 0:
            relation.add(row, after)
            delta.plus.add(row)
        elif after == 0:
            relation.discard(row)
            delta.minus.add(row)
        else:
            relation.set_count(row, after)
    return delta


def update_recursive(
    stratum: Stratum, state: State, changed: set[str], limit: float = float("inf")
) -> dict[str, BatchDelta] | None:
    """Apply the inputs' deltas to a recursive stratum by delete and re-derive.

    Over-deletion can reach far (one edge cut near the sources of a reachability); once it
    passes ``limit`` rows, nothing has been changed yet and None says: re-evaluate whole.
    """
    size = sizer(state)
    tables = stratum.tables
    relations = {t: state.relation(t) for t in tables}
    lower = [
        (compiled, i)
        for compiled in stratum.rules
        for i, table in _changed_inputs(compiled, changed)
        if table not in tables
    ]
    everything_old = {c: frozenset(range(len(c.rule.body))) for c in stratum.rules}

    # 1. Over-delete: all that the old state derives through a lost input.
    deleted: dict[str, set[tuple]] = defaultdict(set)
    frontier: dict[str, list[tuple]] = defaultdict(list)
    gains: list[tuple[CompiledRule, Plan, list[tuple]]] = []
    for compiled, i in lower:
        plan = compiled.plan(i, size)
        plus, minus = literal_seeds(plan, state)
        if plus:
            gains.append((compiled, plan, plus))
        if not minus:
            continue
        gone = deleted[compiled.head]
        for row in run(plan, minus, state, everything_old[compiled], compiled.stats):
            if row not in gone:  # derived from the old state: in the relation (still old)
                gone.add(row)
                frontier[compiled.head].append(row)
    recursive_inputs = [
        (compiled, i, table)
        for compiled in stratum.rules
        for i, table in compiled.inputs()
        if table in tables
    ]
    while any(frontier.values()):
        if sum(len(rows) for rows in deleted.values()) > limit:
            return None
        next_frontier: dict[str, list[tuple]] = defaultdict(list)
        for compiled, i, table in recursive_inputs:
            rows = frontier.get(table)
            if not rows:
                continue
            plan = compiled.plan(i, size)
            seeds = atom_seeds(plan.seed, rows)  # type: ignore[arg-type]
            gone = deleted[compiled.head]
            for row in run(plan, seeds, state, everything_old[compiled], compiled.stats):
                if row not in gone:
                    gone.add(row)
                    next_frontier[compiled.head].append(row)
        frontier = next_frontier

    # 2. Take the over-deleted rows out.
    for table, rows in deleted.items():
        relations[table].discard_many(rows)

    # 3. Re-derive: put back what still has a derivation in the new state.
    restart: dict[str, list[tuple]] = defaultdict(list)
    for compiled in stratum.rules:
        gone = deleted.get(compiled.head)
        if not gone:
            continue
        plan = compiled.plan(HEAD, size)
        seeds = head_seeds(plan.seed, gone)  # type: ignore[arg-type]
        relation = relations[compiled.head]
        for row in run(plan, seeds, state, frozenset(), compiled.stats):
            if row not in relation:
                relation.add(row)
                restart[compiled.head].append(row)

    # 4. Insert what gained inputs derive, then propagate everything new.
    for compiled, plan, plus in gains:
        relation = relations[compiled.head]
        for row in run(plan, plus, state, frozenset(), compiled.stats):
            if row not in relation:
                relation.add(row)
                restart[compiled.head].append(row)
    added = insert_to_fixpoint(stratum, state, restart)

    deltas = {}
    for table in tables:
        gone, back = deleted.get(table, set()), added.get(table, set())
        deltas[table] = BatchDelta(back - gone, gone - back)
    return deltas
