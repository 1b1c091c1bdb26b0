"""Charter's dashboard: server-rendered pages at ``/ui``, served by ``charter serve`` itself.

Jinja2 templates and htmx (vendored in ``static/vendor``, served by ``static_files``), no
build step and nothing from a CDN; see docs/ui.md.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse


def install(app: FastAPI) -> None:
    """Mount the dashboard at ``/ui`` (after ``static_files.mount_static``: ``/ui/static``
    must be matched first)."""
    from charter.ui.app import create_ui

    app.mount("/ui", create_ui(app), name="ui")

    async def to_dashboard(request) -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    # ``/ui`` without the slash is the dashboard too (the mount only matches ``/ui/...``)
    app.router.add_route("/ui", to_dashboard, methods=["GET"], include_in_schema=False)
