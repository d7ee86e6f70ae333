"""Retry-After parsing and the retry decisions of reelfoundry.client.retry."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from reelfoundry.client.retry import RetryPolicy, parse_retry_after

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("Thu, 01 Jan 2026 12:00:10 GMT", 10.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("²", None),  # a raw 0xB2 byte decodes to a "digit" that float() refuses
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_status_delay_honours_retry_after_and_the_retry_budget() -> None:
    policy = RetryPolicy(max_retries=2)
    busy = httpx.Response(503, headers={"Retry-After": "2"})
    assert policy.status_delay(1, busy) == 2.0
    assert policy.status_delay(2, busy) == 2.0
    assert policy.status_delay(3, busy) is None
    assert policy.status_delay(1, httpx.Response(422)) is None
    assert policy.status_delay(1, httpx.Response(500)) is None
    assert policy.status_delay(1, httpx.Response(429, headers={"Retry-After": "3600"})) is None
    assert 0 <= (policy.status_delay(1, httpx.Response(429)) or 0) <= policy.base_s


def test_error_delay_retries_a_dropped_connection_only_when_idempotent() -> None:
    policy = RetryPolicy(max_retries=1)
    assert policy.error_delay(1, httpx.ConnectError("refused"), idempotent=False) is not None
    assert policy.error_delay(1, httpx.ReadError("reset"), idempotent=False) is None
    assert policy.error_delay(1, httpx.ReadError("reset"), idempotent=True) is not None
    assert policy.error_delay(2, httpx.ConnectError("refused"), idempotent=True) is None


def test_an_event_cut_off_by_a_dropped_stream_is_forgotten_on_reconnect() -> None:
    from reelfoundry.client._core import EventDecoder

    decoder = EventDecoder()
    event = '{"id": 3, "job_id": "j", "tenant_id": "t", "type": "job.running", "data": {}, '
    event += '"created_at": "2026-12-07T00:00:00Z"}'
    decoder.feed("id: 3")
    decoder.feed('data: {"id": 3, "job_id": "j"')  # the stream drops here, before the blank line
    decoder.reconnected()
    for line in ("id: 3", f"data: {event}"):
        assert decoder.feed(line) is None
    resent = decoder.feed("")
    assert resent is not None and resent.id == 3 and decoder.last_id == "3"
