"""Per-key rate limits: the 7th submission in a minute is a 429 with Retry-After; other keys are untouched."""

from __future__ import annotations

import uuid

import pytest
from inprocess import AppFactory

from reelfoundry.api.ratelimit import RateLimits
from reelfoundry.config import Settings
from reelfoundry.errors import RateLimited

JOB = {"prompt": "p", "model": "template"}


def test_the_seventh_submission_in_a_minute_is_refused(make_app: AppFactory) -> None:
    client, _ = make_app(rate_limit_submit="6/minute")
    for i in range(6):
        r = client.post("/v1/jobs", json=JOB)
        assert r.status_code == 201, r.text
        assert r.headers["ratelimit-limit"] == "6" and r.headers["ratelimit-remaining"] == str(5 - i)
    r = client.post("/v1/jobs", json=JOB)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"].endswith("/rate-limited") and "6 job submissions" in body["detail"]
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["ratelimit-remaining"] == "0" and r.headers["ratelimit-policy"] == "6;w=60"
    assert len(client.get("/v1/jobs").json()["items"]) == 6  # the refused one left no job
    # Reads count against their own limit, not the submissions'.
    assert client.get("/v1/jobs").status_code == 200


def test_one_keys_traffic_never_limits_another(make_app: AppFactory) -> None:
    client, _ = make_app(rate_limit_submit="2/minute", rate_limit_read="5/minute")
    other = client.post("/v1/keys", json={"name": "other", "role": "creator"}).json()["secret"]
    for _ in range(4):
        client.get("/v1/jobs")
    assert client.get("/v1/jobs").status_code == 429
    for _ in range(2):
        assert client.post("/v1/jobs", json=JOB).status_code == 201
    assert client.post("/v1/jobs", json=JOB).status_code == 429
    as_other = {"Authorization": f"Bearer {other}"}
    assert client.post("/v1/jobs", json=JOB, headers=as_other).status_code == 201
    assert client.get("/v1/jobs", headers=as_other).status_code == 200


def test_limits_can_be_switched_off(make_app: AppFactory) -> None:
    client, _ = make_app(rate_limit_submit="", rate_limit_read="")
    for _ in range(5):
        r = client.get("/v1/jobs")
        assert r.status_code == 200 and "ratelimit-limit" not in r.headers


def test_a_bad_limit_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="rate_limit_submit 'lots' is not a rate limit"):
        Settings(rate_limit_submit="lots")
    with pytest.raises(ValueError, match="rate_limit_storage_url"):
        Settings(rate_limit_storage_url="memcached://x")


def test_redis_counters_are_shared_by_processes() -> None:
    """Two limiters on one Redis (as two API processes would be) count one key's requests together."""
    settings = Settings(rate_limit_submit="3/minute", rate_limit_storage_url="redis://127.0.0.1:6379/0")
    first, second = RateLimits(settings), RateLimits(settings)
    key = f"test-{uuid.uuid4().hex}"
    first.hit(key, "submit")
    second.hit(key, "submit")
    first.hit(key, "submit")
    with pytest.raises(RateLimited) as limited:
        second.hit(key, "submit")
    assert limited.value.retry_after_s >= 1
    second.hit(f"other-{key}", "submit")  # another key has its own count


def test_an_unreachable_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    """Rate limiting must not take the API down with its counter store: requests pass, the outage is logged."""
    settings = Settings(rate_limit_submit="1/minute", rate_limit_storage_url="redis://127.0.0.1:1/0")
    limiter = RateLimits(settings)
    assert limiter.hit("key", "submit") == {}
    assert limiter.hit("key", "submit") == {}
    assert "rate-limit storage unreachable" in caplog.text
