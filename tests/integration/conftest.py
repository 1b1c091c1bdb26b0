"""A real ``charter serve`` and python-congressclient's ``openstack congress`` commands.

``charter_server`` starts ``charter serve`` as a subprocess on 127.0.0.1 (a free port, a
temp ``CHARTER_DATA_DIR``, noauth), waits for ``GET /healthz`` and stops it by its PID at
the end, also when a test fails. ``congress`` runs client commands against it from the
client's own venv (``<repo>/.ci-venvs/congressclient``, per checkout and gitignored;
``CHARTER_CONGRESSCLIENT_VENV`` overrides; installed by ``.ci/congressclient.sh`` on first
use), and records which commands
and client methods the tests used so a test can check that none the client offers is
left out.

By default the commands run in one long-lived client process (congress_runner.py: the
``openstack`` script's own code path, ~50 ms a command instead of ~3 s of imports);
``CHARTER_CONGRESSCLIENT_MODE=subprocess`` runs each through the ``openstack`` script.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.realservices.charter_server import CharterServer

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / ".ci" / "congressclient.sh"
RUNNER = Path(__file__).resolve().parent / "congress_runner.py"
DEFAULT_VENV = ROOT / ".ci-venvs" / "congressclient"  # per checkout, gitignored
HOST = "127.0.0.1"  # noauth is only allowed on loopback; never anything else
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 60.0


# ---------------------------------------------------------------- the client venv


def congressclient_venv() -> Path:
    """The client venv, installed by .ci/congressclient.sh when it is missing.

    The script is always asked: it knows whether the venv there was installed for its
    current package list (a few milliseconds when it was), and waits for another run
    installing at the same path instead of using a half-built venv.
    """
    venv = Path(os.environ.get("CHARTER_CONGRESSCLIENT_VENV", DEFAULT_VENV))
    env = {**os.environ, "CHARTER_CONGRESSCLIENT_VENV": str(venv)}
    done = subprocess.run(["bash", str(INSTALL_SCRIPT)], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0 or not (venv / "bin" / "openstack").exists():
        pytest.fail(
            f"python-congressclient is not installed in {venv} and {INSTALL_SCRIPT} failed "
            f"(exit {done.returncode}); run it by hand to see why. Last output:\n"
            + (done.stdout + done.stderr)[-3000:],
            pytrace=False,
        )
    return venv


# ---------------------------------------------------------------- charter serve


@pytest.fixture(scope="module")
def charter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CharterServer]:
    server = CharterServer(tmp_path_factory.mktemp("charter-serve")).start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- the client


@dataclass
class Result:
    argv: list[str]
    rc: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return (f"openstack {' '.join(self.argv)}\n  exit {self.rc}\n  stdout: "
                f"{self.stdout!r}\n  stderr: {self.stderr!r}")


class ClientError(AssertionError):
    pass


class Congress:
    """``openstack congress ...`` against one Charter, plus calls of the client's Client."""

    def __init__(self, venv: Path, endpoint: str) -> None:
        self.venv = venv
        self.endpoint = endpoint
        self.subprocess_mode = os.environ.get("CHARTER_CONGRESSCLIENT_MODE") == "subprocess"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env = env
        self.runner_errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()
        self.runner = subprocess.Popen(
            [str(venv / "bin" / "python"), str(RUNNER)], env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.runner_errors, text=True, bufsize=1)
        info = self._ask({"inventory": True})
        self.commands: list[str] = [c.removeprefix("congress ") for c in info["commands"]]
        self.methods: list[str] = info["methods"]
        self.commands_run: set[str] = set()
        self.methods_called: set[str] = set()

    def close(self) -> None:
        if self.runner.poll() is None:
            self.runner.stdin.close()  # type: ignore[union-attr]
            try:
                self.runner.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.runner.pid, signal.SIGKILL)
                self.runner.wait(timeout=10)
        self.runner_errors.close()

    def _ask(self, request: dict) -> Any:
        assert self.runner.stdin is not None and self.runner.stdout is not None
        self.runner.stdin.write(json.dumps(request) + "\n")
        self.runner.stdin.flush()
        ready, _, _ = select.select([self.runner.stdout], [], [], COMMAND_TIMEOUT)
        line = self.runner.stdout.readline() if ready else ""
        if not line:
            self.runner_errors.seek(0)
            err = self.runner_errors.read()
            self.close()
            raise ClientError(f"the congressclient runner gave no answer to {request}:\n"
                              f"{err[-3000:]}")
        return json.loads(line)

    def _record(self, args: tuple[str, ...]) -> None:
        words = [a for a in args if not a.startswith("-")]
        for n in range(len(words), 0, -1):
            if " ".join(words[:n]) in self.commands:
                self.commands_run.add(" ".join(words[:n]))
                return

    # ------------------------------------------------------------ commands

    def run(self, *args: str, compat: bool = False) -> Result:
        """``openstack congress <args>``; ``compat`` works around the client's Python 3
        bugs (see congress_runner.py)."""
        self._record(args)
        argv = ["--os-auth-type", "none", "--os-endpoint", f"{self.endpoint}/",
                "congress", *args]
        if self.subprocess_mode and not compat:
            return self.binary(*args)
        answer = self._ask({"argv": argv, "compat": compat})
        return Result(list(args), answer["rc"], answer["stdout"], answer["stderr"])

    def binary(self, *args: str) -> Result:
        """Through the ``openstack`` script itself (a process per command, ~3 s)."""
        return self.binaries(args)[0]

    def binaries(self, *commands: tuple[str, ...]) -> list[Result]:
        """Several commands through the ``openstack`` script, side by side."""
        processes = []
        for args in commands:
            self._record(args)
            argv = ["--os-auth-type", "none", "--os-endpoint", f"{self.endpoint}/",
                    "congress", *args]
            processes.append(subprocess.Popen(
                [str(self.venv / "bin" / "openstack"), *argv], env=self.env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL))
        out = []
        for args, process in zip(commands, processes, strict=True):
            try:
                stdout, stderr = process.communicate(timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            out.append(Result(list(args), process.returncode, stdout, stderr))
        return out

    def ok(self, *args: str, compat: bool = False) -> str:
        """stdout of a command that must succeed (exit 0, nothing on stderr)."""
        result = self.run(*args, compat=compat)
        if result.rc != 0 or result.stderr.strip():
            raise ClientError(f"command failed:\n{result}")
        return result.stdout

    def json(self, *args: str, compat: bool = False) -> Any:
        """A command's ``-f json`` output, parsed."""
        return json.loads(self.ok(*args, "-f", "json", compat=compat))

    def value(self, *args: str, compat: bool = False) -> list[str]:
        """A command's ``-f value`` output: one string per line."""
        return self.ok(*args, "-f", "value", compat=compat).splitlines()

    def fails(self, *args: str, compat: bool = False) -> Result:
        """A command that must fail: exit 1, nothing on stdout, the error on stderr."""
        result = self.run(*args, compat=compat)
        if result.rc == 0 or result.stdout.strip() or not result.stderr.strip():
            raise ClientError(f"expected a failure with a message on stderr:\n{result}")
        return result

    # ------------------------------------------------------------ the Python client

    def api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``congressclient.v1.client.Client.<method>``; its result, or raise."""
        answer = self.api_answer(method, *args, **kwargs)
        if not answer["ok"]:
            raise ClientError(f"Client.{method}{args} failed: {answer}")
        return answer["result"]

    def api_answer(self, method: str, *args: Any, **kwargs: Any) -> dict:
        """``{"ok": true, "result"}`` or ``{"ok": false, "status", "message", "body"}``."""
        self.methods_called.add(method)
        return self._ask({"call": method, "endpoint": self.endpoint, "args": list(args),
                          "kwargs": kwargs})


@pytest.fixture(scope="module")
def congress(charter_server: CharterServer) -> Iterator[Congress]:
    client = Congress(congressclient_venv(), charter_server.url)
    try:
        yield client
    finally:
        client.close()
