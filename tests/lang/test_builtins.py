"""Builtins behave as Congress's did: true, false, or raising (false and counted here).

The first table holds whole literals as a policy writes them (inputs then outputs) with
Congress's verdict; most rows come from Congress's own ``test_builtins_content``. The second
holds exact output values, checked with their types.
"""

from __future__ import annotations

import re
from typing import Any

import netaddr
import pytest
import regex

from charter.lang.builtins import (
    ARITHMETIC,
    BUILTINS,
    CATEGORIES,
    COMPARISONS,
    RESERVED_NAMES,
    Builtin,
    call_builtin,
)

T, F = True, False


def holds(name: str, args: tuple) -> bool:
    """Whether the literal ``name(*args)`` is true, as Congress decides it."""
    b = BUILTINS[name]
    assert len(args) == b.arity
    out = call_builtin(b, args[: b.inputs])
    return out is not None and out == tuple(args[b.inputs :])


LITERALS: list[tuple[str, tuple, Any]] = [
    # --- comparison
    ("lt", (1, 3), T),
    ("lt", (5, 2), F),
    ("lt", (3, 3), F),
    ("lt", (1, 2.5), T),
    ("lt", ("a", "b"), T),
    ("lt", (1, "10"), TypeError),
    ("lteq", (1, 3), T),
    ("lteq", (3, 3), T),
    ("lteq", (4, 3), F),
    ("lteq", (None, 1), TypeError),
    ("equal", (5, 5), T),
    ("equal", (5, 7), F),
    ("equal", ("a", "a"), T),
    ("equal", (1, "1"), F),
    ("equal", (1, 1.0), T),
    ("gt", (9, 5), T),
    ("gt", (5, 9), F),
    ("gt", ("10", 1), TypeError),
    ("gteq", (10, 5), T),
    ("gteq", (10, 10), T),
    ("gteq", (5, 20), F),
    ("gteq", (1, "x"), TypeError),
    ("max", (3, 4, 4), T),
    ("max", (3, 7, 3), F),
    ("max", ("a", "b", "b"), T),
    ("max", (1, "a", "a"), TypeError),
    # --- arithmetic
    ("plus", (2, 3, 5), T),
    ("plus", (2, 3, 1), F),
    ("plus", ("a", "b", "ab"), T),
    ("plus", (1, "a", "1a"), TypeError),
    ("minus", (5, 3, 2), T),
    ("minus", (5, 3, 6), F),
    ("minus", (3, 5, -2), T),
    ("minus", ("a", 1, "a"), TypeError),
    ("mul", (3, 5, 15), T),
    ("mul", (2, 5, 1), F),
    ("mul", ("ab", 2, "abab"), T),
    ("div", (10, 2, 5), T),
    ("div", (10, 4, 2), T),
    ("div", (10, 4.0, 2.5), T),
    ("div", (10.0, 3, 3.3), F),
    ("div", (-7, 2, -4), T),
    ("div", (1, 0, 0), ZeroDivisionError),
    ("div", (1.0, 0.0, 0), ZeroDivisionError),
    ("div", ("a", 2, 0), TypeError),
    ("float", (2, 2.0), T),
    ("float", (2.3, 2.3), T),
    ("float", (2, 3.3), F),
    ("float", ("2.5", 2.5), T),
    ("float", ("x", 0.0), ValueError),
    ("int", (2, 2), T),
    ("int", (2.3, 2), T),
    ("int", (2, 3.3), F),
    ("int", ("7", 7), T),
    ("int", ("2.5", 2), ValueError),
    ("int", (None, 0), TypeError),
    # --- string
    ("len", ("abcde", 5), T),
    ("len", ("abcde", 7), F),
    ("len", (5, 1), TypeError),
    ("concat", ("abc", "def", "abcdef"), T),
    ("concat", ("abc", "def", "zxy"), F),
    ("concat", (1, 2, 3), T),  # Congress's concat is x + y, whatever the types
    ("concat", ("a", 1, "a1"), TypeError),
    # --- datetime
    ("datetime_lt", ("Jan 1, 2014 10:00:00", "2014-01-02 10:00:00"), T),
    ("datetime_lt", ("2014-01-03 10:00:00", "Jan 2, 2014 10:00:00"), F),
    ("datetime_lt", ("not a date", "2014-01-02"), ValueError),
    ("datetime_lt", (20140101, "2014-01-02"), TypeError),
    ("datetime_lteq", ("Jan 1, 2014 10:00:00", "2014-01-02 10:00:00"), T),
    ("datetime_lteq", ("Jan 1, 2014 10:00:00", "2014-01-01 10:00:00"), T),
    ("datetime_lteq", ("2014-01-02 10:00:00", "Jan 1, 2014 10:00:00"), F),
    ("datetime_lteq", ("", "2014-01-02"), ValueError),
    ("datetime_gt", ("Jan 5, 2014 10:00:00", "2014-01-02 10:00:00"), T),
    ("datetime_gt", ("2014-01-03 10:00:00", "Feb 2, 2014 10:00:00"), F),
    ("datetime_gt", ("2014-13-45", "2014-01-02"), ValueError),
    ("datetime_gteq", ("Jan 5, 2014 10:00:00", "2014-01-02 10:00:00"), T),
    ("datetime_gteq", ("Jan 5, 2014 10:00:00", "2014-01-05 10:00:00"), T),
    ("datetime_gteq", ("2014-01-02 10:00:00", "Mar 1, 2014 10:00:00"), F),
    ("datetime_gteq", (None, "2014-01-02"), TypeError),
    ("datetime_equal", ("Jan 5, 2014 10:00:00", "2014-01-05 10:00:00"), T),
    ("datetime_equal", ("Jan 5, 2014 10:00:00", "2014-01-02 10:00:00"), F),
    ("datetime_equal", ("2014-01-05T10:00:00+02:00", "2014-01-05 10:00:00"), T),  # tz ignored
    ("datetime_plus", ("Jan 5, 2014 10:00:00", 3600, "2014-01-05 11:00:00"), T),
    ("datetime_plus", ("Jan 5, 2014 10:00:00", "1:00:00", "2014-01-05 11:00:00"), T),
    ("datetime_plus", ("Jan 5, 2014 10:00:00", 3600, "2014-01-05 12:00:00"), F),
    ("datetime_plus", ("Jan 5, 2014 10:00:00", "1:0:0:0:0", "2014-01-12 10:00:00"), T),
    ("datetime_plus", ("Jan 5, 2014 10:00:00", "1:a", ""), ValueError),
    ("datetime_plus", ("Jan 5, 2014 10:00:00", "1:1:1:1:1:1", ""), ValueError),
    ("datetime_plus", ("yesterday-ish", 1, ""), ValueError),
    ("datetime_plus", ("Jan 5, 2014 10:00:00", None, ""), TypeError),
    ("datetime_minus", ("Jan 5, 2014 10:00:00", "25:00:00", "2014-01-04 09:00:00"), T),
    ("datetime_minus", ("Jan 5, 2014 10:00:00", 3600, "2014-01-05 09:00:00"), T),
    ("datetime_minus", ("Jan 5, 2014 10:00:00", "9:00:00", "Jan 4, 2014 10:00:00"), F),
    ("datetime_minus", ("Jan 5, 2014 10:00:00", "", ""), ValueError),
    ("datetime_to_seconds", ("Jan 1, 1900 1:00:00", 3600), T),
    ("datetime_to_seconds", ("Jan 1, 1900 1:00:00", 3601), F),
    ("datetime_to_seconds", ("garbage", 0), ValueError),
    ("extract_time", ("Jan 1, 1900 1:00:00", "01:00:00"), T),
    ("extract_time", ("Jan 1, 1900 1:00:00", "02:00:00"), F),
    ("extract_time", (3600, ""), TypeError),
    ("extract_date", ("Jan 1, 1900 1:00:00", "1900-01-01"), T),
    ("extract_date", ("Jan 1, 1900 1:00:00", "2000-01-01"), F),
    ("extract_date", ("31/31/2000", ""), ValueError),
    ("pack_datetime", (2000, 1, 1, 10, 5, 6, "2000-1-1 10:5:6"), T),
    ("pack_datetime", (2000, 1, 1, 10, 5, 6, "2000-1-1 10:5:20"), F),
    ("pack_datetime", (2000, 1, 1, 10, 5, 6, "2000-01-01 10:05:06"), F),
    ("pack_date", (2000, 1, 1, "2000-1-1"), T),
    ("pack_date", (2000, 1, 1, "2000-1-2"), F),
    ("pack_time", (5, 6, 7, "5:6:7"), T),
    ("pack_time", (5, 6, 7, "10:6:7"), F),
    ("unpack_datetime", ("2000-1-1 10:5:6", 2000, 1, 1, 10, 5, 6), T),
    ("unpack_datetime", ("2000-1-1 10:5:6", 2000, 1, 1, 12, 5, 6), F),
    ("unpack_datetime", ("", 0, 0, 0, 0, 0, 0), ValueError),
    ("unpack_date", ("2000-1-1 10:5:6", 2000, 1, 1), T),
    ("unpack_date", ("2000-1-1 10:5:6", 2000, 1, 5), F),
    ("unpack_date", ("Feb 30, 2000", 0, 0, 0), ValueError),
    ("unpack_time", ("2000-1-1 10:5:6", 10, 5, 6), T),
    ("unpack_time", ("2000-1-1 10:5:6", 12, 5, 6), F),
    ("unpack_time", ("25:61", 0, 0, 0), ValueError),
    # --- netaddr, IPv4
    ("ips_equal", ("192.0.2.1", "192.0.2.1"), T),
    ("ips_equal", ("192.0.2.1", "192.0.2.2"), F),
    ("ips_equal", ("192.0.2.1", "not-an-ip"), netaddr.AddrFormatError),
    ("ips_lt", ("192.0.2.1", "192.0.2.2"), T),
    ("ips_lt", ("192.0.2.1", "192.0.2.1"), F),
    ("ips_lt", ("192.0.2.2", "192.0.2.1"), F),
    ("ips_lt", ("192.0.2.256", "192.0.2.1"), netaddr.AddrFormatError),
    ("ips_lteq", ("192.0.2.1", "192.0.2.1"), T),
    ("ips_lteq", ("192.0.2.1", "192.0.2.2"), T),
    ("ips_lteq", ("192.0.2.2", "192.0.2.1"), F),
    ("ips_lteq", (None, "192.0.2.1"), TypeError),
    ("ips_gt", ("192.0.2.2", "192.0.2.1"), T),
    ("ips_gt", ("192.0.2.1", "192.0.2.1"), F),
    ("ips_gt", ("192.0.2.1", "192.0.2.2"), F),
    ("ips_gteq", ("192.0.2.2", "192.0.2.1"), T),
    ("ips_gteq", ("192.0.2.2", "192.0.2.2"), T),
    ("ips_gteq", ("192.0.2.1", "192.0.2.2"), F),
    ("ips_gteq", ("1.2.3", "1.2.3.4"), netaddr.AddrFormatError),
    ("networks_equal", ("192.0.2.0/24", "192.0.2.112/24"), T),
    ("networks_equal", ("192.0.2.0/24", "192.0.3.0/24"), F),
    ("networks_equal", ("192.0.2.0/33", "192.0.2.0/24"), netaddr.AddrFormatError),
    ("networks_overlap", ("192.0.2.0/23", "192.0.2.0/24"), T),
    ("networks_overlap", ("192.0.2.0/24", "192.0.3.0/24"), F),
    ("networks_overlap", ("192.0.2.0/24", "192.0.0.0/16"), F),  # Congress's one-sided test
    ("networks_overlap", ("192.0.2.0/24", "192.0.2.0/23"), T),
    ("networks_overlap", ("bogus", "192.0.2.0/24"), netaddr.AddrFormatError),
    ("ip_in_network", ("192.168.0.1", "192.168.0.0/24"), T),
    ("ip_in_network", ("192.168.10.1", "192.168.0.0/24"), F),
    ("ip_in_network", ("192.168.0.1", "::/0"), F),
    ("ip_in_network", ("192.168.0.1", "192.168.0.0/99"), netaddr.AddrFormatError),
    # --- netaddr, IPv6
    ("ips_equal", ("::ffff:192.0.2.1", "::ffff:192.0.2.1"), T),
    ("ips_equal", ("::ffff:192.0.2.1", "::ffff:192.0.2.2"), F),
    ("ips_lt", ("::ffff:192.0.2.1", "::ffff:192.0.2.2"), T),
    ("ips_lt", ("::ffff:192.0.2.1", "::ffff:192.0.2.1"), F),
    ("ips_lt", ("::ffff:192.0.2.2", "::ffff:192.0.2.1"), F),
    ("ips_lt", ("192.0.2.9", "::1"), T),  # IPv4 sorts before IPv6
    ("ips_lteq", ("::ffff:192.0.2.1", "::ffff:192.0.2.1"), T),
    ("ips_lteq", ("::ffff:192.0.2.1", "::ffff:192.0.2.2"), T),
    ("ips_lteq", ("::ffff:192.0.2.2", "::ffff:192.0.2.1"), F),
    ("ips_gt", ("::ffff:192.0.2.2", "::ffff:192.0.2.1"), T),
    ("ips_gt", ("::ffff:192.0.2.1", "::ffff:192.0.2.1"), F),
    ("ips_gt", ("::ffff:192.0.2.1", "::ffff:192.0.2.2"), F),
    ("ips_gteq", ("::ffff:192.0.2.2", "::ffff:192.0.2.1"), T),
    ("ips_gteq", ("::ffff:192.0.2.2", "::ffff:192.0.2.2"), T),
    ("ips_gteq", ("::ffff:192.0.2.1", "::ffff:192.0.2.2"), F),
    ("networks_equal", ("fe80::ffff:192.0.2.0/24", "fe80::ffff:192.0.2.112/24"), T),
    ("networks_equal", ("fe80::ffff:192.0.2.0/24", "ae80::ffff:192.0.2.0/24"), F),
    ("networks_overlap", ("fe80::ffff:192.0.2.0/23", "fe80::ffff:192.0.2.0/24"), T),
    ("networks_overlap", ("fe80::ffff:192.0.2.0/24", "ae80::ffff:192.0.3.0/24"), F),
    ("ip_in_network", ("fe80::ffff:192.168.0.1", "fe80::ffff:192.168.0.0/24"), T),
    ("ip_in_network", ("fe80::ffff:192.168.10.1", "ae80::ffff:192.168.10.1/24"), F),
    ("ip_in_network", ("fe80::zz", "fe80::/64"), netaddr.AddrFormatError),
    # --- null tests (Charter's): only None is null; Congress's text "None" is a value
    ("is_null", (None,), T),
    ("is_null", ("None",), F),
    ("is_null", ("",), F),
    ("is_null", (0,), F),
    ("not_null", (None,), F),
    ("not_null", ("None",), T),
    ("not_null", (0,), T),
    # --- type validators: the output is '' when the value is valid
    ("validate_int", (2, 7, 5, ""), T),
    ("validate_int", (2, 7, 9, ""), F),
    ("validate_int", (2, 7, "string", ""), F),
    ("validate_int", ("", "", "12", ""), T),
    ("validate_int", ("", "", "  ", ""), T),
    ("validate_float", (2.3, 4.5, 3.3, ""), T),
    ("validate_float", (2.3, 4.5, 7.3, ""), F),
    ("validate_float", ("", "", "nope", ""), F),
    ("validate_string", ("a*", 5, 0, 0, "aaa", ""), T),
    ("validate_string", ("a*", 5, 0, 1, "aAa", ""), T),
    ("validate_string", ("^a+$", 5, 0, 0, "aAa", ""), F),
    ("validate_string", ("^a+$", 5, 0, 1, "aAa", ""), T),
    ("validate_string", ("", 2, 0, 0, "abc", ""), F),
    ("validate_string", ("(", 5, 0, 0, "abc", ""), regex.error),
    ("validate_string", (5, 5, 0, 0, "abc", ""), TypeError),
]


