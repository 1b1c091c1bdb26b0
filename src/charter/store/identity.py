"""The store's identity: a random store id and a generation, kept twice.

Once in the database (the one row of ``store_identity``, created by migration 0003) and once in an *identity file* outside it (JSON, beside a SQLite file as
``PATH.identity``; in the data directory for PostgreSQL), so that losing or replacing the
database cannot also lose the record that it held state. The database is always written
first, then the file; so the database's generation is never behind the file's unless the
database itself went back in time (see :mod:`charter.store.preflight`).

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "charter.db.identity"
>>> write_file(path, Identity("5f1c", 3))
>>> read_file(path)
Identity(store_id='5f1c', generation=3)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import URL

from charter.store import tables as t
from charter.store.connect import is_memory
from charter.store.errors import StoreStateError

log = logging.getLogger(__name__)

STORE_ID = "store_id"
GENERATION = "generation"
"""The keys of the identity file (and the columns of ``store_identity``)."""
SUFFIX = ".identity"
PG_FILE = "store.identity"
"""The identity file's name in the data directory, for a store in PostgreSQL."""

_FORMAT = 1
_file_lock = threading.Lock()  # one writer of identity files at a time in this process


@dataclass(frozen=True, slots=True)
class Identity:
    """Which store a database is (``store_id``) and how far it has come (``generation``).

    The generation grows at every open, after every checkpoint of SQLite's write-ahead log
    into the database file, and at every restore: an older copy of the database has a
    smaller one than the identity file.
    """

    store_id: str
    generation: int

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def short(self) -> str:
        """How messages name it: the id's first 12 digits and the generation."""
        return f"store {self.store_id[:12]} at generation {self.generation}"


def sqlite_path(url: URL) -> Path | None:
    """The file of a file-backed SQLite URL; None for PostgreSQL and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or is_memory(url) or url.query.get("uri"):
        return None
    return Path(url.database or "").absolute()


def default_file(url: URL, data_dir: Path | None = None) -> Path | None:
    """Where the identity file of the store at ``url`` is kept.

    Beside a SQLite file (``charter.db.identity``); ``data_dir/store.identity`` for
    PostgreSQL when a data directory is given (each server keeps its own); else none.
    """
    path = sqlite_path(url)
    if path is not None:
        return path.with_name(path.name + SUFFIX)
    if url.get_backend_name() == "postgresql" and data_dir is not None:
        return data_dir / PG_FILE
    return None


# -- the identity file ------------------------------------------------------------------


def read_file(path: Path) -> Identity | None:
    """The identity the file records; None when there is no file. StoreStateError if garbled."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreStateError(
            f"cannot read the store's identity file {path} ({e.strerror}): fix its permissions"
        ) from None
    try:
        data = json.loads(raw)
        identity = Identity(str(data[STORE_ID]), int(data[GENERATION]))
    except (ValueError, KeyError, TypeError) as e:
        raise StoreStateError(
            f"the store's identity file {path} is damaged ({type(e).__name__}: {e}); it should "
            f'be JSON like {{"{STORE_ID}": "...", "{GENERATION}": 7}}. Move it away and start '
            "again: Charter then records the database's identity anew"
        ) from None
    if not identity.store_id or identity.generation < 0:
        raise StoreStateError(
            f"the store's identity file {path} holds no valid identity; move it away and start "
            "again: Charter then records the database's identity anew"
        )
    return identity


def write_file(path: Path, identity: Identity, *, forward_only: bool = False) -> None:
    """Record ``identity`` in the file at ``path``, atomically and durably.

    Written to a temporary file, flushed to disk, renamed over the old one, then the
    directory flushed, so a crash leaves the old file or the new one, never half of either.
    With ``forward_only``, a file already recording a later generation of the same store is
    kept (two stores of one process may finish their writes out of order).
    """
    body = json.dumps(
        {
            "format": _FORMAT,
            STORE_ID: identity.store_id,
            GENERATION: identity.generation,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": "Charter's record of the store in the database beside it; see docs/store.md",
        },
        indent=2,
    )
    with _file_lock:
        if forward_only:
            try:
                old = read_file(path)
            except StoreStateError:
                old = None
            if old and old.store_id == identity.store_id and old.generation >= identity.generation:
                return
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        sync_dir(path.parent)


def sync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename in it) to disk, where the platform allows."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the identity in the database ---------------------------------------------------------


def read_db(conn: Connection) -> Identity | None:
    """The identity the database records; None when its row is missing."""
    row = conn.execute(select(t.store_identity.c.store_id, t.store_identity.c.generation)).first()
    return Identity(row.store_id, int(row.generation)) if row else None


def advance(conn: Connection, at_least: int = 0) -> Identity:
    """Raise the database's generation by one (to ``at_least`` if higher) in ``conn``'s
    transaction, and return the identity it then records.

    A database whose identity row is missing (accepted only when no identity file speaks for
    it: see :mod:`charter.store.preflight`) is given a new identity.
    """
    g = t.store_identity.c.generation
    conn.execute(update(t.store_identity).values(generation=g + 1))
    found = read_db(conn)
    if found is None:
        found = Identity(Identity.new_id(), 1)
        conn.execute(insert(t.store_identity).values(store_id=found.store_id, generation=1))
        log.warning("the database had no identity row: it is now %s", found.short())
    if found.generation < at_least:
        conn.execute(update(t.store_identity).values(generation=at_least))
        found = Identity(found.store_id, at_least)
    return found
