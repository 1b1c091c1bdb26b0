"""``/ui/static``: the dashboard's own files and the vendored libraries, served by Charter.

Everything a page of ``/ui``, ``/docs`` or ``/redoc`` loads comes from here, never from a
CDN, so the pages work on a machine without internet (vendor/README.md lists the libraries,
their versions and licences, and how to fetch them again).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
URL_PATH = "/ui/static"
NAME = "ui-static"
#: the vendored files change only with a Charter upgrade: a day in the cache, then revalidated
VENDOR_CACHE = "public, max-age=86400"
#: the dashboard's own files may change with any deploy: always revalidated (ETag)
OWN_CACHE = "no-cache"


class _CachedStaticFiles(StaticFiles):
    """Starlette's StaticFiles with a Cache-Control header chosen by folder."""

    def file_response(self, full_path: os.PathLike[str] | str, stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = Path(full_path).resolve().is_relative_to(STATIC_DIR / "vendor")
        response.headers["Cache-Control"] = VENDOR_CACHE if vendored else OWN_CACHE
        return response


def static_url(path: str) -> str:
    """The URL of a file under ``static/``.

    >>> static_url("vendor/htmx/htmx.min.js")
    '/ui/static/vendor/htmx/htmx.min.js'
    """
    return f"{URL_PATH}/{path.lstrip('/')}"


def mount_static(app: FastAPI) -> None:
    """Mount ``static/`` at ``/ui/static`` (route name ``ui-static``, for ``url_for``).

    A Mount is not an API route, so api/permissions.py's table does not list it: the files
    are public, as any library's are.
    """
    app.mount(URL_PATH, _CachedStaticFiles(directory=STATIC_DIR), name=NAME)