def _case_id(case: tuple[str, tuple, Any]) -> str:
    name, args, verdict = case
    shown = verdict.__name__ if isinstance(verdict, type) else str(verdict)
    return f"{name}{args!r}->{shown}"


@pytest.mark.parametrize(("name", "args", "verdict"), LITERALS, ids=map(_case_id, LITERALS))
def test_literal(name: str, args: tuple, verdict: Any) -> None:
    if isinstance(verdict, type) and issubclass(verdict, BaseException):
        with pytest.raises(verdict):
            holds(name, args)
    else:
        assert holds(name, args) is verdict


OUTPUTS: list[tuple[str, tuple, tuple]] = [
    ("div", (10, 4), (2,)),
    ("div", (10, 4.0), (2.5,)),
    ("div", (True, 2), (0.5,)),  # type(True) is not int: true division, as Congress
    ("int", (2.7,), (2,)),
    ("float", (2,), (2.0,)),
    ("max", (3, 4), (4,)),
    ("len", ("abc",), (3,)),
    ("len", (("a", "b"),), (2,)),
    ("concat", ("a", "b"), ("ab",)),
    ("pack_time", (5.0, 6, 7), ("5.0:6:7",)),
    ("pack_date", (2000, 12, 31), ("2000-12-31",)),
    ("unpack_datetime", ("2014-01-05T10:20:30Z",), (2014, 1, 5, 10, 20, 30)),
    ("extract_time", ("2014-01-05 10:00:00.5",), ("10:00:00.500000",)),
    ("extract_date", ("Jan 5, 2014 10:00:00",), ("2014-01-05",)),
    ("datetime_plus", ("2014-01-05 10:00:00", 0.5), ("2014-01-05 10:00:00.500000",)),
    ("datetime_minus", ("2014-01-05", "1:0:0:0:0"), ("2013-12-29 00:00:00",)),
    ("datetime_to_seconds", ("1900-01-02",), (86400,)),
    ("datetime_to_seconds", ("1899-12-31",), (-86400,)),
    ("validate_int", (2, 7, 9), ("Should be less than or equal to 7",)),
    ("validate_int", (2, 7, 1), ("Should be greater than or equal to 2",)),
    ("validate_int", ("", "", "abc"), ("invalid literal for int() with base 10: 'abc'",)),
    ("validate_int", (7, 2, 5), ("Max value is less than min value",)),
    ("validate_int", ("", "", 2.9), ("",)),  # oslo.config truncates a float
    ("validate_int", ("x", 7, 5), ("'<' not supported between instances of 'int' and 'str'",)),
    ("validate_float", (2.3, 4.5, 7.3), ("Should be less than or equal to 4.5",)),
    ("validate_float", (2.3, 4.5, "1"), ("Should be greater than or equal to 2.3",)),
    ("validate_float", ("", "", "x"), ("could not convert string to float: 'x'",)),
    ("validate_string", ("a", 0, 0, 0, "bbb"), ("Value 'bbb' doesn't match regex 'a'",)),
    ("validate_string", ("", 2, 0, 0, "abc"), ("Value 'abc' exceeds maximum length 2",)),
    ("validate_string", ("", 2, 1, 0, "'ab'"), ("",)),  # quotes stripped before measuring
    ("validate_string", ("", 5, 1, 0, "'ab"), ("Non-closed quote: 'ab",)),
    ("validate_string", ("", 5, 0, 0, "'ab"), ("",)),
    ("validate_string", ("", "", 0, 0, 12345), ("",)),
    ("validate_string", (None, None, 0, 0, "abc"), ("",)),
]


