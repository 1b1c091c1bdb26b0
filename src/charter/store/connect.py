"""Turning a database URL into a configured SQLAlchemy engine, and its failures into messages.

SQLite is made durable and safe to share between threads: every connection runs in WAL mode
with ``synchronous=FULL`` (a commit is on disk before it returns) and ``foreign_keys=ON``, and
Python's sqlite3 module is kept out of transaction control so the store's own ``BEGIN`` (or
``BEGIN IMMEDIATE`` for writes, which takes the write lock up front instead of failing to
upgrade a read lock halfway through) delimits each transaction exactly. Checkpoints of the
write-ahead log into the database file are left to the store (``wal_autocheckpoint=0``; see
:mod:`charter.store.guard`), and the log file shrinks back to :data:`SQLITE_WAL_KEEP` bytes
when it restarts.

>>> describe(parse_url("postgresql://charter:s3cret@db:5432/charter"))
'postgresql+psycopg://charter:***@db:5432/charter'
"""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from charter.store.errors import StoreUnavailable

WRITE = "charter_write"
"""Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE)."""

SQLITE_WAL_KEEP = 1 << 20
"""Bytes of SQLite's write-ahead log file kept when the log restarts after a checkpoint."""

SQLITE_BUSY_TIMEOUT = 30.0
"""Seconds a SQLite writer waits for another process's write lock before giving up."""

URL_FORMS = "sqlite:///PATH/charter.db or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


def _mask(url: str) -> str:
    """``url`` with any password replaced, for a URL SQLAlchemy could not even parse."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def describe(url: URL) -> str:
    """The URL as it may be logged or shown: the password masked."""
    return url.render_as_string(hide_password=True)


def parse_url(url: str | URL) -> URL:
    """The URL, checked to be one the store supports; plain ``postgresql://`` means psycopg 3."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as e:
        raise StoreUnavailable(
            f"cannot parse the database URL {_mask(str(url))!r} ({e}): write it as {URL_FORMS}"
        ) from e
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise StoreUnavailable(
            f"unsupported database URL {describe(parsed)!r}: Charter stores its state in "
            f"SQLite or PostgreSQL (through psycopg 3); write the URL as {URL_FORMS}"
        )
    return parsed


def is_memory(url: URL) -> bool:
    """Whether ``url`` names an in-memory SQLite database (one per process, gone on close)."""
    db = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        db in ("", ":memory:") or db.startswith("file::memory:") or "mode=memory" in db
    )


def unavailable(url: URL, error: Exception) -> StoreUnavailable:
    """The StoreUnavailable for a failure to reach or use the database at ``url``: why and the fix."""
    orig = getattr(error, "orig", None) or error
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    where = describe(url)
    if url.get_backend_name() == "sqlite":
        if "locked" in reason or "busy" in reason:
            fix = (
                f"another process held the write lock for over {SQLITE_BUSY_TIMEOUT:.0f} s; "
                "run one Charter server per SQLite file, or use PostgreSQL"
            )
        else:
            fix = (
                "check that the file's directory exists and that Charter may write there "
                "(SQLite also writes the -wal and -shm files beside it)"
            )
        return StoreUnavailable(f"cannot use the SQLite database {where!r}: {reason}; {fix}")
    return StoreUnavailable(
        f"cannot use the PostgreSQL database {where!r}: {reason}; check that the server is "
        "running and accepts connections at that host and port, that the database exists, "
        "and that the user name and password are right"
    )


def _set_wal(cursor: Any) -> None:
    """Switch the database to WAL mode, waiting out other connections doing the same.

    The mode is kept in the file, so this is a read once any connection has set it. Setting it
    needs an exclusive lock, and SQLite answers "database is locked" at once, without its busy
    handler, while another connection is switching a new file over: so retry, for as long as a
    writer would wait.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Leave BEGIN/COMMIT to us (see _on_begin); pysqlite's own handling skips BEGIN
        # before SELECTs and DDL, which breaks both snapshot reads and transactional DDL.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            _set_wal(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_KEEP}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def create(url: URL) -> Engine:
    """An engine for ``url`` (from :func:`parse_url`), configured for the store's use."""
    if url.get_backend_name() == "sqlite":
        options: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT}
        }
        if is_memory(url):
            # One connection, shared: a second one would open a second, empty database.
            options["poolclass"] = StaticPool
        engine = create_engine(url, **options)
        _sqlite_events(engine)
        return engine
    return create_engine(
        url,
        pool_pre_ping=True,  # a restarted server costs one failed ping, not a failed call
        connect_args={"connect_timeout": 10, "application_name": "charter"},
    )
