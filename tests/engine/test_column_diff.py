"""A table replaced or patched as columns equals the same change as row deltas.

Two engines take the same random changes: one as columns (``replace_columns``,
``patch_columns``, ``replace_rows``, or the split path a service uses: ``stored_table``,
``column_diff.any_difference`` and ``apply_diffs``), the other as row deltas through
``Engine.apply`` (a replace is every stored row deleted and every new row inserted, the
last delta of a row winning). After every change both hold the same rows in every table and
returned the same deltas, or both raised the same error and changed nothing. Random
programs cover the rules (joins, negation, recursion, aggregates) over ints; a fixed policy
covers values of every kind (strings, floats, None, booleans, big ints, kinds mixed in a
column), which the column path must leave to the row path where NumPy would compare them
differently from Python.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.engine import Delta, Engine, relation
from charter.engine.column_diff import (
    any_difference,
    difference,
    rows_to_columns,
    typed_column,
)
from charter.lang.errors import CharterError, DataError, EngineError
from tests.engine.programs import BASE, programs

FIXED = """
j(x, z) :- e0(x, y), e1(y, z)
n(x) :- e0(x, y), not e1(y, _)
c(x, k) :- e1(x, _), k = count : { e0(x, _) }
s(x) :- e1(x, "a")
f(x) :- e0(x, 2.5)
"""
FIXED_TABLES = ["j", "n", "c", "s", "f", "e0", "e1", "e3"]

ints = st.integers(0, 4)
KINDS = {
    "ints": ints,
    "strings": st.sampled_from(["a", "b", "c"]),
    "floats": st.sampled_from([0.5, 2.5, 1.0, 0.0, -0.0]),
    "mixed": ints | st.sampled_from(["a", "b", 2.5, 1.0, None, True, False]),
    "big": st.sampled_from([2**63 - 1, 2**63, 2**64 + 1, 3]),
}


@st.composite
def columns_of(draw, values, width: int = 2):
    """Rows (repeats likely) given as columns: lists, or arrays holding the same values."""
    rows = draw(st.lists(st.tuples(*[values] * width), max_size=10))
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
    if draw(st.booleans()):
        columns = [_array(c) for c in columns]
    return columns


def _array(values: list) -> np.ndarray:
    """An array of exactly these values: typed where they are of one kind, else objects."""
    kinds = {type(v) for v in values}
    if (
        len(kinds) == 1
        and kinds <= {int, float, str}
        and all(type(v) is not int or -(2**63) <= v < 2**63 for v in values)
    ):
        return np.array(values)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _values(column) -> list:
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


def _rows(columns) -> list[tuple]:
    return list(zip(*map(_values, columns), strict=True))


@st.composite
def operations(draw, tables, values, max_size: int = 6):
    """Replaces, patches and whole-table row replaces of random tables; a few with rows
    of the wrong width."""
    ops = []
    for _ in range(draw(st.integers(1, max_size))):
        table = draw(st.sampled_from(tables))
        width = 3 if draw(st.integers(0, 15)) == 0 else 2
        kind = draw(st.sampled_from(["replace", "replace", "patch", "rows", "split"]))
        if kind == "patch":
            insert = draw(st.none() | columns_of(values, width))
            delete = draw(st.none() | columns_of(values, width))
            ops.append((kind, table, insert, delete))
        else:
            ops.append((kind, table, draw(columns_of(values, width)), None))
    return ops


def by_columns(engine: Engine, op) -> dict:
    kind, table, first, second = op
    if kind == "replace":
        return engine.replace_columns({table: first})
    if kind == "patch":
        return engine.patch_columns(table, insert=first, delete=second)
    if kind == "rows":
        return engine.replace_rows(table, _rows(first))
    # the split path: snapshot, difference (either path, no guard needed), then the batch
    stored = engine.stored_table(table)
    rows = _rows(first)
    return engine.apply_diffs([any_difference(stored, rows, rows_to_columns(rows))])


def by_deltas(engine: Engine, op) -> dict:
    kind, table, first, second = op
    if kind == "patch":
        changes = [Delta(table, r, -1) for r in _rows(second or [[]])]
        changes += [Delta(table, r, +1) for r in _rows(first or [[]])]
        return engine.apply(changes)
    current = engine.rows(table) if table in engine.tables() else set()
    changes = [Delta(table, r, -1) for r in current]
    changes += [Delta(table, r, +1) for r in _rows(first)]
    return engine.apply(changes)


def state(engine: Engine, tables: list[str]) -> dict[str, set]:
    known = set(engine.tables())
    return {t: engine.rows(t) if t in known else set() for t in tables}


def outcome(apply, engine: Engine, op):
    try:
        result = apply(engine, op)
    except CharterError as exc:
        return type(exc).__name__, str(exc)
    return {t: (d.inserted, d.deleted) for t, d in result.items() if d}


def _same_state(got: dict[str, set], expected: dict[str, set]) -> bool:
    """Equal sets, and equal values kind by kind (1 and True, 1 and 1.0 are equal rows:
    the column path must keep the kinds the row path keeps, booleans apart)."""
    if got != expected:
        return False
    for table, rows in expected.items():
        mine = {r: r for r in got[table]}
        for row in rows:
            if [type(v) is bool for v in mine[row]] != [type(v) is bool for v in row]:
                return False
    return True


def check(make, policy: str, tables: list[str], initial, ops) -> None:
    columns, deltas = make(), make()
    for eng in (columns, deltas):
        eng.load_policy("p", policy)
    for table, cols in initial.items():
        assert outcome(by_columns, columns, ("replace", table, cols, None)) == outcome(
            by_deltas, deltas, ("replace", table, cols, None)
        )
    for n, op in enumerate(ops):
        got, expected = outcome(by_columns, columns, op), outcome(by_deltas, deltas, op)
        assert got == expected, f"op {n}: {op}"
        assert _same_state(state(columns, tables), state(deltas, tables)), f"after op {n}: {op}"


CONFIGS = {  # engine arguments, and whether relations hash (else: sorted searches only)
    "default": ({}, True),
    "columnar": ({"columnar_threshold": 1, "batch_threshold": 1}, True),
    "columnar, searched": ({"columnar_threshold": 1, "batch_threshold": 1}, False),
    "columnar, row by row": ({"columnar_threshold": 1, "batch_threshold": None}, False),
}


def run(config: str, policy: str, tables: list[str], initial, ops) -> None:
    arguments, hashed = CONFIGS[config]
    with pytest.MonkeyPatch.context() as patch:
        if not hashed:
            patch.setattr(relation, "HASH_LIMIT", 0)
        check(lambda: Engine(**arguments), policy, tables, initial, ops)


@pytest.mark.parametrize("config", CONFIGS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_programs(config, data):
    """Random programs over int tables (and one no rule reads): columns equal deltas."""
    program = data.draw(programs())
    tables = [f"p:{b}" for b in (*BASE, "e3")]
    initial = {t: data.draw(columns_of(ints)) for t in tables[:3]}
    ops = data.draw(operations(tables, ints))
    derived = [f"p:{t}" for g in program.groups for t in g]
    run(config, program.text, derived + tables, initial, ops)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_values_of_every_kind(config, kind, data):
    values = KINDS[kind]
    tables = ["p:e0", "p:e1", "p:e3"]
    initial = {t: data.draw(columns_of(values)) for t in tables[:2]}
    ops = data.draw(operations(tables, values, max_size=8))
    run(config, FIXED, [f"p:{t}" for t in FIXED_TABLES], initial, ops)


# ---------------------------------------------------------------- one case each


def _engine() -> Engine:
    eng = Engine(columnar_threshold=1)
    eng.load_policy("p", "j(x, z) :- e0(x, y), e1(y, z)")
    return eng


def test_a_large_table_is_diffed_in_columns_and_only_the_change_is_applied():
    eng = _engine()
    ids = np.arange(100_000)
    eng.replace_columns({"p:e0": [ids, ids % 7], "p:e1": [np.arange(7), np.arange(7) * 10]})
    assert eng.state.relations["p:e0"].base is not None  # loaded as columns
    new = ids % 7
    new[[5, 70, 700]] = 8  # three rows change their second value
    diff = eng.diff_columns("p:e0", [ids, new])
    assert sorted(diff.inserted) == [(5, 8), (70, 8), (700, 8)]
    assert sorted(diff.deleted) == [(5, 5), (70, 0), (700, 0)]
    result = eng.apply_diffs([diff])
    assert result["p:j"].deleted == {(5, 50), (70, 0), (700, 0)} and not result["p:j"].inserted
    assert eng.count("p:e0") == 100_000


def test_a_difference_found_before_the_table_changed_is_refused():
    eng = _engine()
    eng.replace_columns({"p:e0": [[1, 2], [3, 4]]})
    stored = eng.stored_table("p:e0")
    diff = difference(stored, rows_to_columns([(1, 3), (5, 6)]))
    assert diff is not None and eng.fresh(diff)
    eng.insert_rows("p:e0", [(9, 9)])  # another writer
    assert not eng.fresh(diff)
    with pytest.raises(EngineError, match="changed since"):
        eng.apply_diffs([diff])
    assert eng.rows("p:e0") == {(1, 3), (2, 4), (9, 9)}
    eng.apply_diffs([eng.diff_rows("p:e0", [(1, 3), (5, 6)])])
    assert eng.rows("p:e0") == {(1, 3), (5, 6)}


def test_a_rule_change_makes_every_difference_stale():
    eng = _engine()
    eng.replace_columns({"p:e0": [[1], [2]]})
    diff = eng.diff_columns("p:e0", [[1], [3]])
    eng.insert_rules("p", "k(x) :- e1(x, _)")
    assert not eng.fresh(diff)


def test_the_snapshot_does_not_change_with_the_table():
    """A snapshot read outside the engine's guard sees the table as it was taken."""
    eng = Engine(columnar_threshold=1, batch_threshold=1)
    eng.replace_columns({"p:t": [np.arange(10), np.arange(10)]})
    stored = eng.stored_table("p:t")
    eng.delete_rows("p:t", [(i, i) for i in range(5)])  # dead marks, in place
    eng.insert_rows("p:t", [(20, 20)])  # the overlay
    diff = difference(stored, [np.arange(10), np.arange(10)])
    assert diff is not None and len(diff) == 0


