"""Who is looking at a page, and whether they may press its buttons.

``Viewer`` is every page's dependency: the caller from the session cookie, or a redirect to
the login form. A form that changes something declares the API request it stands for
(``needs("POST", "/v1/policies/{policy}/rules")``): the same row of api/permissions.py
decides, so the dashboard can never let a role do what the API would refuse, and its CSRF
token and origin are checked before anything is done.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from charter.api.auth import Authenticator, AuthError, Principal
from charter.api.permissions import role_for
from charter.ui.session import (
    COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    UNSAFE_METHODS,
    CsrfError,
    Session,
    SessionKeys,
    check_sent,
    keys_for,
)


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login form."""

    def __init__(self, next_url: str, message: str | None = None) -> None:
        super().__init__(message or "log in to continue")
        self.next_url = next_url
        self.message = message


class Forbidden(Exception):
    """The caller's role does not allow this (403), or the CSRF check failed."""


def session_keys(request: Request) -> SessionKeys:
    return keys_for(request.app.state)


def read_session(request: Request) -> Session:
    """This request's session: the cookie's, else a new one without a token (which the
    middleware in charter.ui.app sets as the cookie under noauth)."""
    session = getattr(request.state, "ui_session", None)
    if session is None:
        keys = session_keys(request)
        session = keys.open(request.cookies.get(COOKIE)) or keys.new(None)
        request.state.ui_keys = keys
        request.state.ui_session = session
    return session


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/ui/login?next={quote(target, safe='')}"


async def current_user(request: Request) -> Principal:
    """The caller, from the session cookie; LoginRequired without a valid one. Under
    noauth everyone is admin, and still has a session (for the CSRF token)."""
    session = read_session(request)
    authenticator: Authenticator = request.app.state.authenticator
    if session.token is None and authenticator.strategy != "noauth":
        raise LoginRequired(login_url(request))
    try:
        found = authenticator.authenticate_token(session.token)
    except AuthError as exc:
        if exc.status == 401:
            raise LoginRequired(login_url(request), "your session has ended: log in again") \
                from None
        raise
    request.state.principal = found
    if request.method in UNSAFE_METHODS:
        await check_form(request, session)
    return found


def known_user(request: Request) -> Principal | None:
    """The caller if the session says who, without redirecting (for error pages)."""
    session = read_session(request)
    try:
        found = request.app.state.authenticator.authenticate_token(session.token)
    except AuthError:
        return None
    request.state.principal = found
    return found


async def check_form(request: Request, session: Session) -> None:
    """A state-changing request must come from our own origin with this session's token
    (in the ``X-CSRF-Token`` header, or a form's ``csrf_token`` field)."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)  # starlette caches the parsed form
    try:
        check_sent(request, request.method, session_keys(request), session,
                   sent if isinstance(sent, str) else None)
    except CsrfError as exc:
        raise Forbidden(str(exc)) from None


Viewer = Annotated[Principal, Depends(current_user)]


def needs(method: str, api_path: str, when: str | None = None):
    """A dependency: the caller may make this API request (its row in the permissions
    table), else Forbidden (403)."""
    role = role_for(method, api_path, when)

    def dependency(user: Viewer) -> Principal:
        if not user.allows(role):
            raise Forbidden(f"'{user.name}' has role {user.role}; this needs {role} or higher")
        return user

    return Depends(dependency)


def allowed(user: Principal | None, method: str, api_path: str, when: str | None = None) -> bool:
    """Whether to offer a control at all: what a role may not do is not shown."""
    return user is not None and user.allows(role_for(method, api_path, when))
