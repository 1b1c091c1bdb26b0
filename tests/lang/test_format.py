"""Tests of charter.lang.format: the layout, comments kept, and the meaning never changed.

The properties: formatting is idempotent, ``parse(fmt(x)) == parse(x)`` and the comments
stay the same and in order, over every policy of the repository and the tests, and over
rules generated at random from the AST and printed with random spacing, comments and
spellings.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from lark import Lark

from charter.lang import format as fmt
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
from charter.lang.errors import PolicyError
from charter.lang.format import (
    FormatError,
    comment_ranges,
    comments,
    format_datalog,
    format_library_yaml,
)
from charter.lang.library import load_library_policy
from charter.lang.parser import parse

ROOT = Path(__file__).parents[2]
POLICY_FOLDERS = ["examples", "src", "tests", "bench", "docs"]


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


# ---------------------------------------------------------------- the layout


@pytest.mark.parametrize(
    ("text", "want"),
    [
        pytest.param("p(x):-q(x,y),r( y )", "p(x) :- q(x, y), r(y)\n", id="spacing"),
        pytest.param("p(x) :- q(x); r(1). s(2)", lines("p(x) :- q(x)", "r(1)", "s(2)"), id="terms"),
        pytest.param("p(x) :- NOT q(x), !r(x)", "p(x) :- not q(x), not r(x)\n", id="not"),
        pytest.param(
            "error(vm) :- nova:servers(id = vm, 3 = 'ERROR')",
            'error(vm) :- nova:servers(id=vm, 3="ERROR")\n',
            id="named-columns",
        ),
        pytest.param(
            "execute[ nova:servers.pause( x ) ] :- error( x )",
            "execute[nova:servers.pause(x)] :- error(x)\n",
            id="modal",
        ),
        pytest.param("p+(x) :- nova:q-(x), h, k()", "p+(x) :- nova:q-(x), h, k\n", id="atoms"),
        pytest.param(
            "p(x) :- q(x), lt(x, 3), builtin:gt(x,1), not equal(x, 2)",
            "p(x) :- q(x), lt(x, 3), builtin:gt(x, 1), not equal(x, 2)\n",
            id="builtins-as-written",
        ),
        pytest.param(
            "p(0x1F, 0O17, 1E3, .5, - 3, -2.5e-3, 12345678901234567890123)",
            "p(0x1F, 0o17, 1e3, .5, -3, -2.5e-3, 12345678901234567890123)\n",
            id="numbers-as-written",
        ),
        pytest.param(
            """p('a', 'it\\'s', 'say "hi"', b'x', U'y', r'a\\d', r'q"', '''t 'q' ''')""",
            """p("a", "it's", 'say "hi"', "x", "y", r"a\\d", r'q"', "t 'q' ")\n""",
            id="quotes",
        ),
        pytest.param(
            "p('\\x41\\u00e9\\N{BULLET}', \"\\t\")",
            'p("\\x41\\u00e9\\N{BULLET}", "\\t")\n',
            id="escapes-as-written",
        ),
        pytest.param('p("""two\nlines""")', 'p("two\\nlines")\n', id="string-over-lines"),
        pytest.param(
            "p(z) :- q(x, y), z = ((x + y)) * -(x - 1) - -y / (3 % 4) - (x - y)",
            "p(z) :- q(x, y), z = (x + y) * -(x - 1) - -y / (3 % 4) - (x - y)\n",
            id="parentheses",
        ),
        pytest.param(
            "p(z) :- q(x), z = -x, z = 0 - x, z = -(-x), z = x - -1, z = -(5)",
            "p(z) :- q(x), z = -x, z = 0 - x, z = -(-x), z = x - -1, z = -5\n",
            id="unary-minus",
        ),
        pytest.param(
            "p(n) :- n = count:{q(_)}, s = sum x*2 : { r(x) , x>0 }",
            "p(n) :- n = count : { q(_) }, s = sum x * 2 : { r(x), x > 0 }\n",
            id="aggregates",
        ),
        pytest.param("multi(x),heads(x):-r(x)", "multi(x), heads(x) :- r(x)\n", id="heads"),
        pytest.param("p(x).\n\n\n\nq(x).\n\n", "p(x)\n\nq(x)\n", id="blank-lines"),
        pytest.param("", "", id="empty"),
        pytest.param(" \n\n", "", id="blank"),
    ],
)
def test_layout(text, want):
    assert format_datalog(text) == want


