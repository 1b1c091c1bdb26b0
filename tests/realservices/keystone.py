"""A real Keystone for tests, served by uwsgi on 127.0.0.1 from its own venv.

The session-scoped fixture ``keystone`` starts one Keystone for the whole test
run (fernet tokens, SQLite, bootstrap admin/adminpw in project ``admin``) and
stops uwsgi by its PID at the end. Keystone lives in its own venv (installed by
``.ci/keystone.sh``; ``CHARTER_KEYSTONE_VENV`` overrides the path) so its pins
never touch Charter's. Use it from a test module with::

    from tests.realservices import keystone as realkeystone
    keystone = realkeystone.keystone  # (an import would trip ruff's F811)

or list ``tests.realservices.keystone`` in ``pytest_plugins`` of the root conftest.py.

``start_keystone``/``KeystoneServer.stop`` are public too, for a test that
needs a Keystone of its own (e.g. one it stops).
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / ".ci" / "keystone.sh"
DEFAULT_VENV = Path("/tmp/svc-venvs/keystone")
HOST = "127.0.0.1"  # never anything else
ADMIN_USER = "admin"
ADMIN_PASSWORD = "adminpw"
ADMIN_PROJECT = "admin"
START_TIMEOUT = 120.0  # after setup; a loaded 2-core machine needs ~30 s

CONF = """\
[DEFAULT]
log_file = {d}/keystone.log
[database]
connection = sqlite:///{d}/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = {d}/fernet-keys
[fernet_receipts]
key_repository = {d}/fernet-keys
[credential]
key_repository = {d}/credential-keys
[identity]
# bcrypt's minimum: test users need no costly hashes, and each login hashes.
password_hash_rounds = 4
# No [cache]: with dogpile's memory backend this Keystone (30.0) kept accepting a
# revoked token as X-Auth-Token, which the revocation tests must see refused.
"""


def keystone_venv() -> Path:
    """The Keystone venv, installed by .ci/keystone.sh on first use."""
    venv = Path(os.environ.get("CHARTER_KEYSTONE_VENV", DEFAULT_VENV))
    if (venv / "bin" / "keystone-manage").exists() and (venv / "bin" / "uwsgi").exists():
        return venv
    env = {**os.environ, "CHARTER_KEYSTONE_VENV": str(venv)}
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not (venv / "bin" / "uwsgi").exists():
        pytest.fail(
            f"Keystone is not installed in {venv} and {INSTALL_SCRIPT} failed "
            f"(exit {done.returncode}); run it by hand to see why. Last output:\n"
            + (done.stdout + done.stderr)[-3000:],
            pytrace=False,
        )
    return venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class KeystoneServer:
    """A running Keystone and admin helpers over its REST API (v3)."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    started_in: float = 0.0
    admin_username: str = ADMIN_USER
    admin_password: str = ADMIN_PASSWORD
    admin_project: str = ADMIN_PROJECT
    _admin_token: str | None = field(default=None, repr=False)
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30), repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def auth_url(self) -> str:
        """What OS_AUTH_URL / python-congressclient expect."""
        return f"{self.base_url}/v3"

    @property
    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = self.issue_token(
                self.admin_username, self.admin_password, self.admin_project
            )
        return self._admin_token

    def issue_token(self, username: str, password: str, project: str | None = None) -> str:
        """Password-authenticate a Default-domain user; project-scoped if ``project``."""
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": username, "domain": {"id": "default"}, "password": password}
                },
            }
        }
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        r = self._http.post(f"{self.auth_url}/auth/tokens", json={"auth": auth})
        r.raise_for_status()
        return r.headers["X-Subject-Token"]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An admin-token request to ``{auth_url}{path}``; raises on HTTP errors."""
        headers = {"X-Auth-Token": self.admin_token, **kwargs.pop("headers", {})}
        r = httpx.request(method, f"{self.auth_url}{path}", headers=headers, timeout=30, **kwargs)
        r.raise_for_status()
        return r

    def _find(self, collection: str, name: str) -> dict[str, Any] | None:
        items = self.api("GET", f"/{collection}", params={"name": name}).json()[collection]
        return items[0] if items else None

    def ensure_role(self, name: str) -> str:
        found = self._find("roles", name)
        if found is not None:
            return found["id"]
        return self.api("POST", "/roles", json={"role": {"name": name}}).json()["role"]["id"]

    def ensure_project(self, name: str) -> str:
        found = self._find("projects", name)
        if found is not None:
            return found["id"]
        body = {"project": {"name": name, "domain_id": "default"}}
        return self.api("POST", "/projects", json=body).json()["project"]["id"]

    def create_user(
        self, name: str, password: str, project: str, roles: tuple[str, ...] = ("member",)
    ) -> dict[str, str]:
        """A Default-domain user with ``roles`` on ``project`` (both created if absent)."""
        project_id = self.ensure_project(project)
        body = {"user": {"name": name, "password": password, "domain_id": "default"}}
        user_id = self.api("POST", "/users", json=body).json()["user"]["id"]
        for role in roles:
            role_id = self.ensure_role(role)
            self.api("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")
        return {"user_id": user_id, "project_id": project_id, "name": name, "password": password}

    def user_token(
        self, name: str, project: str, roles: tuple[str, ...] = ("member",)
    ) -> tuple[str, dict[str, str]]:
        """Create a user with ``roles`` on ``project`` and return (its token, its ids)."""
        user = self.create_user(name, f"{name}-pw", project, roles)
        return self.issue_token(name, user["password"], project), user

    def revoke(self, token: str) -> None:
        self.api("DELETE", "/auth/tokens", headers={"X-Subject-Token": token})

    def register_service(self, service_type: str, name: str, url: str) -> str:
        """Add a service and its public/internal/admin endpoints (RegionOne) to the catalog."""
        body = {"service": {"type": service_type, "name": name, "enabled": True}}
        service_id = self.api("POST", "/services", json=body).json()["service"]["id"]
        for interface in ("public", "internal", "admin"):
            endpoint = {
                "service_id": service_id,
                "interface": interface,
                "url": url,
                "region_id": "RegionOne",
                "enabled": True,
            }
            self.api("POST", "/endpoints", json={"endpoint": endpoint})
        return service_id

    def logs(self) -> str:
        parts = []
        for name in ("uwsgi.out", "keystone.log"):
            path = self.directory / name
            if path.exists():
                parts.append(f"--- {name} (tail) ---\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop uwsgi (master PID from its pidfile, else the process we started)."""
        self._http.close()
        pidfile = self.directory / "uwsgi.pid"
        pid = self.process.pid
        if pidfile.exists():
            text = pidfile.read_text().strip()
            if text.isdigit():
                pid = int(text)
        if self.process.poll() is None:
            try:
                os.kill(pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # its own session, started by us
                self.process.wait(timeout=15)


def _manage(venv: Path, conf: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start one keystone-manage command (each pays ~5 s of imports, so they overlap).

    Its output (mostly eventlet deprecation warnings) goes to manage-<command>.log.
    """
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '')}"}
    cmd = [str(venv / "bin" / "keystone-manage"), "--config-file", str(conf), *args]
    with open(conf.parent / f"manage-{args[0]}.log", "wb") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _wait(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.wait() != 0:
            command = process.args[3]  # type: ignore[index]
            log = Path(process.args[2]).parent / f"manage-{command}.log"  # type: ignore[index]
            pytest.fail(f"keystone-manage {command} failed (exit {process.returncode}):\n"
                        + log.read_text(errors="replace")[-3000:], pytrace=False)


def start_keystone(directory: Path, port: int | None = None) -> KeystoneServer:
    """Set up a fresh Keystone in ``directory`` and serve it on 127.0.0.1."""
    began = time.monotonic()
    venv = keystone_venv()
    port = port or free_port()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "keystone.conf"
    conf.write_text(CONF.format(d=directory))
    owner = (
        "--keystone-user",
        pwd.getpwuid(os.geteuid()).pw_name,
        "--keystone-group",
        grp.getgrgid(os.getegid()).gr_name,
    )
    # Key repositories and schema are independent: set them up side by side.
    _wait(
        _manage(venv, conf, "fernet_setup", *owner),
        _manage(venv, conf, "credential_setup", *owner),
        _manage(venv, conf, "db_sync"),
    )
    url = f"http://{HOST}:{port}/v3/"
    # uwsgi loads the app (imports) while bootstrap fills the database.
    bootstrap = _manage(
        venv, conf, "bootstrap",
        "--bootstrap-password", ADMIN_PASSWORD,
        "--bootstrap-region-id", "RegionOne",
        "--bootstrap-admin-url", url,
        "--bootstrap-internal-url", url,
        "--bootstrap-public-url", url,
    )  # fmt: skip
    out = open(directory / "uwsgi.out", "wb")  # noqa: SIM115 - handed to the child
    env = {**os.environ, "OS_KEYSTONE_CONFIG_DIR": str(directory)}
    process = subprocess.Popen(
        [
            str(venv / "bin" / "uwsgi"),
            "--http-socket", f"{HOST}:{port}",
            "--module", "keystone.wsgi.api:application",
            "--master", "--processes", "1", "--threads", "4",
            "--add-header", "Connection: close",
            "--die-on-term",
            "--pidfile", str(directory / "uwsgi.pid"),
        ],
        env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    out.close()
    server = KeystoneServer(port=port, directory=directory, process=process)
    try:
        _wait(bootstrap)
    except BaseException:
        server.stop()
        raise
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"uwsgi exited with {process.returncode}:\n{server.logs()}", pytrace=False)
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(
                f"Keystone did not answer on {url} in {START_TIMEOUT:.0f}s:\n" + server.logs(),
                pytrace=False,
            )
        time.sleep(0.25)
    server.started_in = time.monotonic() - began
    return server


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    """One real Keystone for the session, stopped at the end."""
    directory = tmp_path_factory.mktemp("keystone")
    server = start_keystone(directory)
    try:
        yield server
    finally:
        server.stop()
