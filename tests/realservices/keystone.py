"""A real Keystone for tests, served by uwsgi on 127.0.0.1 from its own venv.

The session-scoped fixture ``keystone`` starts one Keystone for the whole test
run (fernet tokens, bootstrap admin/adminpw in project ``admin``) and stops uwsgi
by its PID at the end. Its database is one of its own on the session's PostgreSQL
server (tests/realservices/postgres.py), dropped at the end. Not SQLite: every
password login makes Keystone update the user's ``last_active_at`` in a transaction
that has read the user first, and when two such transactions overlap, SQLite
refuses the second one's write at once with "database is locked" (no busy timeout
helps: the two readers would deadlock waiting), and the login fails (uwsgi logs a
500 and closes the connection without an answer). The tests' concurrent logins
hit that now and then. Keystone lives in its own venv (installed by
``.ci/keystone.sh`` into ``<repo>/.ci-venvs/keystone``; ``CHARTER_KEYSTONE_VENV``
overrides the path) so its pins never touch Charter's. tests/conftest.py defines the
fixture for every test module: ask for ``keystone`` and do not bind it in the module
(``keystone = realkeystone.keystone`` there would be a fixture of that module's own, and
start a Keystone of its own).

``start_keystone``/``KeystoneServer.stop`` are public too, for a test that
needs a Keystone of its own (e.g. one it stops; give it a database of its own).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.realservices import postgres as realpostgres

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / ".ci" / "keystone.sh"
DEFAULT_VENV = ROOT / ".ci-venvs" / "keystone"  # per checkout, gitignored
HOST = "127.0.0.1"  # never anything else
ADMIN_USER = "admin"
ADMIN_PASSWORD = "adminpw"
ADMIN_PROJECT = "admin"
START_TIMEOUT = 120.0  # after setup; a loaded 2-core machine needs ~30 s
EMPTY_POLICY = "{}\n"  # policy.yaml overriding nothing

CONF = """\
[DEFAULT]
log_file = {d}/keystone.log
[database]
connection = {database}
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
[oslo_policy]
# Empty: Keystone's own defaults. A test routes a rule elsewhere (to Charter) for a while
# with KeystoneServer.policy_rules, which restores it.
policy_file = {d}/policy.yaml
"""


def keystone_venv() -> Path:
    """The Keystone venv, installed by .ci/keystone.sh on first use.

    The script is always asked: it knows whether the venv there was installed for its
    current package list (a few milliseconds when it was), and waits for another run
    installing at the same path instead of using a half-built venv.
    """
    venv = Path(os.environ.get("CHARTER_KEYSTONE_VENV", DEFAULT_VENV))
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
    """A port free now: for an address nobody listens on (a port to serve on may be taken
    before the server binds it; :func:`start_keystone` binds its own)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def keystone_url(postgres_url: str) -> str:
    """The SQLAlchemy URL Keystone's oslo.db takes (psycopg2) for the database of a URL of
    tests/realservices/postgres.py (psycopg 3, which Charter uses)."""
    return postgres_url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)


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
        extra = kwargs.pop("headers", {})
        for attempt in range(2):
            headers = {"X-Auth-Token": self.admin_token, **extra}
            r = httpx.request(method, f"{self.auth_url}{path}", headers=headers, timeout=30,
                              **kwargs)
            if r.status_code == 401 and attempt == 0:
                # the session's one Keystone outlives a token (an hour): issue a new one
                self._admin_token = None
                continue
            break
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

    @property
    def policy_file(self) -> Path:
        """Keystone's ``[oslo_policy] policy_file``: empty unless a test overrides rules."""
        return self.directory / "policy.yaml"

    @contextmanager
    def policy_rules(self, rules: dict[str, str]) -> Iterator[None]:
        """Override Keystone's policy ``rules`` (name -> check string) for the ``with`` block,
        then restore the empty file.

        oslo.policy rereads the file on each enforcement whose file has a later mtime than the
        one it read (each uwsgi process has one Enforcer, shared by its threads), so the very
        next request is decided by the new rules, with no wait. Each write is atomic (a
        reader never sees half a file) and moves the mtime forward by at least a second
        (filesystems with coarse timestamps would otherwise give two writes in one tick the
        same mtime, and the second would never be read). Send Keystone nothing else while it
        may reload: oslo.policy swaps the file's rules in first and adds its defaults after,
        and a request enforced in between would miss the defaults.
        """
        self._write_policy(json.dumps(rules, indent=1) + "\n")
        try:
            yield
        finally:
            self._write_policy(EMPTY_POLICY)

    def _write_policy(self, text: str) -> None:
        path = self.policy_file
        before = path.stat().st_mtime if path.exists() else 0.0
        new = path.with_name(path.name + ".new")
        new.write_text(text)
        mtime = max(time.time(), before + 1.0)
        os.utime(new, (mtime, mtime))
        os.replace(new, path)

    def logs(self) -> str:
        """The tails of uwsgi's and Keystone's logs, and Keystone's unhandled errors (the
        tail of a traceback seldom says what went wrong)."""
        parts = []
        for name in ("uwsgi.out", "keystone.log"):
            path = self.directory / name
            if path.exists():
                parts.append(f"--- {name} (tail) ---\n" + path.read_text(errors="replace")[-3000:])
        log = self.directory / "keystone.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        unhandled = [f"{line}\n{lines[n + 1] if n + 1 < len(lines) else ''}"
                     for n, line in enumerate(lines) if " CRITICAL " in line]
        if unhandled:
            parts.append(f"--- keystone.log: {len(unhandled)} unhandled errors, the first ---\n"
                         + "\n".join(unhandled[:5]))
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


