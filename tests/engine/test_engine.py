"""The engine's Python API: policies, rows, batches, queries, subscriptions, errors."""

from __future__ import annotations

import pytest

from charter.engine import Delta, Engine, RuleChange
from charter.lang.errors import DataError, EngineError, PolicyError
from charter.lang.parser import parse_rule

POLICY = """
error(vm) :- nova:servers(id=vm, status="ERROR")
warning(vm, h) :- nova:servers(id=vm, host_id=h), not known_host(h)
known_host("h1")
"""


@pytest.fixture
def engine() -> Engine:
    eng = Engine()
    eng.declare_datasource("nova", {"servers": ("id", "name", "host_id", "status")})
    eng.load_policy("classification", POLICY)
    return eng


def test_rows_flow_to_violations(engine: Engine):
    deltas = engine.insert_rows(
        "nova:servers", [("vm1", "a", "h1", "ERROR"), ("vm2", "b", "h9", "ACTIVE")]
    )
    assert deltas["classification:error"].inserted == {("vm1",)}
    assert deltas["classification:warning"].inserted == {("vm2", "h9")}
    deltas = engine.apply([Delta("nova:servers", ("vm1", "a", "h1", "ERROR"), -1)])
    assert deltas["classification:error"].deleted == {("vm1",)}
    assert "classification:warning" not in deltas


def test_query_patterns(engine: Engine):
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ERROR"), ("vm2", "b", "h1", "ERROR")])
    assert engine.query("error(x)", policy="classification") == [("vm1",), ("vm2",)]
    assert engine.query("classification:error('vm2')") == [("vm2",)]
    assert engine.query('nova:servers(id=x, status="ERROR", name="b")') == [
        ("vm2", "b", "h1", "ERROR")
    ]
    with pytest.raises(EngineError, match="did you mean classification:error"):
        engine.query("classification:eror(x)")


def test_subscribers_get_deltas(engine: Engine):
    seen = []
    engine.subscribe("classification:error", lambda table, d: seen.append((table, d)))
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ERROR")])
    engine.insert_rows("nova:servers", [("vm2", "a", "h1", "ACTIVE")])
    assert [(t, d.inserted) for t, d in seen] == [("classification:error", {("vm1",)})]


def test_rules_added_and_removed_in_batches(engine: Engine):
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ACTIVE")])
    rule = parse_rule('error(vm) :- nova:servers(id=vm, status="ACTIVE")')
    deltas = engine.apply([RuleChange("classification", rule, +1)])
    assert deltas["classification:error"].inserted == {("vm1",)}
    deltas = engine.delete_rules("classification", [rule])
    assert deltas["classification:error"].deleted == {("vm1",)}


def test_facts_rule_deleted_is_a_row_deleted(engine: Engine):
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ACTIVE")])
    assert engine.rows("classification:warning") == set()
    deltas = engine.delete_rules("classification", 'known_host("h1")')
    assert deltas["classification:warning"].inserted == {("vm1", "h1")}


def test_a_bad_batch_changes_nothing(engine: Engine):
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ERROR")])
    with pytest.raises(DataError, match="has 4 columns"):
        engine.apply(
            [
                Delta("nova:servers", ("vm2", "a", "h1", "ERROR"), +1),
                Delta("nova:servers", ("vm3", "short"), +1),
            ]
        )
    with pytest.raises(PolicyError):
        engine.insert_rules("classification", "ok(x) :- q(x)\nbad(x) :- q(y)")
    assert engine.rows("classification:error") == {("vm1",)}
    assert len(engine.rules("classification")) == 3
    with pytest.raises(DataError, match="did you mean nova:servers"):
        engine.insert_rows("nova:server", [("x", "y", "z", "w")])


def test_unknown_policy_and_table(engine: Engine):
    with pytest.raises(EngineError, match="did you mean classification"):
        engine.insert_rules("clasification", "p(1)")
    with pytest.raises(EngineError, match="unknown table"):
        engine.rows("nowhere:t")


def test_replace_rows_is_a_diff(engine: Engine):
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ERROR"), ("vm2", "a", "h1", "ERROR")])
    deltas = engine.replace_rows(
        "nova:servers", [("vm2", "a", "h1", "ERROR"), ("vm3", "a", "h1", "ERROR")]
    )
    assert deltas["classification:error"].inserted == {("vm3",)}
    assert deltas["classification:error"].deleted == {("vm1",)}


