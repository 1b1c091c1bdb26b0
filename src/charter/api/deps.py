"""What every router's handlers take: the caller's role, the JSON body, the service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from charter.api.auth import AuthError, Principal, require
from charter.api.body import read_json

Viewer = Annotated[Principal, Depends(require("viewer"))]
Editor = Annotated[Principal, Depends(require("editor"))]
Admin = Annotated[Principal, Depends(require("admin"))]


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


def at_least(who: Principal, role: str) -> None:
    """For checks that depend on the request's content (execute is admin's, simulate not)."""
    if not who.allows(role):
        raise AuthError(403, f"{who.name} has role {who.role}; this request needs {role}")
