"""A small JSON API for tests: a real HTTP server (uvicorn) on 127.0.0.1 that a test steers.

The test sets the JSON served at each path (``serve``), and how the service behaves
(``mode``): ``"ok"``; ``"error"`` (HTTP 500); ``"garbage"`` (200 with an HTML page);
``"slow"`` (answers after ``delay`` seconds). ``token`` makes it demand
``Authorization: Bearer <token>`` (401 otherwise); ``stop()`` shuts the server down and
``start()`` brings it back on the same port. Every request's path and query is recorded in
``requests``, so a test can see that a poller came back by itself.

Use the ``json_service`` fixture (import it into the test module).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.realservices.ports import reserve_port

HOST = "127.0.0.1"
MODES = ("ok", "error", "garbage", "slow")

Document = Any | Callable[[dict[str, str]], Any]


class JsonService:
    def __init__(self) -> None:
        # The port is reserved for as long as this object lives (a bound socket that never
        # listens: see ports.reserve_port), so that no other process takes it before
        # start() or between stop() and start(); uvicorn binds it with SO_REUSEADDR all the same.
        reservation = reserve_port()
        weakref.finalize(self, reservation.close)
        self.port = reservation.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        self.documents: dict[str, Document] = {}
        self.mode = "ok"
        self.delay = 5.0
        self.token: str | None = None
        self.requests: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.app = Starlette(routes=[Route("/{path:path}", self._handle)])

    # ------------------------------------------------------------ steering

    def serve(self, path: str, document: Document) -> None:
        """Answer GET ``path`` (optionally with ``?query``) with ``document``.

        A callable document is called with the request's query parameters.
        """
        self.documents[path] = document

    def set_mode(self, mode: str, delay: float | None = None) -> None:
        assert mode in MODES, mode
        self.mode = mode
        if delay is not None:
            self.delay = delay

    def hits(self, path: str) -> int:
        """How many requests reached ``path`` (any query) so far."""
        return sum(1 for r in list(self.requests) if r.split("?", 1)[0] == path)

    # ------------------------------------------------------------ the server

    async def _handle(self, request: Request) -> Response:
        key = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        self.requests.append(key)
        self.headers.append(dict(request.headers))
        if self.token is not None and \
                request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "invalid or missing token"}, status_code=401)
        mode = self.mode
        if mode == "error":
            return PlainTextResponse("internal error: the backend is down", status_code=500)
        if mode == "garbage":
            return Response("<html><body>Service Unavailable</body></html>", status_code=200,
                            media_type="text/html")
        if mode == "slow":
            deadline = time.monotonic() + self.delay
            while time.monotonic() < deadline and not self._stopping:
                await asyncio.sleep(0.02)
        document = self.documents.get(key, self.documents.get(request.url.path, _MISSING))
        if document is _MISSING:
            return JSONResponse({"error": f"no such path {request.url.path}"}, status_code=404)
        if callable(document):
            document = document(dict(request.query_params))
        return JSONResponse(document)

    def start(self, timeout: float = 10) -> None:
        config = uvicorn.Config(self.app, host=HOST, port=self.port, log_level="warning",
                                lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._stopping = False
        self._thread = threading.Thread(target=self._server.run, daemon=True,
                                        name=f"json-service-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test JSON service did not start on {self.url}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Shut the server down: connections are refused until ``start()``."""
        if self._server is None or self._thread is None:
            return
        self._stopping = True  # a slow answer in progress ends now
        self._server.should_exit = True
        self._thread.join(10)
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None


_MISSING = object()


@pytest.fixture
def json_service() -> Iterator[JsonService]:
    """A running :class:`JsonService`, stopped at the end of the test."""
    service = JsonService()
    service.start()
    try:
        yield service
    finally:
        service.stop()
