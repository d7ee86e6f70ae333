"""outcomes: what an asset or a campaign achieved (views, clicks, conversions, revenue, spend) in a period

Money is stored as an integer count of 1e-4 dollars (``tables.OUTCOME_MONEY``), so a tenant's sums stay exact and
inside a 64-bit integer on both databases.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("asset_id", sa.String(length=26), nullable=True),
        sa.Column("campaign", sa.String(length=128), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("conversions", sa.BigInteger(), nullable=False),
        sa.Column("revenue_usd", sa.BigInteger(), nullable=False),
        sa.Column("spend_usd", sa.BigInteger(), nullable=False),
        sa.Column("period_start", UTCDateTime(timezone=True), nullable=True),
        sa.Column("period_end", UTCDateTime(timezone=True), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outcomes_tenant", "outcomes", ["tenant_id", "id"])
    op.create_index("ix_outcomes_tenant_campaign_at", "outcomes", ["tenant_id", "campaign", "at"])
    op.create_index("ix_outcomes_tenant_at", "outcomes", ["tenant_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_outcomes_tenant_at", table_name="outcomes")
    op.drop_index("ix_outcomes_tenant_campaign_at", table_name="outcomes")
    op.drop_index("ix_outcomes_tenant", table_name="outcomes")
    op.drop_table("outcomes")
