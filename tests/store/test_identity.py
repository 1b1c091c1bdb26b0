"""The store's identity: it never starts empty, or on an older or another store's database,
over the state its identity file says it held; and a clean close leaves one complete file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import text

from charter.store import Store, StoreStateError, connect, guard, migrate
from charter.store.identity import Identity, read_file, write_file
from tests.realservices.postgres import fresh_database
from tests.store.factories import new_id, rule
from tests.store.factories import policy as _policy


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "charter.db"


@pytest.fixture
def url(path: Path) -> str:
    return f"sqlite:///{path}"


def policy():
    """A policy of a name of its own."""
    return _policy(f"p{new_id()[:8]}")


def sidecar(db: Path) -> Path:
    return db.with_name(db.name + ".identity")


def snapshot(directory: Path) -> dict[str, str]:
    """Every file of the directory but the lock file, by content hash."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.endswith(".lock")
    }


def with_state(url: str, key: bytes, n: int = 2) -> list:
    with Store(url, secret_key=key) as s:
        for _ in range(n):
            p = policy()
            s.create_policy(p, [rule(p.id)])
        return s.list_policies()


def refused(url: str, key: bytes, directory: Path, match: str) -> str:
    """Open the store, expecting a refusal matching ``match``, that wrote nothing."""
    before = snapshot(directory)
    with pytest.raises(StoreStateError, match=match) as caught:
        Store(url, secret_key=key)
    assert snapshot(directory) == before
    return str(caught.value)


# -- the identity -------------------------------------------------------------------------


def test_a_fresh_store_records_its_identity_in_the_database_and_beside_it(url, path, secret_key):
    with Store(url, secret_key=secret_key) as s:
        first = s.identity
    assert first is not None and len(first.store_id) == 32 and first.generation >= 1
    recorded = json.loads(sidecar(path).read_text())
    assert (recorded["store_id"], recorded["generation"]) == (first.store_id, first.generation)
    assert oct(sidecar(path).stat().st_mode & 0o777) == "0o600"
    with Store(url, secret_key=secret_key) as s:  # each open is a new generation
        assert s.identity == Identity(first.store_id, first.generation + 1)
    assert read_file(sidecar(path)) == Identity(first.store_id, first.generation + 1)


def test_an_in_memory_store_has_an_identity_and_no_file(tmp_path, secret_key):
    with Store("sqlite://", secret_key=secret_key) as s:
        assert s.identity is not None and s.identity.generation == 0
    assert list(tmp_path.iterdir()) == []


# -- refused at start ---------------------------------------------------------------------


def test_a_database_truncated_to_zero_bytes_is_refused(url, path, secret_key):
    with_state(url, secret_key)
    path.write_bytes(b"")
    message = refused(url, secret_key, path.parent, "is empty")
    assert message == (
        f"the database file {path} is empty (0 bytes), but {sidecar(path)} records that it "
        f"held store {read_file(sidecar(path)).store_id[:12]} at generation "
        f"{read_file(sidecar(path)).generation}. Charter will not start empty. To recover, "
        "restore the newest backup with `charter restore BACKUP_FILE` (with the --config or "
        "--database-url given to `charter serve`); or, to start over with an empty store, "
        f"move {sidecar(path)} away and start again"
    )
    assert path.stat().st_size == 0


def test_a_missing_database_is_refused(url, path, secret_key):
    with_state(url, secret_key)
    path.unlink()
    refused(url, secret_key, path.parent, r"the database file .* is missing, but .*\.identity")
    assert not path.exists()


def test_the_fix_for_a_fresh_start_is_to_move_the_identity_file_away(url, path, secret_key):
    with_state(url, secret_key)
    path.write_bytes(b"")
    refused(url, secret_key, path.parent, "move .* away")
    sidecar(path).rename(path.with_name("old.identity"))
    with Store(url, secret_key=secret_key) as s:
        assert s.list_policies() == []


WRITER = textwrap.dedent(
    """
    import sys, time
    from charter.store import Store
    from tests.store.factories import new_id, policy, rule

    url, key = sys.argv[1:]
    store = Store(url, secret_key=key.encode())
    for _ in range(5):
        p = policy("p" + new_id()[:8])
        store.create_policy(p, [rule(p.id)])
    print(len(store.list_policies()), flush=True)
    time.sleep(600)
    """
)


