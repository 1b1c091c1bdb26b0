"""Congress's builtin predicates, and Charter's infix operators, as tables.

Every builtin is one :class:`Builtin` entry in :data:`BUILTINS`: how many leading arguments
are inputs (bound before the call), how many trailing arguments are outputs (bound by the
call, or compared when already bound), and the Python function that runs. The functions run
exactly the Python Congress ran (``congress/datalog/builtin.py``), so a Congress policy gives
the same rows here, including Congress's odd corners: ``concat`` is ``x + y`` whatever the
types, ``div`` is floor division when both inputs are ``int``, dates are parsed by dateutil
with time zones ignored, and ``networks_overlap`` only tests whether an end of the second
network lies inside the first.

Congress made a literal silently false when its Python raised (``lt(1, "10")`` raises
``TypeError`` on Python 3, ``div(1, 0, x)`` raises ``ZeroDivisionError``). Here the functions
simply raise: :func:`call_builtin` lets the exception through and the engine turns it into
"false for that row" and counts the error against the rule, so the failure is visible.

No value a policy computes may outgrow the input limits (``charter.lang.limits``): an
integer result of more than ``max_int_digits`` digits, or a text of more than
``max_text_chars`` characters (``x * y`` of a text and a number is checked before it is
built), raises ``ValueError`` like any other failing builtin, so a chain of squarings or of
``concat`` cannot fill the memory; a regular expression from a policy or its data runs with
a time bound (the ``regex`` library's), and a date is parsed only from a short text.

The infix operators of Charter's own syntax live in :data:`COMPARISONS` and
:data:`ARITHMETIC`. Values are Python values and compare as Python compares them.

>>> call_builtin(BUILTINS["plus"], (1, 2))
(3,)
>>> call_builtin(BUILTINS["lt"], (1, 2))
()
>>> call_builtin(BUILTINS["lt"], (2, 1)) is None
True
>>> call_builtin(BUILTINS["unpack_date"], ("2014-01-05 10:00:00",))
(2014, 1, 5)
>>> call_builtin(BUILTINS["datetime_plus"], ("Jan 5, 2014 10:00:00", "1:00:00"))
('2014-01-05 11:00:00',)
>>> BUILTINS["unpack_datetime"].arity
7
>>> COMPARISONS["<"](1, 2), ARITHMETIC["/"](7, 2), ARITHMETIC["/"](7.0, 2)
(True, 3, 3.5)
"""

from __future__ import annotations

import datetime
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import netaddr
import regex as regex_engine
from dateutil import parser as _dateparser

from charter.lang.limits import Limits
from charter.lang.limits import current as current_limits

#: A pattern from a policy or its data may backtrack for ever ("(a+)+$"): each search is
#: bounded, and a search past the bound raises TimeoutError (false for that row, counted).
REGEX_TIMEOUT_S = 0.25

CATEGORIES = ("comparison", "arithmetic", "string", "datetime", "netaddr", "null", "type")


@dataclass(frozen=True, slots=True)
class Builtin:
    """One builtin predicate: its inputs, its outputs and the Python it runs."""

    name: str
    inputs: int
    outputs: int
    fn: Callable[..., Any]
    category: str
    doc: str

    @property
    def arity(self) -> int:
        """Number of arguments the predicate takes in a policy."""
        return self.inputs + self.outputs


def call_builtin(b: Builtin, inputs: Sequence[Any]) -> tuple | None:
    """Run ``b`` on its inputs and return its output values.

    With no outputs the builtin is a test: ``()`` when ``fn(*inputs)`` is truthy, ``None``
    when falsy. With one output the result is ``(value,)``; with more, ``fn`` returns that
    many values and they come back as a tuple. Exceptions from ``fn`` propagate: the engine
    catches them, makes the literal false for that row and counts the error per rule.

    >>> call_builtin(BUILTINS["gt"], (5, 9)) is None
    True
    >>> call_builtin(BUILTINS["unpack_time"], ("2000-1-1 10:5:6",))
    (10, 5, 6)
    >>> call_builtin(BUILTINS["div"], (1, 0))
    Traceback (most recent call last):
    ...
    ZeroDivisionError: integer division or modulo by zero
    """
    if len(inputs) != b.inputs:
        raise TypeError(f"{b.name} takes {b.inputs} input(s), got {len(inputs)}")
    result = b.fn(*inputs)
    if b.outputs == 0:
        return () if result else None
    if b.outputs == 1:
        return (bounded(result),)
    values = tuple(map(bounded, result))
    if len(values) != b.outputs:
        raise ValueError(f"{b.name} returned {len(values)} values, expected {b.outputs}")
    return values