@pytest.mark.parametrize(
    ("name", "inputs", "expected"), OUTPUTS, ids=[f"{n}{i!r}" for n, i, _ in OUTPUTS]
)
def test_output_values(name: str, inputs: tuple, expected: tuple) -> None:
    out = call_builtin(BUILTINS[name], inputs)
    assert out == expected
    assert [type(v) for v in out] == [type(v) for v in expected]


def test_now_is_local_time_in_congress_format() -> None:
    (value,) = call_builtin(BUILTINS["now"], ())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value)


# --- the table itself ---------------------------------------------------------------------

# Congress's registry: name -> (inputs, arity), from congress/datalog/builtin.py.
CONGRESS_SIGNATURES = {
    "lt": (2, 2),
    "lteq": (2, 2),
    "equal": (2, 2),
    "gt": (2, 2),
    "gteq": (2, 2),
    "max": (2, 3),
    "plus": (2, 3),
    "minus": (2, 3),
    "mul": (2, 3),
    "div": (2, 3),
    "float": (1, 2),
    "int": (1, 2),
    "concat": (2, 3),
    "len": (1, 2),
    "now": (0, 1),
    "unpack_date": (1, 4),
    "unpack_time": (1, 4),
    "unpack_datetime": (1, 7),
    "pack_time": (3, 4),
    "pack_date": (3, 4),
    "pack_datetime": (6, 7),
    "extract_date": (1, 2),
    "extract_time": (1, 2),
    "datetime_to_seconds": (1, 2),
    "datetime_plus": (2, 3),
    "datetime_minus": (2, 3),
    "datetime_lt": (2, 2),
    "datetime_lteq": (2, 2),
    "datetime_gt": (2, 2),
    "datetime_gteq": (2, 2),
    "datetime_equal": (2, 2),
    "ips_equal": (2, 2),
    "ips_lt": (2, 2),
    "ips_lteq": (2, 2),
    "ips_gt": (2, 2),
    "ips_gteq": (2, 2),
    "networks_equal": (2, 2),
    "networks_overlap": (2, 2),
    "ip_in_network": (2, 2),
    "validate_int": (3, 4),
    "validate_float": (3, 4),
    "validate_string": (5, 6),
}
CHARTER_SIGNATURES = {"is_null": (1, 1), "not_null": (1, 1)}
"""Charter's own: an absent column (None) is the one value no comparison can test for."""


