"""Blocks of rows as bytes: what a pushed table's base chunks and change log hold.

A block is one tag byte and a body:

- ``M``: the rows as a MessagePack array of arrays. MessagePack keeps the distinctions Datalog
  sees (``1``, ``1.0``, ``"1"``, ``True`` and ``None`` stay an int, a float, a str, a bool and
  None; NaN and infinities are floats), and reads back straight into tuples, nested ones too,
  in C: a million-row table decodes several times faster than the JSON it replaced, and is
  about half its size.
- ``N``: the same, for rows of which one holds a NaN (which equals nothing, itself included:
  a replay deleting such a row finds it another way; see :mod:`charter.store.replay`).
- ``J``: the rows as the JSON of :func:`~charter.store.rows.encode_rows`, for what MessagePack
  cannot hold: integers outside 64 bits, strings with lone surrogates, NumPy scalars.

>>> decode_block(encode_block([(1, 1.0, "1", True, None, ("a", 2))]))
[(1, 1.0, '1', True, None, ('a', 2))]
>>> encode_block([(2**70,)])[:1], decode_block(encode_block([(2**70,)]))
(b'J', [(1180591620717411303424,)])
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import msgpack

from charter.store.errors import StoreError
from charter.store.rows import decode_rows, encode_rows

MSGPACK = b"M"
MSGPACK_NAN = b"N"
JSON = b"J"

_SCALARS = frozenset((str, int, float, bool, type(None)))
_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def encode_block(rows: Sequence[Sequence[Any]], *, checked: bool = False) -> bytes:
    """``rows`` as one block; TypeError (from :func:`encode_rows`) for a value no row may hold.

    ``checked``: the rows are known to hold only what a block holds (they were read from
    blocks), so the scan of every value's type is skipped, and a NaN among them is not
    marked (``N``): :func:`holds_nan` is only asked of blocks written unchecked.
    """
    rows = rows if isinstance(rows, list) else list(rows)
    # MessagePack would also take a dict or bytes, which are not row values: only rows of
    # plain scalars (checked in C) take the fast path; nested values take the JSON one.
    types = None if checked else set(map(type, chain.from_iterable(rows)))
    if types is None or types <= _SCALARS:
        tag = MSGPACK
        if types and float in types and any(v != v for v in chain.from_iterable(rows)):
            tag = MSGPACK_NAN
        try:
            return tag + _pack(rows)
        except (OverflowError, UnicodeEncodeError, TypeError, ValueError):
            pass  # 2**64, "\ud800", or (checked) a nested value: JSON takes them
    return JSON + encode_rows(rows).encode("ascii")


def holds_nan(block: bytes) -> bool:
    """Whether a block written by :func:`encode_block` (unchecked) may hold a NaN."""
    tag = block[:1]
    return tag == MSGPACK_NAN or (tag == JSON and b"NaN" in block)


def decode_block(data: bytes) -> list[tuple]:
    """The rows :func:`encode_block` was given, as tuples, in order."""
    tag, body = data[:1], memoryview(data)[1:]
    if tag in (MSGPACK, MSGPACK_NAN):
        return list(msgpack.unpackb(body, use_list=False, raw=False, strict_map_key=False))
    if tag == JSON:
        return decode_rows(bytes(body).decode("ascii"))
    raise StoreError(
        f"a pushed table's stored block starts with {tag!r}, a format this Charter does not "
        "know: the database was written by a newer Charter; run that version, or a newer one"
    )