# --- arithmetic and comparison ------------------------------------------------------------

_bounds: tuple[Limits, int, int] | None = None


def _current_bounds() -> tuple[int, int]:
    """The largest integer (exclusive) and text length a computed value may have."""
    global _bounds
    limits = current_limits()
    if _bounds is None or _bounds[0] is not limits:
        _bounds = (limits, 10 ** limits.max_int_digits, limits.max_text_chars)
    return _bounds[1], _bounds[2]


def bounded(value: Any) -> Any:
    """``value``, unless it is an integer or a text past the input limits (ValueError).

    >>> bounded(7), bounded("ok")
    (7, 'ok')
    >>> bounded(10 ** 200)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: an integer result of 201 digits is over limits.max_int_digits (100)
    """
    kind = type(value)
    if kind is int:
        top, _ = _current_bounds()
        if -top < value < top:
            return value
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else value.bit_length()
        raise ValueError(f"an integer result of {digits} digits is over "
                         f"limits.max_int_digits ({current_limits().max_int_digits})")
    if kind is str:
        _, chars = _current_bounds()
        if len(value) > chars:
            raise ValueError(f"a text result of {len(value)} characters is over "
                             f"limits.max_text_chars ({chars})")
    return value


def _add(x: Any, y: Any) -> Any:
    return bounded(x + y)


def _sub(x: Any, y: Any) -> Any:
    return bounded(x - y)


def _mul(x: Any, y: Any) -> Any:
    """``x * y``; a text repeated is measured before it is built."""
    for text, times in ((x, y), (y, x)):
        if isinstance(text, str) and isinstance(times, int):
            _, chars = _current_bounds()
            if len(text) * max(times, 0) > chars:
                raise ValueError(f"a text of {len(text)} characters repeated {times} times "
                                 f"is over limits.max_text_chars ({chars})")
    return bounded(x * y)



def _div(x: Any, y: Any) -> Any:
    """Congress's div: floor division when both are exactly ``int``, true division otherwise.

    >>> _div(10, 4), _div(10, 4.0), _div(True, 2)
    (2, 2.5, 0.5)
    """
    if type(x) is int and type(y) is int:
        return bounded(x // y)
    return x / y


def _mod(x: Any, y: Any) -> Any:
    """Modulo on numbers; refuses strings so ``"%s" % x`` formatting never happens."""
    if isinstance(x, str) or isinstance(y, str):
        raise TypeError(f"'%' needs numbers, got {type(x).__name__} and {type(y).__name__}")
    return x % y


def _equal(x: Any, y: Any) -> bool:
    return bool(x == y)


def _not_equal(x: Any, y: Any) -> bool:
    return bool(x != y)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": _equal,
    "!=": _not_equal,
}
"""Charter's infix comparisons. Ordering values of different kinds raises ``TypeError``."""

ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
}
"""Charter's infix arithmetic. ``/`` is Congress's ``div``; dividing by zero raises."""


# --- datetime -------------------------------------------------------------------------------

_DELTA_FIELDS = ("seconds", "minutes", "hours", "days", "weeks")


MAX_DATE_CHARS = 100  # dateutil reads a long text slowly; no date is written longer


def _to_datetime(x: Any) -> datetime.datetime:
    """Parse with dateutil, dropping any time zone (Congress's ``to_datetime``)."""
    if isinstance(x, str) and len(x) > MAX_DATE_CHARS:
        raise ValueError(f"a text of {len(x)} characters is too long to be a date")
    return _dateparser.parse(x, ignoretz=True)


