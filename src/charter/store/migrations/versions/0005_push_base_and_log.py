"""pushed tables as a base and a log of changes

Revision ID: 0005
Revises: 0004

A pushed table was one JSON array (``push_tables.rows``), rewritten whole by every push. It
becomes a base snapshot in blocks (``push_chunks``) plus a log of the changes written since
(``push_log``), so a push writes what changed; ``push_tables`` keeps the tables' names and
counts base and log (store/push.py). Each stored table becomes its base: its JSON array,
unchanged, as one block in the JSON form. Downgrading folds base and log back into one
array, with the replay this Charter reads them with.

``push_tables`` is altered before the tables that refer to it exist: SQLite alters a table
by copying it, and dropping the old copy would cascade to their rows.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from charter.store.rows import encode_rows

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COUNTERS = ("base_rows", "log_rows", "log_entries", "version")

_tables = sa.table(
    "push_tables",
    sa.column("seq", _BIG_KEY),
    sa.column("rows", sa.Text()),
    sa.column("base_rows", sa.BigInteger()),
)
_chunks = sa.table(
    "push_chunks",
    sa.column("table_seq", _BIG_KEY),
    sa.column("part", sa.Integer()),
    sa.column("data", sa.LargeBinary()),
)
_log = sa.table(
    "push_log",
    sa.column("seq", _BIG_KEY),
    sa.column("table_seq", _BIG_KEY),
    sa.column("inserted", sa.LargeBinary()),
    sa.column("deleted", sa.LargeBinary()),
)


def upgrade() -> None:
    conn = op.get_bind()
    blobs = conn.execute(sa.select(_tables.c.seq, _tables.c.rows)).all()
    with op.batch_alter_table("push_tables") as batch:
        batch.drop_column("rows")
        for name in _COUNTERS:
            batch.add_column(
                sa.Column(name, sa.BigInteger(), nullable=False, server_default=sa.text("0"))
            )
    op.create_table(
        "push_chunks",
        sa.Column("table_seq", _BIG_KEY, nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("table_seq", "part", name="pk_push_chunks"),
        sa.ForeignKeyConstraint(
            ["table_seq"],
            ["push_tables.seq"],
            name="fk_push_chunks_table_seq_push_tables",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "push_log",
        sa.Column("seq", _BIG_KEY, nullable=False),
        sa.Column("table_seq", _BIG_KEY, nullable=False),
        sa.Column("inserted", sa.LargeBinary(), nullable=False),
        sa.Column("deleted", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_push_log"),
        sa.ForeignKeyConstraint(
            ["table_seq"],
            ["push_tables.seq"],
            name="fk_push_log_table_seq_push_tables",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_push_log_table_seq", "push_log", ["table_seq"])
    for seq, text in blobs:
        # the array as it was, as one block in the JSON form (blocks.py: b"J" + the text),
        # which reads back exactly as before; a compaction or a large push re-cuts it
        count = len(json.loads(text))
        if count:
            data = b"J" + text.encode("ascii")
            conn.execute(sa.insert(_chunks).values(table_seq=seq, part=0, data=data))
        conn.execute(sa.update(_tables).where(_tables.c.seq == seq).values(base_rows=count))


def downgrade() -> None:
    from charter.store.replay import replay  # the log folded as a load folds it

    conn = op.get_bind()
    bases: dict[int, list[bytes]] = {}
    for seq, data in conn.execute(
        sa.select(_chunks.c.table_seq, _chunks.c.data).order_by(_chunks.c.table_seq, _chunks.c.part)
    ):
        bases.setdefault(seq, []).append(data)
    logs: dict[int, list[tuple[bytes, bytes]]] = {}
    for seq, inserted, deleted in conn.execute(
        sa.select(_log.c.table_seq, _log.c.inserted, _log.c.deleted).order_by(_log.c.seq)
    ):
        logs.setdefault(seq, []).append((inserted, deleted))
    seqs = conn.scalars(sa.select(_tables.c.seq)).all()
    op.drop_table("push_log")
    op.drop_table("push_chunks")
    with op.batch_alter_table("push_tables") as batch:
        batch.add_column(sa.Column("rows", sa.Text(), nullable=False, server_default="[]"))
        for name in _COUNTERS:
            batch.drop_column(name)
    for seq in seqs:
        rows, _ = replay(bases.get(seq, []), logs.get(seq, []))
        conn.execute(sa.update(_tables).where(_tables.c.seq == seq).values(rows=encode_rows(rows)))
    with op.batch_alter_table("push_tables") as batch:
        batch.alter_column("rows", server_default=None)
