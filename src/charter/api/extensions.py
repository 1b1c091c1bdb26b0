"""Charter's own endpoints: version discovery, health, metrics, the live stream of deltas."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette.sse import EventSourceResponse

from charter.api.body import flag
from charter.api.models import AUTH, errors
from charter.service.errors import ServiceError

router = APIRouter()
log = logging.getLogger(__name__)


def _version(request: Request) -> dict:
    base = str(request.base_url).rstrip("/")
    return {"id": "v1", "status": "CURRENT", "updated": "2013-08-12T17:42:13Z",
            "links": [{"rel": "self", "href": f"{base}/v1/"}]}


@router.get("/", status_code=300, responses={300: {"description": "The API versions."}})
def versions(*, request: Request) -> JSONResponse:
    # 300 Multiple Choices, as Congress answered version discovery
    return JSONResponse({"versions": [_version(request)]}, status_code=300)


@router.get("/v1")
def version(*, request: Request) -> dict:
    return {"version": _version(request)}


HEALTH = {"type": "object", "properties": {
    "status": {"type": "string", "enum": ["ok", "degraded"]},
    "store": {"type": "string"}}, "required": ["status", "store"]}


@router.get("/healthz", responses={
    200: {"description": "Healthy.", "content": {"application/json": {"schema": HEALTH}}},
    503: {"description": "The store cannot be reached.",
          "content": {"application/json": {"schema": HEALTH}}}})
def healthz(*, request: Request) -> JSONResponse:
    """Open (load balancers): the status and the store's, nothing about policies or data.
    Why the store is down is in the server's log, which may name hosts and users."""
    service = request.app.state.service
    try:
        service.store.ping()
        store = "ok"
    except Exception as exc:
        log.warning("health check: the store is unavailable: %s", exc)
        store = f"unavailable ({type(exc).__name__}; the server log has the details)"
    ok = store == "ok"
    return JSONResponse({"status": "ok" if ok else "degraded", "store": store},
                        status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, responses={
    200: {"description": "Prometheus text exposition format.",
          "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
    **errors(*AUTH)})
def metrics(*, request: Request) -> Response:
    """Prometheus metrics (viewer: policy names and violation counts are not for anyone)."""
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/events", response_class=EventSourceResponse, responses={
    200: {"description": "A stream of server-sent events.",
          "content": {"text/event-stream": {"schema": {
              "type": "object", "description": "One event: ready, delta or overflow.",
              "properties": {"event": {"type": "string"}, "data": {"type": "string"}}}}}},
    **errors(*AUTH, 400)})
async def events(*, request: Request, table: Annotated[list[str] | None, Query()] = None,
                 rows: str | None = None) -> EventSourceResponse:
    """Server-sent events: one ``delta`` event per changed table per batch.

    ``?table=classification:error`` (repeatable; ``*:error`` for every policy's) narrows the
    stream; without it every table's deltas are sent. ``?rows=false`` sends how many rows
    came and went instead of the rows. A client that falls behind gets ``overflow`` and
    should reconnect.
    """
    with_rows = rows is None or flag(rows)
    service = request.app.state.service
    table = table or []
    for name in table:
        if ":" not in name:
            raise ServiceError(f"table {name!r} needs its policy or datasource: "
                               "policy:table")
    listener = service.events.listen(table)

    async def stream():
        try:
            yield {"event": "ready", "data": json.dumps({"tables": table})}
            while not listener.closed or not listener.queue.empty():
                try:
                    event = listener.queue.get_nowait()
                except queue.Empty:
                    if await request.is_disconnected():
                        return
                    await asyncio.sleep(0.05)
                    continue
                yield {"event": event.kind, "data": json.dumps(event.to_json(with_rows))}
        finally:
            service.events.close(listener)

    return EventSourceResponse(stream(), ping=15)