def _to_timedelta(x: Any) -> datetime.timedelta:
    """An int (or float) of seconds, or a ``"[[[[w:]d:]h:]m:]s"`` string, as a timedelta.

    >>> _to_timedelta("1:2:3:4:5") == datetime.timedelta(weeks=1, days=2, hours=3,
    ...                                                   minutes=4, seconds=5)
    True
    >>> _to_timedelta(90)
    datetime.timedelta(seconds=90)
    """
    if isinstance(x, str):
        fields = x.split(":")
        if len(fields) > len(_DELTA_FIELDS):
            raise ValueError(f"too many fields in time delta {x!r}")
        return datetime.timedelta(
            **{key: int(f) for key, f in zip(_DELTA_FIELDS, reversed(fields), strict=False)}
        )
    return datetime.timedelta(seconds=x)


def _now() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _unpack_date(x: Any) -> tuple[int, int, int]:
    d = _to_datetime(x)
    return (d.year, d.month, d.day)


def _unpack_time(x: Any) -> tuple[int, int, int]:
    d = _to_datetime(x)
    return (d.hour, d.minute, d.second)


def _unpack_datetime(x: Any) -> tuple[int, int, int, int, int, int]:
    d = _to_datetime(x)
    return (d.year, d.month, d.day, d.hour, d.minute, d.second)


def _pack_time(hour: Any, minute: Any, second: Any) -> str:
    return f"{hour}:{minute}:{second}"


def _pack_date(year: Any, month: Any, day: Any) -> str:
    return f"{year}-{month}-{day}"


def _pack_datetime(year: Any, month: Any, day: Any, hour: Any, minute: Any, second: Any) -> str:
    """Unpadded fields, as Congress formats them.

    >>> _pack_datetime(2000, 1, 1, 10, 5, 6)
    '2000-1-1 10:5:6'
    """
    return f"{year}-{month}-{day} {hour}:{minute}:{second}"


def _extract_date(x: Any) -> str:
    return str(_to_datetime(x).date())


def _extract_time(x: Any) -> str:
    return str(_to_datetime(x).time())


_EPOCH_1900 = datetime.datetime(1900, 1, 1)


def _datetime_to_seconds(x: Any) -> int:
    return int((_to_datetime(x) - _EPOCH_1900).total_seconds())


def _datetime_plus(x: Any, delta: Any) -> str:
    return str(_to_datetime(x) + _to_timedelta(delta))


def _datetime_minus(x: Any, delta: Any) -> str:
    return str(_to_datetime(x) - _to_timedelta(delta))


def _datetime_compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(x: Any, y: Any) -> bool:
        return op(_to_datetime(x), _to_datetime(y))

    return compare


# --- netaddr --------------------------------------------------------------------------------


def _ips_compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(x: Any, y: Any) -> bool:
        return op(netaddr.IPAddress(x), netaddr.IPAddress(y))

    return compare


def _networks_equal(x: Any, y: Any) -> bool:
    return netaddr.IPNetwork(x) == netaddr.IPNetwork(y)


def _networks_overlap(x: Any, y: Any) -> bool:
    """True when the first or last address of ``y`` lies inside ``x`` (Congress's test).

    So it misses a ``y`` that strictly contains ``x``:

    >>> _networks_overlap("10.0.0.0/8", "10.1.0.0/16")
    True
    >>> _networks_overlap("10.1.0.0/16", "10.0.0.0/8")
    False
    """
    a, b = netaddr.IPNetwork(x), netaddr.IPNetwork(y)
    return a.first <= b.first <= a.last or a.first <= b.last <= a.last


def _ip_in_network(ip: Any, cidr: Any) -> bool:
    network = netaddr.IPNetwork(cidr)
    return netaddr.IPAddress(ip) in network


# --- type validators (oslo.config's Integer, Float and String checks) ------------------------


def _check_number(num_type: type, minv: Any, maxv: Any, value: Any) -> None:
    """Raise ValueError/TypeError as ``oslo_config.types.Integer``/``Float`` would."""
    if minv is not None and maxv is not None and maxv < minv:
        raise ValueError("Max value is less than min value")
    if not isinstance(value, num_type):
        if str(value).strip() == "":
            return  # oslo.config reads a blank value as "unset", which is valid
        value = num_type(value)
    if minv is not None and value < minv:
        raise ValueError(f"Should be greater than or equal to {format(minv, 'g')}")
    if maxv is not None and value > maxv:
        raise ValueError(f"Should be less than or equal to {format(maxv, 'g')}")


