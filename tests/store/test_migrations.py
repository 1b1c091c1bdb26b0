"""The shipped Alembic migrations: they build the schema the code uses, run once, and undo."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, event, inspect, text

from charter.store import Store, StoreError, connect, migrate
from charter.store.rows import encode_rows
from charter.store.tables import TABLE_NAMES, metadata
from tests.store.factories import datasource, policy

WRITES = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine configured as the store's, on the empty database."""
    eng = connect.create(connect.parse_url(db_url))
    yield eng
    eng.dispose()


def statements_of(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql))
    return seen


def test_upgrade_head_on_an_empty_database_creates_the_schema(engine: Engine):
    assert inspect(engine).get_table_names() == []
    migrate.upgrade(engine)
    insp = inspect(engine)
    assert set(insp.get_table_names()) == {*TABLE_NAMES, "alembic_version"}
    assert set(TABLE_NAMES) == {
        "store_meta",
        "store_identity",
        "policies",
        "rules",
        "library_policies",
        "datasources",
        "push_tables",
        "push_chunks",
        "push_log",
        "violations",
        "audit",
        "actions",
        "notifications",
        "packs",
    }
    open_index = {i["name"]: i for i in insp.get_indexes("violations")}["uq_violations_open"]
    assert open_index["unique"]
    assert {i["name"]: i for i in insp.get_indexes("actions")}["uq_actions_open"]["unique"]
    assert [fk["referred_table"] for fk in insp.get_foreign_keys("rules")] == ["policies"]
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head() == "0005"


def test_the_migrated_schema_is_the_tables_module(engine: Engine):
    migrate.upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, metadata) == []


def test_opening_a_migrated_database_changes_nothing(db_url: str, secret_key: bytes, engine):
    with Store(db_url, secret_key=secret_key) as s:
        p = policy()
        s.create_policy(p)
    seen = statements_of(engine)
    migrate.upgrade(engine)  # the store's fast path: the revision is already head
    with engine.connect() as conn, conn.begin():
        command.upgrade(migrate.alembic_config(conn), "head")  # and Alembic's own
    assert seen and not [s for s in seen if s.lstrip().upper().startswith(WRITES)]
    with Store(db_url, secret_key=secret_key) as s:
        assert s.list_policies() == [p]


def test_downgrade_to_base_and_back(db_url: str, secret_key: bytes, engine: Engine):
    with Store(db_url, secret_key=secret_key) as s:
        s.create_policy(policy())
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    with engine.connect() as conn:
        assert migrate.current(conn) is None
    with Store(db_url, secret_key=secret_key) as s:  # migrates up again, empty
        assert s.list_policies() == []
        s.create_policy(policy())


def test_a_schema_newer_than_the_code_is_refused(db_url: str, secret_key: bytes, engine):
    Store(db_url, secret_key=secret_key).close()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="revision '9999'.*newer Charter"):
        Store(db_url, secret_key=secret_key)


def test_stores_opening_an_empty_database_at_once_migrate_it_once(db_url: str, secret_key):
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        try:
            barrier.wait()
            Store(db_url, secret_key=secret_key).close()
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with Store(db_url, secret_key=secret_key) as s:
        assert s.list_policies() == []


def test_the_shipped_alembic_ini_drives_the_alembic_command(tmp_path):
    """The developers' path in docs/store.md: upgrade, check models against revisions, downgrade."""
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    ini = str(migrate.MIGRATIONS / "alembic.ini")

    def alembic(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", ini, "-x", f"url={url}", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    alembic("upgrade", "head")
    assert "No new upgrade operations detected" in alembic("check")
    assert "0005 (head)" in alembic("current")
    alembic("downgrade", "base")


def test_0002_keeps_the_data_of_0001_and_gives_every_policy_dry_run(
    db_url: str, secret_key: bytes, engine: Engine
):
    """0002 alters ``policies``, which ``rules`` references with ON DELETE CASCADE: neither
    way may the rules be lost (a SQLite table copy would cascade)."""
    Store(db_url, secret_key=secret_key).close()
    migrate.downgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO policies (id, name, abbreviation, description, owner_id, kind, "
            "created_at) VALUES ('p-1', 'old', 'old', '', 'admin', 'nonrecursive', "
            "'2025-01-01 00:00:00')"))
        conn.execute(text(
            "INSERT INTO rules (id, policy_id, name, rule, comment, created_at) VALUES "
            "('r-1', 'p-1', NULL, 'p(1)', '', '2025-01-01 00:00:00')"))
    with Store(db_url, secret_key=secret_key) as s:  # upgrades to 0002
        assert [(p.name, p.enforcement) for p in s.list_policies()] == [("old", "dry-run")]
        assert [r.id for r in s.list_rules()] == ["r-1"]
    migrate.downgrade(engine, "0001")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM rules")).scalars().all() == ["r-1"]
        assert "enforcement" not in {c["name"] for c in inspect(conn).get_columns("policies")}


def test_0005_makes_main_s_pushed_tables_bases_and_back(
    db_url: str, secret_key: bytes, engine: Engine
):
    """A database written by the single-blob storage (0004: ``push_tables.rows``, the whole
    table as one JSON array, as encode_rows wrote it) keeps its pushed tables: each becomes
    its table's base (its JSON array as one block), every value's type kept. Downgrading folds base and log
    back into one array. ``push_chunks`` and ``push_log`` refer to ``push_tables`` with ON
    DELETE CASCADE: neither way may a row be lost to a SQLite table copy."""
    with Store(db_url, secret_key=secret_key) as s:
        ds = datasource("mon", driver="push", config={})
        s.create_datasource(ds)
    migrate.downgrade(engine, "0004")
    alarms = [("a", 1), ("b", 2.5), ("c", None), ("d", True), ("e", 2**70), ("f", ("x", 1))]
    servers = [(i, f"vm-{i}", i % 3 == 0) for i in range(70_000)]
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO push_tables (datasource_id, name, rows) VALUES (:d, :n, :r)"),
            [{"d": ds.id, "n": "alarms", "r": encode_rows(alarms)},
             {"d": ds.id, "n": "servers", "r": encode_rows(servers)},
             {"d": ds.id, "n": "empty", "r": "[]"}])
    with Store(db_url, secret_key=secret_key) as s:  # upgrades to 0005
        tables = s.load_tables(ds.id)
        assert tables == {"alarms": alarms, "servers": servers, "empty": []}
        assert [type(v) for r in tables["alarms"] for v in r] == [
            type(v) for r in alarms for v in r]
        s.change_tables(ds.id, {"alarms": ([("g", 1.5)], [("a", 1.0)]),
                                "servers": ([(-1, "vm", False)], servers[:2])})
    with engine.connect() as conn:  # a block each, as it was
        assert conn.execute(text("SELECT count(*) FROM push_chunks")).scalar() == 2
    migrate.downgrade(engine, "0004")
    with engine.connect() as conn:
        blobs = dict(conn.execute(text("SELECT name, rows FROM push_tables")).all())
    assert blobs == {"alarms": encode_rows(alarms[1:] + [("g", 1.5)]),
                     "servers": encode_rows(servers[2:] + [(-1, "vm", False)]), "empty": "[]"}
    with Store(db_url, secret_key=secret_key) as s:
        assert s.load_tables(ds.id)["alarms"] == alarms[1:] + [("g", 1.5)]
        s.delete_datasource(ds.id)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM push_chunks")).scalar() == 0
