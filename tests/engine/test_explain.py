"""Explain: proofs of rows that are in their tables, and why-not answers for rows that are not.

Proofs are checked against the engine's tables by an independent checker (every derived
node's head and positive children agree with its binding, every child row is in its table,
no row repeats on a path, negated patterns have no row); a property test runs it over random
stratified programs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.engine import Engine
from charter.engine.explain import (
    ANY,
    Absence,
    AggregateProof,
    Evaluation,
    Match,
    NotDerived,
    Proof,
    explain,
    explain_pattern,
)
from charter.lang.errors import DataError, EngineError
from charter.lang.parser import parse_literal
from tests.engine.programs import BASE, DOMAIN, programs

ROOT = Path(__file__).parents[2]


# ---------------------------------------------------------------- an independent checker


def _unifies(literal: str, row: tuple, bindings: dict) -> bool:
    """Whether a positional body literal (as written) matches ``row`` under ``bindings``."""
    atom = parse_literal(literal)
    if atom.named:
        return True  # named columns: checked through the row being in its table
    for term, value in zip(atom.args, row, strict=False):
        name = getattr(term, "name", None)
        if name is None:
            if term.value != value:
                return False
        elif not term.anonymous and name in bindings and bindings[name] != value:
            return False
    return True


def check_proof(engine: Engine, proof: Proof, path: tuple = ()) -> int:
    """Assert ``proof`` is a valid, finite, well-founded proof; return its number of nodes."""
    key = (proof.table, proof.row)
    assert key not in path, f"{key} repeats on its own proof path"
    assert not proof.truncated
    assert proof.row in engine.rows(proof.table) or "#" in proof.table
    if proof.kind == "fact":
        assert proof.children == []
        assert engine.has_stored(proof.table, proof.row)
        return 1
    assert proof.rule is not None and proof.policy is not None
    if proof.kind == "rule":
        head = proof.rule.split(":-")[0].strip()
        if not head.startswith("execute["):
            assert _unifies(head, proof.row, proof.bindings), (head, proof.row, proof.bindings)
    size = 1
    for child in proof.children:
        if isinstance(child, Proof):
            assert child.literal is not None
            assert _unifies(child.literal, child.row, proof.bindings), (child.literal, child.row)
            size += check_proof(engine, child, (*path, key))
        elif isinstance(child, Absence):
            assert engine.query(child.pattern) == [], child.pattern
        elif isinstance(child, Evaluation):
            assert child.result is not None and child.result is not False
        else:
            assert isinstance(child, AggregateProof)
            assert len(child.examples) <= child.count
            if child.function == "count":
                assert child.value == child.count
            for example in child.examples:
                size += check_proof(engine, example, (*path, key))
    return size


def proof_of(engine: Engine, table: str, row: tuple, **options) -> Proof:
    found = explain(engine, table, row, **options)
    assert isinstance(found, Proof), found.to_text()
    check_proof(engine, found)
    json.dumps(found.to_json())
    return found


def why_not(engine: Engine, table: str, row: tuple, **options) -> NotDerived:
    found = explain(engine, table, row, **options)
    assert isinstance(found, NotDerived), found.to_text()
    json.dumps(found.to_json())
    return found


@pytest.fixture
def cloud() -> Engine:
    eng = Engine()
    eng.declare_datasource("nova", {"servers": ["id", "name", "host_id", "status", "image"]})
    eng.load_policy(
        "p",
        """
        approved("img1")
        error(vm) :- nova:servers(id=vm, status="ERROR")
        unapproved(vm, img) :- nova:servers(id=vm, image=img), not approved(img)
        crowded(h, n) :- nova:servers(host_id=h), n = count : { nova:servers(_, _, h, _, _) }, n > 1
        named(vm, l) :- nova:servers(id=vm, name=nm), builtin:len(nm, l), l >= 3, z = l * 2, z < 100
        """,
    )
    eng.load_policy("q", "alarm(vm) :- p:error(vm), not p:unapproved(vm, _)")
    eng.insert_rows(
        "nova:servers",
        [
            ("vm1", "web", "h1", "ERROR", "img1"),
            ("vm2", "db", "h1", "ACTIVE", "img7"),
            ("vm3", "cache", "h2", "ERROR", "img7"),
        ],
    )
    return eng


# ---------------------------------------------------------------- proofs


def test_a_join_names_its_rule_bindings_and_matched_rows():
    eng = Engine()
    eng.load_policy("p", "r(x, z) :- a(x, y), b(y, z)")
    eng.insert_rows("p:a", [(1, 2), (1, 3)])
    eng.insert_rows("p:b", [(3, 4)])
    proof = proof_of(eng, "p:r", (1, 4))
    assert (proof.kind, proof.rule, proof.policy) == ("rule", "r(x, z) :- a(x, y), b(y, z)", "p")
    assert proof.bindings == {"x": 1, "z": 4, "y": 3}
    a, b = proof.children
    assert (a.table, a.row, a.kind, a.literal, a.origin) == (
        "p:a",
        (1, 3),
        "fact",
        "a(x, y)",
        "policy",
    )
    assert (b.table, b.row, b.literal) == ("p:b", (3, 4), "b(y, z)")


def test_named_columns_are_shown_as_written_and_datasource_rows_are_leaves(cloud):
    proof = proof_of(cloud, "p:error", ("vm1",))
    assert proof.rule == 'error(vm) :- nova:servers(id=vm, status="ERROR")'
    (row,) = proof.children
    assert (row.kind, row.origin, row.source) == ("fact", "datasource", "nova")
    assert row.row == ("vm1", "web", "h1", "ERROR", "img1")
    assert row.literal == 'nova:servers(id=vm, status="ERROR")'


def test_a_negated_literal_shows_the_pattern_without_match(cloud):
    proof = proof_of(cloud, "p:unapproved", ("vm2", "img7"))
    _, negation = proof.children
    assert isinstance(negation, Absence)
    assert negation.literal == "not approved(img)"
    assert negation.pattern == 'p:approved("img7")'


def test_cross_policy_proof_recurses_into_the_other_policy(cloud):
    proof = proof_of(cloud, "q:alarm", ("vm1",))
    error, negation = proof.children
    assert (error.table, error.policy, error.kind) == ("p:error", "p", "rule")
    assert error.children[0].table == "nova:servers"
    assert isinstance(negation, Absence) and negation.pattern == 'p:unapproved("vm1", _)'


def test_builtins_comparisons_and_assignments_show_their_values(cloud):
    proof = proof_of(cloud, "p:named", ("vm1", 3))
    _, length, at_least, assign, below = proof.children
    assert (length.kind, length.call, length.result) == ("builtin", 'len("web") = 3', (3,))
    assert (at_least.kind, at_least.call, at_least.result) == ("comparison", "3 >= 3", True)
    assert (assign.kind, assign.call, assign.result) == ("assignment", "z = 3 * 2 = 6", 6)
    assert below.call == "6 < 100"
    assert proof.bindings == {"vm": "vm1", "l": 3, "nm": "web", "z": 6}


def test_an_aggregate_shows_its_group_value_and_counted_rows(cloud):
    proof = proof_of(cloud, "p:crowded", ("h1", 2), examples=1)
    _, aggregate, comparison = proof.children
    assert isinstance(aggregate, AggregateProof)
    assert (aggregate.function, aggregate.group, aggregate.value, aggregate.count) == (
        "count",
        {"h": "h1"},
        2,
        2,
    )
    (example,) = aggregate.examples
    assert example.kind == "counted" and example.rule == aggregate.literal
    assert example.children[0].row == ("vm1", "web", "h1", "ERROR", "img1")
    assert comparison.call == "2 > 1"
    assert "... and 1 more" in proof.to_text()


def test_sum_min_and_max_aggregates():
    eng = Engine()
    eng.load_policy(
        "p",
        """
        total(g, s) :- item(g, _), s = sum v : { item(g, v) }
        low(g, m) :- item(g, _), m = min v : { item(g, v) }
        high(g, m) :- item(g, _), m = max v * 2 : { item(g, v) }
        """,
    )
    eng.insert_rows("p:item", [("a", 1), ("a", 5), ("b", 2)])
    for table, row, value in [
        ("p:total", ("a", 6), 6),
        ("p:low", ("a", 1), 1),
        ("p:high", ("a", 10), 10),
    ]:
        aggregate = proof_of(eng, table, row).children[1]
        assert isinstance(aggregate, AggregateProof)
        assert (aggregate.value, aggregate.count) == (value, 2)
        assert [e.bindings["v"] for e in aggregate.examples] == [1, 5]


# ---------------------------------------------------------------- recursion


@pytest.fixture
def graph() -> Engine:
    eng = Engine()
    eng.load_policy(
        "g",
        """
        reach(x, y) :- edge(x, y)
        reach(x, z) :- reach(x, y), edge(y, z)
        """,
    )
    eng.insert_rows("g:edge", [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    return eng


def _path(proof: Proof) -> list[tuple]:
    """The chain of reach rows down the first children."""
    out = []
    node = proof
    while node.table == "g:reach":
        out.append(node.row)
        node = node.children[0]
    return out


def test_a_cycle_gets_a_finite_proof_of_least_depth(graph):
    proof = proof_of(graph, "g:reach", ("a", "a"))
    assert _path(proof) == [("a", "a"), ("a", "c"), ("a", "b")]
    assert proof.children[1].row == ("c", "a")
    for row in graph.rows("g:reach"):
        proof_of(graph, "g:reach", row)


def test_alternative_derivations_at_the_top(graph):
    graph.insert_rows("g:edge", [("a", "c")])
    proof = proof_of(graph, "g:reach", ("a", "c"), alternatives=True)
    assert proof.rule == "reach(x, y) :- edge(x, y)"  # the shortest first
    others = {(a.rule, a.bindings.get("y")) for a in proof.alternatives}
    assert ("reach(x, z) :- reach(x, y), edge(y, z)", "b") in others
    for alternative in proof.alternatives:
        check_proof(graph, alternative)
    assert "alternative derivation 2:" in proof.to_text()
    assert len(proof.to_json()["alternatives"]) == len(proof.alternatives)


def test_mutual_recursion_around_an_odd_cycle():
    eng = Engine()
    eng.load_policy(
        "g",
        """
        even(x, y) :- edge(x, y), start(x)
        odd(x, z) :- even(x, y), edge(y, z)
        even(x, z) :- odd(x, y), edge(y, z)
        """,
    )
    eng.insert_rows("g:edge", [(0, 1), (1, 2), (2, 0)])
    eng.insert_rows("g:start", [(0,)])
    proof = proof_of(eng, "g:even", (0, 0))
    chain = []
    node = proof
    while node.kind == "rule":
        chain.append((node.table, node.row))
        node = node.children[0]
    assert chain == [("g:even", (0, 0)), ("g:odd", (0, 2)), ("g:even", (0, 1))]


def test_a_long_chain_is_cut_at_max_depth():
    eng = Engine()
    eng.load_policy("g", "reach(x, y) :- edge(x, y)  reach(x, z) :- reach(x, y), edge(y, z)")
    eng.insert_rows("g:edge", [(i, i + 1) for i in range(30)])
    proof = explain(eng, "g:reach", (0, 30), max_depth=5)
    assert isinstance(proof, Proof)
    node, depth = proof, 0
    while not node.truncated:
        node, depth = node.children[0], depth + 1
    assert depth == 6 and node.children == []
    assert node.to_json()["truncated"] is True


def test_a_row_that_is_a_fact_and_derived_is_explained_as_the_fact_first():
    eng = Engine()
    eng.load_policy("p", 'ok(x) :- src(x)\nok("given")')
    eng.insert_rows("p:src", [("given",)])
    proof = explain(eng, "p:ok", ("given",), alternatives=True)
    assert isinstance(proof, Proof)
    assert (proof.kind, proof.origin, proof.source) == ("fact", "policy", "p")
    assert proof.table == "p:ok"
    assert [a.rule for a in proof.alternatives] == ["ok(x) :- src(x)"]


def test_a_row_no_rule_derives_now_is_stale():
    eng = Engine()
    eng.load_policy("p", "r(x) :- s(x)")
    eng.insert_rows("p:s", [("a",)])
    eng.state.relations["p:r"].add(("ghost",))  # as if derived with an earlier now()
    proof = explain(eng, "p:r", ("ghost",))
    assert isinstance(proof, Proof) and proof.kind == "stale" and proof.children == []
    assert "not derivable from the current tables" in proof.to_text()


def test_execute_heads():
    eng = Engine()
    eng.load_policy("p", "execute[nova:servers.pause(x)] :- bad(x)")
    eng.insert_rows("p:bad", [("vm1",)])
    table = "p:execute[nova:servers.pause]"
    proof = proof_of(eng, table, ("vm1",))
    assert proof.rule == "execute[nova:servers.pause(x)] :- bad(x)"
    assert isinstance(why_not(eng, table, ("vm2",)), NotDerived)


# ---------------------------------------------------------------- why not


def test_why_not_reports_the_first_failing_literal_with_near_rows(cloud):
    answer = why_not(cloud, "p:error", ("vm2",))
    (attempt,) = answer.candidates
    assert attempt.bindings == {"vm": "vm2"}
    failed = attempt.failed
    assert failed.kind == "no_match"
    assert failed.literal == 'nova:servers(id=vm, status="ERROR")'
    assert failed.pattern == 'nova:servers(id="vm2", status="ERROR")'
    assert (("vm2", "db", "h1", "ACTIVE", "img7"), ["status"]) in failed.near
    assert "no row of nova:servers matches" in answer.to_text()


def test_why_not_through_a_negation_proves_the_blocking_row(cloud):
    answer = why_not(cloud, "p:unapproved", ("vm1", "img1"))
    (attempt,) = answer.candidates
    (matched,) = attempt.matched
    assert isinstance(matched, Match) and matched.row == ("vm1", "web", "h1", "ERROR", "img1")
    assert attempt.failed.kind == "negation"
    assert attempt.failed.message == 'p:approved("img1") exists'
    assert attempt.failed.proof.kind == "fact"
    assert attempt.bindings == {"vm": "vm1", "img": "img1"}


def test_why_not_across_policies_explains_the_blocking_derived_row(cloud):
    answer = why_not(cloud, "q:alarm", ("vm3",))
    failed = answer.candidates[0].failed
    assert failed.kind == "negation" and failed.literal == "not p:unapproved(vm, _)"
    assert failed.proof.table == "p:unapproved" and failed.proof.kind == "rule"
    check_proof(cloud, failed.proof)


def test_why_not_at_a_comparison_a_builtin_and_an_aggregate(cloud):
    failed = why_not(cloud, "p:named", ("vm2", 2)).candidates[0].failed
    assert (failed.kind, failed.message) == ("comparison", "2 >= 3 is false")
    failed = why_not(cloud, "p:named", ("vm2", 5)).candidates[0].failed
    assert (failed.kind, failed.message) == ("builtin", 'len("db") = 2 is not 5')
    attempt = why_not(cloud, "p:crowded", ("h2", 1)).candidates[0]
    assert [type(m) for m in attempt.matched] == [Match, AggregateProof]
    assert attempt.failed.message == "1 > 1 is false"
    failed = why_not(cloud, "p:crowded", ("h1", 3)).candidates[0].failed
    assert (failed.kind, failed.message) == ("aggregate", "count is 2, not 3")


def test_why_not_of_a_builtin_that_raises():
    eng = Engine()
    eng.load_policy("p", "q(x, z) :- r(x, y), z = x / y\nh(x) :- r(x, y), z = x / y, z > 0")
    eng.insert_rows("p:r", [(1, 0)])
    failed = why_not(eng, "p:q", (1, 5)).candidates[0].failed  # z is bound: a test
    assert failed.kind == "comparison"
    assert failed.message.startswith("5 = 1 / 0 raised ZeroDivisionError")
    failed = why_not(eng, "p:h", (1,)).candidates[0].failed
    assert failed.kind == "assignment"
    assert failed.message.startswith("z = 1 / 0 raised ZeroDivisionError")


def test_why_not_explains_a_derived_table_with_no_matching_row(cloud):
    answer = why_not(cloud, "q:alarm", ("vm9",))
    failed = answer.candidates[0].failed
    assert failed.kind == "no_match" and failed.pattern == 'p:error("vm9")'
    nested = failed.why_not
    assert nested is not None and nested.table == "p:error"
    assert nested.candidates[0].failed.pattern == 'nova:servers(id="vm9", status="ERROR")'


def test_why_not_skips_no_rule_and_says_when_no_head_fits():
    eng = Engine()
    eng.load_policy("p", 'flag(x, "red") :- src(x)\nflag(x, y) :- pair(x, y)')
    eng.insert_rows("p:src", [(1,)])
    answer = why_not(eng, "p:flag", (1, "blue"))
    head, pair = answer.candidates
    assert not head.unifies and head.failed.kind == "head"
    assert head.failed.message == 'its head flag(x, "red") cannot produce p:flag(1, "blue")'
    assert pair.unifies and pair.failed.kind == "no_match"
    eng2 = Engine()
    eng2.load_policy("p", 'flag(x, "red") :- src(x)')
    answer = why_not(eng2, "p:flag", (1, "blue"))
    assert "no rule of p:flag has a head that produces it" in answer.message


def test_recursive_why_not_terminates(graph):
    answer = why_not(graph, "g:reach", ("d", "a"))
    assert len(answer.candidates) == 2
    recursive = answer.candidates[1]
    assert recursive.failed.kind == "no_match"
    nested = recursive.failed.why_not
    assert nested is not None  # reach(d, _) explained once, not again inside itself
    text = answer.to_text()
    assert text.count("rule of g: reach(x, z)") <= 3


def test_base_tables_say_the_row_is_not_there(cloud):
    answer = why_not(cloud, "nova:servers", ("vm9", "x", "h1", "ERROR", "img1"))
    assert answer.candidates == []
    assert answer.message.endswith("is not among the rows of datasource nova")
    answer = why_not(cloud, "p:approved", ("img7",))
    assert answer.message == 'p:approved("img7") is not among the facts of policy p'


def test_a_pattern_explains_the_first_match_or_why_none_matches(cloud):
    proof = explain(cloud, "p:unapproved", (ANY, "img7"))
    assert isinstance(proof, Proof) and proof.row == ("vm2", "img7")
    answer = explain(cloud, "p:unapproved", (ANY, "img9"))
    assert isinstance(answer, NotDerived)
    assert answer.to_json()["row"] == [None, "img9"]
    results = explain_pattern(cloud, 'nova:servers(id=x, status="ERROR")')
    assert [r.row[0] for r in results] == ["vm1", "vm3"]
    results = explain_pattern(cloud, "error(x)", policy="p", limit=1)
    assert len(results) == 1 and results[0].row == ("vm1",)
    (answer,) = explain_pattern(cloud, 'error("vm2")', policy="p")
    assert isinstance(answer, NotDerived)


def test_unknown_tables_and_wrong_widths_are_errors(cloud):
    with pytest.raises(EngineError, match="unknown table p:eror; did you mean p:error"):
        explain(cloud, "p:eror", ("vm1",))
    with pytest.raises(DataError, match="has 2 values; p:error has 1 columns"):
        explain(cloud, "p:error", ("vm1", 2))


# ---------------------------------------------------------------- JSON and text


def test_json_shape(cloud):
    out = explain(cloud, "q:alarm", ("vm1",)).to_json()
    assert out["present"] is True
    assert {"kind", "table", "row", "rule", "policy", "bindings", "children"} <= set(out)
    assert out["row"] == ["vm1"] and out["bindings"] == {"vm": "vm1"}
    error, negation = out["children"]
    assert error["literal"] == "p:error(vm)" and error["kind"] == "rule"
    assert error["children"][0]["origin"] == "datasource"
    assert negation == {
        "kind": "negation",
        "literal": "not p:unapproved(vm, _)",
        "table": "p:unapproved",
        "pattern": 'p:unapproved("vm1", _)',
        "holds": True,
    }
    crowded = explain(cloud, "p:crowded", ("h1", 2)).to_json()
    aggregate = crowded["children"][1]
    assert set(aggregate) == {
        "kind",
        "literal",
        "table",
        "function",
        "group",
        "value",
        "count",
        "examples",
    }
    missing = explain(cloud, "q:alarm", ("vm3",)).to_json()
    assert missing["present"] is False
    assert set(missing) == {"present", "table", "row", "message", "candidates"}
    (candidate,) = missing["candidates"]
    assert set(candidate) == {"rule", "policy", "unifies", "bindings", "matched", "failed"}
    assert candidate["matched"] == [
        {"kind": "match", "literal": "p:error(vm)", "table": "p:error", "row": ["vm3"]}
    ]
    assert candidate["failed"]["kind"] == "negation"
    assert candidate["failed"]["proof"]["table"] == "p:unapproved"


def test_text_form(cloud):
    assert explain(cloud, "q:alarm", ("vm1",)).to_text() == "\n".join(
        [
            'q:alarm("vm1")  <= q: alarm(vm) :- p:error(vm), not p:unapproved(vm, _)  with vm="vm1"',
            '  p:error("vm1")  <= p: error(vm) :- nova:servers(id=vm, status="ERROR")  with vm="vm1"',
            '    nova:servers("vm1", "web", "h1", "ERROR", "img1")  fact of datasource nova',
            '  not p:unapproved(vm, _): no row matches p:unapproved("vm1", _)',
        ]
    )


def test_the_docs_example_runs():
    text = (ROOT / "docs" / "explain.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        exec(compile(block, "<docs/explain.md>", "exec"), {})


# ---------------------------------------------------------------- property


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    programs(),
    st.lists(st.tuples(st.sampled_from(BASE), st.tuples(DOMAIN, DOMAIN)), max_size=14),
)
def test_every_row_has_a_valid_proof_and_every_other_row_a_why_not(program, rows):
    eng = Engine(vectorize_threshold=None)
    eng.create_policy("p")
    eng.insert_rules("p", program.text)
    for table, row in rows:
        eng.insert_rows(f"p:{table}", [row])
    for group in program.groups:
        for name in group:
            table = f"p:{name}"
            present = eng.rows(table)
            for row in present:
                proof_of(eng, table, row)
            arity = eng.arity(table) or 2
            for row in [(a, b)[:arity] for a in range(3) for b in range(3)]:
                if row not in present:
                    answer = why_not(eng, table, row)
                    assert all(c.failed is not None for c in answer.candidates), answer.to_text()
