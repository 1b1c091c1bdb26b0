"""What every router's handlers take: the caller, the JSON body, the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, get_args, get_origin

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from charter.api.auth import Principal
from charter.api.body import read_json
from charter.api.permissions import authorize
from charter.service.errors import ServiceError

#: The caller, allowed by api/permissions.py for this route (the app checks every route with
#: the same dependency, so a handler that takes it authenticates once).
Caller = Annotated[Principal | None, Depends(authorize)]


#: Bodies this large (declared by Content-Length) are read, parsed and held by at most
#: ``LARGE_BODIES`` requests at once: a 100k-row push is 30-40 MB of Python lists while it
#: waits for the service's lock, and 16 such pushes at once held half a gigabyte.
LARGE_BODY_BYTES = 1024 * 1024
LARGE_BODIES = 2


@asynccontextmanager
async def _large_body_gate(request: Request) -> AsyncIterator[None]:
    """Held from reading a large body until the answer is sent (the parsed body lives that
    long); a body of unknown or small size passes at once."""
    declared = request.headers.get("content-length", "")
    if not (declared.isdigit() and int(declared) >= LARGE_BODY_BYTES):
        yield
        return
    gate = getattr(request.app.state, "large_bodies", None)
    if gate is None:
        gate = request.app.state.large_bodies = asyncio.Semaphore(LARGE_BODIES)
    async with gate:
        yield


async def _body(request: Request) -> AsyncIterator[Any]:
    async with _large_body_gate(request):
        yield await read_json(request)


async def _optional_body(request: Request) -> AsyncIterator[Any]:
    async with _large_body_gate(request):
        yield await read_json(request, required=False)


JsonBody = Annotated[Any, Depends(_body)]
OptionalBody = Annotated[Any, Depends(_optional_body)]


def svc(request: Request):
    """The app's Service."""
    return request.app.state.service


def created(path: str, content: dict) -> JSONResponse:
    """Congress's answer to a create: 201, the object, and where it lives."""
    return JSONResponse(content, status_code=201, headers={"Location": path})


def name_of(who: Principal | None) -> str:
    """The caller's name for records (owner, audit actor)."""
    return who.name if who is not None else "anonymous"


def _takes_many(annotation: object) -> bool:
    """``list[str]`` or ``list[str] | None``: a query parameter that may repeat."""
    return get_origin(annotation) is list or any(
        get_origin(a) is list for a in get_args(annotation))


async def single_values(request: Request) -> None:
    """The app's dependency: a query parameter the route takes once (``?status=``) is
    refused when sent several times, rather than one of its values silently chosen (a
    route with query parameters declares 400)."""
    params = request.query_params
    if len(params.multi_items()) == len(params):
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    once = {f.alias for f in getattr(dependant, "query_params", ())
            if not _takes_many(f.field_info.annotation)}
    for name in once:
        count = len(params.getlist(name))
        if count > 1:
            raise ServiceError(f"query parameter {name!r} is given {count} times; give it once")
