"""A real PostgreSQL 15 server for tests: started once per session, on 127.0.0.1 only.

The server runs from a temporary data directory on a free port, as the ``postgres`` OS user
when the tests run as root (PostgreSQL refuses to run as root), and is stopped by the PID in
its ``postmaster.pid`` when the session ends, whether the tests passed or not.

Use the ``postgres_url`` fixture (import it into a conftest.py), with :func:`empty_database`
to start a test from an empty database, or :func:`fresh_database` for a database of its own;
another session fixture uses the same server through :func:`session_server`. Set
``CHARTER_PG_BIN`` to use binaries from elsewhere than /usr/lib/postgresql/15/bin.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

PG_BIN = Path(os.environ.get("CHARTER_PG_BIN", "/usr/lib/postgresql/15/bin"))
HOST = "127.0.0.1"
DATABASE = "charter"
INSTALL_HINT = (
    "the tests marked 'postgres' need the PostgreSQL 15 server binaries (initdb, pg_ctl, "
    f"postgres) in {PG_BIN}: install them with `apt-get install postgresql-15`, or point "
    "CHARTER_PG_BIN at the folder that has them"
)

_names = itertools.count(1)


class PostgresError(RuntimeError):
    """The test server could not be set up; the message says why and has the server's log."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """``cmd`` run as the ``postgres`` user when we are root, else as ourselves."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _run(cmd: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
        raise PostgresError(
            f"{what} failed ({shlex.join(cmd)} exited {done.returncode}):\n"
            f"{done.stdout}{done.stderr}{tail}"
        )


def _stop(data: Path) -> None:
    """Stop the server of ``data``: a fast shutdown, then SIGKILL by PID if it lingers."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not pid_file.exists():  # the server's last act; its PID may linger as a zombie
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    """Start a throw-away server; yield the URL of its (empty) ``charter`` database."""
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / b).is_file()]
    if missing:
        raise PostgresError(f"{', '.join(missing)} not found: {INSTALL_HINT}")
    root = Path(tempfile.mkdtemp(prefix="charter-pg-"))
    data, log = root / "data", root / "server.log"
    try:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(root, user.pw_uid, user.pw_gid)
        # No fsync anywhere: the server and its data live only as long as the test session,
        # and the tests kill clients, never the server, so commits survive all the same.
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
        _run([*initdb, "-E", "UTF8", "--no-sync"], "initdb")
        for _attempt in range(5):  # the free port may be taken between the probe and the start
            port = _free_port()
            options = f"-p {port} -k {root} -c listen_addresses={HOST} -c fsync=off"
            pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options]
            log.unlink(missing_ok=True)
            try:
                _run([*pg_ctl, "-w", "-t", "60", "start"], "starting PostgreSQL", log)
                break
            except PostgresError:
                _stop(data)
                if not log.exists() or "already in use" not in log.read_text(errors="replace"):
                    raise
        else:
            raise PostgresError(f"no free port for PostgreSQL after 5 tries; log in {log}")
        try:
            admin = f"postgresql://postgres@{HOST}:{port}/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
            yield f"postgresql+psycopg://postgres@{HOST}:{port}/{DATABASE}"
        finally:
            _stop(data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def empty_database(url: str) -> str:
    """Drop everything in the database of ``url`` (its ``public`` schema); return ``url``.

    Much faster than a new database (CREATE DATABASE copies a template), for tests that only
    need an empty one. Every connection to it must be idle: a lock held fails after 10 s.
    """
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


@contextlib.contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new empty database on the server of ``url``, dropped afterwards; yields its URL."""
    server = psycopg.conninfo.conninfo_to_dict(url.replace("+psycopg", ""))
    name = f"charter_t{os.getpid()}_{next(_names)}"
    admin = psycopg.conninfo.make_conninfo(**{**server, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class _SharedServer:
    """One server per process, however many conftests import the fixture.

    Each conftest that imports ``postgres_url`` gets its own session fixture; they share the
    server through this count, and the last one to finish stops it.
    """

    def __init__(self) -> None:
        self.users = 0
        self.url = ""
        self.stack = contextlib.ExitStack()

    @contextlib.contextmanager
    def use(self) -> Iterator[str]:
        if self.users == 0:
            self.url = self.stack.enter_context(running_postgres())
        self.users += 1
        try:
            yield self.url
        finally:
            self.users -= 1
            if self.users == 0:
                self.stack.close()


_SHARED = _SharedServer()


@contextlib.contextmanager
def session_server() -> Iterator[str]:
    """The URL of the ``charter`` database on the session's server: the one ``postgres_url``
    gives, for session fixtures of other services that keep their data on it (the test
    Keystone does, in a :func:`fresh_database` of its own).

    Every user shares the one server, and the last one done stops it. A server that cannot
    be set up fails the test that asked, saying why.
    """
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(_SHARED.use())
        except PostgresError as e:
            problem = str(e)
        else:
            yield url
            return
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database on a real PostgreSQL server that lives for the test session."""
    with session_server() as url:
        yield url
