"""Rows as JSON text that reads back as the same Python values.

JSON keeps the distinctions Datalog sees: ``1``, ``1.0``, ``"1"`` and ``true`` stay an int, a
float, a str and a bool, and arrays come back as tuples, so a row read back equals and hashes
like the row written. Anything else (a dict, a date, an object) is refused at write time rather
than stored as something that reads back different.

>>> decode_row(encode_row((1, 1.0, "1", True, None, ("a", 2))))
(1, 1.0, '1', True, None, ('a', 2))
>>> row_key((1, "a")) == row_key([1, "a"]) != row_key((1.0, "a"))
True
>>> decode_rows(encode_rows([(1, "x"), (2.5, None)]))
[(1, 'x'), (2.5, None)]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import numpy as np

_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """``value`` as str/int/float/bool/None, or a list of those; TypeError for anything else."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, np.generic):  # rows out of the columnar engine may carry numpy scalars
        return _plain(value.item())
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    raise TypeError(
        f"cannot store {value!r} ({type(value).__name__}) in a row: "
        "row values are str, int, float, bool or None"
    )


def encode_row(row: Sequence[Any]) -> str:
    """The row as compact ASCII JSON (ASCII so any database encoding takes it)."""
    return json.dumps([_plain(v) for v in row], separators=(",", ":"))


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def decode_row(text: str) -> tuple:
    """The tuple :func:`encode_row` was given (lists inside it come back as tuples too)."""
    return _tuples(json.loads(text))


_PLAIN = frozenset(_SCALARS)


def encode_rows(rows: Iterable[Sequence[Any]]) -> str:
    """A whole table as one JSON array of rows (the text ``encode_row`` gives each, joined).

    Rows of plain scalars only (the common case, checked in C) are encoded by one
    ``json.dumps``: a 100k-row push spent a second here, row by row, under the lock.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    if set(map(type, chain.from_iterable(rows))) <= _PLAIN:
        return json.dumps(rows, separators=(",", ":"))
    return "[" + ",".join(encode_row(row) for row in rows) + "]"


def decode_rows(text: str) -> list[tuple]:
    """The rows :func:`encode_rows` was given, in order."""
    rows = json.loads(text)
    if text.count("[") == len(rows) + 1:  # no array inside a row (a "[" in a string only
        return list(map(tuple, rows))  # adds to the count): a 100k-row restore, in C
    return [_tuples(row) for row in rows]


def encoded_key(text: str) -> str:
    """A fixed-size key for looking an encoded row up: the SHA-256 of its JSON, in hex."""
    return hashlib.sha256(text.encode()).hexdigest()


def row_key(row: Sequence[Any]) -> str:
    """The look-up key of ``row``: equal for equal rows of equal types."""
    return encoded_key(encode_row(row))
