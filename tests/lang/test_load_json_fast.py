"""``limits.load_json`` parses with orjson where orjson gives what ``json`` gives; this holds
it to ``json.loads`` (values, their types, key order) on random documents, and to the json
path's own errors on what orjson refuses or would read differently."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.lang.limits import InputError, load_json

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=30,
)


def typed(value: Any) -> Any:
    """The value with every scalar's type beside it (1 == 1.0 == True in Python)."""
    if isinstance(value, dict):
        return ("dict", [(k, typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", math.copysign(1, value), repr(value))
    return (type(value).__name__, value)


@settings(max_examples=300, deadline=None)
@given(documents, st.booleans(), st.booleans())
def test_a_document_parses_as_json_parses_it(value: Any, ascii_only: bool, as_text: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    raw: bytes | str = text if as_text else text.encode()
    assert typed(load_json(raw)) == typed(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # past 64 bits: orjson would make it a float
        "-9223372036854775809",
        "[9223372036854775808, -9223372036854775808]",
        '{"a": 1, "b": 2, "a": 3}',  # the last duplicate wins, in the first one's place
        "\ufeff[1]",  # json.loads refuses a BOM in text
        '"\\ud83d\\ude00"',
        "[1.0e-400, -0.0, 1E2]",
    ],
)
def test_the_edges_parse_as_json_parses_them(text: str) -> None:
    try:
        expected = typed(json.loads(text))
    except ValueError as exc:
        with pytest.raises(type(exc)):
            load_json(text)
        return
    assert typed(load_json(text)) == expected
    assert typed(load_json(text.encode())) == expected


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[1, NaN]", "invalid_number"),
        ("[1e400]", "invalid_number"),
        ('["\\ud800"]', "invalid_unicode"),
        ("[" + "9" * 5000 + "]", "literal_too_large"),
    ],
)
def test_what_orjson_refuses_gets_the_limits_error(text: str, code: str) -> None:
    with pytest.raises(InputError) as exc:
        load_json(text.encode())
    assert exc.value.code == code
    assert exc.value.line == 1


def test_malformed_json_is_json_s_error() -> None:
    with pytest.raises(json.JSONDecodeError) as exc:
        load_json(b'{"a": [1, 2,]}')
    assert (exc.value.lineno, exc.value.colno) == (1, 13)
