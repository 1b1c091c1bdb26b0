"""``charter backup`` and ``charter restore``: a copy taken while the store is written, put back
in a fresh directory or over a store that refuses to start; garbage and a live server refused."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from charter.cli.main import app
from charter.service.service import Service
from charter.store import Store, StoreStateError, connect, migrate
from charter.store.identity import read_file
from tests.realservices.charter_server import CharterServer
from tests.store.factories import datasource, new_id, policy, rule


@pytest.fixture(autouse=True)
def no_charter_env(monkeypatch):
    """The commands read CHARTER_* settings: none but the ones each test gives."""
    for name in list(os.environ):
        if name.startswith("CHARTER_"):
            monkeypatch.delenv(name)


def charter(data_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"CHARTER_DATA_DIR": str(data_dir)})


def url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'charter.db'}"


def data_dir(path: Path, key: bytes | None = None) -> tuple[Path, bytes]:
    """A data directory with a secret key file, as ``charter serve`` would make it."""
    path.mkdir(mode=0o700)
    key = key or Store.generate_key()
    (path / "secret.key").write_bytes(key + b"\n")
    (path / "secret.key").chmod(0o600)
    return path, key


def add_policy(store: Store) -> None:
    p = policy(f"p{new_id()[:8]}")
    store.create_policy(p, [rule(p.id, "p(x) :- q(x)"), rule(p.id, "r(x) :- q(x)")])


def test_a_backup_taken_while_writing_restores_in_a_fresh_directory(tmp_path):
    a, key = data_dir(tmp_path / "a")
    store = Store(url(a), secret_key=key)
    mon = datasource("mon", driver="push", config={})
    store.create_datasource(mon)
    store.create_datasource(datasource("vault", enabled=False, config={"password": "s3cret"}))
    store.replace_table(mon.id, "alarms", [("a", 1), ("b", 2)])
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            add_policy(store)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(store.list_policies()) < 20:
            time.sleep(0.01)
        out = charter(a, "backup", str(tmp_path / "backup.db"))
        after = len(store.list_policies())
        while len(store.list_policies()) <= after:  # the writer goes on after the copy
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith(f"charter backup: wrote {tmp_path / 'backup.db'} (")
    assert f"keep the key file {a / 'secret.key'} with it" in out.stdout
    live = store.list_policies()
    live_rules = store.list_rules()

    b, _ = data_dir(tmp_path / "b", key)  # the key file kept with the backup
    out = charter(b, "restore", str(tmp_path / "backup.db"))
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith(
        f"charter restore: restored {tmp_path / 'backup.db'} into {b / 'charter.db'}: store "
    )
    assert "previous database" not in out.stdout  # there was none
    assert f"the identity file {b / 'charter.db.identity'} now records store" in out.stdout

    with Store(url(b), secret_key=key) as restored:
        policies = restored.list_policies()
        rules = restored.list_rules()
        assert 20 <= len(policies) < len(live)
        assert policies == live[: len(policies)]  # a snapshot: a prefix of the writes
        assert rules == [r for r in live_rules if r.policy_id in {p.id for p in policies}]
        assert len(rules) == 2 * len(policies)  # no policy without its rules
        assert restored.load_tables(mon.id) == {"alarms": [("a", 1), ("b", 2)]}
        assert restored.list_datasources()[1].config == {"password": "s3cret"}
        assert restored.identity.store_id == store.identity.store_id
    store.close()
    service = Service(Store(url(b), secret_key=key))
    try:
        service.start()
        assert {p.name for p in policies} <= {p.name for p in service.policies.list()}
    finally:
        service.close()


def test_restore_over_a_store_that_refuses_to_start(tmp_path):
    a, key = data_dir(tmp_path / "a")
    with Store(url(a), secret_key=key) as s:
        add_policy(s)
        kept = s.list_policies()
    assert charter(a, "backup", str(tmp_path / "backup.db")).exit_code == 0
    for _ in range(3):  # later generations, then the database is lost
        with Store(url(a), secret_key=key) as s:
            add_policy(s)
    (a / "charter.db").write_bytes(b"")
    with pytest.raises(StoreStateError, match="is empty"):
        Store(url(a), secret_key=key)
    before = read_file(a / "charter.db.identity")

    out = charter(a, "restore", str(tmp_path / "backup.db"))
    assert out.exit_code == 0, out.output
    (aside,) = a.glob("charter.db.before-restore-*")
    assert aside.stat().st_size == 0  # kept, never deleted
    assert f"the previous database was moved aside to {aside}" in out.stdout
    assert f"(it recorded {before.short()})" in out.stdout
    after = read_file(a / "charter.db.identity")
    assert after.store_id == before.store_id and after.generation > before.generation
    with Store(url(a), secret_key=key) as s:
        assert s.list_policies() == kept


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not a Charter database: it is empty (0 bytes)"),
        (b"PK\x03\x04 a zip" * 300, "is not a Charter database: it is not a SQLite database (its"),
        (None, "is not a Charter database: it holds no Charter tables"),
    ],
)
def test_restore_refuses_what_is_not_a_backup(tmp_path, content: bytes | None, message: str):
    a, key = data_dir(tmp_path / "a")
    with Store(url(a), secret_key=key) as s:
        add_policy(s)
    bogus = tmp_path / "bogus.db"
    if content is None:
        with sqlite3.connect(bogus) as db:
            db.execute("CREATE TABLE notes (text)")
        db.close()
    else:
        bogus.write_bytes(content)
    before = {p.name: p.read_bytes() for p in a.iterdir()}
    out = charter(a, "restore", str(bogus))
    assert out.exit_code == 1
    assert out.stderr.startswith(f"charter restore: {bogus} {message}")
    assert {p.name: p.read_bytes() for p in a.iterdir()} == before


def test_restore_refuses_while_a_store_has_the_database_open(tmp_path):
    a, key = data_dir(tmp_path / "a")
    store = Store(url(a), secret_key=key)
    add_policy(store)
    assert charter(a, "backup", str(tmp_path / "backup.db")).exit_code == 0
    add_policy(store)
    out = charter(a, "restore", str(tmp_path / "backup.db"))
    assert out.exit_code == 1
    assert out.stderr == (
        f"charter restore: a Charter server (or a backup) is using {a / 'charter.db'}: stop "
        "it, then run charter restore again (a restore never replaces the database of a "
        "running server)\n"
    )
    assert len(store.list_policies()) == 2  # the running store is untouched
    store.close()
    assert charter(a, "restore", str(tmp_path / "backup.db")).exit_code == 0


def test_restore_needs_the_key_the_backup_was_made_with(tmp_path):
    a, key = data_dir(tmp_path / "a")
    with Store(url(a), secret_key=key) as s:
        add_policy(s)
    assert charter(a, "backup", str(tmp_path / "backup.db")).exit_code == 0
    bare = tmp_path / "bare"
    bare.mkdir()
    out = charter(bare, "restore", str(tmp_path / "backup.db"))
    assert out.exit_code == 1
    assert f"there is no secret key at {bare / 'secret.key'}" in out.stderr
    assert not (bare / "charter.db").exists()
    other, _ = data_dir(tmp_path / "other")
    out = charter(other, "restore", str(tmp_path / "backup.db"))
    assert out.exit_code == 1
    assert "the backup was made with another secret key" in out.stderr
    assert not (other / "charter.db").exists()


def test_a_backup_from_before_identities_is_migrated_and_given_one(tmp_path):
    a, key = data_dir(tmp_path / "a")
    with Store(url(a), secret_key=key) as s:
        add_policy(s)
        kept = s.list_policies()
    assert charter(a, "backup", str(tmp_path / "backup.db")).exit_code == 0
    engine = connect.create(connect.parse_url(f"sqlite:///{tmp_path / 'backup.db'}"))
    migrate.downgrade(engine, "0002")
    engine.dispose()
    b, _ = data_dir(tmp_path / "b", key)
    out = charter(b, "restore", str(tmp_path / "backup.db"))
    assert out.exit_code == 0, out.output
    assert "a store from before identities" in out.stdout
    with Store(url(b), secret_key=key) as s:
        assert s.list_policies() == kept
        assert read_file(b / "charter.db.identity") == s.identity


def test_backup_over_the_database_itself_is_refused(tmp_path):
    a, key = data_dir(tmp_path / "a")
    with Store(url(a), secret_key=key) as s:
        add_policy(s)
    out = charter(a, "backup", str(a / "charter.db"))
    assert out.exit_code == 1
    assert "is one of the store's own files" in out.stderr
    with Store(url(a), secret_key=key) as s:
        assert len(s.list_policies()) == 1
    assert charter(a, "backup", str(a / "charter.db.bak")).exit_code == 0


def test_backup_of_no_database_is_an_error(tmp_path):
    a, _ = data_dir(tmp_path / "a")
    out = charter(a, "backup", str(tmp_path / "backup.db"))
    assert out.exit_code == 1
    assert out.stderr == f"charter backup: there is no database at {a / 'charter.db'} to back up\n"


def test_postgres_stores_are_pointed_at_pg_dump_and_pg_restore(tmp_path):
    pg = "postgresql://charter:hunter2@127.0.0.1:1/charter"
    out = charter(tmp_path, "backup", str(tmp_path / "x.dump"), "--database-url", pg)
    assert out.exit_code == 2
    assert "back it up with pg_dump" in out.stderr and "hunter2" not in out.stderr
    dump = tmp_path / "x.dump"
    dump.write_bytes(b"")
    out = charter(tmp_path, "restore", str(dump), "--database-url", pg)
    assert out.exit_code == 2
    assert "pg_restore --clean --if-exists" in out.stderr
    assert f"identity file ({tmp_path / 'store.identity'})" in out.stderr


@pytest.mark.slow
def test_serve_stops_with_the_whole_state_in_the_database_file_and_refuses_lost_state(tmp_path):
    a, _ = data_dir(tmp_path / "a")
    server = CharterServer(a).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            r = http.post("/v1/policies/classification/rules", json={"rule": "p(x) :- q(x)"})
            assert r.status_code == 201, r.text
        out = charter(a, "backup", str(tmp_path / "backup.db"))  # while it serves
        assert out.exit_code == 0, out.output
    finally:
        server.stop()
    assert server.proc is not None and server.proc.returncode == 0
    wal = a / "charter.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(a / "charter.db", alone / "charter.db")
    key = (a / "secret.key").read_bytes().strip()
    with Store(url(alone), secret_key=key) as s:
        assert [r.rule for r in s.list_rules()] == ["p(x) :- q(x)"]

    (a / "charter.db").write_bytes(b"")
    log = a / "serve.log"
    log.write_text("")
    with pytest.raises(RuntimeError, match="charter serve exited with 1"):
        server.start()
    assert f"charter serve: the database file {a / 'charter.db'} is empty (0 bytes)" in (
        log.read_text()
    )
    assert (a / "charter.db").stat().st_size == 0

    assert charter(a, "restore", str(tmp_path / "backup.db")).exit_code == 0
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            rules = http.get("/v1/policies/classification/rules").json()["results"]
        assert [r["rule"] for r in rules] == ["p(x) :- q(x)"]
    finally:
        server.stop()
