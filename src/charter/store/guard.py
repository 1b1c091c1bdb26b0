"""A store's guard against starting over lost state, for the life of the store.

Before the store touches the database, the guard takes the SQLite lock file (shared; see
:mod:`charter.store.file_lock`) and applies :mod:`charter.store.preflight`'s checks. Once the
schema is migrated it raises the generation and records it in the identity file.

SQLite's write-ahead log is checkpointed into the database file by the guard alone
(``wal_autocheckpoint=0`` in :mod:`charter.store.connect`): after a write leaves the log at
:data:`CHECKPOINT_BYTES` or more, a passive checkpoint, then a new generation, recorded in the
file. So whenever the log holds writes the database file lacks, the file's generation is
ahead of the database file's, and losing the log is seen at the next start. Closing the store
checkpoints the whole log (``TRUNCATE``): after a clean stop the database file alone holds
everything.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL

from charter.store import connect, identity, preflight
from charter.store.errors import StoreUnavailable
from charter.store.file_lock import FileLock
from charter.store.identity import Identity

log = logging.getLogger(__name__)

CHECKPOINT_BYTES = 4 << 20
"""Size of SQLite's write-ahead log at which the guard checkpoints it (SQLite's own default
is 1000 pages, 4 MiB with 4 KiB pages)."""

RESTORE_SQLITE = (
    "`charter restore BACKUP_FILE` (with the --config or --database-url given to `charter serve`)"
)
RESTORE_POSTGRES = "pg_restore (see docs/store.md)"


def _raw(conn: Connection):  # noqa: ANN202 - the DB-API connection (sqlite3.Connection)
    return conn.connection.driver_connection


class StateGuard:
    """The identity checks, generations and checkpoints of one store (see the module)."""

    def __init__(self, url: URL, identity_file: Path | None) -> None:
        self._url = url
        self._memory = connect.is_memory(url)
        self.database = identity.sqlite_path(url)
        self.identity_file = identity_file or identity.default_file(url)
        self.identity: Identity | None = None
        self._note: str | None = None
        self._checkpoint_at = CHECKPOINT_BYTES
        self._lock: FileLock | None = None
        if self.database is not None:
            try:
                self._lock = FileLock(
                    self.database, exclusive=False, timeout=connect.SQLITE_BUSY_TIMEOUT
                )
            except BlockingIOError:
                raise StoreUnavailable(
                    f"cannot open the SQLite database {self.database}: `charter restore` is "
                    f"putting a backup in its place (it holds {self.database}.lock); start "
                    "again when it is done"
                ) from None
            except OSError as e:
                raise connect.unavailable(url, e) from None

    def check(self, engine: Engine) -> None:
        """Refuse (StoreStateError) a database that is not the state last held; write nothing."""
        if self.identity_file is None:
            return
        recorded = identity.read_file(self.identity_file)
        if self.database is not None:
            try:
                found = preflight.inspect_sqlite(self.database)
            except preflight.Unreadable as e:
                raise preflight.corrupt(self.database, str(e), self.identity_file) from None
            restore = RESTORE_SQLITE
        else:
            with engine.connect() as conn, conn.begin():
                found = preflight.inspect_connection(conn, connect.describe(self._url))
            restore = RESTORE_POSTGRES
        self._note = preflight.judge(found, recorded, self.identity_file, restore=restore)

    def start(self, engine: Engine) -> None:
        """Raise the generation for this open and record it (after the migrations ran)."""
        with engine.connect() as conn:
            conn.execution_options(**{connect.WRITE: True})
            with conn.begin():
                if self._memory:
                    self.identity = identity.read_db(conn)
                    return
                self.identity = identity.advance(conn)
        if self.identity_file is None:
            return
        try:
            identity.write_file(self.identity_file, self.identity, forward_only=True)
        except OSError as e:
            raise StoreUnavailable(
                f"cannot write the store's identity file {self.identity_file} ({e.strerror}): "
                "make its directory writable by Charter"
            ) from None
        if self._note:
            log.warning("%s", self._note)

    def after_write(self, conn: Connection) -> None:
        """After a committed write (the store's write lock held): checkpoint when it is time.

        Never raises: the write it follows has been committed, and must be reported so.
        """
        if self.database is None:
            return
        try:
            size = Path(f"{self.database}-wal").stat().st_size
        except OSError:
            return
        if size < self._checkpoint_at:
            return
        try:
            busy, frames, done = _raw(conn).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            complete = busy == 0 and frames == done
            # A reader kept part of the log (a backup running): try again once it has grown.
            self._checkpoint_at = CHECKPOINT_BYTES + (0 if complete else size)
            with conn.begin():
                self.identity = identity.advance(conn)
            if self.identity_file is not None:
                identity.write_file(self.identity_file, self.identity, forward_only=True)
        except Exception as e:  # noqa: BLE001 - logged: the write itself stands
            log.error("checkpoint of %s-wal or its identity record failed: %s", self.database, e)

    def close(self, engine: Engine, write_lock: threading.Lock) -> None:
        """Fold the whole write-ahead log into the database file (the lock file stays held
        until :meth:`release`, after the engine's connections are closed)."""
        try:
            if self.database is not None:
                with write_lock, engine.connect() as conn:
                    busy, *_ = _raw(conn).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if busy:
                    log.warning(
                        "could not fold %s-wal into %s at close (another connection was "
                        "reading it): keep the two files together",
                        self.database,
                        self.database,
                    )
        except Exception as e:  # noqa: BLE001 - closing goes on; the log file keeps the state
            log.warning("checkpoint of %s-wal at close failed: %s", self.database, e)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
