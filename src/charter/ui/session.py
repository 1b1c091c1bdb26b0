"""The dashboard's sessions: who is behind a browser, and that a form came from our own page.

A browser cannot send ``X-Auth-Token``, so after the login form the token lives in a
cookie: ``charter_session``, HttpOnly (page scripts cannot read it), ``SameSite=Lax``
(another site's form posts without it) and ``Secure`` over HTTPS. Its value is the token,
a random nonce and the login time, encrypted with a Fernet key derived (HKDF) from Charter's
secret key, so a session survives a restart and is valid on every replica that shares the
key; nothing is kept server-side. The token is validated on every request by the API's own
authenticator, so a revoked Keystone token logs the browser out within the cache's life.

Every request that changes something and is authenticated by the cookie must carry the
CSRF token, ``HMAC(key, nonce)``: a hidden ``csrf_token`` field in a form or the
``X-CSRF-Token`` header (htmx and the page's scripts send the header). A request from
another origin (its ``Origin`` header) is refused first. With ``auth.strategy = noauth``
the browser still gets a session (without a token), so cross-site forms are refused there
too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import HTTPConnection

from charter.api.auth import SESSION_COOKIE

COOKIE = SESSION_COOKIE
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfError(Exception):
    """A state-changing request without proof that it came from Charter's own page."""


@dataclass(frozen=True)
class Session:
    """What the cookie holds: the caller's token (None under noauth) and the nonce the CSRF
    token is derived from."""

    token: str | None
    nonce: str
    issued: float


class SessionKeys:
    """The cookie's encryption and the CSRF tokens' MAC, both from Charter's secret key."""

    def __init__(self, secret_key: bytes, max_age: int = SESSION_SECONDS) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=64, salt=None,
                       info=b"charter dashboard session").derive(secret_key)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived[:32]))
        self._mac_key = derived[32:]
        self.max_age = max_age

    def seal(self, session: Session) -> str:
        payload = {"t": session.token, "n": session.nonce, "i": session.issued}
        return self._fernet.encrypt(json.dumps(payload).encode()).decode()

    def open(self, cookie: str | None) -> Session | None:
        """The session in a cookie; None if absent, forged, or older than ``max_age``."""
        if not cookie or len(cookie) > 8192:
            return None
        try:
            raw = self._fernet.decrypt(cookie.encode(), ttl=self.max_age)
            payload: Any = json.loads(raw)
            return Session(payload["t"], str(payload["n"]), float(payload["i"]))
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None

    def new(self, token: str | None) -> Session:
        return Session(token, secrets.token_urlsafe(18), time.time())

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._mac_key, session.nonce.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session: Session, sent: str | None) -> None:
        if not sent:
            raise CsrfError(
                "this request changes something but carries no CSRF token; submit the form "
                "from Charter's own page (reload it if it was open before a login)")
        if not hmac.compare_digest(sent, self.csrf_token(session)):
            raise CsrfError(
                "the CSRF token does not match this session (the page is from an older "
                "login, or the request was forged by another site); reload the page")


def keys_for(state: Any) -> SessionKeys:
    """The app's session keys, derived on first use from Charter's secret key (an app built
    in a test that no browser visits never creates a key file)."""
    keys = getattr(state, "ui_session_keys", None)
    if keys is None:
        keys = state.ui_session_keys = SessionKeys(state.settings.secret_key())
    return keys


def browser_token(conn: HTTPConnection, method: str) -> str | None:
    """For an API request a dashboard page makes (no token header, the session cookie):
    the session's token. A request that changes something must also come from our origin
    with the CSRF header, else CsrfError."""
    keys = keys_for(conn.app.state)
    session = keys.open(conn.cookies.get(COOKIE))
    if session is None:
        return None
    if method in UNSAFE_METHODS:
        check_sent(conn, method, keys, session, conn.headers.get(CSRF_HEADER))
    return session.token


def check_sent(conn: HTTPConnection, method: str, keys: SessionKeys, session: Session,
               sent: str | None) -> None:
    """A state-changing request (a form, or a page's API call) must come from our own
    origin and carry this session's CSRF token, else CsrfError."""
    if not same_origin(conn):
        raise CsrfError(f"refused a {method} from another site ({conn.headers.get('origin')}): "
                        "changes are only accepted from Charter's own pages")
    keys.check_csrf(session, sent)


def same_origin(conn: HTTPConnection) -> bool:
    """Whether the request's ``Origin`` (when a browser sent one) is this server's own."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    host = conn.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def cookie_options(conn: HTTPConnection, max_age: int) -> dict[str, Any]:
    return {"httponly": True, "samesite": "lax", "secure": conn.url.scheme == "https",
            "max_age": max_age, "path": "/"}
