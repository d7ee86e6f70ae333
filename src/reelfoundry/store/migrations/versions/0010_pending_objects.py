"""pending_objects and storage retries: objects written before the row that names them, a storage outage's
re-queue with a delay that does not use the job's attempts, and the days an object spent cold before it came back
hot (stored_objects.cold_days, for re-pricing a promotion)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_objects",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("job_id", sa.String(length=26), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("abandoned_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_try_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("tries", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_pending_objects_job", "pending_objects", ["job_id", "attempt"])
    op.create_index("ix_pending_objects_created", "pending_objects", ["created_at"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("not_before", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("storage_retries", sa.Integer(), server_default=sa.text("0"), nullable=False))
    with op.batch_alter_table("stored_objects") as batch:
        batch.add_column(sa.Column("cold_days", sa.Float(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("stored_objects") as batch:
        batch.drop_column("cold_days")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("storage_retries")
        batch.drop_column("not_before")
    op.drop_index("ix_pending_objects_created", table_name="pending_objects")
    op.drop_index("ix_pending_objects_job", table_name="pending_objects")
    op.drop_table("pending_objects")