def test_a_rule_past_the_width_puts_one_literal_per_line():
    text = "warning(vm) :- nova:servers(id=vm, flavor_id=f), nova:flavors(id=f, name=n), not ok(n)"
    assert format_datalog(text, width=60) == lines(
        "warning(vm) :-",
        "    nova:servers(id=vm, flavor_id=f),",
        "    nova:flavors(id=f, name=n),",
        "    not ok(n)",
    )
    assert format_datalog(text, width=len(text)) == text + "\n"
    assert format_datalog(text, width=len(text) - 1) == format_datalog(text, width=60)


def test_an_aggregate_past_the_width_puts_its_body_one_literal_per_line():
    text = "p(h, n) :- host(h), n = count : { vm(v, h), not paused(v), k = count : { d(v) } }"
    assert format_datalog(text, width=40) == lines(
        "p(h, n) :-",
        "    host(h),",
        "    n = count : {",
        "        vm(v, h),",
        "        not paused(v),",
        "        k = count : { d(v) }",
        "    }",
    )


def test_consecutive_one_line_rules_align_their_if():
    text = lines(
        "p(x) :- q(x)",
        "longer(x, y) :- q(x), r(y)",
        "fact(1)",
        "s(x) :- q(x)",
        "much_longer_name(x) :- q(x)",
        "",
        "t(x) :- q(x)",
        "// a comment ends a run",
        "uu(x) :- q(x)",
        "v(x) :- q(x)",
    )
    assert format_datalog(text) == lines(
        "p(x)         :- q(x)",
        "longer(x, y) :- q(x), r(y)",
        "fact(1)",
        "s(x)                :- q(x)",
        "much_longer_name(x) :- q(x)",
        "",
        "t(x) :- q(x)",
        "// a comment ends a run",
        "uu(x) :- q(x)",
        "v(x)  :- q(x)",
    )


def test_a_rule_that_would_pass_the_width_once_aligned_starts_a_new_run():
    text = lines("a_long_head(x) :- q(x)", "p(x) :- " + ", ".join(f"q{i}(x)" for i in range(11)))
    out = format_datalog(text, width=len(text.splitlines()[1]) + 2)
    assert out == text  # aligned, p's line would pass the width: each rule alone


def test_crlf_line_breaks_are_kept():
    text = "p(x):-q(x)\r\n// c\r\n/* two\r\nlines */\r\nr(1)\r\n"
    assert format_datalog(text) == "p(x) :- q(x)\r\n// c\r\n/* two\r\nlines */\r\nr(1)\r\n"


# ---------------------------------------------------------------- comments


def test_comments_before_a_rule_between_literals_at_line_ends_and_at_the_end():
    text = lines(
        "// before the file's first rule",
        "",
        "# before a rule",
        "p(x) :-   // after the head",
        "  q(x),  // after q",
        "  // before r, on its own line",
        "  r(x)  /* after r */ , s(x)   // at the end",
        "/* at the end",
        "   of the file */",
    )
    assert format_datalog(text) == lines(
        "// before the file's first rule",
        "",
        "# before a rule",
        "p(x) :-  // after the head",
        "    q(x),  // after q",
        "    // before r, on its own line",
        "    r(x),  /* after r */",
        "    s(x)  // at the end",
        "/* at the end",
        "   of the file */",
    )


def test_a_comment_at_the_end_of_a_one_line_rule_stays_there():
    assert format_datalog("p(x):-q(x)// why\nr(1)#one\n") == lines(
        "p(x) :- q(x)  // why", "r(1)  #one"
    )


def test_comments_inside_an_aggregate_break_it():
    text = lines(
        "p(n) :- n = count : { // what is counted",
        "  q(x), // a q",
        "  // then r",
        "  r(x)",
        "  // last",
        "}, n > 1",
    )
    assert format_datalog(text) == lines(
        "p(n) :-",
        "    n = count : {  // what is counted",
        "        q(x),  // a q",
        "        // then r",
        "        r(x)",
        "        // last",
        "    },",
        "    n > 1",
    )


