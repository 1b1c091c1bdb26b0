"""Full evaluation of a stratum from scratch, and the semi-naive insertion loop.

A non-recursive stratum counts each row's derivations; a recursive one iterates to a
fixpoint, each round joining only the rows the previous round added (semi-naive), in a
loop, so a chain of 100,000 edges is 100,000 rounds, not 100,000 nested calls.
"""

from __future__ import annotations

from collections import defaultdict

from charter.engine.execute import State, atom_seeds, run
from charter.engine.program import Stratum
from charter.engine.relation import Relation
from charter.lang.ast import Atom


def sizer(state: State):
    """Table sizes for the planner, read from the current state."""
    relations = state.relations

    def size(table: str) -> int:
        rel = relations.get(table)
        return len(rel) if rel is not None else 0

    return size


def evaluate_stratum(stratum: Stratum, state: State) -> None:
    """Recompute the stratum's tables into fresh relations installed in ``state``."""
    size = sizer(state)
    threshold = state.vectorize_threshold
    if threshold is not None:
        inputs = {t for c in stratum.rules for _, t in c.inputs()} - stratum.tables
        if sum(size(t) for t in inputs) >= threshold:
            from charter.engine.vectorized import evaluate_sql

            if evaluate_sql(stratum, state, state.duckdb()):
                return
    if not stratum.recursive:
        for table in stratum.tables:
            counts: dict[tuple, int] = {}
            get = counts.get
            for compiled in stratum.rules:
                if compiled.head != table:
                    continue
                plan = compiled.plan(None, size)
                for row in run(plan, [()], state, stats=compiled.stats):
                    counts[row] = get(row, 0) + 1
            state.freeze(Relation.from_counts(table, counts))
        return
    for table in stratum.tables:
        state.relations[table] = Relation(table)
    frontier: dict[str, list[tuple]] = defaultdict(list)
    for compiled in stratum.rules:
        relation = state.relations[compiled.head]
        for row in run(compiled.plan(None, size), [()], state, stats=compiled.stats):
            if row not in relation:
                relation.add(row)
                frontier[compiled.head].append(row)
    insert_to_fixpoint(stratum, state, frontier)
    for table in stratum.tables:
        state.freeze(state.relations[table])


def insert_to_fixpoint(
    stratum: Stratum, state: State, frontier: dict[str, list[tuple]]
) -> dict[str, set[tuple]]:
    """Semi-naive: join each round's new rows of the stratum's tables until nothing is new.

    The rows in ``frontier`` must already be in their relations. Returns every row added.
    """
    size = sizer(state)
    added: dict[str, set[tuple]] = defaultdict(set)
    for table, rows in frontier.items():
        added[table].update(rows)
    recursive_inputs = [
        (compiled, i, table)
        for compiled in stratum.rules
        for i, table in compiled.inputs()
        if table in stratum.tables and isinstance(compiled.rule.body[i], Atom)
    ]
    while any(frontier.values()):
        next_frontier: dict[str, list[tuple]] = defaultdict(list)
        for compiled, i, table in recursive_inputs:
            rows = frontier.get(table)
            if not rows:
                continue
            plan = compiled.plan(i, size)
            seeds = atom_seeds(plan.seed, rows)  # type: ignore[arg-type]
            relation = state.relations[compiled.head]
            new = next_frontier[compiled.head]
            for row in run(plan, seeds, state, stats=compiled.stats):
                if row not in relation:
                    relation.add(row)
                    new.append(row)
        for table, rows in next_frontier.items():
            added[table].update(rows)
        frontier = next_frontier
    return added
