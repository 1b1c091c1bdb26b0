"""Charter's own endpoints: version discovery, health, metrics, the live stream of deltas."""

from __future__ import annotations

import asyncio
import json
import queue
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sse_starlette.sse import EventSourceResponse

from charter.api.deps import Viewer
from charter.service.errors import ServiceError

router = APIRouter()


def _version(request: Request) -> dict:
    base = str(request.base_url).rstrip("/")
    return {"id": "v1", "status": "CURRENT", "updated": "2013-08-12T17:42:13Z",
            "links": [{"rel": "self", "href": f"{base}/v1/"}]}


@router.get("/")
def versions(*, request: Request) -> JSONResponse:
    # 300 Multiple Choices, as Congress answered version discovery
    return JSONResponse({"versions": [_version(request)]}, status_code=300)


@router.get("/v1")
def version(*, request: Request) -> dict:
    return {"version": _version(request)}


@router.get("/healthz")
def healthz(*, request: Request) -> JSONResponse:
    service = request.app.state.service
    try:
        service.store.ping()
        store = "ok"
    except Exception as exc:  # the answer is the point: say what is wrong
        store = f"unavailable: {exc}"
    ok = store == "ok"
    body = {"status": "ok" if ok else "degraded", "store": store,
            "policies": len(service.policies.live), "datasources": len(service.datasources.live),
            "started_at": service.started_at.isoformat()}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
def metrics(*, request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/events")
async def events(*, request: Request, table: Annotated[list[str] | None, Query()] = None,
                 _: Viewer) -> EventSourceResponse:
    """Server-sent events: one ``delta`` event per changed table per batch.

    ``?table=classification:error`` (repeatable) narrows the stream; without it every table's
    deltas are sent. A client that falls behind gets ``overflow`` and should reconnect.
    """
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
                yield {"event": event.kind, "data": json.dumps(event.to_json())}
        finally:
            service.events.close(listener)

    return EventSourceResponse(stream(), ping=15)
