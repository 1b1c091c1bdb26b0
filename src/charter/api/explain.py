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

from charter.api.body import flag
from charter.api.deps import JsonBody
from charter.api.models import (
    AUTH,
    BODY,
    POLICY,
    ExplainBody,
    check_examples,
    check_explain_row,
    errors,
    parse,
    request_body,
)
from charter.engine.explain import ANY, explain
from charter.lang.errors import DataError
from charter.lang.limits import InputError, load_json
from charter.service.errors import NotFound, ServiceError

router = APIRouter(prefix="/v1")


def _row(value: Any) -> tuple:
    """The row's values (``null`` -> any value), refusing what no row can hold."""
    check_explain_row(value)
    return tuple(ANY if item is None else item for item in value)


def _examples(value: Any) -> int:
    check_examples(value)
    return 3 if value is None else value


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


@router.get("/policies/{policy}/tables/{table}/explain", responses=errors(*AUTH, *POLICY))
def explain_row(
    *,
    policy: str,
    table: str,
    request: Request,
    row: str | None = None,
    alternatives: str | None = None,
    examples: int | None = None,
) -> dict:
    """Why ``row`` (a JSON list in the query) is in the table, or why not."""
    if row is None:
        raise ServiceError('explain needs ?row=<JSON list of the row\'s values>, e.g. ?row=["vm1"]')
    try:
        values = load_json(row, "?row")
    except InputError as exc:
        raise ServiceError(str(exc), data=[exc.to_json()]) from None
    except json.JSONDecodeError as exc:
        raise ServiceError(f"?row is not JSON: {exc.msg} at column {exc.colno}") from None
    return _explain(request, policy, table, _row(values), flag(alternatives), _examples(examples))


@router.post("/policies/{policy}/tables/{table}/explain",
             responses=errors(*AUTH, *POLICY, *BODY), openapi_extra=request_body(ExplainBody))
def explain_row_body(*, policy: str, table: str, request: Request, data: JsonBody) -> dict:
    """The same, with ``{"row": [...], "alternatives": bool, "examples": int}`` as body."""
    body = parse(ExplainBody, data)
    return _explain(request, policy, table, _row(body.row), body.alternatives,
                    _examples(body.examples))
