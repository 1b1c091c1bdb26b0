"""A real Prometheus 2.x scraping a real node exporter, for tests; on 127.0.0.1 only.

Both run from the Debian packages (``.ci/prometheus.sh`` installs them) on free ports, with a
temporary storage directory, scraping every second: Prometheus scrapes itself (job
``prometheus``) and the node exporter (job ``node``). A test can stop and restart the node
exporter (``up{job="node"}`` drops to 0 at the next scrape) or the whole Prometheus. Every
process is stopped by its PID when the session ends, whether the tests passed or not.

Use the session fixture ``prometheus`` (import it into a conftest.py or a test module), or
:func:`running_prometheus` for a server of one's own. ``CHARTER_PROMETHEUS_BIN`` and
``CHARTER_NODE_EXPORTER_BIN`` point at binaries elsewhere than on PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.realservices.ports import reserve_port

HOST = "127.0.0.1"
INSTALL_HINT = ("the tests marked 'prometheus' need Prometheus 2.x and the node exporter: "
                "run `bash .ci/prometheus.sh` (apt-get install prometheus "
                "prometheus-node-exporter), or set CHARTER_PROMETHEUS_BIN and "
                "CHARTER_NODE_EXPORTER_BIN")
SCRAPE_S = 1


class PrometheusError(RuntimeError):
    """The test server could not be set up; the message says why and has its log."""


def _binary(env: str, name: str) -> str:
    found = os.environ.get(env) or shutil.which(name)
    if not found or not Path(found).is_file():
        raise PrometheusError(f"{name} not found: {INSTALL_HINT}")
    return found


class _Process:
    """One daemon: started with its log in a file, stopped by its PID."""

    def __init__(self, name: str, cmd: list[str], log: Path, ready_url: str) -> None:
        self.name, self.cmd, self.log, self.ready_url = name, cmd, log, ready_url
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PrometheusError(f"{self.name} exited {self.proc.returncode} at start: "
                                      f"{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise PrometheusError(f"{self.name} not ready at {self.ready_url} after {timeout} s: "
                              f"{self.tail()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


class Prometheus:
    """A running Prometheus (``url``) and node exporter (``node_target``), and their controls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Both ports are reserved for as long as this object lives (see
        # ports.reserve_port; Go's listeners bind with SO_REUSEADDR), so that a test that
        # stops a daemon finds its port free to start it again.
        self._reservations = [reserve_port(), reserve_port()]
        for s in self._reservations:
            weakref.finalize(self, s.close)
        self.port, self.node_port = (s.getsockname()[1] for s in self._reservations)
        self.url = f"http://{HOST}:{self.port}"
        self.node_target = f"{HOST}:{self.node_port}"
        (root / "prometheus.yml").write_text(
            f"global: {{scrape_interval: {SCRAPE_S}s, evaluation_interval: {SCRAPE_S}s}}\n"
            "scrape_configs:\n"
            "  - job_name: prometheus\n"
            f"    static_configs: [{{targets: ['{HOST}:{self.port}']}}]\n"
            "  - job_name: node\n"
            f"    static_configs: [{{targets: ['{self.node_target}']}}]\n")
        self.server = _Process("prometheus", [
            _binary("CHARTER_PROMETHEUS_BIN", "prometheus"),
            f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address={HOST}:{self.port}", "--storage.tsdb.retention.time=1h",
        ], root / "prometheus.log", f"{self.url}/-/ready")
        self.node_exporter = _Process("prometheus-node-exporter", [
            _binary("CHARTER_NODE_EXPORTER_BIN", "prometheus-node-exporter"),
            f"--web.listen-address={self.node_target}", "--collector.disable-defaults",
            "--collector.loadavg", "--collector.meminfo", "--collector.time",
        ], root / "node-exporter.log", f"http://{self.node_target}/metrics")

    def start(self) -> None:
        """Start both and wait until Prometheus has scraped both targets as up."""
        self.node_exporter.start()
        self.server.start()
        self.wait_for_up("node", 1.0)
        self.wait_for_up("prometheus", 1.0)

    def stop(self) -> None:
        self.server.stop()
        self.node_exporter.stop()

    def release(self) -> None:
        """Stop both, for good: their ports' reservations go too."""
        self.stop()
        for s in self._reservations:
            s.close()

    def query(self, expr: str) -> list[dict]:
        """The instant vector of ``expr``, straight from Prometheus's HTTP API."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]["result"]

    def wait(self, expr: str, ok: Callable[[list[dict]], bool], timeout: float = 30) -> list:
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if ok(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} is still {result} after {timeout} s")
            time.sleep(0.1)

    def wait_for_up(self, job: str, value: float, timeout: float = 30) -> list:
        return self.wait(f'up{{job="{job}"}}',
                         lambda r: len(r) == 1 and float(r[0]["value"][1]) == value, timeout)


@contextlib.contextmanager
def running_prometheus() -> Iterator[Prometheus]:
    """A Prometheus and node exporter of their own, stopped (and their files gone) after."""
    root = Path(tempfile.mkdtemp(prefix="charter-prom-"))
    prom = None
    try:
        prom = Prometheus(root)  # on reserved ports: nobody else takes them first
        prom.start()
        yield prom
    finally:
        if prom is not None:
            prom.release()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus() -> Iterator[Prometheus]:
    """A real Prometheus scraping a real node exporter, for the test session."""
    with contextlib.ExitStack() as stack:
        try:
            prom = stack.enter_context(running_prometheus())
        except PrometheusError as exc:
            problem = str(exc)
        else:
            yield prom
            return
    pytest.fail(problem, pytrace=False)
