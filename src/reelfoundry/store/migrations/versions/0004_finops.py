"""finops: cost records, budgets, per-job usage and reservations

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 04:40:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UTC = UTCDateTime(timezone=True)
_JOB_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("estimated_usd", sa.BigInteger(), nullable=True),
    sa.Column("meter", sa.JSON(), nullable=True),
    sa.Column("device_seconds", sa.Float(), server_default=sa.text("0"), nullable=False),
    sa.Column("idle_seconds", sa.Float(), server_default=sa.text("0"), nullable=False),
    sa.Column("energy_j", sa.Float(), server_default=sa.text("0"), nullable=False),
    sa.Column("energy_method", sa.String(length=16), nullable=True),
]


def upgrade() -> None:
    for column in _JOB_COLUMNS:
        op.add_column("jobs", column)
    op.create_table(
        "cost_records",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("job_id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=True),
        sa.Column("campaign", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=True),
        sa.Column("catalog_version", sa.String(length=32), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("pricing_model", sa.String(length=32), nullable=True),
        sa.Column("device", sa.String(length=32), nullable=True),
        sa.Column("device_share", sa.BigInteger(), nullable=True),
        sa.Column("usd_per_device_hour", sa.BigInteger(), nullable=True),
        sa.Column("device_seconds", sa.Float(), nullable=False),
        sa.Column("idle_seconds", sa.Float(), nullable=False),
        sa.Column("energy_method", sa.String(length=16), nullable=True),
        sa.Column("pue", sa.BigInteger(), nullable=True),
        sa.Column("carbon_region", sa.String(length=32), nullable=True),
        sa.Column("g_co2e_per_kwh", sa.BigInteger(), nullable=True),
        sa.Column("energy_kwh", sa.BigInteger(), nullable=False),
        sa.Column("co2e_kg", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("video_seconds", sa.Float(), nullable=False),
        sa.Column("egress_bytes", sa.BigInteger(), nullable=False),
        sa.Column("egress_usd_per_gb", sa.BigInteger(), nullable=True),
        sa.Column("compute_usd", sa.BigInteger(), nullable=False),
        sa.Column("idle_usd", sa.BigInteger(), nullable=False),
        sa.Column("storage_usd", sa.BigInteger(), nullable=False),
        sa.Column("egress_usd", sa.BigInteger(), nullable=False),
        sa.Column("total_usd", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id"),
    )
    op.create_index("ix_cost_records_tenant_time", "cost_records", ["tenant_id", "created_at"])
    op.create_table(
        "budgets",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=128), nullable=True),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("limit_usd", sa.BigInteger(), nullable=False),
        sa.Column("enforcement", sa.String(length=8), nullable=False),
        sa.Column("warned_period", _UTC, nullable=True),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_budgets_tenant", "budgets", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_budgets_tenant", table_name="budgets")
    op.drop_table("budgets")
    op.drop_index("ix_cost_records_tenant_time", table_name="cost_records")
    op.drop_table("cost_records")
    with op.batch_alter_table("jobs") as batch:
        for column in reversed(_JOB_COLUMNS):
            batch.drop_column(column.name)
