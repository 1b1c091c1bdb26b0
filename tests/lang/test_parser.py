"""Tests of charter.lang.parser: every syntax form, every error with its place."""

from __future__ import annotations

import contextlib
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.lang import limits
from charter.lang import parser as parser_module
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
    Span,
    Variable,
)
from charter.lang.errors import PolicyError
from charter.lang.parser import parse, parse_literal, parse_rule, parse_sequence

x, y, z = Variable("x"), Variable("y"), Variable("z")


def one(text: str) -> Rule:
    rules = parse(text)
    assert len(rules) == 1, rules
    return rules[0]


def error_of(text: str, **kwargs) -> tuple[str, int, int, str]:
    with pytest.raises(PolicyError) as info:
        parse(text, **kwargs)
    d = info.value.diagnostics[0]
    return d.code, d.span.line, d.span.col, d.message


# ---------------------------------------------------------------- statements


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   \n\t ", []),
        ("p(1)", ["p(1)"]),
        ("p(1).", ["p(1)"]),
        ("p(1);", ["p(1)"]),
        ("p(1)q(2)", ["p(1)", "q(2)"]),
        ("p(1) q(2)", ["p(1)", "q(2)"]),
        ("p(1); q(2). r(3)", ["p(1)", "q(2)", "r(3)"]),
        ("p(x) :- q(x)", ["p(x) :- q(x)"]),
        ("p(x) :- q(x), r(x).", ["p(x) :- q(x), r(x)"]),
        ("p(x) :- q(x) p(y) :- q(y)", ["p(x) :- q(x)", "p(y) :- q(y)"]),
        ("p(x) :- q.", ["p(x) :- q()"]),
        ("p(x) :- q.\nr(1)", ["p(x) :- q()", "r(1)"]),
        ("p :- q", ["p() :- q()"]),
        ("p", ["p()"]),
        ("p()", ["p()"]),
        ("p(x), q(x) :- r(x)", ["p(x), q(x) :- r(x)"]),
        ("p\n(\n1\n)\n:-\nq\n", ["p(1) :- q()"]),
    ],
)
def test_statements_and_terminators(text, expected):
    assert [str(r) for r in parse(text)] == expected


def test_bare_name_equals_empty_call():
    assert one("p") == one("p()")
    assert one("h :- q") == one("h() :- q()")


def test_several_heads():
    rule = one("p(x), q(x) :- r(x)")
    assert rule.heads == (Atom("p", (x,)), Atom("q", (x,)))
    assert rule.head == Atom("p", (x,))


def test_fact_has_empty_body():
    rule = one('p(1, "a")')
    assert rule.is_fact
    assert rule.heads == (Atom("p", (Constant(1), Constant("a"))),)


@pytest.mark.parametrize(
    "text",
    [
        "// line comment\np(1)",
        "# hash comment\np(1)",
        "/* block */ p(1)",
        "/* multi\n line\n block */\np(1) // trailing",
        "p(1) # trailing",
        "p(/* inside */ 1)",
        "p(1)\n// only a comment at the end",
    ],
)
def test_comments(text):
    assert parse(text) == [Atom_rule("p", Constant(1))]


def Atom_rule(table: str, *args) -> Rule:
    return Rule((Atom(table, tuple(args)),))


def test_only_comments_is_empty():
    assert parse("// nothing\n# at all\n/* here */") == []


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "theory", "table", "update"),
    [
        ("p(x)", None, "p", None),
        ("nova:servers(x)", "nova", "servers", None),
        ("nova:servers:cpu(x)", "nova", "servers:cpu", None),
        ("servers.addresses(x)", None, "servers.addresses", None),
        ("nova:servers.addresses(x)", "nova", "servers.addresses", None),
        ("nova:servers.pause(x)", "nova", "servers.pause", None),
        ("p+(x)", None, "p", "+"),
        ("p-(x)", None, "p", "-"),
        ("nova:p+(x)", "nova", "p", "+"),
        ("nova:servers:cpu-(x)", "nova", "servers:cpu", "-"),
        ("_p(x)", None, "_p", None),
        ("P_1.a2.3b(x)", None, "P_1.a2.3b", None),
        ("count(x)", None, "count", None),
        ("execute(x)", None, "execute", None),
    ],
)
def test_table_names(text, theory, table, update):
    head = one(text).head
    assert (head.theory, head.table, head.update) == (theory, table, update)
    assert head.args == (x,)


