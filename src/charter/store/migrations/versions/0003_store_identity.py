"""store identity

Revision ID: 0003
Revises: 0002

The store's identity: the table ``store_identity`` and its one row, ``store_id`` (a random
id, new for each database) and ``generation`` (0; the store raises it at every open). From
this revision on, a database without that row has lost state (see docs/store.md).

Downgrading drops the table and, for a SQLite file, the identity file beside it
(``PATH.identity``): below 0003 a database has no identity for that file to match.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from charter.store.connect import is_memory

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "store_identity",
        sa.Column("store_id", sa.String(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("store_id", name="pk_store_identity"),
    )
    op.bulk_insert(table, [{"store_id": uuid.uuid4().hex, "generation": 0}])


def downgrade() -> None:
    op.drop_table("store_identity")
    if op.get_context().as_sql:
        return
    url = op.get_bind().engine.url
    if url.get_backend_name() == "sqlite" and not is_memory(url):
        path = Path(url.database or "").absolute()
        path.with_name(path.name + ".identity").unlink(missing_ok=True)
