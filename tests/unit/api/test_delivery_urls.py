"""Delivery URLs never come from the request's Host header: public_base_url, else the server's own address."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from inprocess import AppFactory
from PIL import Image
from pydantic import ValidationError

from reelfoundry.config import Settings


def _approved_upload(client: TestClient) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, format="PNG")
    asset = client.post("/v1/assets", content=buf.getvalue(), headers={"Content-Type": "image/png"})
    assert asset.status_code == 201, asset.text
    reviewer = client.post("/v1/keys", json={"name": "r", "role": "reviewer"}).json()["secret"]
    review = client.post(
        f"/v1/assets/{asset.json()['id']}/review",
        json={"decision": "approve", "comment": "ok"},
        headers={"Authorization": f"Bearer {reviewer}"},
    )
    assert review.status_code == 200, review.text
    return str(asset.json()["id"])


def test_a_forged_host_header_does_not_reach_the_url(make_app: AppFactory) -> None:
    client, _ = make_app(host="127.0.0.1", port=8123)
    asset_id = _approved_upload(client)
    r = client.post(f"/v1/assets/{asset_id}/publish", headers={"Host": "attacker.example"})
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert url.startswith(f"http://127.0.0.1:8123/v1/delivery/{asset_id}?"), url
    assert "attacker" not in url


def test_public_base_url_is_used_when_set(make_app: AppFactory) -> None:
    client, _ = make_app(public_base_url="https://media.example.com/rf")
    asset_id = _approved_upload(client)
    url = client.post(f"/v1/assets/{asset_id}/publish", headers={"Host": "attacker.example"}).json()["url"]
    assert url.startswith(f"https://media.example.com/rf/v1/delivery/{asset_id}?")


def test_production_needs_public_base_url() -> None:
    production = {
        "environment": "production",
        "signing_cert_chain": "chain.pem",
        "signing_key": "key.pem",
        "signing_trust_anchor": "ca.pem",
        "secret_key": "x" * 32,
        "metrics_token": "t" * 32,
    }
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(**production)
    assert Settings(**production, public_base_url="https://media.example.com").delivery_base_url == (
        "https://media.example.com"
    )
    assert Settings(host="0.0.0.0", port=9000).delivery_base_url.endswith(":9000")
    assert Settings(host="::1", port=9000).delivery_base_url == "http://[::1]:9000"
