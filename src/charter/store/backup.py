"""Backing up a SQLite store while it serves, and putting a backup in its place.

A backup is SQLite's online backup (``sqlite3.Connection.backup``) of the database, taken in
one step: a consistent snapshot, the write-ahead log included, while the server goes on
writing. It is written to a temporary file, checked (``PRAGMA quick_check``), made a plain
single file (``journal_mode=DELETE``), flushed and renamed into place. It holds the store's
identity (table ``store_identity``) and its datasource secrets, encrypted with the secret
key, which must be kept with it.

A restore needs the store stopped: it takes the database's lock file exclusively
(:mod:`charter.store.file_lock`), which every open store holds shared. It copies the backup
beside the database, migrates the copy to this Charter's schema, gives it a generation above
both the backup's and the identity file's, moves the old database (and its ``-wal``) aside as
``PATH.before-restore-TIMESTAMP``, renames the copy into place and rewrites the identity
file, so the next start accepts it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import URL

from charter.store import connect, identity, migrate, preflight
from charter.store.errors import SecretKeyError, StoreError
from charter.store.file_lock import FileLock, lock_path
from charter.store.identity import Identity
from charter.store.secrets import SecretBox

COUNTED = ("policies", "rules", "datasources", "push_tables", "violations")
"""Tables whose row counts a backup and a restore report."""

_KEY_CHECK = "secret_key_check"


@dataclass(frozen=True)
class Contents:
    """What a database file holds, for the reports."""

    path: Path
    revision: str | None
    identity: Identity | None
    counts: dict[str, int]
    size: int

    def summary(self) -> str:
        """``store 5f1c… at generation 7, 3 policies, 12 rules, ...``"""
        counted = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in self.counts.items())
        who = self.identity.short() if self.identity else "a store from before identities"
        return f"{who}; {counted}"


@dataclass(frozen=True)
class Restored:
    """What :func:`restore` did."""

    database: Path
    contents: Contents
    identity: Identity
    identity_file: Path
    previous: Identity | None
    moved_aside: list[Path] = field(default_factory=list)


def database_of(url: URL) -> Path:
    """The SQLite file of ``url``; StoreError when the store is not a SQLite file."""
    path = identity.sqlite_path(url)
    if path is None:
        raise StoreError(f"the store {connect.describe(url)} is not a SQLite file")
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open(path: Path) -> sqlite3.Connection:
    """A connection that reads ``path`` and never creates it."""
    return sqlite3.connect(
        f"{path.absolute().as_uri()}?mode=rw",
        uri=True,
        timeout=connect.SQLITE_BUSY_TIMEOUT,
        isolation_level=None,
    )


def _remove(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        p.unlink(missing_ok=True)


def contents(path: Path) -> Contents:
    """What the Charter database at ``path`` holds. StoreError if it is not one."""
    try:
        found = preflight.inspect_sqlite(path)
    except preflight.Unreadable as e:
        raise StoreError(f"{path} is not a Charter database: {e}") from None
    if found.condition == "missing":
        raise StoreError(f"{path} does not exist")
    if found.condition == "empty":
        raise StoreError(f"{path} is not a Charter database: it is empty (0 bytes)")
    if found.condition == "no-state" or "policies" not in found.tables:
        raise StoreError(f"{path} is not a Charter database: it holds no Charter tables")
    conn = _open(path)
    try:
        counts = {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            for name in COUNTED
            if name in found.tables
        }
    finally:
        conn.close()
    return Contents(path, found.revision, found.identity, counts, path.stat().st_size)


def _check_key(path: Path, secret_key: bytes) -> None:
    conn = _open(path)
    try:
        row = conn.execute("SELECT value FROM store_meta WHERE name = ?", (_KEY_CHECK,)).fetchone()
    finally:
        conn.close()
    if row is not None:
        SecretBox(secret_key).decrypt(row[0], f"the secrets of the backup {path}")


def backup(url: URL, dest: Path) -> Contents:
    """Write a consistent copy of the SQLite store at ``url`` to ``dest``; what it holds."""
    database = database_of(url)
    dest = dest.absolute()
    own = {f"{database}{suffix}" for suffix in ("", "-wal", "-shm", "-journal")}
    own |= {str(identity.default_file(url)), str(lock_path(database))}
    if str(dest) in own:
        raise StoreError(f"{dest} is one of the store's own files: write the backup elsewhere")
    if not database.exists() or database.stat().st_size == 0:
        raise StoreError(f"there is no database at {database} to back up")
    lock = _lock(database, exclusive=False)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        source = _open(database)
        try:
            target = sqlite3.connect(tmp, isolation_level=None)
            try:
                # One step: the copy is one read transaction, a snapshot; writers go on.
                source.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot back up {database}: {e}") from None
        finally:
            source.close()
        found = contents(tmp)
        os.chmod(tmp, 0o600)  # policies, and secrets encrypted only by the key
        _fsync(tmp)
        os.replace(tmp, dest)
        identity.sync_dir(dest.parent)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        lock.release()
    return Contents(dest, found.revision, found.identity, found.counts, found.size)


def _lock(database: Path, *, exclusive: bool) -> FileLock:
    try:
        return FileLock(
            database, exclusive=exclusive, timeout=0 if exclusive else connect.SQLITE_BUSY_TIMEOUT
        )
    except BlockingIOError:
        if exclusive:
            raise StoreError(
                f"a Charter server (or a backup) is using {database}: stop it, then run "
                "charter restore again (a restore never replaces the database of a running "
                "server)"
            ) from None
        raise StoreError(
            f"charter restore is putting a backup in place of {database}: try again when it is done"
        ) from None
    except OSError as e:
        raise StoreError(f"cannot use {database}: {e}") from None


def restore(
    url: URL, source: Path, *, secret_key: bytes | None, identity_file: Path | None = None
) -> Restored:
    """Put the backup ``source`` in place of the stopped SQLite store at ``url``.

    The backup is checked first (a sound Charter database, of a schema this Charter knows,
    whose secrets ``secret_key`` opens), before anything is touched.
    """
    database = database_of(url)
    record = identity_file or identity.default_file(url)
    assert record is not None
    source = source.absolute()
    if source == database:
        raise StoreError(f"{source} is the store's database itself: restore from a backup")
    found = contents(source)
    known = migrate.revisions()
    if found.revision not in known:
        raise StoreError(
            f"the backup {source} is at schema revision {found.revision!r}, which this Charter "
            f"does not know (its newest is {migrate.head()!r}): it was made by a newer Charter; "
            "restore it with that version"
        )
    if secret_key is not None:
        try:
            _check_key(source, secret_key)
        except SecretKeyError as e:
            raise SecretKeyError(
                f"{e}: the backup was made with another secret key; put the key file kept "
                "with the backup in place (or set CHARTER_SECRET_KEY), then run charter "
                "restore again"
            ) from None
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = _lock(database, exclusive=True)
    tmp = database.with_name(f"{database.name}.restoring-{os.getpid()}")
    try:
        try:
            previous = identity.read_file(record)
        except StoreError:
            previous = None  # damaged: rewritten below
        _copy(source, tmp)
        new = _adopt(tmp, previous)
        moved = _move_aside(database)
        os.replace(tmp, database)
        identity.sync_dir(database.parent)
        identity.write_file(record, new)
    except BaseException:
        _remove(tmp)
        raise
    finally:
        lock.release()
    return Restored(database, found, new, record, previous, moved)


def _copy(source: Path, tmp: Path) -> None:
    _remove(tmp)
    src = _open(source)
    try:
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:
            src.backup(dst)
        finally:
            dst.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot copy the backup {source}: {e}") from None
    finally:
        src.close()


def _adopt(tmp: Path, previous: Identity | None) -> Identity:
    """Migrate the copy at ``tmp`` and raise its generation above the identity file's."""
    engine = connect.create(connect.parse_url(f"sqlite:///{tmp}"))
    try:
        migrate.upgrade(engine)  # a backup from before identities gets one here
        with engine.connect() as conn:
            conn.execution_options(**{connect.WRITE: True})
            with conn.begin():
                floor = previous.generation + 1 if previous else 0
                new = identity.advance(conn, at_least=floor)
            conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    _fsync(tmp)
    return new


def _move_aside(database: Path) -> list[Path]:
    """Rename the database and its ``-wal`` out of the way (kept, never deleted)."""
    if not database.exists() and not Path(f"{database}-wal").exists():
        return []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = database.with_name(f"{database.name}.before-restore-{stamp}")
    moved = []
    for old, new in ((database, aside), (Path(f"{database}-wal"), Path(f"{aside}-wal"))):
        if old.exists():
            os.replace(old, new)
            moved.append(new)
    Path(f"{database}-shm").unlink(missing_ok=True)  # an index of the old -wal; rebuilt on use
    return moved
