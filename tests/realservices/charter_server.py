"""``charter serve`` as a real subprocess on 127.0.0.1, for tests that need the process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path

import httpx

from tests.realservices.ports import reserve_port


def free_port() -> int:
    """A port free now, e.g. for an address nobody listens on. For a server to listen on,
    :func:`reserve_port`: this one may be taken before the server binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CharterServer:
    """One ``charter serve`` process over ``data_dir``; ``start`` again after ``kill``.

    Without ``port`` it serves on a port reserved for it (:func:`reserve_port`) for as long
    as this object lives, so a restart (after :meth:`stop` or :meth:`kill`) finds its port
    free too.
    """

    def __init__(self, data_dir: Path, port: int | None = None, env: dict | None = None):
        self.data_dir = data_dir
        if port is None:
            reservation = reserve_port()
            port = reservation.getsockname()[1]
            weakref.finalize(self, reservation.close)
        self.port = port
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "serve.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> CharterServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
        env.update(
            {
                "CHARTER_DATA_DIR": str(self.data_dir),
                "CHARTER_HOST": "127.0.0.1",
                "CHARTER_PORT": str(self.port),
                "CHARTER_LOG_LEVEL": "warning",
            }
        )
        env.update(self.env)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "charter.cli.main", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"charter serve exited with {self.proc.returncode}:\n"
                    + self.log.read_text()[-3000:]
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "charter serve did not answer /healthz in time:\n"
                    + self.log.read_text()[-3000:]
                )
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