def test_a_comment_inside_a_literal_moves_to_the_end_of_its_line():
    assert format_datalog("p(x) :- q(x, /* the y */ y), r(y)") == lines(
        "p(x) :-", "    q(x, y),  /* the y */", "    r(y)"
    )


def test_a_comment_a_line_comment_would_swallow_goes_on_its_own_line():
    text = "p(x) :- q(x, // a */ b\n y /* c */), r(1)\nf(1 // d\n) /* e */"
    assert format_datalog(text) == lines(
        "p(x) :-", "    q(x, y),  // a */ b", "    /* c */", "    r(1)", "f(1)  // d", "/* e */"
    )


def test_comments_on_one_line_stay_together():
    assert format_datalog("/* a */ /* b */ // c\np(1) /* d */ q(2)") == lines(
        "/* a */ /* b */ // c", "p(1)  /* d */", "q(2)"
    )


def test_comment_marks_inside_strings_are_not_comments():
    text = 'p("// no", \'# no\', "/* no */") // yes\n'
    assert comments(text) == ["// yes"]
    assert format_datalog(text) == 'p("// no", "# no", "/* no */")  // yes\n'


def test_comment_ranges_agree_with_the_parsers_lexer():
    grammar = resources.files("charter.lang").joinpath("grammar.lark").read_text("utf-8")
    found = []
    lark = Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        lexer_callbacks={"COMMENT": found.append},
    )
    for name, text in DATALOG:
        found.clear()
        lark.parse(text)
        assert comment_ranges(text) == [(t.start_pos, t.end_pos) for t in found], name


# ---------------------------------------------------------------- every policy we have


def _datalog_corpus() -> list[tuple[str, str]]:
    texts = []
    for folder in POLICY_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.dl")):
            texts.append((str(path.relative_to(ROOT)), path.read_text("utf-8")))
    for path in sorted((ROOT / "tests" / "cases").rglob("*.yaml")):
        for index, case in enumerate(yaml.safe_load(path.read_text("utf-8"))["cases"]):
            policies = case.get("policies") or {"p": case.get("policy", "")}
            for policy, text in policies.items():
                texts.append((f"{path.relative_to(ROOT)}#{index}/{policy}", text))
    return [(name, text) for name, text in texts if _parses(text)]


def _library_corpus() -> list[tuple[str, str]]:
    texts = []
    for folder in POLICY_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.y*ml")):
            text = path.read_text("utf-8")
            try:
                load_library_policy(text)
            except PolicyError:
                continue  # data, cases, schemas: not a library policy
            texts.append((str(path.relative_to(ROOT)), text))
    return texts


def _parses(text: str) -> bool:
    try:
        parse(text)
    except PolicyError:
        return False
    return True


DATALOG = _datalog_corpus()
LIBRARY = _library_corpus()


def test_the_corpus_holds_the_repositorys_policies():
    names = {name for name, _ in DATALOG} | {name for name, _ in LIBRARY}
    assert {
        "examples/cloud.dl",
        "bench/policy.dl",
        "examples/library/disallowed_flavors.yaml",
        "src/charter/library/disallowed_flavors.yaml",
        "tests/lang/fixtures/policies/congress_syntax.dl",
        "tests/fuzz/corpus/parser/every_form.dl",
    } <= names
    assert any(name.startswith("tests/cases/") for name in names)
    assert len(DATALOG) >= 40 and len(LIBRARY) >= 8


@pytest.mark.parametrize(("name", "text"), DATALOG, ids=[name for name, _ in DATALOG])
def test_every_datalog_policy_formats_to_the_same_rules_and_comments(name, text):
    out = format_datalog(text, name)
    assert parse(out) == parse(text)
    assert comments(out) == comments(text)
    assert format_datalog(out, name) == out
    assert format_datalog(text, name, width=30) == format_datalog(out, name, width=30)


@pytest.mark.parametrize(("name", "text"), LIBRARY, ids=[name for name, _ in LIBRARY])
def test_every_library_policy_formats_to_the_same_rules(name, text):
    out = format_library_yaml(text, name)
    before, after = load_library_policy(text), load_library_policy(out)
    assert [r.rule for r in after.rules] == [r.rule for r in before.rules]
    assert [(r.comment, r.name) for r in after.rules] == [(r.comment, r.name) for r in before.rules]
    assert [comments(r.text) for r in after.rules] == [comments(r.text) for r in before.rules]
    assert format_library_yaml(out, name) == out
    assert format_library_yaml(text, name, width=40) == format_library_yaml(out, name, width=40)


