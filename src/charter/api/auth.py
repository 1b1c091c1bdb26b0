"""API authentication: who is calling, and may they do this.

Three strategies (``auth.strategy``): ``noauth`` (loopback only; everyone is admin),
``token`` (static tokens from a file) and ``keystone`` (tokens validated with Keystone's
``GET /v3/auth/tokens``). keystonemiddleware is not used: it brings oslo.* and a paste
pipeline for what is one cached GET per token.

Tokens come in ``X-Auth-Token`` (what python-congressclient sends) or
``Authorization: Bearer``. Roles are ordered viewer < editor < admin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from charter.service.config import KeystoneSettings, Settings, StaticToken

log = logging.getLogger(__name__)

ROLES = ("viewer", "editor", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
TOKEN_HEADER = "X-Auth-Token"
SESSION_COOKIE = "charter_session"  # the dashboard's (charter.ui.session)
MAX_TOKEN_CHARS = 16384  # Keystone's own PKI-era ceiling; Fernet tokens are ~200
CACHE_MAX_ENTRIES = 10_000
SERVICE_TOKEN_MARGIN = 60.0  # renew the service token this long before Keystone says it expires
HOW_TO_SEND = f"send the token in the {TOKEN_HEADER} header (or Authorization: Bearer <token>)"


@dataclass(frozen=True)
class Principal:
    """The caller: a name for logs, a Charter role, and the Keystone project if any."""

    name: str
    role: str
    project_id: str | None
    source: str

    def allows(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]


ANONYMOUS = Principal("anonymous", "admin", None, "noauth")


class AuthError(Exception):
    """A refused request; rendered in Congress's error shape by ``auth_error_response``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = status
        self.message = message
        self.data = data
        self.headers = dict(headers or {})

    def to_json(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "error_code": self.code,
                          "error_data": self.data}}


def auth_error_response(exc: AuthError) -> JSONResponse:
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=exc.headers)


async def auth_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """For ``app.add_exception_handler(AuthError, auth_error_handler)``."""
    assert isinstance(exc, AuthError)
    return auth_error_response(exc)


def request_token(headers: Mapping[str, str]) -> str | None:
    """The token from X-Auth-Token, else from ``Authorization: Bearer``."""
    token = (headers.get(TOKEN_HEADER) or "").strip()
    if token:
        return token
    scheme, _, value = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _plausible(token: str) -> bool:
    return len(token) <= MAX_TOKEN_CHARS and token.isascii() and token.isprintable()


class Authenticator(ABC):
    """Turns a request's token into a Principal or raises AuthError."""

    strategy: str
    challenge: str = 'Bearer realm="charter"'
    #: Whether authenticating may wait on the network (Keystone's validation of a token not
    #: cached): api/permissions.py then calls it off the event loop; the others answer from
    #: memory, on the loop, without a hop to the thread pool.
    blocking: bool = False

    @staticmethod
    def from_settings(settings: Settings) -> Authenticator:
        auth = settings.auth
        if auth.strategy == "token":
            return TokenAuthenticator(auth.load_tokens())
        if auth.strategy == "keystone":
            return KeystoneAuthenticator(auth.keystone)
        log.warning("auth.strategy is noauth: every caller on %s is admin", settings.host)
        return NoAuthenticator()

    def authenticate(self, request: Request) -> Principal:
        return self.authenticate_token(request_token(request.headers))

    @abstractmethod
    def authenticate_token(self, token: str | None) -> Principal: ...

    def close(self) -> None:  # noqa: B027 - only Keystone's holds connections
        """Release connections."""

    def unauthorized(self, message: str) -> AuthError:
        return AuthError(401, message, headers={"WWW-Authenticate": self.challenge})

    def missing(self) -> AuthError:
        return self.unauthorized(f"authentication required: {HOW_TO_SEND}")


class NoAuthenticator(Authenticator):
    """Everyone is admin; config only allows this on a loopback address.

    python-congressclient with ``--os-auth-type none`` sends ``X-Auth-Token: notused``,
    which is accepted like any other header or none.
    """

    strategy = "noauth"

    def authenticate_token(self, token: str | None) -> Principal:
        return ANONYMOUS


class TokenAuthenticator(Authenticator):
    """Static tokens, compared as sha256 digests in constant time."""

    strategy = "token"

    def __init__(self, tokens: tuple[StaticToken, ...]) -> None:
        self._tokens = tokens

    def authenticate_token(self, token: str | None) -> Principal:
        if not token:
            raise self.missing()
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for candidate in self._tokens:  # no early exit: timing does not tell which one matched
            if hmac.compare_digest(digest, candidate.sha256):
                found = candidate
        if found is None:
            raise self.unauthorized(f"invalid token: it is not one of the configured tokens; "
                                    f"{HOW_TO_SEND}")
        return Principal(found.name, found.role, None, "token")