def test_qualified_name():
    assert one("nova:servers:cpu+(x)").head.qualified == "nova:servers:cpu+"


@pytest.mark.parametrize("name", ["x", "X", "_x", "server_id", "a.b", "not_x", "count"])
def test_every_bare_identifier_in_arguments_is_a_variable(name):
    assert one(f"p({name})").head.args == (Variable(name),)


# ---------------------------------------------------------------- terms


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'abc'", "abc"),
        ('"abc"', "abc"),
        ("''", ""),
        ('""', ""),
        ("'''tri'ple'''", "tri'ple"),
        ('"""tri"ple"""', 'tri"ple'),
        ("'''multi\nline'''", "multi\nline"),
        ("'a\\nb'", "a\nb"),
        ('"tab\\there"', "tab\there"),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'\\x41\\u00e9\\N{BULLET}'", "Aé•"),
        ("'back\\\\slash'", "back\\slash"),
        ("'keep \\d'", "keep \\d"),
        ("r'a\\nb'", "a\\nb"),
        ('R"a\\nb"', "a\\nb"),
        ("r'\\''", "\\'"),
        ("u'uni'", "uni"),
        ("U'uni\\n'", "uni\n"),
        ('b"bytes"', "bytes"),
        ("B'\\x41'", "A"),
        ("rb'a\\n'", "a\\n"),
        ("Br'a\\n'", "a\\n"),
        ("'日本'", "日本"),
        ("'# not a comment'", "# not a comment"),
        ("'// nor this'", "// nor this"),
        ("'p(x) :- q(x)'", "p(x) :- q(x)"),
    ],
)
def test_strings(source, value):
    (term,) = one(f"p({source})").head.args
    assert term == Constant(value)
    assert isinstance(term.value, str)


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("007", 7),
        ("0x1F", 31),
        ("0X1f", 31),
        ("0o17", 15),
        ("0O17", 15),
        ("0b101", 5),
        ("0B11", 3),
        ("1.5", 1.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("1.5e-3", 0.0015),
        ("2.5E+2", 250.0),
        ("-3", -3),
        ("- 3", -3),
        ("-1.5", -1.5),
        ("-0x10", -16),
        ("-.5", -0.5),
    ],
)
def test_numbers(source, value):
    (term,) = one(f"p({source})").head.args
    assert term == Constant(value)
    assert type(term.value) is type(value)


# ---------------------------------------------------------------- anonymous variables


def test_each_underscore_is_a_fresh_variable_numbered_per_statement():
    rule = one("w(s) :- q(s, _), not r(s, _)")
    assert rule.body[0].args[1] == Variable("_#0")
    assert rule.body[1].atom.args[1] == Variable("_#1")
    assert rule.body[0].args[1].anonymous
    first, second = parse("p(_, _) q(_)")
    assert first.head.args == (Variable("_#0"), Variable("_#1"))
    assert second.head.args == (Variable("_#0"),)


def test_underscore_counts_across_named_arguments_and_aggregates():
    rule = one("p(n) :- q(a=_, b=_), n = count : { r(_) }, s(_)")
    assert rule.body[0].named == (("a", Variable("_#0")), ("b", Variable("_#1")))
    assert rule.body[1].body[0].args == (Variable("_#2"),)
    assert rule.body[2].args == (Variable("_#3"),)


def test_underscores_are_numbered_by_place_not_by_nesting():
    rule = one("p(z) :- q(_, z), z = _ + (_ * 2), n = count : { r(_) }")
    assert rule.body[0].args[0] == Variable("_#0")
    assert rule.body[1].right == BinOp(
        "+", Variable("_#1"), BinOp("*", Variable("_#2"), Constant(2))
    )
    assert rule.body[2].body[0].args == (Variable("_#3"),)
    assert parse(str(rule)) == [rule]


