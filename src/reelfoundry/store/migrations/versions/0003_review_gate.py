"""review gate: asset review state, reviews, publications; who submitted or created; tenant self-approval

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
    op.add_column("api_keys", sa.Column("created_by", sa.String(length=26), nullable=True))
    for column in _ASSET_COLUMNS:
        op.add_column("assets", column)
    op.create_index("ix_assets_review_queue", "assets", ["tenant_id", "review_state", "id"])
    # Who submitted existing jobs and created existing keys is in the audit log (actor); carry it over,
    # so the self-approval rule holds for assets made before this migration too.
    op.execute(
        "UPDATE jobs SET submitted_by = (SELECT a.actor FROM audit_log a WHERE a.action = 'job.submitted' "
        "AND a.subject = jobs.id ORDER BY a.seq LIMIT 1) WHERE submitted_by IS NULL"
    )
    op.execute(
        "UPDATE assets SET created_by = (SELECT j.submitted_by FROM jobs j WHERE j.id = assets.job_id) "
        "WHERE created_by IS NULL AND job_id IS NOT NULL"
    )
    op.execute(
        "UPDATE api_keys SET created_by = (SELECT a.actor FROM audit_log a WHERE a.action = 'key.created' "
        "AND a.subject = api_keys.id AND a.actor <> 'system' ORDER BY a.seq LIMIT 1) WHERE created_by IS NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_assets_review_queue", table_name="assets")
    with op.batch_alter_table("assets") as batch:
        for column in reversed(_ASSET_COLUMNS):
            batch.drop_column(column.name)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("created_by")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("submitted_by")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("allow_self_approval")
