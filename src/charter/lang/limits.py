"""Bounds on what users send: past them an input is refused with a located error, never run.

Every text a user hands Charter (a rule, a JSON request body, a data file, a YAML library
file) passes these checks before anything else reads it, so no input can make Charter
recurse past its stack, build an integer Python refuses to print, keep text the store
cannot encode (a lone UTF-16 surrogate), or expand YAML aliases into gigabytes.

The limits are process-wide settings (``charter serve`` sets them from its config's
``[limits]`` table with :func:`configure`); the defaults suit every interface.

>>> load_json(b'{"rows": [[1, "a"]]}')
{'rows': [[1, 'a']]}
>>> load_json(b'[' * 100 + b']' * 100)  # doctest: +ELLIPSIS
Traceback (most recent call last):
charter.lang.limits.InputError: the request body:1:65: error[too_deep]: JSON nested deeper than 64 levels...
>>> check_int_text("9" * 200, "rule")  # doctest: +ELLIPSIS
Traceback (most recent call last):
charter.lang.limits.InputError: rule: error[literal_too_large]: integer of 200 digits...
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

from charter.lang.errors import CharterError

__all__ = [
    "InputError",
    "Limits",
    "check_int_text",
    "check_text",
    "check_value",
    "check_yaml",
    "configure",
    "current",
    "load_json",
    "overridden",
    "position",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """How large an input may be. Each is a setting of ``[limits]`` in the config."""

    #: Digits of an integer literal (in a rule, a JSON body, a data file). Python itself
    #: refuses to convert more than 4,300; ids and byte counts need about 40.
    max_int_digits: int = 100
    #: Nesting of arrays and objects in JSON and YAML input.
    max_depth: int = 64
    #: Nodes YAML aliases may add in all (a "billion laughs" file adds billions).
    max_yaml_alias_nodes: int = 10_000
    #: Body literals of one rule (aggregate bodies included).
    max_rule_literals: int = 100_000
    #: Characters of a text a policy computes (``concat``, ``x * n``); data and literals are
    #: bounded by the request body's size instead.
    max_text_chars: int = 1_000_000


_limits = Limits()


def current() -> Limits:
    """The limits in force in this process."""
    return _limits


def configure(limits: Limits) -> None:
    """Set the limits for this process (``charter serve`` does, from its settings)."""
    global _limits
    _limits = limits


@contextmanager
def overridden(**changes: int) -> Iterator[Limits]:
    """Other limits for the duration of a ``with`` block (tests, one-off tools)."""
    before = _limits
    configure(replace(before, **changes))
    try:
        yield _limits
    finally:
        configure(before)


class InputError(CharterError):
    """An input past a limit or not valid Unicode: a stable code, the place, and the fix.

    ``where`` names the input (a file, "the request body"); ``line`` and ``col`` are 1-based
    when known. ``str()`` reads like a diagnostic: ``where:line:col: error[code]: message``.
    """

    def __init__(self, code: str, message: str, where: str = "input",
                 line: int | None = None, col: int | None = None):
        self.code = code
        self.message = message
        self.where = where
        self.line = line
        self.col = col
        super().__init__(str(self))

    def __str__(self) -> str:
        place = self.where
        if self.line is not None:
            place += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        return f"{place}: error[{self.code}]: {self.message}"

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message, "severity": "error",
                "file": self.where, "line": self.line, "col": self.col}


def position(text: str | bytes, offset: int) -> tuple[int, int]:
    """1-based (line, col) of ``offset`` in ``text`` (col counts bytes for ``bytes``)."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    line = text.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    start = text.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return line, offset - start + 1


# ---------------------------------------------------------------- scalars


def _too_large(digits: int, limits: Limits) -> str:
    return (f"integer of {digits} digits is over the limit of {limits.max_int_digits} "
            "(limits.max_int_digits); write it as a string if it is an identifier")


def check_int_text(text: str, where: str = "input", line: int | None = None,
                   col: int | None = None) -> None:
    """Refuse the text of an integer with more digits than the limit (before ``int()``)."""
    limits = _limits
    body = text.lstrip("+-")
    digits = len(body.replace("_", ""))
    if body[:2].lower() in ("0x", "0o", "0b"):
        digits = _prefixed_digits(body)
    if digits > limits.max_int_digits:
        raise InputError("literal_too_large", _too_large(digits, limits), where, line, col)


