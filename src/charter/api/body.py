"""Reading request bodies: JSON only, bounded in size, depth, integer digits and to valid
Unicode (:func:`charter.lang.limits.load_json`), with errors that say what to fix."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from fastapi import Request

from charter.lang.limits import InputError, load_json, position
from charter.service.errors import ServiceError

WHERE = "the request body"


class TooLarge(ServiceError):
    status = 413


async def read_json(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body (None for an empty body when not ``required``)."""
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
    raw = b"".join(chunks)
    if not raw.strip():
        if required:
            raise ServiceError("the request needs a JSON body")
        return None
    try:
        value = load_json(raw, WHERE)
    except InputError as exc:  # too deep, an integer too large, a lone surrogate
        raise ServiceError(str(exc), data=[exc.to_json()]) from None
    except UnicodeDecodeError:
        raise ServiceError("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ServiceError(f"malformed JSON in the request body at line {exc.lineno} column "
                           f"{exc.colno}: {exc.msg}") from None
    if (b"NaN" in raw or b"Infinity" in raw) and _not_finite(value):
        raise not_json_number(raw)
    return value


_CONSTANT = re.compile(rb"[:\[,]\s*(-?Infinity|NaN)")


def _not_finite(value: Any) -> bool:
    """Whether a parsed body holds NaN or an infinity (Python's reader accepts them)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def not_json_number(raw: bytes) -> ServiceError:
    """NaN and Infinity are not JSON (RFC 8259): a row holding one would never equal itself,
    and answers could not show it."""
    found = _CONSTANT.search(raw)
    line, col = position(raw, found.start(1)) if found else (None, None)
    exc = InputError("invalid_number", "NaN and Infinity are not JSON numbers; send a number "
                     "or a string", WHERE, line, col)
    return ServiceError(str(exc), data=[exc.to_json()])


def as_object(body: Any, what: str) -> dict:
    if not isinstance(body, dict):
        raise ServiceError(f"{what} must be a JSON object, not {type(body).__name__}")
    return body


def flag(value: str | None) -> bool:
    """Congress's boolean query parameters: ``true``/``True``/``1``/``yes``."""
    return value is not None and value.strip().lower() in {"true", "1", "yes", "on"}
