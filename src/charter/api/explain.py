"""Charter extension: why a row is in a policy's table (a proof tree), or why it is not.

``GET /v1/policies/{policy}/tables/{table}/explain?row=["vm1"]`` (or ``POST`` with
``{"row": ["vm1"]}``) answers the JSON of :mod:`charter.engine.explain` (docs/explain.md).
A ``null`` value leaves a column open: the first matching row is explained, or why none
matches. The engine is read under the service lock, so the answer is one state between
batches.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from charter.api.body import as_object, flag
from charter.api.deps import JsonBody, Viewer
from charter.engine.explain import ANY, explain
from charter.lang.errors import DataError
from charter.service.errors import NotFound, ServiceError

router = APIRouter(prefix="/v1")

MAX_EXAMPLES = 100


def _row(value: Any) -> tuple:
    """The row's values (``null`` -> any value), refusing what no row can hold."""
    if not isinstance(value, list):
        raise ServiceError('the row must be a JSON list of its values, e.g. ["vm1", 2]')
    out = []
    for item in value:
        if item is None:
            out.append(ANY)
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            out.append(item)
        else:
            raise ServiceError(
                f"row value {json.dumps(item)} is not a string or a number "
                "(null leaves a column open)"
            )
    return tuple(out)


def _examples(value: Any) -> int:
    if value is None:
        return 3
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EXAMPLES:
        raise ServiceError(f"examples must be an integer from 0 to {MAX_EXAMPLES}")
    return value


def _explain(
    request: Request, policy: str, table: str, row: tuple, alternatives: bool, examples: int
) -> dict:
    service = request.app.state.service
    with service.lock:
        name = service.policies.get(policy).record.name
        qualified = f"{name}:{table}"
        engine = service.engine
        if not engine.has_table(qualified):
            raise NotFound(f"No such table {table} in policy {name}")
        arity = engine.arity(qualified)
        if arity is not None and len(row) != arity:
            raise ServiceError(f"the row has {len(row)} values; {qualified} has {arity} columns")
        try:
            result = explain(engine, qualified, row, alternatives=alternatives, examples=examples)
        except DataError as exc:
            raise ServiceError(str(exc)) from None
        return result.to_json()


@router.get("/policies/{policy}/tables/{table}/explain")
def explain_row(
    *,
    policy: str,
    table: str,
    request: Request,
    row: str | None = None,
    alternatives: str | None = None,
    examples: int | None = None,
    _: Viewer,
) -> dict:
    """Why ``row`` (a JSON list in the query) is in the table, or why not."""
    if row is None:
        raise ServiceError('explain needs ?row=<JSON list of the row\'s values>, e.g. ?row=["vm1"]')
    try:
        values = json.loads(row)
    except json.JSONDecodeError as exc:
        raise ServiceError(f"?row is not JSON: {exc.msg} at column {exc.colno}") from None
    return _explain(request, policy, table, _row(values), flag(alternatives), _examples(examples))


@router.post("/policies/{policy}/tables/{table}/explain")
def explain_row_body(
    *, policy: str, table: str, request: Request, data: JsonBody, _: Viewer
) -> dict:
    """The same, with ``{"row": [...], "alternatives": bool, "examples": int}`` as body."""
    data = as_object(data, "an explain request")
    unknown = set(data) - {"row", "alternatives", "examples"}
    if unknown:
        raise ServiceError(
            f"unknown explain fields {sorted(unknown)}; use row, alternatives, examples"
        )
    if "row" not in data:
        raise ServiceError('explain needs "row": a JSON list of the row\'s values')
    alternatives = data.get("alternatives", False)
    if not isinstance(alternatives, bool):
        raise ServiceError("alternatives must be true or false")
    return _explain(
        request, policy, table, _row(data["row"]), alternatives, _examples(data.get("examples"))
    )
