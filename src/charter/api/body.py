"""Reading request bodies: JSON only, bounded in size, depth, integer digits and to valid
Unicode (:func:`charter.lang.limits.load_json`), with errors that say what to fix."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from charter.lang.limits import InputError, load_json
from charter.service.errors import ServiceError

WHERE = "the request body"
OFF_LOOP_BYTES = 32 * 1024
"""Bodies this large are parsed in the thread pool: a 3,000-row push (200 kB) parsed on the
event loop held up every other request for the parse."""


class TooLarge(ServiceError):
    status = 413


async def read_body(request: Request) -> bytes:
    """The request's body, refused (413) past ``max_body_bytes`` as declared or as read."""
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"request body of {declared} bytes is over the limit of {limit} "
                       "bytes (max_body_bytes in the config)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"request body is over the limit of {limit} bytes "
                           "(max_body_bytes in the config)")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body (None for an empty body when not ``required``)."""
    raw = await read_body(request)
    if not raw.strip():
        if required:
            raise ServiceError("the request needs a JSON body")
        return None
    try:
        if len(raw) < OFF_LOOP_BYTES:
            return load_json(raw, WHERE)
        # A large body takes a CPU-second to parse: not on the event loop, which would stall
        # every other request meanwhile.
        return await run_in_threadpool(load_json, raw, WHERE)
    except InputError as exc:  # too deep, too large, a lone surrogate, NaN
        raise ServiceError(str(exc), data=[exc.to_json()]) from None
    except UnicodeDecodeError:
        raise ServiceError("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ServiceError(f"malformed JSON in the request body at line {exc.lineno} column "
                           f"{exc.colno}: {exc.msg}") from None


def as_object(body: Any, what: str) -> dict:
    if not isinstance(body, dict):
        raise ServiceError(f"{what} must be a JSON object, not {type(body).__name__}")
    return body


def flag(value: str | None) -> bool:
    """Congress's boolean query parameters: ``true``/``True``/``1``/``yes``."""
    return value is not None and value.strip().lower() in {"true", "1", "yes", "on"}