def _validate_number(num_type: type, minv: Any, maxv: Any, value: Any) -> str:
    minv = None if minv == "" else minv
    maxv = None if maxv == "" else maxv
    try:
        _check_number(num_type, minv, maxv, value)
    except (ValueError, TypeError) as err:
        return str(err)
    return ""


def _validate_int(minv: Any, maxv: Any, value: Any) -> str:
    """'' when ``value`` reads as an int within the bounds ('' means unbounded).

    >>> _validate_int(2, 7, 5), _validate_int(2, 7, 9), _validate_int("", "", "12")
    ('', 'Should be less than or equal to 7', '')
    """
    return _validate_number(int, minv, maxv, value)


def _validate_float(minv: Any, maxv: Any, value: Any) -> str:
    """'' when ``value`` reads as a float within the bounds ('' means unbounded)."""
    return _validate_number(float, minv, maxv, value)


def _validate_string(regex: Any, max_length: Any, quotes: Any, ignore_case: Any, value: Any) -> str:
    """'' when ``str(value)`` passes oslo.config's String checks, else the error text.

    ``regex`` ('' for none) must match somewhere in the value; ``max_length`` (falsy for
    none) bounds its length; a truthy ``quotes`` strips one pair of matching quotes first.

    >>> _validate_string("a*", 5, 0, 0, "aaa"), _validate_string("^b", 5, 0, 1, "Bob")
    ('', '')
    >>> _validate_string("", 2, 0, 0, "abc")
    "Value 'abc' exceeds maximum length 2"
    """
    # A regex that is not a string, or does not compile, made Congress's builtin raise.
    pattern = None
    if regex != "" and regex is not None:
        if not isinstance(regex, str):
            raise TypeError(f"regex must be a string, not {type(regex).__name__}")
        pattern = regex_engine.compile(regex, regex_engine.IGNORECASE if ignore_case else 0)
    try:
        limit = max_length or 0
        text = str(value)
        if quotes and text and text[0] in "\"'":
            if text[-1] != text[0]:
                raise ValueError(f"Non-closed quote: {text}")
            text = text[1:-1]
        if limit > 0 and len(text) > limit:
            raise ValueError(f"Value '{text}' exceeds maximum length {int(limit)}")
        if pattern is not None and not pattern.search(text, timeout=REGEX_TIMEOUT_S):
            raise ValueError(f"Value {text!r} doesn't match regex {pattern.pattern!r}")
    except (ValueError, TypeError) as err:
        return str(err)
    return ""


def _is_null(x: Any) -> bool:
    """True for ``None`` only: the text ``"None"`` of a Congress driver is a value."""
    return x is None


def _not_null(x: Any) -> bool:
    return x is not None


# --- the table ------------------------------------------------------------------------------

