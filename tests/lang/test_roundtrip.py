"""Printing a parsed rule and parsing it again gives an equal rule: ``parse(str(r)) == [r]``.

Checked over every test policy (the fixture files, the library YAML files, the forms below)
and over rules generated at random from the AST.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.lang.ast import (
    Aggregate,
    Atom,
    BinOp,
    BuiltinCall,
    Comparison,
    Constant,
    Modal,
    Negation,
    Rule,
    Variable,
)
from charter.lang.builtins import BUILTINS
from charter.lang.library import load_library_file
from charter.lang.parser import parse, parse_literal

FIXTURES = Path(__file__).parent / "fixtures"

FORMS = [
    "p(1)",
    "p(1)q(2)",
    "p(x) :- q(x)",
    "p(x) :- q(x, _), not r(x, _), NOT s(x), !t(x)",
    "p(x), q(x) :- r(x)",
    "p",
    "p :- q",
    "nova:servers:cpu(x) :- nova:servers(id=x, 3='ACTIVE')",
    "p+(x) :- nova:q-(x)",
    "servers.addresses(x) :- nova:servers.addresses(server_id=x)",
    "execute[nova:servers.pause(x)] :- error(x)",
    "insert[p(x)] :- q(x); delete[p(x)] :- q(x)",
    "p(x) :- q(x), lt(x, 3), builtin:gt(x, 1), not equal(x, 2), plus(x, 1, y), now(t)",
    "p('a', \"b\", '''c''', \"\"\"d\"\"\", r'\\e', b'f', u'g', 'h\\ni', '\"', \"'\", '\\\\')",
    "p(0, -1, 1.5, -2.5, .5, 1e3, 1.5e-3, 0x1F, 0o17, 0b101, 1e20, 123456789012345678901234567)",
    "p('日本', 'tab\\there', '\\x00\\x7f', '\\u2028')",
    "p(x) :- q(x, y), x < y, x <= y, x > y, x >= y, x = y, x != y",
    "p(z) :- q(x, y), z = x + y * 2 - (x - y) / 3 % 4",
    "p(z) :- q(x), z = -x, -1 < x, z = x - -1, z = -(x + 1), z = -2 * x",
    "p(n) :- n = count : { q(_) }",
    "p(h, s) :- host(h), s = sum c : { vm(_, h, c) }",
    "p(m) :- m = min x * 2 : { q(x), x > 0 }, k = max x : { q(x), not r(x) }",
    "p(n) :- n = count : { q(v), k = count : { r(v, _) }, k > 1 }",
    "p(x) :- q(x) // comment\n# another\n/* block */",
]


def corpus() -> list[tuple[str, Rule]]:
    """Every rule of every test policy, named for the test id."""
    rules: list[tuple[str, Rule]] = []
    for index, text in enumerate(FORMS):
        rules += [(f"form{index}", rule) for rule in parse(text)]
    for path in sorted(FIXTURES.rglob("*.dl")):
        rules += [(f"{path.name}:{r.span.line}", r) for r in parse(path.read_text(), str(path))]
    for path in sorted(FIXTURES.rglob("*.yaml")):
        policy = load_library_file(path)
        rules += [(f"{path.name}:{r.rule.span.line}", r.rule) for r in policy.rules]
    return rules


CORPUS = corpus()


@pytest.mark.parametrize("rule", [r for _, r in CORPUS], ids=[name for name, _ in CORPUS])
def test_printed_rule_reparses_equal(rule):
    assert parse(str(rule)) == [rule]


def test_corpus_is_large():
    assert len(CORPUS) >= 60


@pytest.mark.parametrize("text", ["nova:servers(id=x, 2='A')", "p(_, x, _)", "p+(1)", "q"])
def test_printed_literal_reparses_equal(text):
    atom = parse_literal(text)
    assert parse_literal(str(atom)) == atom


# ---------------------------------------------------------------- generated rules

KEYWORDS = {"not", "NOT", "count", "sum", "min", "max"}
_ident = st.from_regex(r"\A[a-zA-Z_][a-zA-Z0-9_]{0,6}(\.[a-z0-9_]{1,3})?\Z")
names = _ident.filter(lambda n: n != "_" and n not in KEYWORDS)
tables = names.filter(lambda n: n not in BUILTINS)
variables = st.builds(Variable, names)
constants = st.builds(
    Constant,
    st.one_of(
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    ),
)
terms = st.one_of(variables, constants)
exprs = st.recursive(
    terms,
    lambda inner: st.builds(BinOp, st.sampled_from("+-*/%"), inner, inner),
    max_leaves=6,
)
def _columns_once(atom: Atom) -> bool:
    """A column given twice (by name, by number, by number and position) does not parse."""
    keys = [k for k, _ in atom.named]
    return len(set(keys)) == len(keys) and all(
        not isinstance(k, int) or k >= len(atom.args) for k in keys
    )


atoms = st.builds(
    Atom,
    tables,
    st.lists(terms, max_size=3).map(tuple),
    st.one_of(st.none(), names.filter(lambda n: n != "builtin")),
    st.lists(st.tuples(st.one_of(names, st.integers(0, 12)), terms), max_size=2).map(tuple),
    st.sampled_from([None, "+", "-"]),
).filter(_columns_once)
builtin_calls = st.builds(
    BuiltinCall, st.sampled_from(sorted(BUILTINS)), st.lists(terms, max_size=3).map(tuple)
)
comparisons = st.builds(
    Comparison, st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), exprs, exprs
)
simple_literals = st.one_of(
    atoms,
    builtin_calls,
    st.builds(Negation, st.one_of(atoms, builtin_calls)),
    comparisons,
)
aggregates = st.one_of(
    st.builds(
        Aggregate,
        variables,
        st.just("count"),
        st.none(),
        st.lists(simple_literals, min_size=1, max_size=3).map(tuple),
    ),
    st.builds(
        Aggregate,
        variables,
        st.sampled_from(["sum", "min", "max"]),
        exprs,
        st.lists(simple_literals, min_size=1, max_size=3).map(tuple),
    ),
)
literals = st.one_of(simple_literals, aggregates)
heads = st.one_of(atoms, st.builds(Modal, st.sampled_from(["execute", "insert", "delete"]), atoms))
rules = st.one_of(
    st.builds(Rule, st.tuples(heads)),
    st.builds(
        Rule,
        st.lists(heads, min_size=1, max_size=2).map(tuple),
        st.lists(literals, min_size=1, max_size=4).map(tuple),
    ),
)


@settings(max_examples=300, deadline=None)
@given(rules)
def test_generated_rules_reparse_equal(rule):
    assert parse(str(rule)) == [rule]