def test_underscore_as_a_table_or_column_name_is_not_counted():
    rule = one("_(_) :- q(_, _=x), r(_)")
    assert (rule.head.table, rule.head.args) == ("_", (Variable("_#0"),))
    assert rule.body[0].args == (Variable("_#1"),)
    assert rule.body[0].named == (("_", x),)
    assert rule.body[1].args == (Variable("_#2"),)


def test_underscore_prefixed_name_is_ordinary():
    (term,) = one("p(_x)").head.args
    assert term == Variable("_x") and not term.anonymous


def test_anonymous_variables_print_as_underscore_and_reparse_equal():
    rule = one("p(x) :- q(x, _, _)")
    assert str(rule) == "p(x) :- q(x, _, _)"
    assert parse(str(rule)) == [rule]


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("text", "args", "named"),
    [
        ("nova:servers(id=x)", (), (("id", x),)),
        ("nova:servers(id=x, status='ACTIVE')", (), (("id", x), ("status", Constant("ACTIVE")))),
        ("nova:servers(x, 3='ACTIVE')", (x,), ((3, Constant("ACTIVE")),)),
        ("nova:servers(x, y, 0x3=z)", (x, y), ((3, z),)),
        ("nova:servers(x, name = -1)", (x,), (("name", Constant(-1)),)),
        ("nova:servers(0=x, name=y)", (), ((0, x), ("name", y))),
    ],
)
def test_named_and_numbered_column_references(text, args, named):
    atom = parse_literal(text)
    assert (atom.args, atom.named) == (args, named)
    assert parse_literal(str(atom)) == atom


# ---------------------------------------------------------------- literals


@pytest.mark.parametrize("negation", ["not ", "NOT ", "!", "! "])
def test_negation_forms(negation):
    rule = one(f"p(x) :- q(x), {negation}r(x)")
    assert rule.body[1] == Negation(Atom("r", (x,)))


@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ("lt(x, y)", BuiltinCall("lt", (x, y))),
        ("builtin:lt(x, y)", BuiltinCall("lt", (x, y))),
        ("plus(x, 1, y)", BuiltinCall("plus", (x, Constant(1), y))),
        ("now(x)", BuiltinCall("now", (x,))),
        ("not equal(x, y)", Negation(BuiltinCall("equal", (x, y)))),
        ("!builtin:gt(x, 1)", Negation(BuiltinCall("gt", (x, Constant(1))))),
        ("builtin:unknown_one(x)", BuiltinCall("unknown_one", (x,))),
        ("nova:lt(x, y)", Atom("lt", (x, y), theory="nova")),
        ("lt+(x, y)", Atom("lt", (x, y), update="+")),
        ("less(x, y)", Atom("less", (x, y))),
    ],
)
def test_builtins_in_the_body(text, literal):
    assert one(f"p(x, y) :- q(x, y), {text}").body[1] == literal


def test_builtin_names_in_heads_stay_atoms():
    assert one("lt(x, y) :- q(x, y)").head == Atom("lt", (x, y))
    assert one("builtin:lt(1, 2)").head == Atom("lt", (Constant(1), Constant(2)), "builtin")


@pytest.mark.parametrize("kind", ["execute", "insert", "delete"])
def test_modal_heads(kind):
    rule = one(f"{kind}[nova:servers.pause(x)] :- error(x)")
    assert rule.head == Modal(kind, Atom("servers.pause", (x,), "nova"))
    assert str(rule) == f"{kind}[nova:servers.pause(x)] :- error(x)"


def test_modal_fact_and_several_heads():
    assert one("execute[p(1)]").head == Modal("execute", Atom("p", (Constant(1),)))
    rule = one("execute[p(x)], q(x) :- r(x)")
    assert [type(h) for h in rule.heads] == [Modal, Atom]


# ---------------------------------------------------------------- comparisons, arithmetic


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "=", "!="])
def test_comparison_operators(op):
    assert one(f"p(x) :- q(x, y), x {op} y").body[1] == Comparison(op, x, y)