class _TTLCache:
    """A bounded, thread-safe map whose entries expire (monotonic clock)."""

    def __init__(self, max_entries: int) -> None:
        self._max = max_entries
        self._items: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes, now: float) -> Principal | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= now:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: bytes, value: Principal, expires: float) -> None:
        with self._lock:
            self._items[key] = (expires, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def _seconds_left(expires_at: str | None) -> float | None:
    """Seconds until Keystone's ``expires_at`` (ISO 8601, UTC), or None if unparsable."""
    if not expires_at:
        return None
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


class KeystoneAuthenticator(Authenticator):
    """Validates user tokens with Keystone, as Charter's service user.

    Valid results are cached for ``cache_seconds`` (never past the token's expiry),
    keyed by the token's sha256, so a revoked token stays usable up to that long.
    Keystone unreachable or misbehaving is a 503 naming the URL, never a 500.
    """

    strategy = "keystone"
    blocking = True

    def __init__(
        self,
        settings: KeystoneSettings,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (settings.auth_url and settings.username and settings.password
                and settings.project_name):
            raise ValueError("keystone auth needs auth_url, username, password and project_name")
        self.settings = settings
        base = settings.auth_url.rstrip("/")
        self.base_url = base.removesuffix("/v3")
        self.tokens_url = f"{self.base_url}/v3/auth/tokens"
        self.challenge = f'Keystone uri="{self.base_url}/v3"'
        self._client = client or httpx.Client(timeout=settings.timeout_seconds)
        self._clock = clock
        self._cache = _TTLCache(CACHE_MAX_ENTRIES)
        self._service_lock = threading.Lock()
        self._service_token: str | None = None
        self._service_expires = 0.0

    def close(self) -> None:
        self._client.close()

    # -- the user's token

    def authenticate_token(self, token: str | None) -> Principal:
        if not token:
            raise self.missing()
        if not _plausible(token):
            raise self.rejected()
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        cached = self._cache.get(key, now)
        if cached is not None:
            return cached
        body = self._validate(token)
        found = self._principal(body)
        ttl = float(self.settings.cache_seconds)
        left = _seconds_left(body.get("token", {}).get("expires_at"))
        if left is not None:
            ttl = min(ttl, left)
        if ttl > 0:
            self._cache.put(key, found, now + ttl)
        return found

    def rejected(self) -> AuthError:
        return self.unauthorized(
            f"Keystone did not accept the token (expired, revoked or not a token); get a new "
            f"one (e.g. 'openstack token issue') and {HOW_TO_SEND}"
        )

    def _validate(self, token: str) -> dict[str, Any]:
        for attempt in range(2):
            service = self._get_service_token(renew=attempt > 0)
            r = self._call("GET", self.tokens_url, params={"nocatalog": "1"},
                           headers={"X-Auth-Token": service, "X-Subject-Token": token})
            if r.status_code == 401 and attempt == 0:
                continue  # our service token expired or was revoked: renew once, then retry
            break
        if r.status_code == 200:
            return self._json(r)
        if r.status_code in (401, 404):
            raise self.rejected()
        if r.status_code == 403:
            raise self.unavailable(
                f"Keystone at {self.base_url} does not let Charter's service user "
                f"'{self.settings.username}' validate tokens (403); give it the service or "
                f"admin role on project '{self.settings.project_name}'"
            )
        raise self.unavailable(
            f"Keystone at {self.base_url} answered {r.status_code} when validating a token; "
            "try again later"
        )

    def _principal(self, body: dict[str, Any]) -> Principal:
        try:
            info = body["token"]
            name = info["user"]["name"]
            roles = [role["name"] for role in info.get("roles") or []]
            project_id = (info.get("project") or {}).get("id")
        except (KeyError, TypeError):
            raise self.unavailable(
                f"Keystone at {self.base_url} sent a token body without user or roles"
            ) from None
        role_map = self.settings.role_map
        mapped = [role_map[r.lower()] for r in roles if r.lower() in role_map]
        if not mapped:
            raise AuthError(
                403,
                f"Keystone user '{name}' has none of the roles Charter accepts "
                f"({', '.join(sorted(role_map))}); its roles on this token: "
                f"{', '.join(roles) or 'none'}. Grant one, or map one in auth.keystone.role_map",
            )
        return Principal(name, max(mapped, key=_RANK.__getitem__), project_id, "keystone")

    # -- a user's login (the dashboard's form)

    def password_login(self, username: str, password: str, project_name: str,
                       user_domain_name: str = "Default",
                       project_domain_name: str = "Default") -> str:
        """A project-scoped token for a user's name and password (what ``openstack token
        issue`` does), for the dashboard's login form; AuthError 401 if Keystone refuses."""
        user = {"name": username, "domain": {"name": user_domain_name}, "password": password}
        scope = {"project": {"name": project_name, "domain": {"name": project_domain_name}}}
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                         "scope": scope}}
        r = self._call("POST", self.tokens_url, params={"nocatalog": "1"}, json=body)
        token = r.headers.get("X-Subject-Token")
        if r.status_code == 201 and token:
            return token
        if r.status_code in (401, 404):
            raise self.unauthorized(
                f"Keystone at {self.base_url} did not accept user '{username}' (domain "
                f"{user_domain_name}) with that password for project '{project_name}' (domain "
                f"{project_domain_name}); check all four")
        raise self.unavailable(
            f"Keystone at {self.base_url} answered {r.status_code} to the login; try again later")

    # -- Charter's own (service) token

    def _get_service_token(self, renew: bool = False) -> str:
        with self._service_lock:
            if renew or self._service_token is None or self._clock() >= self._service_expires:
                self._service_token, self._service_expires = self._issue_service_token()
            return self._service_token

    def _issue_service_token(self) -> tuple[str, float]:
        s = self.settings
        assert s.password is not None
        user = {"name": s.username, "domain": {"name": s.user_domain_name},
                "password": s.password.get_secret_value()}
        scope = {"project": {"name": s.project_name, "domain": {"name": s.project_domain_name}}}
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}},
                         "scope": scope}}
        r = self._call("POST", self.tokens_url, params={"nocatalog": "1"}, json=body)
        if r.status_code == 201 and r.headers.get("X-Subject-Token"):
            left = _seconds_left(self._json(r).get("token", {}).get("expires_at"))
            life = max((left or 3600.0) - SERVICE_TOKEN_MARGIN, 0.0)
            return r.headers["X-Subject-Token"], self._clock() + life
        if r.status_code == 401:
            raise self.unavailable(
                f"Keystone at {self.base_url} rejected Charter's service credentials (user "
                f"'{s.username}', project '{s.project_name}'); fix auth.keystone.username, "
                "password and project_name"
            )
        raise self.unavailable(
            f"Keystone at {self.base_url} answered {r.status_code} to Charter's service login; "
            "try again later"
        )

    # -- transport

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise self.unavailable(
                f"Keystone at {self.base_url} did not answer within "
                f"{self.settings.timeout_seconds:g}s; tokens cannot be validated now, retry later"
            ) from None
        except httpx.HTTPError as exc:
            raise self.unavailable(
                f"cannot reach Keystone at {self.base_url} ({type(exc).__name__}: {exc}); "
                "tokens cannot be validated now, retry later"
            ) from None

    def _json(self, r: httpx.Response) -> dict[str, Any]:
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self.unavailable(f"Keystone at {self.base_url} sent a reply that is not JSON")
        return body

    def unavailable(self, message: str) -> AuthError:
        log.warning("%s", message)
        return AuthError(503, message, headers={"Retry-After": "5"})


