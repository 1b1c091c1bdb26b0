"""Alembic's entry point for the store's migrations.

Charter runs it through :mod:`charter.store.migrate`, which hands over the store's open
connection (in a transaction) as ``config.attributes["connection"]``. A developer running the
``alembic`` command with ``migrations/alembic.ini`` passes ``-x url=...`` instead, and gets an
engine configured as the store's (see docs/store.md).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from alembic.config import Config
from sqlalchemy import Connection

from charter.store import connect
from charter.store.tables import metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things: autogenerate then writes copy-and-move batches.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # DDL inside the transaction on SQLite too: the store emits BEGIN itself (connect.py).
        transactional_ddl=True,
    )


def run(config: Config) -> None:
    """Run the migrations Alembic asked for, online or (``--sql``) as a script."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():  # a no-op inside the caller's transaction
            context.run_migrations()
        return
    if config.config_file_name:
        fileConfig(config.config_file_name)
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database to migrate: alembic -x url=sqlite:///PATH ...")
    parsed = connect.parse_url(url)
    if context.is_offline_mode():
        context.configure(url=parsed, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = connect.create(parsed)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{connect.WRITE: True})
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


# Alembic sets ``context.config`` while it runs this file; a plain import (pytest collecting
# doctests, a linter) must not try to migrate anything.
if hasattr(context, "config"):
    run(context.config)