# ---------------------------------------------------------------- errors


def test_a_text_that_does_not_parse_raises_the_located_diagnostic():
    with pytest.raises(PolicyError) as info:
        format_datalog("p(x) :- q(x)\nr(x) :- s(x,\n", "bad.dl")
    assert str(info.value).startswith("bad.dl:2:13: error[parse_error]: unexpected end of input")


def test_a_library_rule_that_does_not_parse_is_located_in_the_yaml_file():
    text = "name: p\nrules:\n  - rule: >\n      p(x) :-\n        q(x,)\n"
    with pytest.raises(PolicyError) as info:
        format_library_yaml(text, "lib.yaml")
    assert str(info.value).startswith("lib.yaml:5:13: error[parse_error]: unexpected ')'")


def test_printed_text_that_would_change_the_rules_is_refused(monkeypatch):
    monkeypatch.setattr(fmt._Printer, "literal", lambda self, lit: "other(1)")
    with pytest.raises(FormatError, match="a.dl: the formatted text parses to other rules"):
        format_datalog("p(x) :- q(x), r(x)", "a.dl")


def test_printed_text_that_would_lose_a_comment_is_refused(monkeypatch):
    monkeypatch.setattr(fmt, "_trail", lambda groups: "")
    with pytest.raises(FormatError, match="lost or reordered a comment"):
        format_datalog("p(x) :- q(x) // c", "a.dl")


def test_printed_text_that_does_not_parse_is_refused(monkeypatch):
    monkeypatch.setattr(fmt._Printer, "heads", lambda self, heads: "p(")
    with pytest.raises(FormatError, match="the formatted text does not parse"):
        format_datalog("p(x) :- q(x)", "a.dl")


# ---------------------------------------------------------------- library YAML


def test_only_rule_texts_change_in_a_library_file():
    text = lines(
        "# keep: comment   ",
        "name:    Spaced   # keep",
        "description: 'p(x):-q(x)'",
        "rules:",
        "  - comment: p(x):-q(x)",
        "    rule: p(x):-q(x)   # a YAML comment",
        "",
        "  - {rule: 'r(x):-q(x)', name: flow}",
        '  - rule: "s(x) :- q(x)"',
        "  - rule:",
        "      t(x):-q(x)",
        "  - rule: !!str u(x):-q(x)",
    )
    assert format_library_yaml(text) == lines(
        "# keep: comment   ",
        "name:    Spaced   # keep",
        "description: 'p(x):-q(x)'",
        "rules:",
        "  - comment: p(x):-q(x)",
        "    rule: p(x) :- q(x)   # a YAML comment",
        "",
        "  - {rule: 'r(x) :- q(x)', name: flow}",
        '  - rule: "s(x) :- q(x)"',
        "  - rule:",
        "      t(x) :- q(x)",
        "  - rule: !!str u(x) :- q(x)",
    )


def test_a_rule_becoming_several_lines_is_a_folded_block_keeping_its_header():
    text = lines(
        "name: p",
        "rules:",
        "  - rule: error(vm) :- nova:servers(id=vm, status=s), bad(s), not exempt(vm)",
        "    comment: plain before",
        "  - rule: >-   # a header comment",
        "        error(vm) :- nova:servers(id=vm, status=s),",
        "          bad(s), not exempt(vm)",
        "  - rule: |",
        "      p(x) :- q(x)",
        "",
        "# after",
    )
    assert format_library_yaml(text, width=50) == lines(
        "name: p",
        "rules:",
        "  - rule: >",
        "      error(vm) :-",
        "          nova:servers(id=vm, status=s),",
        "          bad(s),",
        "          not exempt(vm)",
        "    comment: plain before",
        "  - rule: >-   # a header comment",
        "        error(vm) :-",
        "            nova:servers(id=vm, status=s),",
        "            bad(s),",
        "            not exempt(vm)",
        "  - rule: |",
        "      p(x) :- q(x)",
        "",
        "# after",
    )