def test_delete_policy(engine: Engine):
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ERROR")])
    engine.delete_policy("classification")
    assert "classification" not in engine.policies
    assert engine.rows("nova:servers") == {("vm1", "a", "h1", "ERROR")}


def test_builtin_errors_are_counted_per_rule():
    eng = Engine()
    eng.load_policy("p", "r(x, z) :- q(x, y), z = x / y")
    eng.insert_rows("p:q", [(1, 0), (4, 2), ("a", 1)])
    assert eng.rows("p:r") == {(4, 2)}
    [(policy, rule, errors, last)] = eng.rule_stats()
    assert policy == "p" and errors == 2 and "Error" in last


def test_deep_recursion_does_not_hit_the_recursion_limit():
    """A chain of 100,000 edges: 100,000 semi-naive rounds, then a cut in the middle."""
    eng = Engine()
    eng.load_policy("p", "reach(y) :- start(y)\nreach(y) :- reach(x), edge(x, y)")
    n = 100_000
    eng.insert_rows("p:edge", [(i, i + 1) for i in range(n)])
    eng.insert_rows("p:start", [(0,)])
    assert len(eng.rows("p:reach")) == n + 1
    deltas = eng.apply([Delta("p:edge", (n // 2, n // 2 + 1), -1)])
    assert len(deltas["p:reach"].deleted) == n // 2
    assert len(eng.rows("p:reach")) == n // 2 + 1


def test_load_columns_equals_load_rows():
    import numpy as np

    policy = "bad(s) :- servers(s, i), not approved(i)\napproved(i) :- images(i, 1)"
    by_rows, by_columns = Engine(), Engine(columnar_threshold=1)
    for eng in (by_rows, by_columns):
        eng.load_policy("p", policy)
    servers = [(1, "a"), (2, "b"), (3, "a"), (3, "a")]
    images = [("a", 1), ("b", 0)]
    by_rows.load_rows({"p:servers": servers, "p:images": images})
    deltas = by_columns.load_columns(
        {
            "p:servers": [np.array([1, 2, 3, 3]), np.array(["a", "b", "a", "a"])],
            "p:images": [np.array(["a", "b"]), np.array([1, 0])],
        }
    )
    assert deltas["p:bad"].inserted == {(2,)}
    assert by_columns.rows("p:servers") == {(1, "a"), (2, "b"), (3, "a")}
    for table in ("p:bad", "p:approved", "p:servers"):
        assert by_rows.rows(table) == by_columns.rows(table)
    by_columns.apply([Delta("p:images", ("b", 0), -1), Delta("p:images", ("b", 1), +1)])
    assert by_columns.rows("p:bad") == set()
    with pytest.raises(DataError, match="has 2 columns"):
        by_columns.load_columns({"p:images": [np.array(["c"])]})


def test_removing_the_only_execute_rule_deletes_its_rows():
    """An execute[...] table cannot keep rows as facts: without its rule it is empty."""
    eng = Engine()
    eng.create_policy("p")
    eng.insert_rows("p:q", [("s1",)])
    rule = parse_rule("execute[nova:servers.pause(s)] :- q(s)")
    added = eng.apply([RuleChange("p", rule, +1)])
    assert added["p:execute[nova:servers.pause]"].inserted == {("s1",)}
    removed = eng.apply([RuleChange("p", rule, -1)])
    assert removed["p:execute[nova:servers.pause]"].deleted == {("s1",)}


def test_has_table_agrees_with_tables():
    eng = Engine()
    eng.declare_datasource("nova", {"servers": ("id", "status")})
    eng.load_policy("p", 'down(x) :- nova:servers(x, "DOWN")  n(c) :- c = count : { q(_) }  f(1)')
    eng.insert_rows("p:q", [(1,), (2,)])
    known = eng.tables()
    assert {"nova:servers", "p:down", "p:n", "p:f", "p:q"} <= set(known)
    for table in known:
        assert eng.has_table(table)
    for table in ("p:missing", "nova:flavors", "p", "p:#agg1", "p:f#facts"):
        assert not eng.has_table(table), table
    eng.delete_rows("p:q", [(1,), (2,)])
    assert eng.has_table("p:q") == ("p:q" in eng.tables())


def test_hypothetical_changes_undone_leave_no_trace(engine: Engine):
    seen: list = []
    engine.subscribe("classification:error", lambda table, delta: seen.append(delta))
    engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ERROR")])
    tables, rules = engine.tables(), engine.rules("classification")
    extra = parse_rule("scratch(vm) :- error(vm)")
    with engine.hypothetical():
        engine.insert_rows("classification:guess", [(1, 2)])  # a table no one declared
        engine.apply([RuleChange("classification", rules[0], -1)])
        engine.apply([RuleChange("classification", extra, +1)])
        engine.delete_rows("nova:servers", [("vm1", "a", "h1", "ERROR")])
        assert engine.has_table("classification:guess") and not engine.rows("classification:error")
        engine.insert_rows("nova:servers", [("vm1", "a", "h1", "ERROR")])
        engine.apply([RuleChange("classification", extra, -1)])
        engine.apply([RuleChange("classification", rules[0], +1)])
        engine.delete_rows("classification:guess", [(1, 2)])
    assert len(seen) == 1  # the insert before; nothing from inside
    assert engine.tables() == tables and not engine.has_table("classification:guess")
    assert engine.rules("classification") == rules  # the same order
    assert engine.rows("classification:error") == {("vm1",)}


def test_indexes_built_on_a_thread_after_a_load_serve_the_next_changes(monkeypatch):
    """After bulk work the planned indexes are built on a thread; reads need not wait,
    the next change does, and every table then equals a fresh evaluation."""
    import numpy as np

    from charter.engine import prepare

    monkeypatch.setattr(prepare, "BACKGROUND_ROWS", 0)  # a thread even for a small load
    policy = (
        "reach(x, y) :- edge(x, y)\nreach(x, z) :- reach(x, y), edge(y, z)\n"
        "hot(x) :- reach(x, _), n = count : { reach(x, _) }, n > 2\n"
        "cold(x) :- node(x, 0), not hot(x)"
    )
    rng = np.random.default_rng(2)
    edges = [rng.integers(0, 300, 600), rng.integers(0, 300, 600)]
    nodes = [np.arange(300), rng.integers(0, 2, 300)]
    engine = Engine(columnar_threshold=1, vectorize_threshold=1, batch_threshold=50)
    engine.load_policy("p", policy)
    engine.load_columns({"p:edge": edges, "p:node": nodes})
    builder = engine._indexing
    assert builder is not None and builder.name == "charter-index-builder"
    assert engine.count("p:reach") > 0  # a read while it may still run
    changes = [Delta("p:edge", (int(a), int(b)), -1) for a, b in zip(*edges, strict=True)][:40]
    changes += [Delta("p:edge", (1000 + i, i), 1) for i in range(30)]
    engine.apply(changes[:1])
    assert not builder.is_alive()  # the first change waited for it
    for change in changes[1:]:
        engine.apply([change])  # (a change evaluating a stratum whole starts another)
    fresh = Engine()
    fresh.load_policy("p", policy)
    fresh.load_rows({"p:edge": engine.rows("p:edge"), "p:node": engine.rows("p:node")})
    for table in ("p:reach", "p:hot", "p:cold"):
        assert engine.rows(table) == fresh.rows(table)


@pytest.mark.parametrize("batch_threshold", [None, 2], ids=["row by row", "set at a time"])
def test_an_update_of_columns_a_rule_does_not_read_changes_nothing_it_derives(batch_threshold):
    """An updated row arrives as its old version lost and its new one gained; a rule that
    reads only the columns the update kept sees both cancel (counts stay exact)."""
    import numpy as np

    engine = Engine(columnar_threshold=1, batch_threshold=batch_threshold)
    engine.load_policy("p", "open(s) :- server(s, t, _), port(s, n), net(n, u), t != u")
    engine.load_columns(
        {
            "p:server": [np.array([1, 2, 3]), np.array([10, 10, 20]), np.array([0, 0, 0])],
            "p:port": [np.array([1, 2, 3, 3]), np.array([5, 6, 5, 6])],
            "p:net": [np.array([5, 6]), np.array([10, 20])],
        }
    )
    assert engine.rows("p:open") == {(2,), (3,)}
    update = [Delta("p:server", (s, t, 0), -1) for s, t in ((1, 10), (2, 10), (3, 20))]
    update += [Delta("p:server", (s, t, 1), +1) for s, t in ((1, 10), (2, 10), (3, 20))]
    assert "p:open" not in engine.apply(update)
    moved = [Delta("p:server", (3, 20, 1), -1), Delta("p:server", (3, 10, 1), +1)]
    assert "p:open" not in engine.apply(moved)  # open now through port 6, not port 5
    assert engine.rows("p:open") == {(2,), (3,)}
    engine.apply([Delta("p:port", (3, 6), -1)])
    assert engine.rows("p:open") == {(2,)}