def _prefixed_digits(text: str) -> int:
    """Decimal digits of a ``0x``/``0o``/``0b`` literal's value, without ``str()`` of a
    huge int (Python refuses to print one of over 4,300 digits): exact below that."""
    bits_per_digit = {"x": 4, "o": 3, "b": 1}[text[1].lower()]
    body = text[2:].replace("_", "")
    if len(body) * bits_per_digit > 14_000:  # over 4,214 decimal digits
        return int(len(body) * bits_per_digit * 0.30103) + 1
    try:
        return len(str(int(body, 1 << bits_per_digit)))
    except ValueError:
        return len(body)  # not a number: the caller's own parse reports it


def _int_fits(value: int, limits: Limits) -> bool:
    # 3.33 bits a digit: a cheap test first, the exact one only near the bound.
    bits = value.bit_length()
    if bits * 0.302 < limits.max_int_digits - 1:
        return True
    return bits * 0.302 <= limits.max_int_digits + 1 and len(str(abs(value))) <= limits.max_int_digits


def _valid_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_message(text: str) -> str:
    bad = next(c for c in text if 0xD800 <= ord(c) <= 0xDFFF)
    return (f"text holds a lone UTF-16 surrogate (U+{ord(bad):04X}), which is not valid "
            "Unicode; send the character itself, or both halves of an escaped pair "
            "(\\ud83d\\ude00)")


def check_text(text: str, where: str = "input", line: int | None = None,
               col: int | None = None) -> None:
    """Refuse text that is not valid Unicode (a lone surrogate the store cannot encode)."""
    if not _valid_unicode(text):
        if line is None:
            offset = next(i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF)
            line, col = position(text, offset)
        raise InputError("invalid_unicode", _surrogate_message(text), where, line, col)


# ---------------------------------------------------------------- parsed values


def check_value(value: Any, where: str = "input") -> None:
    """Refuse a parsed JSON/YAML value nested too deeply, with a too large integer or with
    text that is not valid Unicode (keys included). Iterative: any depth is safe to check.
    """
    limits = _limits
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            children: Any = [*item.keys(), *item.values()]
        elif kind is list or kind is tuple:
            children = item
        else:
            children = (item,)
            depth -= 1
        if depth >= limits.max_depth:
            raise InputError("too_deep", f"value nested deeper than {limits.max_depth} levels "
                             "(limits.max_depth)", where)
        for child in children:
            ckind = type(child)
            if ckind is str:
                if not _valid_unicode(child):
                    raise InputError("invalid_unicode", _surrogate_message(child), where)
            elif ckind is int:
                if not _int_fits(child, limits):
                    raise InputError("literal_too_large",
                                     _too_large(len(str(abs(child))), limits), where)
            elif ckind is dict or ckind is list or ckind is tuple:
                stack.append((child, depth + 1))


# ---------------------------------------------------------------- JSON

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_BRACKETS = np.zeros(256, np.int8)
_BRACKETS[[ord("["), ord("{")]] = 1
_BRACKETS[[ord("]"), ord("}")]] = -1


