"""standard webhooks: whsec_ secrets with a rotation grace period; delivery rows name the receiver, not the URL

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 02:30:00
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

from reelfoundry.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_PORTS = {"http": 80, "https": 443}


def _receiver(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port or _PORTS.get(parts.scheme, 0)
    except ValueError:
        return "invalid"
    return f"{(parts.hostname or '').rstrip('.')}:{port}"[:300]


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("webhook_secret_previous", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("webhook_secret_previous_until", UTCDateTime(timezone=True), nullable=True))
    conn = op.get_bind()
    # The old secret's bytes were the HMAC key; in whsec_ form the same key keeps verifying for anyone who
    # derives it, and every new delivery is signed the Standard Webhooks way.
    for tenant_id, secret in conn.execute(sa.text("SELECT id, webhook_secret FROM tenants")).all():
        if not secret.startswith("whsec_"):
            new = "whsec_" + base64.b64encode(secret.encode()).decode()
            conn.execute(sa.text("UPDATE tenants SET webhook_secret = :s WHERE id = :i"), {"s": new, "i": tenant_id})

    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("receiver", sa.String(length=300), nullable=False, server_default=""))
    for delivery_id, url in conn.execute(sa.text("SELECT id, url FROM webhook_deliveries")).all():
        conn.execute(
            sa.text("UPDATE webhook_deliveries SET receiver = :r WHERE id = :i"),
            {"r": _receiver(url), "i": delivery_id},
        )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("receiver", server_default=None)
        batch.drop_column("url")


def downgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("url", sa.Text(), nullable=False, server_default=""))
    rows = conn.execute(
        sa.text("SELECT d.id, j.request FROM webhook_deliveries d JOIN jobs j ON j.id = d.job_id")
    ).all()
    for delivery_id, request in rows:
        # A raw query returns JSON as text on SQLite and as a dict on PostgreSQL.
        url = (json.loads(request) if isinstance(request, str) else request or {}).get("webhook_url")
        conn.execute(
            sa.text("UPDATE webhook_deliveries SET url = :u WHERE id = :i"), {"u": url or "", "i": delivery_id}
        )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("url", server_default=None)
        batch.drop_column("receiver")
    # Back to the secret the old code signed with (its text's bytes were the key). A secret made or rotated
    # after the upgrade is random bytes no text stands for: it stays in whsec_ form, and receivers of that
    # tenant need the secret from GET /v1/webhooks/secret again.
    for tenant_id, secret in conn.execute(sa.text("SELECT id, webhook_secret FROM tenants")).all():
        key = base64.b64decode(secret.removeprefix("whsec_"))
        if secret.startswith("whsec_") and key.isascii() and key.decode().isalnum():
            conn.execute(
                sa.text("UPDATE tenants SET webhook_secret = :s WHERE id = :i"), {"s": key.decode(), "i": tenant_id}
            )
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("webhook_secret_previous_until")
        batch.drop_column("webhook_secret_previous")