@pytest.mark.parametrize(
    ("expr", "tree"),
    [
        ("x + 1", BinOp("+", x, Constant(1))),
        ("x + y * 2", BinOp("+", x, BinOp("*", y, Constant(2)))),
        ("x * y + 2", BinOp("+", BinOp("*", x, y), Constant(2))),
        ("(x + y) * 2", BinOp("*", BinOp("+", x, y), Constant(2))),
        ("x - y - 1", BinOp("-", BinOp("-", x, y), Constant(1))),
        ("x / y % 3", BinOp("%", BinOp("/", x, y), Constant(3))),
        ("x - -1", BinOp("-", x, Constant(-1))),
        ("-x", BinOp("-", Constant(0), x)),
        ("-(x + 1)", BinOp("-", Constant(0), BinOp("+", x, Constant(1)))),
        ("-2 * x", BinOp("*", Constant(-2), x)),
        ("--2", Constant(2)),
        ("((x))", x),
        ("'a'", Constant("a")),
        ("1.5e2", Constant(150.0)),
    ],
)
def test_arithmetic_precedence(expr, tree):
    rule = one(f"p(z) :- q(x, y), z = {expr}")
    assert rule.body[1] == Comparison("=", z, tree)
    assert parse(str(rule)) == [rule]


def test_comparison_with_expressions_on_both_sides():
    rule = one("p(x) :- q(x, y), x + 1 < y * 2")
    assert rule.body[1] == Comparison("<", BinOp("+", x, Constant(1)), BinOp("*", y, Constant(2)))


@pytest.mark.parametrize("left", ["1 < x", "'a' = x", "-1 < x", "(x) < 1"])
def test_comparisons_may_start_with_any_expression(left):
    assert isinstance(one(f"p(x) :- q(x), {left}").body[1], Comparison)


# ---------------------------------------------------------------- aggregates


@pytest.mark.parametrize(
    ("text", "func", "target"),
    [
        ("n = count : { vm(_, h) }", "count", None),
        ("n = count:{ vm(_, h) }", "count", None),
        ("n = sum m : { vm(m, h) }", "sum", Variable("m")),
        ("n = min m * 2 : { vm(m, h) }", "min", BinOp("*", Variable("m"), Constant(2))),
        ("n = max (m + 1) : { vm(m, h) }", "max", BinOp("+", Variable("m"), Constant(1))),
    ],
)
def test_aggregates(text, func, target):
    rule = one(f"p(h, n) :- host(h), {text}")
    agg = rule.body[1]
    assert isinstance(agg, Aggregate)
    assert (agg.result, agg.func, agg.target) == (Variable("n"), func, target)
    assert isinstance(agg.body[0], Atom) and agg.body[0].table == "vm"
    assert parse(str(rule)) == [rule]


def test_aggregate_body_holds_any_literal():
    rule = one(
        "p(n) :- n = count : { vm(v), not paused(v), lt(v, 3), v != 2, k = count : { d(v) } }"
    )
    kinds = [type(lit) for lit in rule.body[0].body]
    assert kinds == [Atom, Negation, BuiltinCall, Comparison, Aggregate]


def test_aggregate_keywords_are_names_elsewhere():
    rule = one("count(x) :- sum(x), max(x, y, z), min = x")
    assert rule.head == Atom("count", (x,))
    assert rule.body[0] == Atom("sum", (x,))
    assert rule.body[1] == BuiltinCall("max", (x, y, z))
    assert rule.body[2] == Comparison("=", Variable("min"), x)


# ---------------------------------------------------------------- spans


def test_spans_of_every_node():
    text = "p(x) :-\n  nova:servers(id=x, 2='A'),\n  not q(x),  x < -1"
    rule = parse(text, "f.dl")[0]
    assert rule.span == Span("f.dl", 1, 1, 3, 20)
    head = rule.head
    assert head.span == Span("f.dl", 1, 1, 1, 5)
    assert head.args[0].span == Span("f.dl", 1, 3, 1, 4)
    servers = rule.body[0]
    assert servers.span == Span("f.dl", 2, 3, 2, 28)
    assert servers.named[0][1].span == Span("f.dl", 2, 19, 2, 20)
    assert servers.named[1][1].span == Span("f.dl", 2, 24, 2, 27)
    negation = rule.body[1]
    assert negation.span == Span("f.dl", 3, 3, 3, 11)
    assert negation.atom.span == Span("f.dl", 3, 7, 3, 11)
    comparison = rule.body[2]
    assert comparison.span == Span("f.dl", 3, 14, 3, 20)
    assert comparison.right.span == Span("f.dl", 3, 18, 3, 20)


