"""Incremental maintenance always equals evaluation from scratch (property-based).

Random stratified programs (joins, negation, recursion, aggregates, arithmetic) take random
batches of row changes and rule removals/additions; after every batch each table must equal
what a fresh engine computes from the final rules and rows, and the deltas returned must be
exactly the difference between the states before and after.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.engine import Delta, Engine, RuleChange, relation, vectorized
from charter.lang.parser import parse
from tests.engine.programs import BASE, batches, programs

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def snapshot(engine: Engine, tables: list[str]) -> dict[str, set[tuple]]:
    return {t: engine.rows(t) if t in engine.tables() else set() for t in tables}


def from_scratch(rules: list, base: dict[str, set[tuple]], tables: list[str]) -> dict:
    fresh = Engine(recompute_fraction=0.0, vectorize_threshold=None)
    fresh.create_policy("p")
    fresh.insert_rules("p", rules)
    for table, rows in base.items():
        fresh.insert_rows(table, rows)
    return snapshot(fresh, tables)


def check_program(
    program,
    batch_list,
    removals,
    recompute_fraction,
    columnar_threshold=50_000,
    vectorize=None,
    batch=None,
):
    engine = Engine(
        recompute_fraction=recompute_fraction,
        columnar_threshold=columnar_threshold,
        vectorize_threshold=vectorize,
        batch_threshold=batch,
    )
    engine.create_policy("p")
    rules = parse(program.text)
    engine.insert_rules("p", rules)
    tables = [f"p:{t}" for g in program.groups for t in g] + [f"p:{b}" for b in BASE]
    base: dict[str, set[tuple]] = {f"p:{b}": set() for b in BASE}
    candidates = list(dict.fromkeys(rules))
    before = snapshot(engine, tables)
    for n, batch in enumerate(batch_list):
        changes: list = []
        for table, row, sign in batch:
            changes.append(Delta(f"p:{table}", row, sign))
            if sign > 0:
                base[f"p:{table}"].add(row)
            else:
                base[f"p:{table}"].discard(row)
        if n < len(removals) and removals[n] is not None:
            rule = candidates[removals[n] % len(candidates)]  # toggle one rule
            sign = -1 if rule in engine.rules("p") else +1
            changes.append(RuleChange("p", rule, sign))
        result = engine.apply(changes)
        after = snapshot(engine, tables)
        expected = from_scratch(engine.rules("p"), base, tables)
        assert after == expected, f"after batch {n}: {batch}"
        for table in tables:
            got = result.get(table)
            inserted = after[table] - before[table]
            deleted = before[table] - after[table]
            assert (got.inserted if got else set()) == inserted, table
            assert (got.deleted if got else set()) == deleted, table
        before = after


@SETTINGS
@given(programs(), batches, st.lists(st.none() | st.integers(0, 20), max_size=4))
def test_incremental_equals_scratch(program, batch_list, removals):
    check_program(program, batch_list, removals, recompute_fraction=float("inf"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), batches)
def test_mixed_paths_equal_scratch(program, batch_list):
    """With the default threshold, strata switch between incremental and whole re-evaluation."""
    check_program(program, batch_list, [], recompute_fraction=0.3)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), batches, st.lists(st.none() | st.integers(0, 20), max_size=4))
def test_columnar_relations_equal_scratch(program, batch_list, removals):
    """Every table built by bulk work is columnar (base + overlay); results must not change."""
    saved, relation.HASH_LIMIT = relation.HASH_LIMIT, 0  # no hash indexes: sorted searches
    try:
        check_program(program, batch_list, removals, recompute_fraction=0.3, columnar_threshold=1)
    finally:
        relation.HASH_LIMIT = saved


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), batches, st.lists(st.none() | st.integers(0, 20), max_size=4))
def test_vectorized_path_equals_python(program, batch_list, removals):
    """Whole evaluations in DuckDB (then incremental updates in Python) equal Python's.

    SQL recursion is cut after 2 rounds so the Python finish of a fixpoint is covered too.
    """
    saved, vectorized.MAX_SQL_ROUNDS = vectorized.MAX_SQL_ROUNDS, 2
    try:
        check_program(
            program, batch_list, removals, recompute_fraction=0.3, columnar_threshold=1, vectorize=0
        )
    finally:
        vectorized.MAX_SQL_ROUNDS = saved


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    programs(),
    batches,
    st.lists(st.none() | st.integers(0, 20), max_size=4),
    st.booleans(),
    st.booleans(),
)
def test_batch_path_equals_scratch(program, batch_list, removals, hashed, long_tail):
    """Every batch set at a time (``batch.py``): row changes kept in columns (dead marks,
    appended tails, merged or not), delta rules of non-recursive strata over columns;
    with and without hash indexes."""
    saved = relation.HASH_LIMIT, relation.TAIL_FRACTION
    relation.HASH_LIMIT = saved[0] if hashed else 0
    relation.TAIL_FRACTION = 1000.0 if long_tail else saved[1]
    try:
        check_program(
            program,
            batch_list,
            removals,
            recompute_fraction=float("inf"),
            columnar_threshold=1,
            batch=0,
        )
    finally:
        relation.HASH_LIMIT, relation.TAIL_FRACTION = saved