def start_keystone(directory: Path, database: str, port: int | None = None) -> KeystoneServer:
    """Set up a fresh Keystone in ``directory`` and serve it on 127.0.0.1.

    ``database``: the URL of an empty PostgreSQL database of its own (a
    :func:`~tests.realservices.postgres.fresh_database`; either driver's URL form).
    Without ``port`` it serves on a socket bound here, on a port the kernel picks, and
    handed to uwsgi (``fd://``): no other process can take the port in between.
    """
    began = time.monotonic()
    venv = keystone_venv()
    listener: socket.socket | None = None
    if port is None:
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen(128)
        port = listener.getsockname()[1]
        http_socket = f"fd://{listener.fileno()}"
    else:
        http_socket = f"{HOST}:{port}"
    try:
        return _start(venv, directory, keystone_url(database), port, http_socket, listener,
                      began)
    finally:
        if listener is not None:
            listener.close()


def _start(venv: Path, directory: Path, database: str, port: int, http_socket: str,
           listener: socket.socket | None, began: float) -> KeystoneServer:
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "keystone.conf"
    conf.write_text(CONF.format(d=directory, database=database))
    (directory / "policy.yaml").write_text(EMPTY_POLICY)
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
            "--http-socket", http_socket,
            "--module", "keystone.wsgi.api:application",
            "--master", "--processes", "1", "--threads", "4",
            "--add-header", "Connection: close",
            "--die-on-term",
            "--pidfile", str(directory / "uwsgi.pid"),
        ],
        env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, pass_fds=(listener.fileno(),) if listener else (),
    )  # fmt: skip
    out.close()
    if listener is not None:
        listener.close()  # uwsgi has its own copy (a dead uwsgi then refuses connections)
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


_SESSION_STARTS: list[float] = []  # the session fixture's starts in this process


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    """One real Keystone for the session, on a PostgreSQL database of its own on the
    session's server (the ``postgres_url`` fixture's); stopped, and its database dropped,
    at the end. A second one in the same process means a module bound the fixture itself
    (a fixture of its own, so a Keystone of its own): that fails, saying so."""
    if _SESSION_STARTS:
        pytest.fail(
            "a second session Keystone was asked for: a test module binds the fixture "
            "itself (keystone = realkeystone.keystone); remove that line, tests/conftest.py "
            "defines it for every module",
            pytrace=False,
        )
    _SESSION_STARTS.append(time.monotonic())
    directory = tmp_path_factory.mktemp("keystone")
    with realpostgres.session_server() as server_url, \
            realpostgres.fresh_database(server_url) as database:
        server = start_keystone(directory, database)
        try:
            yield server
        finally:
            server.stop()
