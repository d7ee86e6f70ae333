"""the model lifecycle: DAM metadata on assets, collections, search (text and embeddings), fine-tunes, job kinds,
model card status and evaluations

Full-text search: on SQLite an FTS5 table ``asset_search_fts`` over ``asset_search.body``; on PostgreSQL a GIN
index ``ix_asset_search_fts`` on its ``to_tsvector('english', body)``. Neither is in the declared metadata (they
are one dialect's), so the schema comparison skips names starting with ``asset_search_fts`` / ``ix_asset_search_fts``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=16), server_default="generated", nullable=False))
        batch.add_column(sa.Column("title", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("suggested_tags", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("brand", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("licence", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("consent_ref", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("rights_expires_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("usage_restrictions", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("phash", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("metadata_updated_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("rights_notified_at", UTCDateTime(timezone=True), nullable=True))
    op.create_index("ix_assets_tenant_brand", "assets", ["tenant_id", "brand"])
    op.create_index("ix_assets_rights_expiry", "assets", ["rights_expires_at"])

    op.create_table(
        "collections",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_collections_tenant_name"),
    )
    op.create_table(
        "collection_assets",
        sa.Column("collection_id", sa.String(length=26), nullable=False),
        sa.Column("asset_id", sa.String(length=26), nullable=False),
        sa.Column("added_by", sa.String(length=26), nullable=True),
        sa.Column("added_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("collection_id", "asset_id"),
    )
    op.create_index("ix_collection_assets_asset", "collection_assets", ["asset_id"])

    op.create_table(
        "asset_search",
        sa.Column("asset_id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("embedding_model", sa.String(length=64), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id"),
    )
    op.create_index("ix_asset_search_tenant", "asset_search", ["tenant_id"])
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE asset_search_fts USING fts5(asset_id UNINDEXED, tenant_id UNINDEXED, body)")
    else:
        op.execute("CREATE INDEX ix_asset_search_fts ON asset_search USING gin (to_tsvector('english', body))")

    op.create_table(
        "finetunes",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("tenant_id", sa.String(length=26), nullable=False),
        sa.Column("job_id", sa.String(length=26), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("base", sa.String(length=128), nullable=False),
        sa.Column("collection_id", sa.String(length=26), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("adapter_key", sa.String(length=512), nullable=True),
        sa.Column("adapter_sha256", sa.String(length=64), nullable=True),
        sa.Column("assets_used", sa.JSON(), nullable=True),
        sa.Column("evaluation", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=26), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_finetunes_tenant", "finetunes", ["tenant_id", "id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), server_default="generate", nullable=False))

    with op.batch_alter_table("model_cards") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), server_default="approved", nullable=False))
        batch.add_column(sa.Column("approved_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("first_job_at", UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "model_evaluations",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("suite", sa.String(length=32), nullable=False),
        sa.Column("suite_version", sa.String(length=32), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_model_evaluations_model", "model_evaluations", ["model", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_model_evaluations_model", table_name="model_evaluations")
    op.drop_table("model_evaluations")
    with op.batch_alter_table("model_cards") as batch:
        batch.drop_column("first_job_at")
        batch.drop_column("approved_at")
        batch.drop_column("status")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("kind")
    op.drop_index("ix_finetunes_tenant", table_name="finetunes")
    op.drop_table("finetunes")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE asset_search_fts")
    else:
        op.execute("DROP INDEX ix_asset_search_fts")
    op.drop_index("ix_asset_search_tenant", table_name="asset_search")
    op.drop_table("asset_search")
    op.drop_index("ix_collection_assets_asset", table_name="collection_assets")
    op.drop_table("collection_assets")
    op.drop_table("collections")
    op.drop_index("ix_assets_rights_expiry", table_name="assets")
    op.drop_index("ix_assets_tenant_brand", table_name="assets")
    with op.batch_alter_table("assets") as batch:
        for column in (
            "rights_notified_at",
            "metadata_updated_at",
            "phash",
            "usage_restrictions",
            "rights_expires_at",
            "consent_ref",
            "licence",
            "brand",
            "suggested_tags",
            "tags",
            "description",
            "title",
            "origin",
        ):
            batch.drop_column(column)
