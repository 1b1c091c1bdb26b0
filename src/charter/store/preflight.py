"""What a store checks before it opens a database: that it is the state the store last held.

The rules, given the database's identity (:mod:`charter.store.identity`) and the identity
file's:

- no identity file: a fresh install or a store from before identities; accepted (the file
  is then written), with a warning when the database already had an identity;
- an identity file, and the database missing, empty, without Charter's tables, without its
  identity rows, or with a schema from before identities: state was lost, refused;
- another store's id: refused;
- a generation below the file's: an older copy of the database, or (SQLite) its write-ahead
  log lost after a crash, refused;
- a generation equal to the file's or above it (a crash between the database's write and the
  file's): accepted, and the file is brought up to date.

A SQLite file that is not a database, or fails ``PRAGMA quick_check``, is refused whatever
the identity file says. Nothing here writes to the database: a refused store is left exactly
as it was found, for the operator to recover.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, inspect, text

from charter.store.errors import StoreStateError
from charter.store.identity import Identity, read_db

SQLITE_HEADER = b"SQLite format 3\x00"
PRE_IDENTITY = frozenset({"0001", "0002"})
"""Schema revisions from before the identity rows (migration 0003)."""

QUICK_CHECK_LINES = 3  # of quick_check's findings shown in a message


class Unreadable(Exception):
    """A SQLite file that cannot be read as a database; the message says why."""


@dataclass(frozen=True, slots=True)
class Found:
    """What a database holds, as far as the checks care; read without writing."""

    where: str
    """How messages name the database: its path, or its URL with the password masked."""
    condition: str
    """``missing``, ``empty`` (a 0-byte file), ``no-state`` (no Charter tables) or ``ok``."""
    revision: str | None = None
    identity: Identity | None = None
    wal: bool | None = None
    """For SQLite: whether the ``-wal`` file was there."""
    tables: frozenset[str] = frozenset()


def inspect_sqlite(path: Path) -> Found:
    """What the SQLite file at ``path`` holds. Raises Unreadable if it is no sound database.

    The file's size and first bytes are looked at before SQLite opens it: on a 0-byte file
    SQLite would delete a ``-wal`` file still beside it, the last copy of what it held.
    """
    where = str(path)
    wal = Path(f"{path}-wal").exists()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return Found(where, "missing", wal=wal)
    if size == 0:
        return Found(where, "empty", wal=wal)
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise Unreadable(f"it cannot be read ({e.strerror})") from None
    if head != SQLITE_HEADER:
        raise Unreadable(f"it is not a SQLite database (its first bytes are {head[:16]!r})")
    try:
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=30, isolation_level=None
        )
    except sqlite3.Error as e:
        raise Unreadable(f"SQLite cannot open it ({e})") from None
    try:
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            shown = "; ".join(problems[:QUICK_CHECK_LINES])
            more = f" (and {len(problems) - QUICK_CHECK_LINES} more)" if len(problems) > 3 else ""
            raise Unreadable(f"PRAGMA quick_check found it damaged: {shown}{more}")
        tables = frozenset(
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        )
        revision = identity = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        if "store_identity" in tables:
            row = conn.execute("SELECT store_id, generation FROM store_identity").fetchone()
            if row and isinstance(row[1], int):
                identity = Identity(str(row[0]), row[1])
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            raise  # not damage: the caller reports the database as unavailable
        raise Unreadable(f"SQLite cannot read it ({e})") from None
    except sqlite3.DatabaseError as e:  # "file is not a database", "disk image is malformed"
        raise Unreadable(f"SQLite cannot read it ({e})") from None
    finally:
        conn.close()
    condition = "ok" if revision is not None else "no-state"
    return Found(where, condition, revision, identity, wal, tables)


def inspect_connection(conn: Connection, where: str) -> Found:
    """What the database behind ``conn`` holds (PostgreSQL: missing and empty do not occur)."""
    names = set(inspect(conn).get_table_names())
    revision = None
    if "alembic_version" in names:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    identity = read_db(conn) if "store_identity" in names else None
    return Found(
        where, "ok" if revision else "no-state", revision, identity, tables=frozenset(names)
    )


def corrupt(path: Path, reason: str, record: Path) -> StoreStateError:
    """The refusal of a SQLite file that is no sound database."""
    return StoreStateError(
        f"the database {path} is corrupt: {reason}. Charter will not start on it. To recover, "
        f"restore the newest backup: `charter restore BACKUP_FILE` (it moves this file aside); "
        f"or, to start over with an empty store, move {path} and {record} away"
    )


def judge(found: Found, recorded: Identity | None, record: Path, *, restore: str) -> str | None:
    """Apply the rules above. Raises StoreStateError on a refusal; else returns a warning to
    log, if any. ``restore`` says how a backup is restored on this backend.
    """
    db = found.where
    if recorded is None:
        if found.identity is None:
            return None  # a fresh database, or one from before identities
        return (
            f"the store's identity file {record} was missing; the database {db} holds "
            f"{found.identity.short()}, recorded in a new identity file"
        )
    held = f"but {record} records that it held {recorded.short()}"
    recover = f"To recover, restore the newest backup with {restore}"
    fresh = f"or, to start over with an empty store, move {record} away and start again"
    accept = (
        f"or, to run on this database as it is (without what it lost), move {record} away "
        "and start again: Charter then records this database's identity anew"
    )
    if found.condition != "ok":
        gone = {
            "missing": f"the database file {db} is missing",
            "empty": f"the database file {db} is empty (0 bytes)",
            "no-state": f"the database {db} holds no Charter tables",
        }[found.condition]
        if found.condition == "no-state" and found.wal is False:
            gone += f" (its state was in {db}-wal, which is gone, or it was emptied)"
        raise StoreStateError(f"{gone}, {held}. Charter will not start empty. {recover}; {fresh}")
    if found.identity is None:
        if found.revision in PRE_IDENTITY:
            why = (
                f"the database {db} is at schema revision {found.revision}, from before this "
                f"store recorded its identity, {held}: an older copy of the database was put "
                "in place"
            )
        else:
            why = (
                f"the database {db} has lost its identity (table store_identity is empty), "
                f"{held}: it was damaged"
                + (
                    f", or its newest writes were in {db}-wal, which is gone"
                    if found.wal is False
                    else ""
                )
            )
        raise StoreStateError(f"{why}. {recover}; {accept}")
    if found.identity.store_id != recorded.store_id:
        raise StoreStateError(
            f"the database {db} is another store ({found.identity.short()}), {held}: another "
            f"database was put in its place. Put back the database of store "
            f"{recorded.store_id[:12]}, or restore its newest backup with {restore}; {accept}"
        )
    if found.identity.generation < recorded.generation:
        lost_wal = ""
        if found.wal is not None:
            lost_wal = f", or its newest writes were in {db}-wal, which was lost after a crash"
            if found.wal is False:
                lost_wal += f" ({db}-wal is absent)"
        raise StoreStateError(
            f"the database {db} is at generation {found.identity.generation}, older than the "
            f"generation {recorded.generation} that {record} records: an older copy of the "
            f"database was put in place{lost_wal}. Its newest state is gone. {recover}; {accept}"
        )
    if found.identity.generation > recorded.generation + 1:
        return (
            f"the store's identity file {record} records generation {recorded.generation}, "
            f"behind the database {db} at {found.identity.generation}; brought up to date"
        )
    return None