def test_spans_of_expressions_aggregates_and_modals():
    rule = parse("execute[a:b(x)] :- n = count : { q(x) }, y = x + 1")[0]
    assert rule.head.span == Span(None, 1, 1, 1, 16)
    assert rule.head.atom.span == Span(None, 1, 9, 1, 15)
    assert rule.body[0].span == Span(None, 1, 20, 1, 40)
    assert rule.body[0].body[0].span == Span(None, 1, 34, 1, 38)
    assert rule.body[1].right.span == Span(None, 1, 46, 1, 51)


def test_spans_do_not_affect_equality():
    assert parse("p(x)  :-   q(x)") == parse("p(x) :- q(x)")


def test_origin_maps_positions():
    rule = parse("p(x)", "lib.yaml", origin=lambda line, col: (line + 10, col + 4))[0]
    assert rule.span == Span("lib.yaml", 11, 5, 11, 9)
    code, line, col, _ = error_of("p(x,)", origin=lambda line, col: (line + 10, col + 4))
    assert (code, line, col) == ("parse_error", 11, 9)


# ---------------------------------------------------------------- errors

TERM = "expected a term (variable, string or number)"


@pytest.mark.parametrize(
    ("text", "code", "line", "col", "message"),
    [
        ("p(x,)", "parse_error", 1, 5, f"unexpected ')': {TERM}"),
        ("p(x", "parse_error", 1, 4, "unexpected end of input: expected ')', ',' or '='"),
        ("p(x) :-\n  q(x,", "parse_error", 2, 7, f"unexpected end of input: {TERM}"),
        ("p(x) :-", "parse_error", 1, 8, "expected a body literal (atom, negation or comparison)"),
        (":- p(x)", "parse_error", 1, 1, "unexpected ':-': expected a rule or fact"),
        ("p(1), q(2)", "parse_error", 1, 11, "expected ',' or ':-'"),
        ("p(x) :- not", "parse_error", 1, 12, "expected a table name"),
        ("p(x) :- q(x) }", "parse_error", 1, 14, "unexpected '}'"),
        ("p(x) :- x =", "parse_error", 1, 12, "an aggregate (count, sum, min or max)"),
        ("p(x) :- x = y +", "parse_error", 1, 16, "expected an expression"),
        ("p(x) :- n = count : {}", "parse_error", 1, 22, "unexpected '}'"),
        ("p(1)(2)", "parse_error", 1, 5, "unexpected '('"),
        ('p("abc)', "parse_error", 1, 3, 'unterminated string: "abc)'),
        ("p('abc\n')", "parse_error", 1, 3, "unterminated string"),
        ("p(r'abc)", "parse_error", 1, 4, "unterminated string"),
        ("p('''abc)", "parse_error", 1, 3, "unterminated string"),
        ("p(x) /* no end", "parse_error", 1, 6, "unterminated comment"),
        ("p(x) :- q(x) @", "parse_error", 1, 14, "unexpected character '@'"),
        ("p(x) :-\n q($)", "parse_error", 2, 4, "unexpected character '$'"),
        ("p(x) :- q(x) x < 1", "parse_error", 1, 16, "unexpected '<'"),
        ('"a"', "parse_error", 1, 1, 'unexpected string "a"'),
        ("p(x) q(x,", "parse_error", 1, 10, TERM),
        ("p(0x)", "parse_error", 1, 4, "unexpected name 'x'"),
        ("p(1e999)", "parse_error", 1, 3, "too large"),
        ("p('\\N{nonsense}')", "parse_error", 1, 4, "unknown Unicode character name"),
        ("p('\\x4')", "parse_error", 1, 4, "invalid escape in string"),
        ("p(x) :- x < count : { q(x) }", "parse_error", 1, 9, "must be assigned to a variable"),
        ("p(x) :- x + 1 = count : { q(x) }", "parse_error", 1, 9, "n = count"),
        ("p(n) :- n = count x : { q(x) }", "parse_error", 1, 19, "count takes no target"),
        ("p(n) :- n = sum : { q(x) }", "parse_error", 1, 13, "sum needs a target"),
        ("p(x) :- lt(a=x, b=1)", "parse_error", 1, 9, "positional arguments only"),
        ("p(x) :- builtin:lt+(x, 1)", "parse_error", 1, 9, "cannot be an update table"),
        ("foo[p(x)] :- q(x)", "parse_error", 1, 1, "unknown modal 'foo'"),
        ("execute[execute[p(x)]]", "parse_error", 1, 16, "unexpected '['"),
        (
            "p(x) :- q(a=x, y)",
            "positional_after_named",
            1,
            16,
            "Atom q has a positional parameter after a reference parameter",
        ),
        (
            "nova:servers(id=x, 1) :- q(x)",
            "positional_after_named",
            1,
            20,
            "Atom nova:servers has a positional parameter after a reference parameter",
        ),
        (
            "p(x) :- execute[q(x)]",
            "modal_in_body",
            1,
            9,
            "Modals not allowed in the rule body: execute[q(x)]",
        ),
        (
            "p(x) :- r(x), not insert[q(x)]",
            "modal_in_body",
            1,
            19,
            "Modals not allowed in the rule body: not insert[q(x)]",
        ),
        ("p(n) :- n = count : { delete[q(x)] }", "modal_in_body", 1, 23, "Modals not allowed"),
    ],
)
def test_errors(text, code, line, col, message):
    got = error_of(text)
    assert got[:3] == (code, line, col), got
    assert message in got[3]


