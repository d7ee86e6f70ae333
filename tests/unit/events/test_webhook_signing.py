"""Webhook signatures are Standard Webhooks: the reference ``standardwebhooks`` package verifies them."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from reelfoundry.config import Settings
from reelfoundry.events import signing
from reelfoundry.events.webhooks import backoff_s
from reelfoundry.store import Database
from reelfoundry.store import webhooks as outbox
from reelfoundry.store.tables import TenantRow, utcnow


def test_secrets_are_whsec_and_verify_with_the_reference_library() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"job.succeeded"}'
    headers = signing.headers([secret], "01JDELIVERY", int(time.time()), body)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == {"type": "job.succeeded"}


def test_tampering_another_secret_and_stale_timestamps_are_refused() -> None:
    secret = signing.new_secret()
    body = b"{}"
    now = int(time.time())
    headers = signing.headers([secret], "m1", now, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"x":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "m2"})
    stale = signing.headers([secret], "m1", now - 3600, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, stale)


def test_rotation_signs_with_both_secrets_during_the_grace_period_only(
    database: Database, tenant_ids: tuple[str, str]
) -> None:
    with database.write() as session:
        tenant = session.get(TenantRow, tenant_ids[0])
        assert tenant is not None
        old = tenant.webhook_secret
        rotated = outbox.rotate_secret(session, tenant.id, 60, utcnow())
        new = rotated.webhook_secret
    assert new != old and new.startswith("whsec_")
    with database.read() as session:
        tenant = session.get(TenantRow, tenant_ids[0])
        assert tenant is not None
        during = outbox.signing_secrets(tenant, utcnow())
        after = outbox.signing_secrets(tenant, utcnow() + timedelta(seconds=61))
    assert during == (new, old)
    assert after == (new,)
    body = b'{"ok":true}'
    headers = signing.headers(during, "m1", int(time.time()), body)
    # A receiver that still has the old secret and one that already has the new one both accept it.
    assert Webhook(old).verify(body, headers) == {"ok": True}
    assert Webhook(new).verify(body, headers) == {"ok": True}
    late = signing.headers(after, "m2", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, late)


def test_backoff_doubles_to_the_cap() -> None:
    assert [backoff_s(n, 1, 300) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_default_schedule_outlasts_a_long_outage() -> None:
    s = Settings()
    total = sum(
        backoff_s(n, s.webhook_backoff_base_s, s.webhook_backoff_max_s) for n in range(1, s.webhook_max_attempts)
    )
    assert total > 3600  # a receiver down for an hour (let alone a minute) still gets every event
