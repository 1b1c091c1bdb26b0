"""The FastAPI application: Congress's v1 API plus Charter's extensions, over a Service."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

import charter
from charter import ui
from charter.api import admission, datasources, enforcement, errors, extensions, openapi, policies
from charter.api import decisions as decisions_api
from charter.api import explain as explain_api
from charter.api import kubernetes as kubernetes_api
from charter.api import nova as nova_api
from charter.api import packs as packs_api
from charter.api import violations as violations_api
from charter.api.auth import Authenticator
from charter.api.deps import single_values
from charter.api.docs_pages import install as install_docs_pages
from charter.api.metrics import Metrics, MetricsMiddleware
from charter.api.permissions import authorize, check_routes
from charter.service.config import Settings
from charter.service.service import Service
from charter.ui.static_files import mount_static


class TrailingSlash:
    """``/v1/policies/`` and ``/v1/policies`` are the same resource (Congress's clients use
    both), without a redirect that a client would have to follow for a POST. The dashboard's
    pages (``/ui/...``) keep theirs: ``/ui/`` is its overview."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if len(path) > 1 and path.endswith("/") and not path.startswith("/ui/"):
                scope = dict(scope, path=path.rstrip("/") or "/")
        await self.app(scope, receive, send)


def create_app(service: Service, settings: Settings,
               authenticator: Authenticator | None = None) -> FastAPI:
    app = FastAPI(
        title="Charter",
        version=getattr(charter, "__version__", "0.1.0"),
        description="Policy as a service: Congress's REST API v1 and Charter's extensions.",
        redirect_slashes=False,
        docs_url=None,  # api/docs_pages.py serves /docs and /redoc from local assets
        redoc_url=None,
        # every route asks api/permissions.py who may call it; then its query is checked
        dependencies=[Depends(authorize), Depends(single_values)],
    )
    app.state.service = service
    app.state.settings = settings
    app.state.authenticator = authenticator or Authenticator.from_settings(settings)
    app.state.metrics = Metrics(service)
    app.state.push_gates = {}  # datasource id -> its PUTs' turn (api/datasources.py)
    errors.install(app)
    app.include_router(extensions.router)
    app.include_router(policies.router)
    app.include_router(datasources.router)
    app.include_router(explain_api.router)
    app.include_router(admission.router)
    app.include_router(kubernetes_api.router)
    app.include_router(enforcement.router)
    app.include_router(packs_api.router)
    app.include_router(violations_api.router)
    app.include_router(decisions_api.router)
    app.include_router(nova_api.router)
    install_docs_pages(app)
    mount_static(app)
    check_routes(app.routes)
    openapi.install(app)
    ui.install(app)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(TrailingSlash)
    return app