def test_table_has_exactly_congress_builtins_and_charters_null_tests() -> None:
    signatures = CONGRESS_SIGNATURES | CHARTER_SIGNATURES
    assert {n: (b.inputs, b.arity) for n, b in BUILTINS.items()} == signatures
    assert frozenset(signatures) == RESERVED_NAMES


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_entry_is_well_formed(name: str) -> None:
    b = BUILTINS[name]
    assert b.name == name
    assert b.category in CATEGORIES
    assert b.doc and "\n" not in b.doc
    assert b.outputs >= 0 and b.inputs >= 0


def test_every_builtin_has_a_literal_case() -> None:
    covered = {name for name, _, _ in LITERALS} | {"now"}
    assert covered == set(BUILTINS)


def test_call_builtin_checks_input_count() -> None:
    with pytest.raises(TypeError, match="plus takes 2 input"):
        call_builtin(BUILTINS["plus"], (1,))


def test_call_builtin_checks_output_count() -> None:
    bad = Builtin("bad", 0, 2, lambda: (1, 2, 3), "comparison", "returns too much")
    with pytest.raises(ValueError, match="returned 3 values, expected 2"):
        call_builtin(bad, ())


def test_test_builtin_uses_truthiness() -> None:
    odd = Builtin("odd", 1, 0, lambda x: x % 2, "arithmetic", "x is odd")
    assert call_builtin(odd, (3,)) == ()
    assert call_builtin(odd, (4,)) is None


