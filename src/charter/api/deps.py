"""What every router's handlers take: the caller, the JSON body, the service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from charter.api.auth import Principal
from charter.api.body import read_json
from charter.api.permissions import authorize

#: The caller, allowed by api/permissions.py for this route (the app checks every route with
#: the same dependency, so a handler that takes it authenticates once).
Caller = Annotated[Principal | None, Depends(authorize)]


async def _body(request: Request) -> Any:
    return await read_json(request)


async def _optional_body(request: Request) -> Any:
    return await read_json(request, required=False)


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