@pytest.mark.parametrize(
    ("text", "col"),
    [
        ("p(x) :- x = " + "-" * 5000 + "x", 13 + 64),
        ("p(n) :- " + "n = count : { " * 3000 + "q(x)" + " }" * 3000, 9 + 14 * 64 + 4),
        ("p(x) :- x = " + "(" * 3000 + "1" + ")" * 3000, 13 + 64),
        ("p(x) :- x = " + " + ".join(["y"] * 3000), 13),
    ],
)
def test_expressions_nested_past_the_limit_are_too_deep(text, col):
    assert error_of(text)[:3] == ("too_deep", 1, col)
    assert "nested deeper than 64 levels" in error_of(text)[3]


@pytest.mark.parametrize(
    "text",
    [
        "p(x) :- q(y), x = " + " + ".join(["y"] * 65),
        "p(x) :- q(y), x = " + "-" * 64 + "y",
        "p(x) :- q(y), x = " + "y - (" * 63 + "y" + ")" * 63,
        "p(x) :- q(y), x = " + "(" * 63 + "y" + ")" * 63 + " + 1",
        "p(n) :- " + "n = count : { " * 64 + "q(x)" + " }" * 64,
        "p(n) :- q(y), n = sum " + " + ".join(["y"] * 64) + " : { q(y) }",
    ],
)
def test_expressions_up_to_the_limit_parse_and_print_back(text):
    """Parentheses around an operator are no level: str() prints one pair per operator."""
    rule = one(text)
    assert parse(str(rule)) == [rule]


def test_redundant_parentheses_up_to_the_limit_are_fine():
    assert one("p(x) :- x = " + "(" * 64 + "1" + ")" * 64).body[0].right == Constant(1)


# ---------------------------------------------------------------- input limits


@pytest.mark.parametrize(
    ("text", "col"),
    [
        ("p(x) :- q(x), x > " + "9" * 5000, 19),
        ("p(x) :- q(x), x > -" + "9" * 101, 20),
        ("p(" + "1" * 101 + ")", 3),
        ("p(-" + "1" * 101 + ")", 4),
        ("p(0x" + "f" * 5000 + ")", 3),
        ("p(0b" + "1" * 400 + ")", 3),
        ("nova:servers(" + "9" * 300 + "=x)", 14),
    ],
)
def test_integers_past_the_limit_are_literal_too_large(text, col):
    code, line, got_col, message = error_of(text)
    assert (code, line, got_col) == ("literal_too_large", 1, col)
    assert "over the limit of 100 (limits.max_int_digits)" in message


