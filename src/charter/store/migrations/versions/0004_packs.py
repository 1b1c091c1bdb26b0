"""enabled packs

Revision ID: 0004
Revises: 0003

The table ``packs``: each enabled compliance pack (``charter.packs``), the parameters the
operator enabled it with (JSON) and the policies it made (JSON list of names).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "packs",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("policies", sa.Text(), nullable=False),
        sa.Column("enabled_by", sa.String(), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_packs"),
        sa.UniqueConstraint("id", name="uq_packs_id"),
    )


def downgrade() -> None:
    op.drop_table("packs")
