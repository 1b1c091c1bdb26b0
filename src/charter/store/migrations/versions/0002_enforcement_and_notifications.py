"""enforcement and notifications

Revision ID: 0002
Revises: 0001

Each policy's enforcement mode (``dry-run`` for every existing policy), the ``actions`` table
(every ``execute[...]`` row that appeared: the derived set, the outbox of due actions and
their outcome) and the ``notifications`` outbox of webhook deliveries. Written out in full,
as 0001 is.

``policies.enforcement`` is added and dropped with plain ALTER TABLE on both backends
(SQLite >= 3.35 drops a column natively): a batch copy of ``policies`` would drop the table,
and with foreign keys on, SQLite's implicit DELETE would cascade to every rule.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "policies",
        sa.Column("enforcement", sa.String(), server_default="dry-run", nullable=False),
    )
    op.create_table(
        "actions",
        sa.Column("id", _BIG_KEY, nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("datasource", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("row_key", sa.String(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("derived_at", _TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", _TIMESTAMP, nullable=True),
        sa.Column("finished_at", _TIMESTAMP, nullable=True),
        sa.Column("cleared_at", _TIMESTAMP, nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_actions"),
    )
    op.create_index("ix_actions_status", "actions", ["status"])
    op.create_index(
        "uq_actions_open",
        "actions",
        ["policy", "table_name", "row_key"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_table(
        "notifications",
        sa.Column("id", _BIG_KEY, nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("webhook", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.Column("next_attempt_at", _TIMESTAMP, nullable=False),
        sa.Column("delivered_at", _TIMESTAMP, nullable=True),
        sa.Column("errors", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("event_id", "webhook", name="uq_notifications_event_id_webhook"),
    )
    op.create_index(
        "ix_notifications_status_webhook_id", "notifications", ["status", "webhook", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_status_webhook_id", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("uq_actions_open", table_name="actions")
    op.drop_index("ix_actions_status", table_name="actions")
    op.drop_table("actions")
    op.drop_column("policies", "enforcement")
