"""Who may do what: one declared table, read by the routes and by the tests.

Each entry is a method, a route's path template, the least role it needs, and optionally a
qualifier: ``?action=execute`` (a query parameter) or ``mode=enforce`` (a field of the JSON
body) for requests whose content needs more than the route's base role. Roles are ordered
``viewer`` < ``editor`` < ``admin``; ``OPEN`` routes answer without a token (a load
balancer's health check, version discovery, the API's own description).

:func:`authorize` is every API route's dependency (``create_app`` puts it on the app), so a
route cannot be added without an entry: :func:`check_routes` refuses to build an app whose
routes and table differ. Content qualifiers in the body are checked by the handler with
:func:`demand`, against the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, routing
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from charter.api.auth import AuthError, Principal, principal

OPEN = "open"
VIEWER, EDITOR, ADMIN = "viewer", "editor", "admin"


@dataclass(frozen=True, slots=True)
class Permission:
    method: str
    path: str
    role: str
    #: ``?name=value`` for a query parameter, ``name=value`` for a field of the JSON body
    when: str | None = None


PERMISSIONS: tuple[Permission, ...] = (
    # Open: load balancers, version discovery, the API's description.
    Permission("GET", "/", OPEN),
    Permission("GET", "/v1", OPEN),
    Permission("GET", "/healthz", OPEN),
    Permission("GET", "/openapi.json", OPEN),
    Permission("GET", "/docs", OPEN),
    Permission("GET", "/docs/oauth2-redirect", OPEN),
    Permission("GET", "/redoc", OPEN),
    # Charter's own.
    Permission("GET", "/metrics", VIEWER),
    Permission("GET", "/v1/events", VIEWER),
    # Policies.
    Permission("GET", "/v1/policies", VIEWER),
    Permission("POST", "/v1/policies", EDITOR),
    Permission("GET", "/v1/policies/{policy}", VIEWER),
    Permission("DELETE", "/v1/policies/{policy}", EDITOR),
    Permission("POST", "/v1/policies/{policy}", VIEWER),  # simulate changes nothing kept
    Permission("POST", "/v1/policies/{policy}", VIEWER, "?action=simulate"),
    Permission("POST", "/v1/policies/{policy}", ADMIN, "?action=execute"),
    Permission("GET", "/v1/policies/{policy}/status", VIEWER),
    Permission("GET", "/v1/policies/{policy}/rules", VIEWER),
    Permission("POST", "/v1/policies/{policy}/rules", EDITOR),
    Permission("GET", "/v1/policies/{policy}/rules/{rule}", VIEWER),
    Permission("DELETE", "/v1/policies/{policy}/rules/{rule}", EDITOR),
    Permission("PUT", "/v1/policies/{policy}/rules/{rule}", EDITOR),
    Permission("POST", "/v1/policies/{policy}/check", VIEWER),  # checks text, keeps nothing
    Permission("GET", "/v1/policies/{policy}/rules/{rule}/status", VIEWER),
    Permission("GET", "/v1/policies/{policy}/tables", VIEWER),
    Permission("GET", "/v1/policies/{policy}/tables/{table}", VIEWER),
    Permission("GET", "/v1/policies/{policy}/tables/{table}/rows", VIEWER),
    Permission("GET", "/v1/policies/{policy}/tables/{table}/explain", VIEWER),
    Permission("POST", "/v1/policies/{policy}/tables/{table}/explain", VIEWER),
    Permission("GET", "/v1/policies/{policy}/violations", VIEWER),
    Permission("POST", "/v1/policies/{policy}/admission", VIEWER),
    Permission("GET", "/v1/policies/{policy}/enforcement", VIEWER),
    Permission("PUT", "/v1/policies/{policy}/enforcement", EDITOR),  # back to dry-run
    Permission("PUT", "/v1/policies/{policy}/enforcement", ADMIN, "mode=enforce"),
    Permission("GET", "/v1/audit", VIEWER),
    Permission("GET", "/v1/notifications", VIEWER),
    # Every policy's violations (the dashboard's Overview and Violations pages).
    Permission("GET", "/v1/violations", VIEWER),
    Permission("GET", "/v1/violations/summary", VIEWER),
    Permission("GET", "/v1/violations/history", VIEWER),
    # Library policies.
    Permission("GET", "/v1/librarypolicies", VIEWER),
    Permission("POST", "/v1/librarypolicies", EDITOR),
    Permission("GET", "/v1/librarypolicies/{lib}", VIEWER),
    Permission("PUT", "/v1/librarypolicies/{lib}", EDITOR),
    Permission("DELETE", "/v1/librarypolicies/{lib}", EDITOR),
    # Compliance packs: enabling one creates (disabling deletes) a policy per control.
    Permission("GET", "/v1/packs", VIEWER),
    Permission("GET", "/v1/packs/{pack}", VIEWER),
    Permission("POST", "/v1/packs/{pack}", EDITOR),
    Permission("POST", "/v1/packs/{pack}", EDITOR, "?action=enable"),
    Permission("POST", "/v1/packs/{pack}", EDITOR, "?action=disable"),
    Permission("GET", "/v1/packs/{pack}/posture", VIEWER),
    # Datasources.
    Permission("GET", "/v1/data-sources", VIEWER),
    Permission("POST", "/v1/data-sources", ADMIN),
    Permission("GET", "/v1/data-sources/{ds}", VIEWER),
    Permission("DELETE", "/v1/data-sources/{ds}", ADMIN),
    Permission("POST", "/v1/data-sources/{ds}", EDITOR),
    Permission("POST", "/v1/data-sources/{ds}", EDITOR, "?action=request-refresh"),
    Permission("POST", "/v1/data-sources/{ds}", ADMIN, "?action=execute"),
    Permission("GET", "/v1/data-sources/{ds}/schema", VIEWER),
    Permission("GET", "/v1/data-sources/{ds}/status", VIEWER),
    Permission("GET", "/v1/data-sources/{ds}/actions", VIEWER),
    Permission("GET", "/v1/data-sources/{ds}/tables", VIEWER),
    Permission("GET", "/v1/data-sources/{ds}/tables/{table}", VIEWER),
    Permission("GET", "/v1/data-sources/{ds}/tables/{table}/spec", VIEWER),
    Permission("GET", "/v1/data-sources/{ds}/tables/{table}/rows", VIEWER),
    Permission("PUT", "/v1/data-sources/{ds}/tables/{table}/rows", EDITOR),
    Permission("PATCH", "/v1/data-sources/{ds}/tables/{table}/rows", EDITOR),
    Permission("POST", "/v1/data-sources/{ds}/webhook", EDITOR),
    Permission("GET", "/v1/system/drivers", VIEWER),
    Permission("GET", "/v1/system/drivers/{driver}", VIEWER),
    # Decisions other services ask for (docs/decisions.md); see DECISIONS.
    Permission("POST", "/v1/decisions/oslo/{policy}", VIEWER),
    Permission("POST", "/v1/decisions/kubernetes/{policy}", VIEWER),  # decides, keeps nothing
    Permission("POST", "/v1/decisions/kubernetes/{policy}/{controls}", VIEWER),
    Permission("POST", "/v1/decisions/nova/{policy}", VIEWER),  # decides, keeps nothing
)

#: Decision routes: open, rather than their role, when ``decisions.anonymous`` is set
#: (oslo.policy's ``http:`` check sends no token; the client certificate authenticates).
DECISIONS = frozenset({
    ("POST", "/v1/decisions/oslo/{policy}"),
    ("POST", "/v1/decisions/kubernetes/{policy}"),
    ("POST", "/v1/decisions/kubernetes/{policy}/{controls}"),
    ("POST", "/v1/decisions/nova/{policy}"),
})

_RANK = {OPEN: -1, VIEWER: 0, EDITOR: 1, ADMIN: 2}
_TABLE: dict[tuple[str, str, str | None], str] = {
    (p.method, p.path, p.when): p.role for p in PERMISSIONS}
_QUERY: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
for _p in PERMISSIONS:
    if _p.when is not None and _p.when.startswith("?"):
        _name, _, _value = _p.when[1:].partition("=")
        _QUERY.setdefault((_p.method, _p.path), []).append((_name, _value, _p.role))


def role_for(method: str, path: str, when: str | None = None) -> str:
    """The least role for a request; KeyError for a route the table does not know."""
    return _TABLE[(method, path, when)]


def _route_path(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


def _check(caller: Principal, role: str, what: str) -> None:
    if _RANK[caller.role] < _RANK[role]:
        raise AuthError(403, f"'{caller.name}' has role {caller.role}; {what} needs {role} "
                        "or higher")


async def authorize(request: Request) -> Principal | None:
    """The app's dependency: the caller, allowed by the table to make this request.

    Raises AuthError: 401 without a valid token, 403 below the role; the caller is None on
    an open route (no token is asked for).

    A coroutine: a sync dependency costs every request a hop to the thread pool and back
    (two wake-ups of the event loop) for a check that takes microseconds; only an
    authenticator that may wait on the network (``Authenticator.blocking``) runs there.
    """
    method, path = request.method, _route_path(request)
    role = role_for(method, path)
    what = "this request"
    for name, value, qualified in _QUERY.get((method, path), ()):
        if request.query_params.get(name) == value:
            role, what = qualified, f"?{name}={value}"
    if role == OPEN or ((method, path) in DECISIONS and _anonymous_decisions(request)):
        return None
    authenticator = getattr(request.app.state, "authenticator", None)
    if getattr(authenticator, "blocking", True):
        caller = await run_in_threadpool(principal, request)
    else:
        caller = principal(request)
    _check(caller, role, what)
    return caller


def _anonymous_decisions(request: Request) -> bool:
    settings = getattr(request.app.state, "settings", None)
    return bool(settings is not None and settings.decisions.anonymous)


def demand(caller: Principal | None, request: Request, when: str) -> None:
    """For a body qualifier (``mode=enforce``): 403 unless the table's role for it is met.

    A qualifier without an entry (``mode=dry-run``) needs only the route's own role, which
    :func:`authorize` has checked.
    """
    role = _TABLE.get((request.method, _route_path(request), when))
    if role is not None and caller is not None:
        _check(caller, role, when.replace("=", " ", 1) if "=" in when else when)


def served(routes) -> set[tuple[str, str, bool]]:
    """``(method, path, is an API route)`` of every route an app serves (FastAPI may keep
    included routers unflattened: ``iter_route_contexts`` walks them)."""
    walk = getattr(routing, "iter_route_contexts", None)
    found = walk(routes) if walk is not None else routes
    out = set()
    for route in found:
        original = getattr(route, "original_route", route)
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD" or isinstance(original, APIRoute):
                out.add((method, route.path, isinstance(original, APIRoute)))
    return out


def check_routes(routes) -> None:
    """Every API route has an entry and every entry a route, or the app is not built."""
    routes_served = served(routes)
    api = {(m, p) for m, p, is_api in routes_served if is_api}
    declared = {(p.method, p.path) for p in PERMISSIONS}
    missing = sorted(api - declared)
    if missing:
        raise RuntimeError(f"routes without an entry in api/permissions.py PERMISSIONS: "
                           f"{missing}; add who may call each")
    stale = sorted(declared - {(m, p) for m, p, _ in routes_served})
    if stale:
        raise RuntimeError(f"entries in api/permissions.py PERMISSIONS without a route: "
                           f"{stale}; remove them or add the route")
