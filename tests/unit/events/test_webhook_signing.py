"""Webhook signatures and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import time

from reelfoundry.config import Settings
from reelfoundry.events.webhooks import backoff_s, sign, verify


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    body = b'{"type":"job.succeeded"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", 1700000000, body) == f"v1={expected}"


def test_verify_rejects_tampering_and_stale_timestamps() -> None:
    now = int(time.time())
    body = b"{}"
    good = sign("k", now, body)
    assert verify("k", str(now), body, good)
    assert not verify("k", str(now), b"{ }", good)
    assert not verify("other", str(now), body, good)
    assert not verify("k", str(now - 3600), body, sign("k", now - 3600, body))
    assert not verify("k", "soon", body, good)


def test_backoff_doubles_to_the_cap() -> None:
    assert [backoff_s(n, 1, 300) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_default_schedule_outlasts_a_long_outage() -> None:
    s = Settings()
    total = sum(
        backoff_s(n, s.webhook_backoff_base_s, s.webhook_backoff_max_s) for n in range(1, s.webhook_max_attempts)
    )
    assert total > 3600  # a receiver down for an hour (let alone a minute) still gets every event
