"""Migrations create exactly the schema the tables declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from reelfoundry.store import Database
from reelfoundry.store.tables import Base


def _declared(name: str | None, type_: str, parent: dict[str, str | None]) -> bool:
    """The full-text search objects are one dialect's each (migration 0011), so not declared in the metadata."""
    return not (name or "").startswith(("asset_search_fts", "ix_asset_search_fts"))


def test_migrations_match_tables(database: Database) -> None:
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _declared})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_migrate_twice_is_a_no_op(database: Database) -> None:
    database.migrate()


def test_0003_carries_who_submitted_and_who_created_over_from_the_audit_log(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from reelfoundry.store.db import alembic_config

    engine = create_engine(db_url)
    with engine.begin() as conn:
        cfg = alembic_config(db_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        now = "2026-11-01 00:00:00+00:00"
        conn.execute(text(f"INSERT INTO tenants VALUES ('T', 'acme', false, 's', '{now}')"))
        for key in ("KADMIN", "KREVIEWER"):
            conn.execute(text(f"INSERT INTO api_keys VALUES ('{key}', 'T', '{key}', 'admin', 'h', '{now}', NULL)"))
        conn.execute(
            text(
                "INSERT INTO jobs (id, tenant_id, state, model, priority, request, request_hash, attempts, "
                "max_attempts, progress, cancel_requested, asset_id, created_at) VALUES ('J', 'T', 'succeeded', "
                f"'template', 0, '{{}}', 'h', 1, 3, 1.0, false, 'A', '{now}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO assets (id, tenant_id, job_id, media_type, storage_key, bytes, sha256, created_at) "
                f"VALUES ('A', 'T', 'J', 'video/mp4', 'T/A.mp4', 1, 'x', '{now}')"
            )
        )
        audit = [
            (1, "system", "key.created", "KADMIN"),
            (2, "KADMIN", "key.created", "KREVIEWER"),
            (3, "KADMIN", "job.submitted", "J"),
        ]
        for seq, actor, action, subject in audit:
            conn.execute(
                text(
                    "INSERT INTO audit_log VALUES "
                    f"({seq}, '{now}', 'T', '{actor}', '{action}', '{subject}', '{{}}', 'p{seq}', 'h{seq}')"
                )
            )
        command.upgrade(cfg, "head")
        assert conn.execute(text("SELECT submitted_by FROM jobs")).scalar() == "KADMIN"
        assert conn.execute(text("SELECT created_by, review_state FROM assets")).one() == ("KADMIN", "pending_review")
        keys = dict(conn.execute(text("SELECT id, created_by FROM api_keys")).all())
        assert keys == {"KADMIN": None, "KREVIEWER": "KADMIN"}
        assert conn.execute(text("SELECT allow_self_approval FROM tenants")).scalar() in (False, 0)
    engine.dispose()


def test_0006_moves_secrets_to_whsec_and_delivery_urls_to_the_job_and_back(db_url: str) -> None:
    import base64

    from alembic import command
    from sqlalchemy import create_engine, text

    from reelfoundry.store.db import alembic_config

    engine = create_engine(db_url)
    hex_secret = "ab" * 32
    url = "https://hooks.example.com:8443/in"
    with engine.begin() as conn:
        cfg = alembic_config(db_url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        now = "2026-11-01 00:00:00+00:00"
        conn.execute(
            text(
                "INSERT INTO tenants (id, name, is_operator, webhook_secret, created_at, allow_self_approval) "
                f"VALUES ('T', 'acme', false, '{hex_secret}', '{now}', false)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO jobs (id, tenant_id, state, model, priority, request, request_hash, attempts, "
                f"max_attempts, progress, cancel_requested, created_at) VALUES ('J', 'T', 'queued', 'template', 0, "
                f"'{{\"webhook_url\": \"{url}\"}}', 'h', 0, 3, 0.0, false, '{now}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO events (id, job_id, tenant_id, type, data, created_at) "
                f"VALUES (1, 'J', 'T', 'job.queued', '{{}}', '{now}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO webhook_deliveries (id, tenant_id, event_id, job_id, url, state, attempts, "
                f"next_attempt_at, created_at) VALUES ('D', 'T', 1, 'J', '{url}', 'pending', 0, '{now}', '{now}')"
            )
        )
        command.upgrade(cfg, "0006")
        secret = conn.execute(text("SELECT webhook_secret FROM tenants")).scalar()
        assert secret.startswith("whsec_") and base64.b64decode(secret[6:]) == hex_secret.encode()
        assert conn.execute(text("SELECT receiver FROM webhook_deliveries")).scalar() == "hooks.example.com:8443"
        command.downgrade(cfg, "0005")
        assert conn.execute(text("SELECT webhook_secret FROM tenants")).scalar() == hex_secret
        assert conn.execute(text("SELECT url FROM webhook_deliveries")).scalar() == url
    engine.dispose()
