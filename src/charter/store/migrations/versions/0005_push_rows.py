"""pushed rows one per row

Revision ID: 0005
Revises: 0004

A pushed table was one JSON array (``push_tables.rows``), rewritten whole by every push. Its
rows move to ``push_rows``, one row each with a key to find it by, so a push or a patch
writes only the rows it inserts and deletes; ``push_tables`` keeps the tables' names.

The column is dropped before ``push_rows`` (which refers to ``push_tables``) exists: SQLite
drops a column by copying the table, and dropping the old copy would cascade to its rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from charter.store.rows import decode_rows, keyed_rows

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_tables = sa.table("push_tables", sa.column("seq", _BIG_KEY), sa.column("rows", sa.Text()))
_rows = sa.table(
    "push_rows",
    sa.column("seq", _BIG_KEY),
    sa.column("table_seq", _BIG_KEY),
    sa.column("row_key", sa.String()),
    sa.column("row", sa.Text()),
)


def upgrade() -> None:
    conn = op.get_bind()
    blobs = conn.execute(sa.select(_tables.c.seq, _tables.c.rows)).all()
    with op.batch_alter_table("push_tables") as batch:
        batch.drop_column("rows")
    op.create_table(
        "push_rows",
        sa.Column("seq", _BIG_KEY, nullable=False),
        sa.Column("table_seq", _BIG_KEY, nullable=False),
        sa.Column("row_key", sa.String(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_push_rows"),
        sa.UniqueConstraint("table_seq", "row_key", name="uq_push_rows_table_seq_row_key"),
        sa.ForeignKeyConstraint(
            ["table_seq"],
            ["push_tables.seq"],
            name="fk_push_rows_table_seq_push_tables",
            ondelete="CASCADE",
        ),
    )
    for seq, text in blobs:
        keyed = keyed_rows(decode_rows(text))
        if keyed:
            conn.execute(
                sa.insert(_rows),
                [{"table_seq": seq, "row_key": k, "row": row} for k, row in keyed.items()],
            )


def downgrade() -> None:
    conn = op.get_bind()
    query = sa.select(_rows.c.table_seq, _rows.c.row).order_by(_rows.c.seq)
    tables: dict[int, list[str]] = {}
    for seq, row in conn.execute(query):
        tables.setdefault(seq, []).append(row)
    op.drop_table("push_rows")
    with op.batch_alter_table("push_tables") as batch:
        batch.add_column(sa.Column("rows", sa.Text(), nullable=False, server_default="[]"))
    for seq, rows in tables.items():
        blob = "[" + ",".join(rows) + "]"
        conn.execute(sa.update(_tables).where(_tables.c.seq == seq).values(rows=blob))
    with op.batch_alter_table("push_tables") as batch:
        batch.alter_column("rows", server_default=None)