def test_a_rule_text_whose_lines_folding_would_join_becomes_a_literal_block():
    text = "name: p\nrules:\n  - rule: >\n      // why\n      p(x) :- q(x)\n"
    assert yaml.safe_load(text)["rules"][0]["rule"] == "// why p(x) :- q(x)\n"  # all comment
    out = format_library_yaml('name: p\nrules:\n  - rule: "// why\\np(x):-q(x)"\n')
    assert out == "name: p\nrules:\n  - rule: |\n      // why\n      p(x) :- q(x)\n"


def test_a_rule_in_flow_style_that_becomes_several_lines_is_double_quoted():
    text = "name: p\nrules: [{rule: 'p(x) :- q(x), r(x)'}]\n"
    assert format_library_yaml(text, width=10) == (
        'name: p\nrules: [{rule: "p(x) :-\\n    q(x),\\n    r(x)"}]\n'
    )


def test_quoted_rule_texts_keep_their_quotes_and_an_indentation_indicator_its_column():
    text = lines(
        "name: p",
        "rules:",
        "  - rule: \"p(x):-q(x, 'a')\"",
        "  - rule: 'p(x):-q(x, \"a\")'",
        "  - rule: >2",
        "        p(x):-q(x)",
    )
    assert format_library_yaml(text) == lines(
        "name: p",
        "rules:",
        '  - rule: "p(x) :- q(x, \\"a\\")"',
        "  - rule: 'p(x) :- q(x, \"a\")'",
        "  - rule: >2",
        "      p(x) :- q(x)",
    )


def test_tags_anchors_aliases_and_next_line_scalars_keep_their_place():
    text = lines(
        "name: p",
        "rules:",
        "  - rule:",
        "      p(x):-q(x), r(x)",
        "  - rule: &a !!str",
        "      s(x):-q(x), r(x)",
        "  - rule: *a",
    )
    assert format_library_yaml(text) == lines(
        "name: p",
        "rules:",
        "  - rule:",
        "      p(x) :- q(x), r(x)",
        "  - rule: &a !!str",
        "      s(x) :- q(x), r(x)",
        "  - rule: *a",
    )
    assert format_library_yaml(text, width=14) == lines(
        "name: p",
        "rules:",
        "  - rule: >",
        "      p(x) :-",
        "          q(x),",
        "          r(x)",
        "  - rule: &a !!str >",
        "      s(x) :-",
        "          q(x),",
        "          r(x)",
        "  - rule: *a",
    )


def test_characters_yaml_cannot_write_raw_stay_escaped_in_double_quotes():
    text = "name: p\nrules:\n  - rule: \"p(x):-q(x, '\\N\\x7f')\"\n"  # NEL and DEL, escaped
    out = format_library_yaml(text)
    assert out == 'name: p\nrules:\n  - rule: "p(x) :- q(x, \\"\\N\\x7F\\")"\n'
    assert load_library_policy(out).rules[0].rule == load_library_policy(text).rules[0].rule


def test_a_library_file_with_crlf_keeps_them():
    text = "name: p\r\nrules:\r\n  - rule: p(x):-q(x), r(x)\r\n"
    assert format_library_yaml(text, width=12) == (
        "name: p\r\nrules:\r\n  - rule: >\r\n      p(x) :-\r\n          q(x),\r\n          r(x)\r\n"
    )


def test_a_plain_rule_text_that_needs_quotes_gets_them():
    text = "name: p\nrules:\n  - rule: p(n):-n=count:{q(x)}\n"
    out = format_library_yaml(text)  # `: ` would make the plain scalar a mapping
    assert out == "name: p\nrules:\n  - rule: 'p(n) :- n = count : { q(x) }'\n"


# ---------------------------------------------------------------- generated rules

KEYWORDS = {"not", "NOT", "count", "sum", "min", "max"}
names = st.builds(  # cheaper to draw than st.from_regex; dots as in `servers.addresses`
    lambda first, rest, dotted: first + rest + dotted,
    st.sampled_from("abcxyzABQ"),
    st.text("abcxyz019_AZ", max_size=4),
    st.sampled_from(["", "", "", ".a", ".b_1"]),
).filter(lambda n: n not in KEYWORDS)
tables = names.filter(lambda n: n not in BUILTINS)
theories = st.one_of(st.none(), names.filter(lambda n: n != "builtin"))
ODD = ["", "'", '"', "\\", "\n", "\t", "\r", "// x", "# y", "/* z */", "\u2028", "\x00", "\x7f"]
strings = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=8),
    st.lists(st.sampled_from(ODD), max_size=4).map("".join),
)
constants = st.builds(
    Constant,
    st.one_of(
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        strings,
    ),
)
variables = st.builds(Variable, st.one_of(names, st.just("_")))  # `_`: numbered afterwards
terms = st.one_of(variables, constants)