def crash_writer(url: str, key: bytes, cwd: Path) -> int:
    """Run a store that writes, then SIGKILL it; the number of policies it had."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, key.decode()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip(), child.stderr.read() if child.stderr else ""
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    return int(line)


@pytest.mark.parametrize("first_open", [True, False])
def test_a_wal_lost_after_a_crash_is_refused_and_putting_it_back_recovers(
    url, path, secret_key, first_open: bool
):
    """SIGKILL leaves the writes in charter.db-wal; without it the main file is older."""
    before = [] if first_open else with_state(url, secret_key)
    wrote = crash_writer(url, secret_key, Path(__file__).parents[2])
    wal = Path(f"{path}-wal")
    assert wal.stat().st_size > 0
    kept = wal.rename(path.with_name("kept-wal"))
    Path(f"{path}-shm").unlink(missing_ok=True)
    if first_open:  # everything was in the log: the main file has no tables at all
        match = r"holds no Charter tables \(its state was in .*charter.db-wal, which is gone"
    else:  # the main file holds the state of the last clean close
        match = r"is at generation \d+, older than the generation \d+ .* lost after a crash"
    message = refused(url, secret_key, path.parent, match)
    assert "charter restore BACKUP_FILE" in message
    kept.rename(wal)  # the operator finds the log again
    with Store(url, secret_key=secret_key) as s:
        assert len(s.list_policies()) == wrote == len(before) + 5


def test_a_wal_lost_after_checkpoints_is_refused(url, path, secret_key, monkeypatch, tmp_path):
    """After every checkpoint the generation moves on, so the log can never be lost unseen."""
    monkeypatch.setattr(guard, "CHECKPOINT_BYTES", 1)  # checkpoint after every write
    crash = tmp_path / "crash"
    crash.mkdir()
    with Store(url, secret_key=secret_key) as s:
        for _ in range(3):
            s.create_policy(policy())
        # a crash now, and the log lost: what the directory would hold
        shutil.copy(path, crash / path.name)
        shutil.copy(sidecar(path), crash / sidecar(path).name)
        s.create_policy(policy())
    refused(f"sqlite:///{crash / path.name}", secret_key, crash, "older than the generation")


def test_an_older_copy_of_the_database_is_refused(url, path, secret_key, tmp_path):
    with_state(url, secret_key)
    old = shutil.copy(path, tmp_path / "old.db")
    with_state(url, secret_key, 1)
    shutil.copy(old, path)
    message = refused(url, secret_key, path.parent, "older than the generation")
    assert "an older copy of the database was put in place" in message
    assert f"move {sidecar(path)} away" in message
    sidecar(path).unlink()  # the operator accepts the older copy
    with Store(url, secret_key=secret_key) as s:
        assert len(s.list_policies()) == 2


def test_another_stores_database_is_refused(url, path, secret_key, tmp_path):
    other = tmp_path / "other" / "charter.db"
    other.parent.mkdir()
    with_state(f"sqlite:///{other}", secret_key)
    with_state(url, secret_key)
    shutil.copy(other, path)
    refused(url, secret_key, path.parent, r"is another store \(store [0-9a-f]{12} .*put in its")


def test_a_file_that_is_not_a_database_is_refused(url, path, secret_key):
    with_state(url, secret_key)
    path.write_bytes(b"not a database at all\n" * 500)
    message = refused(url, secret_key, path.parent, "is corrupt: it is not a SQLite database")
    assert f"move {path} and {sidecar(path)} away" in message


def test_a_database_with_damaged_pages_is_refused(url, path, secret_key):
    with_state(url, secret_key, 30)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[2 * page : len(data) - page] = os.urandom(len(data) - 3 * page)  # keep the header
    path.write_bytes(bytes(data))
    refused(url, secret_key, path.parent, "is corrupt: (PRAGMA quick_check|SQLite cannot read)")


def test_a_corrupt_file_is_refused_even_without_an_identity_file(url, path, secret_key):
    with_state(url, secret_key)
    sidecar(path).unlink()
    path.write_bytes(b"\0" * 8192)
    refused(url, secret_key, path.parent, "is corrupt")


def test_a_lost_identity_row_is_refused(url, path, secret_key):
    with_state(url, secret_key)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM store_identity")
    db.close()
    refused(url, secret_key, path.parent, "has lost its identity")
    old = read_file(sidecar(path))
    sidecar(path).unlink()  # the fix the message gives: accept the database as it is
    with Store(url, secret_key=secret_key) as s:
        assert len(s.list_policies()) == 2
        assert s.identity.store_id != old.store_id and read_file(sidecar(path)) == s.identity


def test_a_database_from_before_identities_under_an_identity_file_is_refused(url, path, secret_key):
    with_state(url, secret_key)
    kept = sidecar(path).read_bytes()
    engine = connect.create(connect.parse_url(url))
    migrate.downgrade(engine, "0002")  # removes the identity file with the identity
    engine.dispose()
    assert not sidecar(path).exists()
    sidecar(path).write_bytes(kept)
    refused(url, secret_key, path.parent, "at schema revision 0002, from before this store")


def test_a_damaged_identity_file_is_refused(url, path, secret_key):
    with_state(url, secret_key)
    sidecar(path).write_text("{not json")
    refused(url, secret_key, path.parent, r"identity file .* is damaged .* Move it away")


# -- accepted -----------------------------------------------------------------------------


def test_a_missing_identity_file_is_recreated_with_a_warning(url, path, secret_key, caplog):
    kept = with_state(url, secret_key)
    sidecar(path).unlink()
    with (
        caplog.at_level(logging.WARNING, logger="charter.store.guard"),
        Store(url, secret_key=secret_key) as s,
    ):
        assert s.list_policies() == kept
        assert read_file(sidecar(path)) == s.identity
    assert "identity file" in caplog.text and "was missing" in caplog.text


def test_a_database_one_generation_ahead_is_accepted_and_the_file_repaired(url, path, secret_key):
    """A crash between the database's write and the identity file's."""
    with Store(url, secret_key=secret_key) as s:
        now = s.identity
    assert now is not None
    write_file(sidecar(path), Identity(now.store_id, now.generation - 1))
    with Store(url, secret_key=secret_key) as s:
        assert s.identity == Identity(now.store_id, now.generation + 1)
    assert read_file(sidecar(path)) == Identity(now.store_id, now.generation + 1)


def test_a_store_from_before_identities_gets_one(url, path, secret_key):
    kept = with_state(url, secret_key)
    engine = connect.create(connect.parse_url(url))
    migrate.downgrade(engine, "0002")
    engine.dispose()
    with Store(url, secret_key=secret_key) as s:
        assert s.list_policies() == kept
        assert read_file(sidecar(path)) == s.identity is not None


# -- a clean close ------------------------------------------------------------------------


def test_a_clean_close_leaves_everything_in_the_main_file(url, path, secret_key, tmp_path):
    with Store(url, secret_key=secret_key) as s:
        for _ in range(20):
            p = policy()
            s.create_policy(p, [rule(p.id)])
        kept = s.list_policies()
        rules = s.list_rules()
        assert Path(f"{path}-wal").stat().st_size > 0
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(path, alone / "charter.db")  # the main file, nothing else
    with Store(f"sqlite:///{alone / 'charter.db'}", secret_key=secret_key) as s:
        assert s.list_policies() == kept and s.list_rules() == rules


def test_a_close_while_another_store_reads_keeps_the_log_usable(url, path, secret_key):
    a = Store(url, secret_key=secret_key)
    b = Store(url, secret_key=secret_key)
    a.create_policy(policy())
    a.close()
    b.create_policy(policy())
    assert len(b.list_policies()) == 2
    b.close()
    with Store(url, secret_key=secret_key) as s:
        assert len(s.list_policies()) == 2


# -- PostgreSQL: the identity file in the data directory ----------------------------------


@pytest.mark.postgres
def test_postgres_keeps_its_identity_file_where_told(postgres_url: str, tmp_path, secret_key):
    record = tmp_path / "store.identity"
    with fresh_database(postgres_url) as url:
        with Store(url, secret_key=secret_key, identity_file=record) as s:
            s.create_policy(policy())
            first = s.identity
        assert read_file(record) == first
        engine = connect.create(connect.parse_url(url))
        migrate.downgrade(engine, "base")  # the database emptied
        engine.dispose()
        with pytest.raises(StoreStateError, match=r"holds no Charter tables, but .*pg_restore"):
            Store(url, secret_key=secret_key, identity_file=record)
        with fresh_database(postgres_url) as other:
            Store(other, secret_key=secret_key).close()
            with pytest.raises(StoreStateError, match="is another store"):
                Store(other, secret_key=secret_key, identity_file=record)
        engine = connect.create(connect.parse_url(url))
        with engine.connect() as conn:
            assert "store_identity" not in {
                r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables"))
            }
        engine.dispose()
