"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread.

It records every request it is sent (path, headers, JSON body) and answers 200, or 500 while
it is told to fail (the first ``fail_first`` requests, or all while ``failing`` is set), so
tests see exactly what reached the wire, retries included.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: Any
    status: int  # what the receiver answered


@dataclass
class Receiver:
    fail_first: int = 0
    failing: bool = False
    status_when_failing: int = 500
    requests: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                status = receiver._answer()
                with receiver._lock:
                    receiver.requests.append(
                        Delivery(self.path, dict(self.headers.items()), body, status))
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"receiver told to fail")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="webhook-receiver").start()
        return self

    def _answer(self) -> int:
        with self._lock:
            if self.failing:
                return self.status_when_failing
            if self.fail_first > 0:
                self.fail_first -= 1
                return self.status_when_failing
            return 200

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def delivered(self) -> list[Any]:
        """Bodies of the requests answered 200, in arrival order."""
        with self._lock:
            return [d.body for d in self.requests if d.status == 200]

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.requests if d.status == 200]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Any]:
        """Wait until ``count`` deliveries were accepted; return their bodies."""
        deadline = time.monotonic() + timeout
        while len(self.delivered) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} deliveries, got {self.requests!r}")
            time.sleep(0.02)
        return self.delivered
