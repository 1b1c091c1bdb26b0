"""Every error the API answers with is Congress's JSON error body, never a traceback.

``{"error": {"message", "error_code", "error_data"}}``: the service's errors carry their
status and code; FastAPI's own (unknown route, bad method, bad query) are reshaped; anything
unexpected is logged with its traceback and answered with a 500 that says where to look.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from charter.api.auth import AuthError, auth_error_handler
from charter.lang.errors import CharterError
from charter.service.errors import ServiceError

log = logging.getLogger(__name__)


def error_body(status: int, message: str, code: int | None = None, data=None) -> dict:
    return {"error": {"message": message, "error_code": code if code is not None else status,
                      "error_data": data}}


def respond(status: int, message: str, code: int | None = None, data=None,
            headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, data), status_code=status,
                        headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(exc.to_json(), status_code=exc.status)

    app.add_exception_handler(AuthError, auth_error_handler)

    @app.exception_handler(CharterError)
    async def charter_error(request: Request, exc: CharterError) -> JSONResponse:
        return respond(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return respond(400, "invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return respond(404, f"The resource could not be found: {request.url.path}")
        if exc.status_code == 405:  # Congress answers an unsupported method with 501
            return respond(501, f"{request.method} is not supported on {request.url.path}")
        return respond(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return respond(500, f"internal error while handling {request.method} "
                            f"{request.url.path}: {type(exc).__name__}; the server log has "
                            "the details")