# --- infix operators ----------------------------------------------------------------------

COMPARISON_CASES: list[tuple[str, Any, Any, Any]] = [
    ("<", 1, 2, True),
    ("<", 2, 1, False),
    ("<", 1, 2.5, True),
    ("<", "a", "b", True),
    ("<", 1, "a", TypeError),
    ("<=", 2, 2, True),
    ("<=", 3, 2, False),
    ("<=", None, 1, TypeError),
    (">", 3, 2, True),
    (">", 2, 3, False),
    (">", "2", 1, TypeError),
    (">=", 2, 3, False),
    (">=", 3, 3, True),
    (">=", 1.5, "x", TypeError),
    ("=", 1, 1, True),
    ("=", 1, 1.0, True),
    ("=", 1, "1", False),
    ("=", None, 0, False),
    ("!=", 1, "1", True),
    ("!=", "a", "a", False),
]


@pytest.mark.parametrize(("op", "x", "y", "expected"), COMPARISON_CASES)
def test_comparison(op: str, x: Any, y: Any, expected: Any) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):
            COMPARISONS[op](x, y)
    else:
        assert COMPARISONS[op](x, y) is expected


MIXED = [0, 1, 1.0, -2.5, "", "1", "a", None, True]


@pytest.mark.parametrize("x", MIXED)
@pytest.mark.parametrize("y", MIXED)
def test_equality_never_raises(x: Any, y: Any) -> None:
    assert COMPARISONS["="](x, y) is (x == y)
    assert COMPARISONS["!="](x, y) is (x != y)