def _negated(expr):
    return BinOp("-", Constant(0), expr)  # the parser's `-x`


exprs = st.recursive(
    terms,
    lambda inner: st.one_of(
        st.builds(BinOp, st.sampled_from("+-*/%"), inner, inner),
        inner.filter(lambda e: not isinstance(e, Constant) or isinstance(e.value, str)).map(
            _negated
        ),
    ),
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
    theories,
    st.lists(st.tuples(st.one_of(names, st.integers(0, 12)), terms), max_size=2).map(tuple),
    st.sampled_from([None, None, "+", "-"]),
).filter(_columns_once)
builtin_calls = st.builds(
    BuiltinCall, st.sampled_from(sorted(BUILTINS)), st.lists(terms, max_size=3).map(tuple)
)
simple_literals = st.one_of(
    atoms,
    builtin_calls,
    st.builds(Negation, st.one_of(atoms, builtin_calls)),
    st.builds(Comparison, st.sampled_from(["<", "<=", ">", ">=", "=", "!="]), exprs, exprs),
)


def _aggregates(body):
    bodies = st.lists(body, min_size=1, max_size=2).map(tuple)
    return st.one_of(
        st.builds(Aggregate, variables, st.just("count"), st.none(), bodies),
        st.builds(Aggregate, variables, st.sampled_from(["sum", "min", "max"]), exprs, bodies),
    )


literals = st.recursive(simple_literals, _aggregates, max_leaves=4)
heads = st.one_of(atoms, st.builds(Modal, st.sampled_from(["execute", "insert", "delete"]), atoms))
rules = st.one_of(
    st.builds(Rule, st.tuples(heads)),
    st.builds(
        Rule,
        st.lists(heads, min_size=1, max_size=2).map(tuple),
        st.lists(literals, min_size=1, max_size=4).map(tuple),
    ),
)


def number_anonymous(rule: Rule) -> Rule:
    """Each ``_`` as the parser names it: ``_#N``, N counting the rule's ``_`` in order."""
    counter = itertools.count()

    def walk(node):
        if isinstance(node, Variable):
            return Variable(f"_#{next(counter)}") if node.name == "_" else node
        if isinstance(node, tuple):
            return tuple(walk(item) for item in node)
        if dataclasses.is_dataclass(node):
            changes = {
                f.name: walk(getattr(node, f.name)) for f in dataclasses.fields(node) if f.init
            }
            return dataclasses.replace(node, **changes)
        return node

    return walk(rule)


