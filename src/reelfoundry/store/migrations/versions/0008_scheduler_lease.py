"""scheduler_lease: the elected scheduler's lease row and its fencing epoch

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 05:40:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "scheduler_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    # The row exists from the start: taking the lease is always an UPDATE, never a racing INSERT.
    op.bulk_insert(
        table, [{"name": "scheduler", "holder": "", "epoch": 0, "expires_at": datetime(1970, 1, 1, tzinfo=UTC)}]
    )


def downgrade() -> None:
    op.drop_table("scheduler_lease")
