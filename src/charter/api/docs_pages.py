"""``/docs`` (Swagger UI) and ``/redoc`` from Charter's own copies of their assets.

FastAPI's defaults load both from cdn.jsdelivr.net (and ReDoc's fonts from Google), so on a
machine without internet the pages stay blank. :func:`install` serves the same pages with
every URL pointing at ``/ui/static/vendor/`` (charter.ui.static_files); ``create_app``
builds FastAPI with ``docs_url=None, redoc_url=None`` so these are the only ones.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.responses import HTMLResponse

from charter.ui.static_files import static_url

DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
REDOC_PATH = "/redoc"

SWAGGER_JS = static_url("vendor/swagger-ui/swagger-ui-bundle.js")
SWAGGER_CSS = static_url("vendor/swagger-ui/swagger-ui.css")
SWAGGER_FAVICON = static_url("vendor/swagger-ui/favicon-32x32.png")
REDOC_JS = static_url("vendor/redoc/redoc.standalone.js")

#: What the pages may load: their own origin only. ReDoc 2.5's sidebar footer shows an
#: <img> from cdn.redoc.ly, unconditionally; the browser refuses it (the component then hides
#: it), so no page of the docs makes a request off the machine. The inline scripts FastAPI
#: writes are allowed by their hash; Swagger UI and ReDoc inject <style> elements, and ReDoc
#: runs its search index in a blob: worker.
CSP = ("default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

#: Swagger UI's own defaults would show a badge loaded from validator.swagger.io
SWAGGER_PARAMETERS = {"validatorUrl": None}


def confined(page: HTMLResponse) -> HTMLResponse:
    """``page`` with a Content-Security-Policy (:data:`CSP`) naming its inline scripts."""
    hashes = [base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
              for body in _INLINE_SCRIPT.findall(page.body.decode())]
    scripts = " ".join(f"'sha256-{h}'" for h in hashes)
    page.headers["Content-Security-Policy"] = CSP.format(scripts=scripts)
    return page


def install(app: FastAPI) -> None:
    """Add the three documentation routes (all OPEN in api/permissions.py)."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return confined(get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=SWAGGER_JS,
            swagger_css_url=SWAGGER_CSS,
            swagger_favicon_url=SWAGGER_FAVICON,
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_ui_parameters=SWAGGER_PARAMETERS,
        ))

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return confined(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_PATH, include_in_schema=False)
    def redoc() -> HTMLResponse:
        return confined(get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=REDOC_JS,
            redoc_favicon_url=SWAGGER_FAVICON,
            with_google_fonts=False,
        ))
