"""Rendering the dashboard's pages: one Jinja2 environment, autoescaped, and what every
template may use (the caller and what their role allows, the CSRF token, the navigation).

Pages are rendered on the server; htmx swaps fragments for filtering, paging and live
updates, so there is no build step and no second copy of Charter's logic in JavaScript.
A page answers an htmx request (``htmx`` is true in the template, ``HX-Target`` names the
element) with the fragment template it includes (``_<page>_...html``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from charter.api.auth import Principal
from charter.lang.ast import format_value

TEMPLATES = Path(__file__).parent / "templates"

#: (path, label, least role to see the link)
NAVIGATION = (
    ("/ui/", "Overview", "viewer"),
    ("/ui/violations", "Violations", "viewer"),
    ("/ui/policies", "Policies", "viewer"),
    ("/ui/whatif", "What if", "viewer"),
    ("/ui/datasources", "Datasources", "viewer"),
    ("/ui/enforcement", "Enforcement", "viewer"),
    ("/ui/packs", "Packs", "viewer"),
)


def ago(when: datetime | str | None, now: datetime | None = None) -> str:
    """``3 min ago``: how long before now (UTC) a time was; '' for None.

    >>> ago(datetime(2026, 1, 1, 12, 0, tzinfo=UTC), datetime(2026, 1, 1, 12, 3, tzinfo=UTC))
    '3 min ago'
    """
    if when is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - _utc(when)).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def iso(when: datetime | str | None) -> str:
    """A UTC timestamp as ``2026-12-07 14:03:05Z`` (sortable, unambiguous)."""
    if when is None:
        return ""
    return _utc(when).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _utc(when: datetime | str) -> datetime:
    """A datetime (or ISO text) with a timezone; naive ones are UTC, as the store keeps them."""
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def datalog_row(row: tuple | list) -> str:
    """A row as Datalog values: ``"vm1", 3``."""
    return ", ".join(format_value(v) for v in row)


def with_query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None removes one): links that
    keep the user's filters, so every view can be bookmarked and shared."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(ago=ago, iso=iso, datalog_row=datalog_row, tojson_compact=json.dumps)
environment.globals.update(navigation=NAVIGATION, with_query=with_query)


def render(request: Request, template: str, context: dict[str, Any] | None = None,
           status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The page (or, for htmx, the fragment the template marks) as an HTML response."""
    user: Principal | None = getattr(request.state, "principal", None)
    session = getattr(request.state, "ui_session", None)
    keys = getattr(request.state, "ui_keys", None)
    values = {
        "request": request,
        "user": user,
        "can": (lambda role: user is not None and user.allows(role)),
        "csrf_token": keys.csrf_token(session) if keys and session else "",
        "htmx": request.headers.get("HX-Request") == "true",
        "auth_strategy": request.app.state.authenticator.strategy,
        **(context or {}),
    }
    html = environment.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=headers)