# ----------------------------------------------------------------------------- dependencies


def principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, authenticated by ``app.state.authenticator``."""
    found = getattr(request.state, "principal", None)
    if isinstance(found, Principal):
        return found
    authenticator = getattr(request.app.state, "authenticator", None)
    if not isinstance(authenticator, Authenticator):
        raise RuntimeError("app.state.authenticator is not set (Authenticator.from_settings)")
    if request_token(request.headers) is None and SESSION_COOKIE in request.cookies:
        # a dashboard page's own call: the session cookie stands for the token
        from charter.ui.session import CsrfError, browser_token
        try:
            token = browser_token(request, request.method)
        except CsrfError as exc:
            raise AuthError(403, str(exc)) from None
        found = authenticator.authenticate_token(token)
    else:
        found = authenticator.authenticate(request)
    request.state.principal = found
    return found


def require(role: str) -> Callable[[Principal], Principal]:
    """A dependency that lets ``role`` or higher through and answers 403 otherwise."""
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")

    def dependency(caller: Annotated[Principal, Depends(principal)]) -> Principal:
        if not caller.allows(role):
            raise AuthError(
                403, f"'{caller.name}' has role {caller.role}; this request needs {role} or higher"
            )
        return caller

    dependency.__name__ = f"require_{role}"
    return dependency