def _depth_offset(raw: bytes, limit: int) -> int | None:
    """The offset of the first bracket nested deeper than ``limit``, or None.

    Brackets inside strings do not count: with escaped backslashes and escaped quotes
    blanked (``bytes.replace``, left to right, as a JSON reader pairs them), every quote
    left opens or closes a string. A few NumPy passes over the bytes then find the depth,
    so a deep body is refused before any recursive parser sees it.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return None
    plain = raw.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    data = np.frombuffer(plain, np.uint8)
    inside = np.cumsum(data == ord('"'), dtype=np.int32) & 1
    steps = _BRACKETS[data]
    steps[inside.astype(bool)] = 0
    depth = np.cumsum(steps, dtype=np.int32)
    over = np.flatnonzero(depth > limit)
    return int(over[0]) if len(over) else None


# Escaped backslashes, a high surrogate escape with its low half, or one half alone.
_ESCAPES = re.compile(rb"(\\\\)|\\u[dD][89abAB][0-9a-fA-F]{2}(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
                      rb"|\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _lone_surrogate_escape(data: bytes) -> int | None:
    """The offset of the first ``\\uXXXX`` escape making a lone surrogate (not half of an
    escaped pair, not after an escaped backslash), or None."""
    for found in _ESCAPES.finditer(data):
        if found.group(1) is None and found.group(2) is None:
            return found.start()
    return None


def _place(raw: bytes | str, data: bytes, offset: int) -> tuple[int, int]:
    """(line, col) of a byte ``offset`` of ``data``: columns count characters when the
    caller gave text (a file), bytes when it gave bytes (a request body)."""
    if isinstance(raw, str):
        return position(raw, len(data[:offset].decode("utf-8", "surrogatepass")))
    return position(data, offset)


class _BigInt(Exception):
    def __init__(self, text: str):
        self.text = text


def _bounded_int(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if len(text.lstrip("-")) > limit:
            raise _BigInt(text)
        return int(text)
    return parse


class _NotFinite(Exception):
    def __init__(self, text: str):
        self.text = text


def _refuse_constant(text: str) -> float:
    raise _NotFinite(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotFinite(text)
    return value


_CONSTANT = re.compile(rb"(?:^|[:\[,])\s*(-?Infinity|NaN)")
_HUGE_EXPONENT = re.compile(rb"[eE]\+?\d{3,}")
# orjson reads an integer past 64 bits as a float; 19 digits in a row take the json path
_LONG_DIGITS = re.compile(rb"\d{19,}")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a body is parsed: a parse makes millions of
    objects and no cycle, and with a large heap alive (a loaded engine) each of the
    collections those allocations trigger walks it (a 1M-row body parsed in 4.1 s with it,
    1.3 s without). Whichever parse ends while another runs turns it on again, which only
    lets that one collect."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_json(raw: bytes | str, where: str = "the request body", *,
              object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """Parse JSON text within the limits.

    Raises:
        InputError: nested too deeply, an integer too large, a lone surrogate escape
            (``\\ud800``), or NaN, Infinity or a number too large for a float (not JSON
            numbers, RFC 8259: a row holding NaN would never equal itself), each with line
            and column.
        ValueError: malformed JSON (``json.JSONDecodeError``) or bytes that are not UTF-8
            (``UnicodeDecodeError``), as ``json.loads`` raises them.
    """
    limits = _limits
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    deep = _depth_offset(data, limits.max_depth)
    if deep is not None:
        line, col = position(data, deep)
        raise InputError("too_deep", f"JSON nested deeper than {limits.max_depth} levels "
                         "(limits.max_depth)", where, line, col)
    if object_pairs_hook is None and not _LONG_DIGITS.search(data):
        # orjson where it gives what json gives (it refuses NaN, Infinity, numbers past a
        # float's range and lone surrogates, as the checks below do); any body it refuses
        # is parsed again below, for json's error or the limits' own
        try:
            with _collector_paused():
                value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            return value
    text = raw if isinstance(raw, str) else raw.decode("utf-8")
    long_int = re.search(rb"\d{%d,}" % (limits.max_int_digits + 1), data)
    try:
        with _collector_paused():
            value = json.loads(
                text, object_pairs_hook=object_pairs_hook,
                parse_int=_bounded_int(limits.max_int_digits) if long_int else None,
                parse_float=_finite_float if _HUGE_EXPONENT.search(data) else None,
                parse_constant=_refuse_constant)
    except _NotFinite as exc:
        found = _CONSTANT.search(data) if exc.text in ("NaN", "Infinity", "-Infinity") else None
        offset = found.start(1) if found else max(data.find(exc.text.encode()), 0)
        line, col = position(data, offset)
        raise InputError("invalid_number", f"{exc.text}: NaN, Infinity and numbers past a "
                         "float's range are not JSON numbers; send a number or a string",
                         where, line, col) from None
    except _BigInt as exc:
        offset = data.find(exc.text.encode())
        line, col = position(data, max(offset, 0))
        raise InputError("literal_too_large", _too_large(len(exc.text.lstrip("-")), limits),
                         where, line, col) from None
    except RecursionError:  # pragma: no cover - the depth scan comes first
        raise InputError("too_deep", "JSON nested too deeply", where) from None
    # Valid UTF-8 bytes hold no surrogate: only an escape (\\ud800) can make one.
    if isinstance(raw, str) and not _valid_unicode(raw):
        check_text(raw, where)
    if _SURROGATE_ESCAPE.search(data):
        try:
            check_value(value, where)
        except InputError as exc:
            if exc.code != "invalid_unicode":
                raise
            found = _lone_surrogate_escape(data)
            line, col = _place(raw, data, found) if found is not None else (None, None)
            raise InputError(exc.code, exc.message, where, line, col) from None
    return value


# ---------------------------------------------------------------- YAML


_YAML_INT_TAG = "tag:yaml.org,2002:int"
# YAML 1.1's implicit int (PyYAML's resolver): binary, octal, decimal, hex, base 60.
_YAML_INT = re.compile(r"""[-+]?(?:0b[0-1_]+|0[0-7_]+|(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+
                       |[1-9][0-9_]*(?::[0-5]?[0-9])+)""", re.X)


def _yaml_int(event: Any) -> bool:
    """Whether PyYAML's safe constructor makes an int of a scalar event: tagged ``!!int``
    (any text: the constructor tries), or plain and written as a YAML 1.1 int."""
    if event.tag == _YAML_INT_TAG:
        return True
    return event.tag is None and event.implicit[0] and _YAML_INT.fullmatch(event.value) is not None


def _yaml_int_digits(text: str) -> int:
    """About how many decimal digits the int PyYAML makes of ``text`` has (exact for
    decimal), from the text alone: a large hex, binary or base-60 value is never built."""
    body = text.replace("_", "").lstrip("+-")
    if body[:2] in ("0b", "0x"):
        return int((len(body) - 2) * (0.30103 if body[1] == "b" else 1.20412)) + 1
    if ":" in body:  # base 60: each part after the first adds a factor of 60
        parts = body.split(":")
        return max(len(p) + int(1.77815 * (len(parts) - 1 - i)) for i, p in enumerate(parts))
    if body[:1] == "0" and len(body) > 1:  # octal
        return int(len(body) * 0.90309) + 1
    return len(body)


def check_yaml(text: str, where: str = "input", loader: Any = None) -> None:
    """Refuse YAML nested too deeply, whose aliases add more nodes than the limit or refer
    to a collection holding them (a recursive value), with a too large integer (decimal,
    hex, octal, binary or base 60, plain or tagged ``!!int``) or with text that is not
    valid Unicode; with line and column.

    Runs over the parser's events (not recursive), before a composer or constructor sees
    the text: PyYAML composes nested nodes recursively, and an alias of an alias multiplies
    what a reader of the loaded value walks.

    >>> check_yaml("a: &a [1, *a]", "d.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    charter.lang.limits.InputError: d.yaml:1:11: error[yaml_aliases]: YAML alias *a stands...
    """
    import yaml

    limits = _limits
    loader = loader or getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    check_text(text, where)
    depth = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for, its aliases expanded
    open_anchors: list[tuple[str | None, int]] = []  # collections being read: anchor, count
    added = 0

    def count(n: int) -> None:
        for i in range(len(open_anchors)):
            anchor, seen = open_anchors[i]
            open_anchors[i] = (anchor, seen + n)

    def fail(code: str, message: str, event: Any) -> InputError:
        mark = event.start_mark
        return InputError(code, message, where, mark.line + 1, mark.column + 1)

    try:
        for event in yaml.parse(text, Loader=loader):
            kind = type(event)
            if kind in (yaml.SequenceStartEvent, yaml.MappingStartEvent):
                depth += 1
                if depth > limits.max_depth:
                    raise fail("too_deep", f"YAML nested deeper than {limits.max_depth} levels "
                               "(limits.max_depth)", event)
                count(1)
                open_anchors.append((event.anchor, 1))
            elif kind in (yaml.SequenceEndEvent, yaml.MappingEndEvent):
                depth -= 1
                anchor, seen = open_anchors.pop()
                if anchor is not None:
                    sizes[anchor] = seen
            elif kind is yaml.ScalarEvent:
                count(1)
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                value = event.value
                if not _valid_unicode(value):
                    raise fail("invalid_unicode", _surrogate_message(value), event)
                if len(value) * 5 > limits.max_int_digits * 4 and _yaml_int(event):
                    digits = _yaml_int_digits(value)
                    if digits > limits.max_int_digits:
                        raise fail("literal_too_large", _too_large(digits, limits), event)
            elif kind is yaml.AliasEvent:
                if any(anchor == event.anchor for anchor, _ in open_anchors):
                    raise fail("yaml_aliases", f"YAML alias *{event.anchor} stands for a "
                               "collection that holds the alias itself, a value without "
                               "end; write the value out", event)
                size = sizes.get(event.anchor, 1)
                added += size
                count(size)
                if added > limits.max_yaml_alias_nodes:
                    raise fail("yaml_aliases", f"YAML aliases expand to over "
                               f"{limits.max_yaml_alias_nodes} nodes "
                               "(limits.max_yaml_alias_nodes); write the values out instead "
                               "of aliasing aliases", event)
    except yaml.YAMLError:
        return  # malformed YAML: the caller's own load reports it, with its place