def test_integers_up_to_the_limit_parse_and_print_back():
    for text in ("p(" + "9" * 100 + ")", "p(0x" + "f" * 83 + ")", "p(-" + "9" * 100 + ")"):
        rule = one(text)
        assert parse(str(rule)) == [rule]


def test_expression_depth_follows_the_process_limits_up_to_a_ceiling():
    text = "p(x) :- q(y), x = " + " + ".join(["y"] * 102)  # 101 operators
    with limits.overridden(max_depth=10):
        assert error_of("p(x) :- q(y), x = " + "-" * 11 + "y")[0] == "too_deep"
    with limits.overridden(max_depth=500):  # allowed for JSON; expressions stop at 100
        assert one("p(x) :- q(y), x = " + " + ".join(["y"] * 101))
        code, _line, _col, message = error_of(text)
        assert code == "too_deep" and "deeper than 100 levels" in message


def test_the_integer_limit_follows_the_process_limits():
    with limits.overridden(max_int_digits=20):
        assert error_of("p(" + "1" * 21 + ")")[0] == "literal_too_large"
    assert one("p(" + "1" * 21 + ")").head.args[0] == Constant(int("1" * 21))


@pytest.mark.parametrize("digits", [10_000, 100_000])
def test_huge_float_literals_parse_promptly(digits):
    assert one("p(0." + "1" * digits + ")").head.args[0] == Constant(0.1111111111111111)
    assert one("p(" + "1" * 300 + "." + "1" * digits + ")").head.args[0].value > 1e299
    code, line, col, message = error_of("p(1" + "0" * digits + ".0)")
    assert (code, line, col) == ("parse_error", 1, 3) and "too large for a float" in message
    assert len(message) < 100
    assert one("p(1.0e-" + "9" * digits + ")").head.args[0] == Constant(0.0)


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        ('error("\\ud800")', 1, 8),
        ('error("a\\udfff")', 1, 9),
        ("error('\\ud83d x')", 1, 8),
        ('error("\\ude00\\ud83d")', 1, 8),
        ('error("\\U0000d800")', 1, 8),
        ('p(1)\nerror("""ok\n  \\udc00""")', 3, 3),
    ],
)
def test_lone_surrogate_escapes_are_invalid_unicode(text, line, col):
    code, got_line, got_col, message = error_of(text)
    assert (code, got_line, got_col) == ("invalid_unicode", line, col)
    assert "surrogate" in message and "not valid Unicode" in message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"\\ud83d\\ude00"', "\U0001F600"),
        ("'a\\uD83D\\uDE00b'", "a\U0001F600b"),
        ('"\\U0001F600"', "\U0001F600"),
        ('r"\\ud800"', "\\ud800"),
    ],
)
def test_an_escaped_surrogate_pair_is_the_character_it_denotes(text, value):
    rule = one(f"error({text})")
    assert rule.head.args == (Constant(value),)
    assert str(rule).encode("utf-8")
    assert parse(str(rule)) == [rule]


@pytest.mark.parametrize(
    ("text", "col"),
    [("p('\ud800')", 4), ("p(x) :- q(x)\x00, \udfff", 16), ("\udc80", 1)],
)
def test_raw_text_holding_a_lone_surrogate_is_invalid_unicode(text, col):
    assert error_of(text)[:3] == ("invalid_unicode", 1, col)
    with pytest.raises(PolicyError) as info:
        parse_literal(text)
    assert info.value.diagnostics[0].code == "invalid_unicode"


def test_rules_with_more_body_literals_than_the_limit_are_rule_too_large():
    body = ", ".join(f"q{i}(x)" for i in range(6))
    with limits.overridden(max_rule_literals=5):
        assert one("p(x) :- " + ", ".join(f"q{i}(x)" for i in range(5)))
        code, line, col, message = error_of("p(1)\n  p(x) :- " + body)
        assert (code, line, col) == ("rule_too_large", 2, 3)
        assert "6 body literals" in message and "limits.max_rule_literals" in message
        nested = "p(n) :- q(x), n = count : { r(x), s(x), n2 = count : { t(x), u(x) } }"
        assert error_of(nested)[0] == "rule_too_large"  # 2 + 2 + 2 literals, braces too


