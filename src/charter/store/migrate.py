"""Running the Alembic migrations shipped in ``migrations/``, from code.

The Alembic config is built here rather than read from an alembic.ini, so an installed Charter
migrates its database with nothing on disk but the package. The store's own connection is
handed to ``migrations/env.py``, so migrations run with the same SQLite PRAGMAs and inside
the same transaction as the check of the current revision.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from charter.store.connect import WRITE
from charter.store.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"

# Any constant will do: it serializes concurrent upgrades of one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x43484152  # "CHAR"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the shipped migrations, bound to ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this Charter knows."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None, "no migrations shipped"
    return rev


def revisions() -> frozenset[str]:
    """Every revision this Charter knows."""
    script = ScriptDirectory.from_config(alembic_config())
    return frozenset(r.revision for r in script.walk_revisions())


def current(connection: Connection) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def _migrate(engine: Engine, target: str, *, up: bool) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            rev = current(conn)
            if rev is not None:
                try:
                    script.get_revision(rev)
                except CommandError as e:
                    raise StoreError(
                        f"the database's schema is at revision {rev!r}, which this Charter "
                        f"does not know (its newest is {script.get_current_head()!r}): "
                        "it was written by a newer Charter; run that version, or a newer one"
                    ) from e
            if up and target == "head" and rev == script.get_current_head():
                return  # the usual case: nothing to do, and no Alembic machinery run
            cfg = alembic_config(conn)
            if up:
                command.upgrade(cfg, target)
            else:
                command.downgrade(cfg, target)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database up to ``revision``, in one transaction; a no-op when it is there."""
    _migrate(engine, revision, up=True)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Migrate the database down to ``revision``; ``base`` drops every table of the store."""
    _migrate(engine, revision, up=False)
