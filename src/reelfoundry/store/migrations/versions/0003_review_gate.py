"""review gate: asset review state, reviews, publications; who submitted; tenant self-approval setting

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 04:10:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import reelfoundry.store.tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UTC = reelfoundry.store.tables.UTCDateTime(timezone=True)
_ASSET_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("created_by", sa.String(length=26), nullable=True),
    # Assets made before the review gate start pending too: nothing reaches market unreviewed.
    sa.Column("review_state", sa.String(length=16), server_default=sa.text("'pending_review'"), nullable=False),
    sa.Column("reviewer_key_id", sa.String(length=26), nullable=True),
    sa.Column("reviewer_role", sa.String(length=16), nullable=True),
    sa.Column("review_comment", sa.Text(), nullable=True),
    sa.Column("reviewed_at", _UTC, nullable=True),
    sa.Column("published_key", sa.String(length=512), nullable=True),
    sa.Column("published_sha256", sa.String(length=64), nullable=True),
    sa.Column("published_bytes", sa.BigInteger(), nullable=True),
    sa.Column("published_at", _UTC, nullable=True),
]


def upgrade() -> None:
    op.add_column("tenants", sa.Column("allow_self_approval", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column("jobs", sa.Column("submitted_by", sa.String(length=26), nullable=True))
    for column in _ASSET_COLUMNS:
        op.add_column("assets", column)
    op.create_index("ix_assets_review_queue", "assets", ["tenant_id", "review_state", "id"])


def downgrade() -> None:
    op.drop_index("ix_assets_review_queue", table_name="assets")
    with op.batch_alter_table("assets") as batch:
        for column in reversed(_ASSET_COLUMNS):
            batch.drop_column(column.name)
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("submitted_by")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("allow_self_approval")