_TABLE: tuple[Builtin, ...] = (
    # comparison
    Builtin("lt", 2, 0, operator.lt, "comparison", "x < y"),
    Builtin("lteq", 2, 0, operator.le, "comparison", "x <= y"),
    Builtin("equal", 2, 0, operator.eq, "comparison", "x == y"),
    Builtin("gt", 2, 0, operator.gt, "comparison", "x > y"),
    Builtin("gteq", 2, 0, operator.ge, "comparison", "x >= y"),
    Builtin("max", 2, 1, max, "comparison", "z is the larger of x and y"),
    # arithmetic
    Builtin("plus", 2, 1, _add, "arithmetic", "z = x + y"),
    Builtin("minus", 2, 1, _sub, "arithmetic", "z = x - y"),
    Builtin("mul", 2, 1, _mul, "arithmetic", "z = x * y"),
    Builtin("div", 2, 1, _div, "arithmetic", "z = x // y when both are ints, else x / y"),
    Builtin("float", 1, 1, float, "arithmetic", "y = float(x)"),
    Builtin("int", 1, 1, int, "arithmetic", "y = int(x), truncating a float"),
    # string
    Builtin("concat", 2, 1, _add, "string", "z = x + y (strings concatenate)"),
    Builtin("len", 1, 1, len, "string", "y is the length of x"),
    # datetime
    Builtin("now", 0, 1, _now, "datetime", "x is the local time now, 'YYYY-MM-DD HH:MM:SS'"),
    Builtin("unpack_date", 1, 3, _unpack_date, "datetime", "year, month, day of datetime x"),
    Builtin("unpack_time", 1, 3, _unpack_time, "datetime", "hours, minutes, seconds of x"),
    Builtin(
        "unpack_datetime", 1, 6, _unpack_datetime, "datetime", "year, month, day, h, m, s of x"
    ),
    Builtin("pack_time", 3, 1, _pack_time, "datetime", "'h:m:s' from hours, minutes, seconds"),
    Builtin("pack_date", 3, 1, _pack_date, "datetime", "'y-m-d' from year, month, day"),
    Builtin("pack_datetime", 6, 1, _pack_datetime, "datetime", "'y-m-d h:m:s' from six fields"),
    Builtin("extract_date", 1, 1, _extract_date, "datetime", "'YYYY-MM-DD' date part of x"),
    Builtin("extract_time", 1, 1, _extract_time, "datetime", "'HH:MM:SS' time part of x"),
    Builtin(
        "datetime_to_seconds", 1, 1, _datetime_to_seconds, "datetime", "seconds since 1900-01-01"
    ),
    Builtin("datetime_plus", 2, 1, _datetime_plus, "datetime", "z = x + delta (secs or w:d:h:m:s)"),
    Builtin(
        "datetime_minus", 2, 1, _datetime_minus, "datetime", "z = x - delta (secs or w:d:h:m:s)"
    ),
    Builtin("datetime_lt", 2, 0, _datetime_compare(operator.lt), "datetime", "x before y"),
    Builtin("datetime_lteq", 2, 0, _datetime_compare(operator.le), "datetime", "x not after y"),
    Builtin("datetime_gt", 2, 0, _datetime_compare(operator.gt), "datetime", "x after y"),
    Builtin("datetime_gteq", 2, 0, _datetime_compare(operator.ge), "datetime", "x not before y"),
    Builtin("datetime_equal", 2, 0, _datetime_compare(operator.eq), "datetime", "same instant"),
    # netaddr
    Builtin("ips_equal", 2, 0, _ips_compare(operator.eq), "netaddr", "same IP address"),
    Builtin("ips_lt", 2, 0, _ips_compare(operator.lt), "netaddr", "IP x sorts before IP y"),
    Builtin("ips_lteq", 2, 0, _ips_compare(operator.le), "netaddr", "IP x sorts before or is y"),
    Builtin("ips_gt", 2, 0, _ips_compare(operator.gt), "netaddr", "IP x sorts after IP y"),
    Builtin("ips_gteq", 2, 0, _ips_compare(operator.ge), "netaddr", "IP x sorts after or is y"),
    Builtin("networks_equal", 2, 0, _networks_equal, "netaddr", "same network (host bits ignored)"),
    Builtin(
        "networks_overlap", 2, 0, _networks_overlap, "netaddr", "an end of network y lies in x"
    ),
    Builtin("ip_in_network", 2, 0, _ip_in_network, "netaddr", "IP x lies in network y"),
    # null: a column a driver or data file left out is None, which no comparison accepts
    Builtin("is_null", 1, 0, _is_null, "null", "x is null (an absent column)"),
    Builtin("not_null", 1, 0, _not_null, "null", "x holds a value (not null)"),
    # type (used by the config validator)
    Builtin("validate_int", 3, 1, _validate_int, "type", "'' if value is an int in [min, max]"),
    Builtin(
        "validate_float", 3, 1, _validate_float, "type", "'' if value is a float in [min, max]"
    ),
    Builtin(
        "validate_string",
        5,
        1,
        _validate_string,
        "type",
        "'' if value passes regex, max_length, quotes, ignore_case",
    ),
)

BUILTINS: dict[str, Builtin] = {b.name: b for b in _TABLE}
"""Every builtin by name. A policy may also write them as ``builtin:name``."""

RESERVED_NAMES: frozenset[str] = frozenset(BUILTINS)
"""Names a policy may not define as tables, because a builtin answers them."""