class Surface:
    """Prints rules as a user might have written them: random spacing and line breaks,
    comments between tokens, ``NOT``/``!``, single quotes, hex, ``p()``, ``builtin:``,
    ``-x``, terminators. Each comment is numbered, to check that none moves out of order."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.count = itertools.count()

    def pick(self, *options):
        return self.rng.choice(options)

    def separator(self) -> str:
        kind = self.pick(" ", " ", "  ", "\n", "\n\n    ", "comment", "line-comment")
        if kind == "comment":
            return f" /* c{next(self.count)} */ "
        if kind == "line-comment":
            return f" // c{next(self.count)}\n"
        return kind

    def text(self, rules: list[Rule]) -> str:
        pieces = []
        for rule in rules:
            tokens = self.rule(rule) + [self.pick("", ";", ".")]
            pieces.append("".join(t + self.separator() for t in tokens if t))
        return "".join(pieces)

    def rule(self, rule: Rule) -> list[str]:
        tokens = self.join([self.head(h) for h in rule.heads])
        if rule.body:
            tokens += [":-", *self.join([self.literal(lit) for lit in rule.body])]
        return tokens

    @staticmethod
    def join(parts: list[list[str]]) -> list[str]:
        out = []
        for index, part in enumerate(parts):
            out += ([","] if index else []) + part
        return out

    def head(self, head) -> list[str]:
        if isinstance(head, Modal):
            return [head.kind, "[", *self.atom(head.atom), "]"]
        return self.atom(head)

    def atom(self, atom: Atom) -> list[str]:
        args = [[self.term(t)] for t in atom.args]
        args += [[str(key), "=", self.term(t)] for key, t in atom.named]
        if atom.update:  # `p+` and its `(` are written together
            return [atom.qualified + "(", *self.join(args), ")"]
        if not args and self.pick(True, False):
            return [atom.qualified]
        return [atom.qualified, "(", *self.join(args), ")"]

    def literal(self, literal) -> list[str]:
        if isinstance(literal, Atom):
            return self.atom(literal)
        if isinstance(literal, BuiltinCall):
            name = self.pick(literal.name, f"builtin:{literal.name}")
            return [name, "(", *self.join([[self.term(t)] for t in literal.args]), ")"]
        if isinstance(literal, Negation):
            return [self.pick("not", "NOT", "!"), *self.literal(literal.atom)]
        if isinstance(literal, Comparison):
            return [*self.expr(literal.left), literal.op, *self.expr(literal.right)]
        target = [] if literal.target is None else self.expr(literal.target)
        body = self.join([self.literal(lit) for lit in literal.body])
        return [self.term(literal.result), "=", literal.func, *target, ":", "{", *body, "}"]

    def expr(self, expr) -> list[str]:
        if not isinstance(expr, BinOp):
            return [self.term(expr)]
        zero, right = expr.left, expr.right
        if (
            expr.op == "-"
            and zero == Constant(0)
            and type(zero.value) is int
            and not (isinstance(right, Constant) and not isinstance(right.value, str))
            and self.pick(True, False)
        ):
            return ["-", "(", *self.expr(expr.right), ")"]  # the parser's `-x` again
        return ["(", *self.expr(expr.left), expr.op, *self.expr(expr.right), ")"]

    def term(self, term) -> str:
        if isinstance(term, Variable):
            return term.name
        value = term.value
        if isinstance(value, str):
            plain = all(" " <= ch <= "~" and ch not in "'\\" for ch in value)
            if plain and self.pick(True, False):
                return f"'{value}'"
            return json.dumps(value, ensure_ascii=self.pick(True, False))
        if type(value) is int and self.pick(True, False):
            return ("-" if value < 0 else "") + hex(abs(value))
        return repr(value)


@settings(max_examples=200, deadline=None)
@given(st.lists(rules, min_size=1, max_size=3), st.sampled_from([20, 50, 88, 200]), st.randoms())
def test_generated_rules_printed_formatted_and_parsed_are_the_same(generated, width, rng):
    want = [number_anonymous(rule) for rule in generated]
    text = Surface(rng).text(generated)
    out = format_datalog(text, width=width)
    assert parse(out) == want
    assert comments(out) == comments(text)
    assert format_datalog(out, width=width) == out


@settings(max_examples=100, deadline=None)
@given(st.lists(rules, min_size=1, max_size=3))
def test_generated_rules_printed_by_the_ast_reformat_to_themselves(generated):
    want = [number_anonymous(rule) for rule in generated]
    out = format_datalog("\n".join(str(rule) for rule in want))
    assert parse(out) == want
    assert format_datalog(out) == out


@settings(max_examples=100, deadline=None)
@given(rules, st.sampled_from([None, "'", '"', "|", ">"]), st.sampled_from([30, 88]), st.randoms())
def test_generated_library_rules_keep_their_meaning_in_every_yaml_style(rule, style, width, rng):
    text = Surface(rng).text([rule])
    document = yaml.dump(
        {"name": "p", "rules": [{"rule": text}]}, default_style=style, allow_unicode=True
    )
    # PyYAML's dumper writes U+0085 raw where its loader then reads a line break
    assume(yaml.safe_load(document)["rules"][0]["rule"] == text)
    [before] = load_library_policy(document).rules
    assert before.rule == number_anonymous(rule)
    out = format_library_yaml(document, width=width)
    [after] = load_library_policy(out).rules
    assert after.rule == before.rule
    assert comments(after.text) == comments(before.text)
    assert format_library_yaml(out, width=width) == out
