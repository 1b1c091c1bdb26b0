"""The dashboard as an application mounted at ``/ui`` of Charter's API server.

A mounted application of its own, because its answers are pages, not Congress's JSON:
a missing session is a redirect to the login form, an error is a page (or, for htmx, a
fragment) that says what went wrong in words. It shares the API's service, settings and
authenticator, so the same tokens and Keystone log in, and its forms are checked against
the same permission table (charter.ui.deps).
"""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import unquote

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from charter.api.auth import Authenticator, AuthError, KeystoneAuthenticator
from charter.service.errors import ServiceError
from charter.ui import pages
from charter.ui.deps import (
    Forbidden,
    LoginRequired,
    current_user,
    known_user,
    read_session,
    session_keys,
)
from charter.ui.render import render
from charter.ui.session import COOKIE, cookie_options, same_origin

log = logging.getLogger(__name__)


def create_ui(api: FastAPI) -> FastAPI:
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    ui.state.service = api.state.service
    ui.state.settings = api.state.settings
    ui.state.authenticator = api.state.authenticator
    _errors(ui)

    @ui.middleware("http")
    async def session_cookie(request: Request, call_next):
        """Under noauth a browser without a session gets one (token-less) so its forms
        carry a CSRF token; elsewhere the login sets it."""
        had = request.cookies.get(COOKIE)
        session = read_session(request)
        response = await call_next(request)
        if (ui.state.authenticator.strategy == "noauth" and session.token is None
                and session_keys(request).open(had) is None):
            keys = session_keys(request)
            response.set_cookie(COOKIE, keys.seal(session), **cookie_options(request, keys.max_age))
        return response
    ui.add_api_route("/login", login_form, methods=["GET"])
    ui.add_api_route("/login", login, methods=["POST"])
    ui.add_api_route("/logout", logout, methods=["POST"])
    for router in pages.routers():
        ui.include_router(router)
    return ui


def _safe_next(target: str | None) -> str:
    """Only a dashboard path of this server (no open redirect to another site)."""
    target = unquote(target or "")
    if target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


async def login_form(request: Request, next: str | None = None) -> Response:
    authenticator: Authenticator = request.app.state.authenticator
    if authenticator.strategy == "noauth":
        return RedirectResponse(_safe_next(next), status_code=303)
    read_session(request)
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


async def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    project: Annotated[str, Form()] = "",
    user_domain: Annotated[str, Form()] = "Default",
    project_domain: Annotated[str, Form()] = "Default",
    next: Annotated[str, Form()] = "/ui/",
) -> Response:
    """Exchange a token (or, with Keystone, a name and password) for the session cookie.
    No CSRF token here: there is no session yet, and a forged login gains nothing a
    visitor could not type (the origin is still checked)."""
    authenticator: Authenticator = request.app.state.authenticator
    read_session(request)
    target = _safe_next(next)
    if not same_origin(request):
        return _error(request, 403, "Not allowed", "refused a login posted from another site")
    try:
        if not token.strip() and username.strip():
            if not isinstance(authenticator, KeystoneAuthenticator):
                raise AuthError(400, "this Charter takes tokens, not user names: paste a token")
            token = authenticator.password_login(username.strip(), password, project.strip(),
                                                 user_domain.strip() or "Default",
                                                 project_domain.strip() or "Default")
        if not token.strip():
            raise AuthError(400, "enter a token" if authenticator.strategy == "token"
                            else "enter your user name, password and project, or a token")
        user = authenticator.authenticate_token(token.strip())
    except AuthError as exc:
        return render(request, "login.html", {"next": target, "error": exc.message},
                      status=exc.status if exc.status != 401 else 400)
    keys = session_keys(request)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, keys.seal(keys.new(token.strip())),
                        **cookie_options(request, keys.max_age))
    log.info("dashboard login: %s (%s)", user.name, user.role)
    return response


async def logout(request: Request) -> Response:
    await current_user(request)  # checks the CSRF token: no logging out by a forged form
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _wants_fragment(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _error(request: Request, status: int, title: str, message: str) -> Response:
    if getattr(request.state, "principal", None) is None:
        known_user(request)
    template = "_error.html" if _wants_fragment(request) else "error.html"
    return render(request, template, {"title": title, "message": message}, status=status)


def _errors(ui: FastAPI) -> None:
    @ui.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_fragment(request):  # htmx follows HX-Redirect with a full page load
            return Response(status_code=401, headers={"HX-Redirect": exc.next_url})
        return RedirectResponse(exc.next_url, status_code=303)

    @ui.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error(request, 403, "Not allowed", str(exc))

    @ui.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> Response:
        return _error(request, exc.status, "Cannot check who you are", exc.message)

    @ui.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        return _error(request, exc.status, "That did not work", exc.message)

    @ui.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}"
                             for e in exc.errors())
        return _error(request, 400, "That did not work", f"invalid request: {problems}")

    @ui.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error(request, 404, "Not found",
                          f"there is no page at {request.url.path}; the menu lists them all")
        return _error(request, exc.status_code, "That did not work", str(exc.detail))

    @ui.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error in dashboard %s %s", request.method, request.url.path)
        return _error(request, 500, "Something went wrong",
                      f"an internal error ({type(exc).__name__}) stopped this page; the "
                      "server log has the details")
