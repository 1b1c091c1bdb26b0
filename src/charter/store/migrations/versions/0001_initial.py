"""initial schema

Revision ID: 0001
Revises:

Policies, rules, library policies, datasources, push tables, violation history, the audit
log and the store's own facts. Written out in full rather than built from
``charter.store.tables``: a revision must create the schema as it was when written, whatever
the tables module says later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIG_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_store_meta"),
    )
    op.create_table(
        "policies",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("abbreviation", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_policies"),
        sa.UniqueConstraint("id", name="uq_policies_id"),
        sa.UniqueConstraint("name", name="uq_policies_name"),
    )
    op.create_table(
        "rules",
        sa.Column("seq", _BIG_KEY, nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("policy_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_rules"),
        sa.UniqueConstraint("id", name="uq_rules_id"),
        sa.UniqueConstraint("policy_id", "name", name="uq_rules_policy_id_name"),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["policies.id"],
            name="fk_rules_policy_id_policies",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "library_policies",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("abbreviation", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_library_policies"),
        sa.UniqueConstraint("id", name="uq_library_policies_id"),
        sa.UniqueConstraint("name", name="uq_library_policies_name"),
    )
    op.create_table(
        "datasources",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("driver", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("created_at", _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_datasources"),
        sa.UniqueConstraint("id", name="uq_datasources_id"),
        sa.UniqueConstraint("name", name="uq_datasources_name"),
    )
    op.create_table(
        "push_tables",
        sa.Column("seq", _BIG_KEY, nullable=False),
        sa.Column("datasource_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("rows", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_push_tables"),
        sa.UniqueConstraint("datasource_id", "name", name="uq_push_tables_datasource_id_name"),
        sa.ForeignKeyConstraint(
            ["datasource_id"],
            ["datasources.id"],
            name="fk_push_tables_datasource_id_datasources",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "violations",
        sa.Column("seq", _BIG_KEY, nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("row_key", sa.String(), nullable=False),
        sa.Column("first_seen", _TIMESTAMP, nullable=False),
        sa.Column("resolved_at", _TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_violations"),
    )
    op.create_index("ix_violations_policy_table_name", "violations", ["policy", "table_name"])
    op.create_index(
        "uq_violations_open",
        "violations",
        ["policy", "table_name", "row_key"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_table(
        "audit",
        sa.Column("id", _BIG_KEY, nullable=False),
        sa.Column("at", _TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("row", sa.Text(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_policy_id", "audit", ["policy", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_policy_id", table_name="audit")
    op.drop_table("audit")
    op.drop_index("uq_violations_open", table_name="violations")
    op.drop_index("ix_violations_policy_table_name", table_name="violations")
    op.drop_table("violations")
    op.drop_table("push_tables")
    op.drop_table("datasources")
    op.drop_table("library_policies")
    op.drop_table("rules")
    op.drop_table("policies")
    op.drop_table("store_meta")
