"""GET /v1/webhooks/secret and POST /v1/webhooks/secret/rotate: whsec_ secrets, a grace period, admins only."""

from __future__ import annotations

import time

import pytest
from inprocess import AppFactory
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from reelfoundry.events import signing


def test_rotation_keeps_the_old_secret_signing_for_the_grace_period(make_app: AppFactory) -> None:
    client, _ = make_app()
    old = client.get("/v1/webhooks/secret").json()
    assert old["secret"].startswith("whsec_") and old["previous_secret"] is None
    rotated = client.post("/v1/webhooks/secret/rotate", json={"grace_s": 2}).json()
    assert rotated["secret"] != old["secret"] and rotated["previous_secret"] == old["secret"]
    assert rotated["previous_valid_until"] is not None
    assert client.get("/v1/webhooks/secret").json() == rotated
    time.sleep(2.1)  # let the grace period pass (a fact of the test, not a performance bound)
    after = client.get("/v1/webhooks/secret").json()
    assert after["secret"] == rotated["secret"] and after["previous_secret"] is None


def test_rotation_without_grace_stops_the_old_secret_at_once(make_app: AppFactory) -> None:
    client, _ = make_app()
    old = client.get("/v1/webhooks/secret").json()["secret"]
    rotated = client.post("/v1/webhooks/secret/rotate", json={"grace_s": 0}).json()
    assert rotated["previous_secret"] is None
    body = b"{}"
    headers = signing.headers([rotated["secret"]], "m", int(time.time()), body)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_only_admins_see_or_rotate_the_secret(make_app: AppFactory) -> None:
    client, _ = make_app()
    for role in ("creator", "reviewer", "viewer", "worker"):
        key = client.post("/v1/keys", json={"name": role, "role": role}).json()["secret"]
        headers = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/webhooks/secret", headers=headers).status_code == 403
        assert client.post("/v1/webhooks/secret/rotate", headers=headers).status_code == 403
    r = client.post("/v1/webhooks/secret/rotate", json={"grace_s": -1})
    assert r.status_code == 422 and r.json()["parameter"] == "grace_s"
