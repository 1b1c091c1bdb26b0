"""JSON answers holding one long list, encoded by orjson a chunk at a time.

A read of a 100k-row table built the whole answer in Python (a dict per row, validated and
serialized by FastAPI) and then its bytes, all at once. :func:`json_list` writes the same
document piece by piece: the fields before the list, the list's items ``CHUNK`` at a time
(each chunk one orjson call), the fields after it. An answer whose list fits in one chunk
goes out whole, with its length; a longer one streams (chunked transfer), so memory holds
the rows the answer is made of plus one chunk's bytes, not the answer.

Everything up to the first chunk is encoded before the answer starts, so an error there
(an unknown table, a value JSON cannot carry) is an ordinary error answer with its status.
The bytes are those FastAPI writes for the same document (orjson and pydantic's serializer
agree, NaN and infinities included, which both write as null); an integer past 64 bits,
which orjson refuses, is written by pydantic's serializer as FastAPI would.

>>> response = json_list({"total": 2}, "items", iter([{"a": 1}, (2, None)]), {"more": False})
>>> response.body
b'{"total":2,"items":[{"a":1},[2,null]],"more":false}'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

import orjson
from fastapi.responses import Response, StreamingResponse
from pydantic import TypeAdapter

JSON = "application/json"
CHUNK = 2000
"""Items encoded per piece: a few hundred kB for table rows."""
_LIST = TypeAdapter(list)


def json_list(head: Mapping[str, Any], key: str, items: Iterable[Any],
              tail: Mapping[str, Any] | None = None) -> Response:
    """The JSON object ``{**head, key: list(items), **tail}``, streamed when long.

    ``items`` is read lazily, ``CHUNK`` at a time (a generator making each item keeps only
    a chunk of them alive).
    """
    it = iter(items)
    first = list(islice(it, CHUNK))
    more = list(islice(it, CHUNK)) if len(first) == CHUNK else []
    opening = _open(head, key) + encode_items(first)
    closing = _close(tail or {})
    if not more:
        return Response(opening + closing, media_type=JSON)
    return StreamingResponse(_pieces(opening, more, it, closing), media_type=JSON)


def _pieces(opening: bytes, chunk: list, rest: Iterator[Any], closing: bytes) -> Iterator[bytes]:
    yield opening
    while chunk:
        yield b"," + encode_items(chunk)
        chunk = list(islice(rest, CHUNK))
    yield closing


def encode_items(items: list) -> bytes:
    """The items as a JSON list's inside: ``1,2,3`` (nothing for none)."""
    if not items:
        return b""
    try:
        return orjson.dumps(items)[1:-1]
    except orjson.JSONEncodeError:
        pass
    try:
        return _LIST.dump_json(items)[1:-1]  # integers past 64 bits, as FastAPI writes them
    except ValueError:
        # A lone surrogate, which no UTF-8 can carry: escaped, so a long answer that has
        # started cannot end cut short.
        return json.dumps(items, separators=(",", ":"))[1:-1].encode()


def _open(head: Mapping[str, Any], key: str) -> bytes:
    start = orjson.dumps(dict(head))[:-1]
    return start + (b"," if head else b"") + orjson.dumps(key) + b":["


def _close(tail: Mapping[str, Any]) -> bytes:
    if not tail:
        return b"]}"
    return b"]," + orjson.dumps(dict(tail))[1:]


def list_response(description: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a 200 answered by :func:`json_list`."""
    return {200: {"description": description,
                  "content": {JSON: {"schema": {"type": "object"}}}}}