ARITHMETIC_CASES: list[tuple[str, Any, Any, Any]] = [
    ("+", 1, 2, 3),
    ("+", 1, 0.5, 1.5),
    ("+", "a", "b", "ab"),
    ("+", 1, "a", TypeError),
    ("-", 5, 3, 2),
    ("-", 5, "3", TypeError),
    ("*", 3, 4, 12),
    ("*", 1.5, 2, 3.0),
    ("/", 7, 2, 3),
    ("/", -7, 2, -4),
    ("/", 7.0, 2, 3.5),
    ("/", 7, 2.0, 3.5),
    ("/", 1, 0, ZeroDivisionError),
    ("/", 1.0, 0, ZeroDivisionError),
    ("/", "a", 2, TypeError),
    ("%", 7, 3, 1),
    ("%", -7, 3, 2),
    ("%", 7.5, 2, 1.5),
    ("%", 1, 0, ZeroDivisionError),
    ("%", 1.0, 0.0, ZeroDivisionError),
    ("%", "a%s", 1, TypeError),
    ("%", 1, "a", TypeError),
]


@pytest.mark.parametrize(("op", "x", "y", "expected"), ARITHMETIC_CASES)
def test_arithmetic(op: str, x: Any, y: Any, expected: Any) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):
            ARITHMETIC[op](x, y)
    else:
        result = ARITHMETIC[op](x, y)
        assert result == expected
        assert type(result) is type(expected)


