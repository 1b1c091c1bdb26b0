"""Fuzzing the parser (issue 11): whatever the text, ``parse`` returns rules or raises
PolicyError, promptly; what it accepts prints back (``str(rule)``) as UTF-8 text that parses
to an equal rule; and the compiler checks on it raise nothing but PolicyError.

Inputs: token soup from the grammar's tokens, mutations of every policy the tests hold (and
of the committed corpus in ``tests/fuzz/corpus``), odd Unicode (raw and escaped surrogates,
NUL, RTL marks, combining characters, a BOM), huge literals and deep nesting. Reproducible
(``derandomize``, no example database) and bounded for CI by ``max_examples``. A crash the
fuzzer finds is fixed and its input added to ``tests/fuzz/corpus/parser/regressions.json``.
"""

from __future__ import annotations

import ast
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.lang import parser as parser_module
from charter.lang.checks import check_program, compile_rules
from charter.lang.errors import PolicyError
from charter.lang.parser import parse, parse_literal
from tests.fuzz.harness import bounded, mutate, odd_characters, policy_texts

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOKENS = (
    "p", "q", "x", "y", "_", "nova:servers", "ds:t.u", "p+", "q-", "error", "lt", "plus",
    "builtin:gt", "not", "NOT", "!", "execute", "insert", "count", "sum", "min", "max",
    ":-", ",", "(", ")", "[", "]", "{", "}", ":", "=", "<", "<=", ">", ">=", "!=",
    "+", "-", "*", "/", "%", ".", ";", " ", "\n", "//c\n", "# c\n", "/*", "*/",
    "0", "1", "-1", "007", "1.5", ".5", "1e3", "1e999", "0x1F", "0o7", "0b1", "9" * 150,
    "0x" + "f" * 90, "'a'", '"b"', "'''c'''", "r'\\d'", "b'\\xff'", '"\\ud800"',
    '"\\ud83d\\ude00"', '"\\ude00\\ud83d"', "'\\x4'", "'\\N{BULLET}'", "'\\N{x'",
    "'\\U00110000'", '"\\u00e9\\101\\\n"', "'unterminated", '"""', "id=", "3=", "0x3=",
)
tokens = st.one_of(st.sampled_from(TOKENS), odd_characters)
token_soup = st.lists(tokens, max_size=40).map("".join)


@st.composite
def mutated_policies(draw) -> str:
    text = draw(st.sampled_from(policy_texts()))
    return mutate(text, draw, st.one_of(tokens, token_soup))


@st.composite
def odd_policies(draw) -> str:
    """A real policy with odd characters put in its strings and between its tokens."""
    text = draw(st.sampled_from(policy_texts()[:60]))
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.lists(odd_characters, min_size=1, max_size=3).map("".join)) \
            + text[i:]
    return text


@st.composite
def nested(draw) -> str:
    """Expressions and aggregates nested around the limit, and huge literals."""
    n = draw(st.sampled_from([1, 2, 63, 64, 65, 100, 1000, 5000]))
    form = draw(st.sampled_from([
        "(" * n + "y" + ")" * n,
        "-" * n + "y",
        "-(" * n + "y" + ")" * n,
        " + ".join(["y"] * n),
        "y - (" * n + "y" + ")" * n,
        "(" * n + "y + 1" + ")" * n,
        "9" * (n * 3),
        "0x" + "f" * n,
        "1" * (n * 3) + ".5",
        "1e" + "9" * n,
    ]))
    if draw(st.booleans()):
        return "p(x) :- q(y), x = " + form
    return "p(n) :- " + "n = count : { " * min(n, 200) + "q(y), y > " + form + " }" * min(n, 200)


def check_accepted(text: str) -> None:
    """The properties of the module docstring, for one text."""
    with bounded(text):
        try:
            rules = parse(text, "fuzz.dl")
        except PolicyError as exc:
            assert exc.diagnostics and all(d.span is not None for d in exc.diagnostics)
            return
        for rule in rules:
            printed = str(rule)
            printed.encode("utf-8")  # no lone surrogate survives
            assert parse(printed) == [rule], printed
        try:
            normalized, _diagnostics = compile_rules("fuzz", rules)
            check_program({"fuzz": normalized})
        except PolicyError:
            pass


def check_literal(text: str) -> None:
    with bounded(text):
        try:
            atom = parse_literal(text, "--row")
        except PolicyError:
            return
        assert parse_literal(str(atom)) == atom


@pytest.mark.parametrize("text", policy_texts(), ids=range(len(policy_texts())))
def test_every_corpus_text_holds_the_properties(text):
    check_accepted(text)


@FUZZ
@given(token_soup)
def test_token_soup(text):
    check_accepted(text)
    check_literal(text)


@FUZZ
@given(mutated_policies())
def test_mutated_policies(text):
    check_accepted(text)


@settings(FUZZ, max_examples=60)
@given(odd_policies())
def test_odd_unicode(text):
    check_accepted(text)


@settings(FUZZ, max_examples=40)
@given(nested())
def test_deep_nesting_and_huge_literals(text):
    check_accepted(text)


ESCAPE_PIECES = ("\\", "\\\\", "x", "u", "U", "N", "{", "}", "BULLET", "0", "7", "4", "d", "D",
                 "8", "9", "a", "c", "f", "F", "e", "n", "r", "t", "'", '"', "\n", " ", "é", "😀")


@settings(FUZZ, max_examples=150)
@given(st.lists(st.sampled_from(ESCAPE_PIECES), max_size=24).map("".join),
       st.sampled_from(["'", '"', "'''", '"""']))
def test_escapes_decode_as_python_does(body, quote):
    """The parser's own decoder agrees with Python's string literals, but for surrogates:
    an escaped pair is one character, a lone half is refused (invalid_unicode)."""
    literal = quote + body + quote
    token = parser_module._lark().get_terminal("STRING").pattern.to_regexp()
    if re.fullmatch(token, literal) is None:
        return  # not one string token: the lexer never hands it over
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = ast.literal_eval(literal)
        except (SyntaxError, ValueError):
            expected = None
    try:
        got = parser_module._decode_string(literal)
    except parser_module._BadEscape as exc:
        if exc.code == "invalid_unicode":
            assert expected is not None and re.search("[\ud800-\udfff]", expected)
        else:
            assert expected is None, (literal, expected)
        return
    assert expected is not None, literal
    assert got == expected.encode("utf-16", "surrogatepass").decode("utf-16"), literal
