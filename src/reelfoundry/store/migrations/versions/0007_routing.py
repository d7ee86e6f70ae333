"""routing: the RoutePlan and the cards it chose stored on the job; cards added over the API; model health

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("route", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("route_cards", sa.JSON(), nullable=True))
    op.create_table(
        "model_cards",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "model_health",
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("cooldown_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model"),
    )


def downgrade() -> None:
    op.drop_table("model_health")
    op.drop_table("model_cards")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("route_cards")
        batch.drop_column("route")