def test_operators_are_complete() -> None:
    assert set(COMPARISONS) == {"<", "<=", ">", ">=", "=", "!="}
    assert set(ARITHMETIC) == {"+", "-", "*", "/", "%"}
    assert ARITHMETIC["/"] is BUILTINS["div"].fn


# ---------------------------------------------------------------- bounds on computed values


@pytest.mark.parametrize("name, inputs", [
    ("mul", (10 ** 60, 10 ** 60)),
    ("plus", (10 ** 100 - 1, 1)),
    ("mul", ("ab", 10 ** 9)),
    ("mul", (10 ** 9, "ab")),
    ("concat", ("x" * 600_000, "y" * 600_000)),
])
def test_a_computed_value_past_the_limits_fails_its_row(name, inputs):
    """Squarings or concatenations in a chain cannot fill the memory: past the limits a
    result is an error (false for that row, counted), measured before a text is built."""
    with pytest.raises(ValueError, match="limits.max_(int_digits|text_chars)"):
        call_builtin(BUILTINS[name], inputs)


@pytest.mark.parametrize("op, left, right", [("*", 10 ** 60, 10 ** 60), ("+", "a" * 999_999, "bb"),
                                             ("*", "abc", 10 ** 12)])
def test_infix_arithmetic_is_bounded_too(op, left, right):
    with pytest.raises(ValueError, match="limits.max_(int_digits|text_chars)"):
        ARITHMETIC[op](left, right)


def test_a_backtracking_pattern_is_cut_off():
    """``(x+x+)+y`` on 5,000 x's backtracks for ever in Python's re: the search stops at
    its bound and the row fails, counted, instead of stalling the engine."""
    with pytest.raises(TimeoutError):
        call_builtin(BUILTINS["validate_string"], ("(x+x+)+y", 0, 0, 0, "x" * 5000))


def test_a_long_text_is_no_date():
    with pytest.raises(ValueError, match="too long to be a date"):
        call_builtin(BUILTINS["unpack_date"], ("2014-01-05 " + "1" * 100_000,))
