"""Drivers' list-at-a-time JMESPath and JSON parsing give exactly what the per-value
originals give: ``Expression.over`` against ``jmespath.search`` on each item, and
``parse_json`` (orjson when it agrees) against ``json.loads``, on random documents."""

from __future__ import annotations

import json
import math

import jmespath
import jmespath.exceptions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charter.datasources.drivers.extract import Expression, scalars, simple_steps
from charter.datasources.drivers.json_parse import parse_json
from charter.datasources.translator import scalar

KEYS = ("a", "b", "c", "x-y", "")
RANDOM = settings(max_examples=400, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])

leaves = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4))
documents = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner,
                                                                max_size=4),
    max_leaves=12,
)


def _name(key: str) -> str:
    return key if key.isidentifier() else json.dumps(key)


field = st.sampled_from(KEYS).map(_name)
index = st.integers(-4, 4).map(lambda i: f"[{i}]")
literal = st.sampled_from(['`1`', '`"k"`', "`[1, 2]`", "`null`", "`{\"a\": true}`"])


@st.composite
def simple_expressions(draw) -> str:
    """A field, a dotted path, constant indexes, ``@`` and literals, chained."""
    head = draw(st.one_of(field, index, st.just("@"), literal))
    for step in draw(st.lists(st.one_of(field.map(lambda f: "." + f), index), max_size=4)):
        head += step
    return head


# Forms outside the fast path, so the interpreter's side is compared as well.
other_expressions = st.one_of(
    st.tuples(field, field).map(lambda p: f"{p[0]}[*].{p[1]}"),
    st.tuples(field, field).map(lambda p: f"{p[0]}[?{p[1]}]"),
    field.map(lambda f: f"length({f})"),
    field.map(lambda f: f"{f}[]"),
    field.map(lambda f: f"{f}[1:]"),
    st.tuples(field, field).map(lambda p: f"{p[0]} || {p[1]}"),
    st.tuples(field, field).map(lambda p: f"{{x: {p[0]}, y: {p[1]}}}"),
    st.tuples(field, field).map(lambda p: f"{p[0]} | {p[1]}"),
    field.map(lambda f: f"!{f}"),
    st.tuples(field, field).map(lambda p: f"{p[0]} == {p[1]}"),
    field.map(lambda f: f"type({f})"),
)


def _same(got: list, want: list) -> bool:
    # -0.0 == 0.0 in Python; compare with the types and signs of every value.
    return json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True) and [
        type(v) for v in got] == [type(v) for v in want]


@RANDOM
@given(simple_expressions(), st.lists(documents, max_size=6))
def test_simple_paths_take_the_fast_path_and_answer_as_jmespath(text, items):
    expression = Expression(text)
    assert expression.steps is not None, text
    want = [jmespath.search(text, item) for item in items]
    assert _same(expression.over(items), want), text
    for item, value in zip(items, want, strict=True):
        assert _same([expression.search(item)], [value])


def _outcome(call):
    try:
        return "answer", json.dumps(call(), sort_keys=True)
    except jmespath.exceptions.JMESPathError as exc:  # a function given the wrong type
        return "error", type(exc).__name__, str(exc)


@RANDOM
@given(other_expressions, st.lists(documents, max_size=6))
def test_other_expressions_answer_as_jmespath(text, items):
    expression = Expression(text)
    assert expression.steps is None, text
    want = [_outcome(lambda i=item: jmespath.search(text, i)) for item in items]
    errors = [w for w in want if w[0] == "error"]
    if errors:  # over() stops at the first item that fails, with the same error
        assert _outcome(lambda: expression.over(items)) == errors[0]
    else:
        assert _same(expression.over(items), [jmespath.search(text, i) for i in items])


@pytest.mark.parametrize(("text", "steps"), [
    ("a", (("field", "a"),)),
    ("a.b[0]", (("field", "a"), ("field", "b"), ("index", 0))),
    ('"x-y"[-1].c', (("field", "x-y"), ("index", -1), ("field", "c"))),
    ("@", ()),
    ("[2]", (("index", 2),)),
    ("`3`.a", (("literal", 3), ("field", "a"))),
    ("a[*].b", None),
    ("a[0:1]", None),
])
def test_which_expressions_are_simple(text, steps):
    assert simple_steps(jmespath.compile(text).parsed) == steps


def test_the_items_list_is_not_handed_back_for_the_whole_item():
    items = [{"a": 1}]
    out = Expression("@").over(items)
    assert out == items and out is not items


@RANDOM
@given(st.lists(documents, max_size=8))
def test_scalars_is_scalar_of_each_value(values):
    assert _same(scalars(values), [scalar(v) for v in values])


# ---------------------------------------------------------------- parse_json

@RANDOM
@given(documents)
def test_parse_json_is_json_loads(document):
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False, indent=1)):
        for body in (text.encode(), b"\xef\xbb\xbf" + text.encode()):
            assert _same([parse_json(body)], [json.loads(body)])


@pytest.mark.parametrize("body", [
    b"[18446744073709551616, -9223372036854775809]",  # past 64 bits: ints, not floats
    b'{"n": 123456789012345678901234567890}',
    b"123456789012345678901",
    b"[0.0000000000000000000012345, 1234567890123456789.5]",
    b"[NaN, Infinity, -Infinity]",
    b'["\\ud800"]',
    b'{"a": 1, "a": 2}',
    '{"\u00e9": "\u4e2d"}'.encode("utf-16"),
])
def test_parse_json_agrees_where_orjson_would_not(body):
    got, want = parse_json(body), json.loads(body)
    assert json.dumps(got) == json.dumps(want)
    if isinstance(want, list):
        assert [type(v) for v in got] == [type(v) for v in want]


def test_parse_json_refuses_what_json_refuses():
    for body in (b"<html>", b"", b"[1,", b"\xff\xfe\x00"):
        with pytest.raises(json.JSONDecodeError if body[:1] != b"\xff" else ValueError):
            parse_json(body)


def test_nan_survives_as_json_reads_it():
    assert math.isnan(parse_json(b"[NaN]")[0])
