"""stored_objects: the tier of each media object and when it was last read (storage tiers)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_objects",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("tier", sa.String(length=8), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_access_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("moved_at", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_stored_objects_tier_access", "stored_objects", ["tier", "last_access_at"])


def downgrade() -> None:
    op.drop_index("ix_stored_objects_tier_access", table_name="stored_objects")
    op.drop_table("stored_objects")