def test_error_carries_file_and_renders_with_caret():
    with pytest.raises(PolicyError) as info:
        parse("p(x) :-\n  q(x,)", "policy.dl")
    (diagnostic,) = info.value.diagnostics
    assert str(diagnostic) == (
        "policy.dl:2:7: error[parse_error]: unexpected ')': "
        "expected a term (variable, string or number)"
    )
    assert diagnostic.render("p(x) :-\n  q(x,)").endswith("  q(x,)\n          ^")


def test_all_semantic_errors_of_a_text_are_reported_together():
    with pytest.raises(PolicyError) as info:
        parse("p(x) :- q(a=x, y)\nr(x) :- execute[s(x)]\nfoo[t(1)]")
    codes = [(d.code, d.span.line) for d in info.value.diagnostics]
    assert codes == [("positional_after_named", 1), ("modal_in_body", 2), ("parse_error", 3)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("pqx_1.5'\"(),:-;[]{}=<>!+*/%#\n nota")), max_size=40))
def test_no_lark_exception_escapes(text):
    try:
        parse(text)
    except PolicyError as exc:
        assert all(d.span is not None and d.span.line >= 1 for d in exc.diagnostics)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_no_lark_exception_escapes_on_any_text(text):
    with contextlib.suppress(PolicyError):
        parse(text)


# ---------------------------------------------------------------- entry points


def test_parse_rule():
    assert parse_rule("p(x) :- q(x);") == one("p(x) :- q(x)")


@pytest.mark.parametrize("text", ["", "   ", "// just a comment", "/* x */ # y"])
def test_parse_rule_empty(text):
    with pytest.raises(PolicyError) as info:
        parse_rule(text, "r.dl")
    (d,) = info.value.diagnostics
    assert d.code == "rule_syntax"
    assert "Empty string passed" in d.message
    assert d.span == Span("r.dl", 1, 1)


def test_parse_rule_multiple():
    with pytest.raises(PolicyError) as info:
        parse_rule("p(1)\nq(2)")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("multiple_rules", 2, 1)
    assert "p(1); q(2)" in d.message


def test_parse_rule_syntax_error_is_parse_error():
    with pytest.raises(PolicyError) as info:
        parse_rule("p(")
    assert info.value.diagnostics[0].code == "parse_error"


@pytest.mark.parametrize(
    ("text", "atom"),
    [
        ("error(x, 'ACTIVE')", Atom("error", (x, Constant("ACTIVE")))),
        ("nova:servers(id=x)", Atom("servers", (), "nova", (("id", x),))),
        ("p", Atom("p")),
        ("p(_, _).", Atom("p", (Variable("_#0"), Variable("_#1")))),
        ("lt(x, y)", Atom("lt", (x, y))),
        ("p+(x)", Atom("p", (x,), update="+")),
    ],
)
def test_parse_literal(text, atom):
    assert parse_literal(text) == atom


@pytest.mark.parametrize(
    ("text", "col"),
    [("p(x) :- q(x)", 6), ("p(x) q(x)", 6), ("", 1), ("x < 1", 3), ("p(a=x, y)", 8)],
)
def test_parse_literal_errors(text, col):
    with pytest.raises(PolicyError) as info:
        parse_literal(text, "query")
    d = info.value.diagnostics[0]
    assert d.span.file == "query"
    assert d.span.col == col


def test_parse_sequence_is_parse():
    text = "p+(1); q-(2) r(x) :- s(x)"
    assert parse_sequence(text) == parse(text)
    assert len(parse_sequence(text)) == 3


def test_grammar_has_no_lalr_conflicts():
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    from lark import Lark, logger

    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        grammar = parser_module._lark().source_grammar
        Lark(grammar, parser="lalr", start=["start", "query"], debug=True)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert not [r for r in records if "conflict" in r.lower()]


def test_parse_tables_are_cached_in_the_users_cache_directory(monkeypatch, tmp_path):
    from charter.lang import parser as parser_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = parser_module._cache_file()
    assert path is not None and path.startswith(str(tmp_path / "cache" / "charter"))
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # no directory can be made there
    assert parser_module._cache_file() is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CHARTER_PARSER_CACHE", "0")
    assert parser_module._cache_file() is None