def test_wrong_widths_raise_the_row_paths_error_and_change_nothing():
    eng = _engine()
    eng.replace_columns({"p:e0": [[1, 2], [3, 4]]})
    with pytest.raises(DataError, match=r"row \(5, 6, 7\) of p:e0 has 3 values; p:e0 has 2"):
        eng.replace_columns({"p:e0": [[5], [6], [7]]})
    with pytest.raises(DataError, match="not lists of one length"):
        eng.replace_columns({"p:e0": [[5, 6], [7]]})
    with pytest.raises(DataError, match="must be qualified"):
        eng.replace_columns({"e0": [[5], [6]]})
    assert eng.rows("p:e0") == {(1, 3), (2, 4)}


def test_typed_columns_refuse_what_numpy_would_compare_unlike_python():
    assert typed_column([1, True]) is None  # True would become 1
    assert typed_column([2.5, 2**53 + 1]) is None  # the int would lose its last bit
    assert typed_column([1.0, float("nan")]) is None
    assert typed_column(np.array([True])) is None
    assert typed_column(np.array(["a", "b"])).dtype == object
    assert typed_column(np.array([1, 2], dtype=object)).dtype == np.int64
    assert typed_column(np.array([2**64 - 1], dtype=np.uint64)) is None


@pytest.mark.parametrize("order", ["as stored", "reversed", "shifted", "shorter"])
def test_rows_in_any_order_give_the_same_difference(order):
    """Rows listed as the table stores them are compared in place, others searched; a
    table with a tail and dead rows (two batches applied to it) gives the same either way."""
    eng = Engine(columnar_threshold=1, batch_threshold=1)
    ids = np.arange(1000)
    eng.replace_columns({"p:t": [ids, ids % 7]})
    eng.replace_columns({"p:t": [ids, ids % 7 + (ids % 100 == 0)]})
    columns = [ids, ids % 7 + 2 * (ids % 50 == 0)]
    if order == "reversed":
        columns = [c[::-1] for c in columns]
    elif order == "shifted":
        columns = [np.roll(c, 3) for c in columns]
    elif order == "shorter":
        columns = [c[10:] for c in columns]
    before, after = eng.rows("p:t"), set(zip(*(c.tolist() for c in columns), strict=True))
    diff = eng.diff_columns("p:t", columns)
    assert set(diff.inserted) == after - before and set(diff.deleted) == before - after
    eng.apply_diffs([diff])
    assert eng.rows("p:t") == after
