"""The DAM over HTTP (in-process app, SQLite): uploads of images and MP4s with near-duplicate detection, audited
metadata edits, search, collections, XMP sidecars, rights enforced at publication and asset webhooks."""

from __future__ import annotations

import io
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from inprocess import AppFactory
from PIL import Image, ImageDraw
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from reelfoundry.assets import xmp
from reelfoundry.media.encode import encode_mp4
from reelfoundry.platform import Platform
from reelfoundry.store.tables import AuditPendingRow, AuditRow, TenantRow


def _platform(client: TestClient) -> Platform:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform


def _picture(seed: int, size: int = 96, fmt: str = "PNG", shift: int = 0) -> bytes:
    """A picture of a few shapes; the same seed gives the same picture (``shift`` nudges its colours)."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
        x1, y1 = x0 + int(rng.integers(10, size // 2)), y0 + int(rng.integers(10, size // 2))
        colour = tuple(min(255, int(v) + shift) for v in rng.integers(0, 255, 3))
        draw.ellipse((x0, y0, x1, y1), fill=colour)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _upload(client: TestClient, data: bytes, media_type: str = "image/png", **params: str) -> dict[str, Any]:
    r = client.post("/v1/assets", content=data, headers={"Content-Type": media_type}, params=params)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _audit(client: TestClient, action: str) -> list[dict[str, Any]]:
    with _platform(client).db.read() as s:
        rows = [
            *s.scalars(select(AuditPendingRow).where(AuditPendingRow.action == action)),
            *s.scalars(select(AuditRow).where(AuditRow.action == action)),
        ]
        return [{"actor": r.actor, "subject": r.subject, "data": r.data} for r in rows]


def _key(client: TestClient, role: str) -> dict[str, str]:
    secret = client.post("/v1/keys", json={"name": role, "role": role}).json()["secret"]
    return {"Authorization": f"Bearer {secret}"}


def test_uploads_flag_near_duplicates_by_perceptual_hash(make_app: AppFactory) -> None:
    client, _ = make_app()
    first = _upload(client, _picture(1))
    assert first["origin"] == "uploaded" and first["near_duplicates"] == [] and first["suggested_tags"] == []
    again = _upload(client, _picture(1, size=80, fmt="JPEG", shift=6), "image/jpeg")  # resized, re-encoded, tinted
    other = _upload(client, _picture(2))
    assert again["near_duplicates"] == [first["id"]]
    assert other["near_duplicates"] == []
    r = client.get(f"/v1/assets/{first['id']}/duplicates")
    assert [a["id"] for a in r.json()["items"]] == [again["id"]]
    other_tenant, _ = make_app()  # a fresh server: nothing to duplicate
    assert _upload(other_tenant, _picture(1))["near_duplicates"] == []


def _mp4(path: Path, frames: int = 8, colour: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    images = [np.full((32, 48, 3), colour, dtype=np.uint8) for _ in range(frames)]
    for i, img in enumerate(images):
        img[4:12, 4 + 3 * i : 12 + 3 * i] = 255
    encode_mp4(images, 8, path)
    return path.read_bytes()


def test_mp4_uploads_are_probed_and_refused_when_not_video(make_app: AppFactory, tmp_path: Path) -> None:
    client, _ = make_app()
    data = _mp4(tmp_path / "clip.mp4")
    video = _upload(client, data, "application/octet-stream")
    assert (video["media_type"], video["width"], video["height"], video["num_frames"]) == ("video/mp4", 48, 32, 8)
    assert video["duration_s"] == pytest.approx(1.0, abs=0.2) and video["codec"] == "h264"
    assert _upload(client, data, "video/mp4")["near_duplicates"] == [video["id"]]
    r = client.get(f"/v1/assets/{video['id']}/content")
    assert r.status_code == 200 and r.content == data
    bad = client.post(
        "/v1/assets", content=b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, headers={"Content-Type": "video/mp4"}
    )
    assert bad.status_code == 422 and bad.json()["parameter"] == "body", bad.text
    png_as_mp4 = client.post("/v1/assets", content=_picture(3), headers={"Content-Type": "video/mp4"})
    assert png_as_mp4.status_code == 422, png_as_mp4.text
    small, _ = make_app(max_video_upload_duration_s=0.5)
    too_long = small.post("/v1/assets", content=data, headers={"Content-Type": "video/mp4"})
    assert too_long.status_code == 422 and "0.5 s" in too_long.json()["detail"]
    text = client.post("/v1/assets", content=b"hello", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415


def test_metadata_edits_are_validated_audited_and_tenant_scoped(make_app: AppFactory) -> None:
    client, _ = make_app()
    asset = _upload(client, _picture(4))
    expiry = "2027-06-30T00:00:00Z"
    body = {
        "title": "Brand hero",
        "tags": ["Hero", "spring"],
        "brand": "Acme",
        "licence": "internal",
        "consent_ref": "release-42",
        "rights_expires_at": expiry,
        "usage_restrictions": ["no-training"],
    }
    r = client.patch(f"/v1/assets/{asset['id']}", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["title"], got["tags"], got["brand"], got["usage_restrictions"]) == (
        "Brand hero",
        ["hero", "spring"],
        "Acme",
        ["no-training"],
    )
    assert got["rights_expires_at"].startswith("2027-06-30T00:00:00") and got["metadata_updated_at"]
    (entry,) = _audit(client, "asset.metadata_updated")
    assert entry["subject"] == asset["id"]
    assert entry["data"]["changes"]["title"] == {"from": None, "to": "Brand hero"}
    assert entry["data"]["changes"]["tags"] == {"from": [], "to": ["hero", "spring"]}
    assert set(entry["data"]["changes"]) == {
        "title",
        "tags",
        "brand",
        "licence",
        "consent_ref",
        "rights_expires_at",
        "usage_restrictions",
    }
    assert client.patch(f"/v1/assets/{asset['id']}", json={"title": "Brand hero"}).status_code == 200
    assert len(_audit(client, "asset.metadata_updated")) == 1  # nothing changed, nothing audited
    cleared = client.patch(f"/v1/assets/{asset['id']}", json={"brand": None}).json()
    assert cleared["brand"] is None and cleared["title"] == "Brand hero"
    for bad, field in (
        ({"tags": ["<b>"]}, "tags"),
        ({"rights_expires_at": "2027-01-01T00:00:00"}, "rights_expires_at"),
        ({"usage_restrictions": ["No Training"]}, "usage_restrictions"),
        ({"title": "x" * 201}, "title"),
        ({"colour": "red"}, "colour"),
        ({"accept_suggestions": ["red"]}, "accept_suggestions"),
    ):
        r = client.patch(f"/v1/assets/{asset['id']}", json=bad)
        assert r.status_code == 422 and field in r.text, (bad, r.text)
    viewer = client.patch(f"/v1/assets/{asset['id']}", json={"title": "x"}, headers=_key(client, "viewer"))
    assert viewer.status_code == 403
    other, _ = make_app()
    assert other.patch(f"/v1/assets/{asset['id']}", json={"title": "x"}).status_code == 404


def test_search_and_filters_over_http(make_app: AppFactory, generate: Callable[..., str]) -> None:
    client, _ = make_app()
    db = _platform(client).db
    with db.read() as s:
        tenant = s.scalars(select(TenantRow.id)).one()
    circle = generate(db, tenant, "a red circle moving left on a blue background")
    star = generate(db, tenant, "a yellow star growing on a purple background", model="builtin")
    upload = _upload(client, _picture(5))
    client.patch(f"/v1/assets/{upload['id']}", json={"title": "red brand mark", "tags": ["logo"], "brand": "Acme"})
    red = client.get("/v1/assets", params={"q": "red"}).json()
    assert {a["id"] for a in red["items"]} == {circle, upload["id"]} and red["next_cursor"] is None
    assert all(a["score"] is not None for a in red["items"])
    assert [a["id"] for a in client.get("/v1/assets", params={"q": "red", "origin": "uploaded"}).json()["items"]] == [
        upload["id"]
    ]
    assert [a["id"] for a in client.get("/v1/assets", params={"model": "builtin"}).json()["items"]] == [star]
    assert [a["id"] for a in client.get("/v1/assets", params={"tag": "LOGO"}).json()["items"]] == [upload["id"]]
    assert [a["id"] for a in client.get("/v1/assets", params={"brand": "Acme"}).json()["items"]] == [upload["id"]]
    semantic = client.get("/v1/assets", params={"q": "a shining star that gets bigger", "mode": "semantic"}).json()
    assert semantic["items"][0]["id"] == star
    assert client.get("/v1/assets", params={"created_after": "2026-01-01T00:00:00"}).status_code == 422
    assert client.get("/v1/assets", params={"q": "x\x00"}).status_code == 422
    assert client.get("/v1/assets", params={"mode": "fuzzy", "q": "x"}).status_code == 422


def test_collections_add_list_remove(make_app: AppFactory) -> None:
    client, _ = make_app()
    a, b = _upload(client, _picture(6)), _upload(client, _picture(7))
    r = client.post("/v1/collections", json={"name": "brand-kit", "description": "approved shots"})
    assert r.status_code == 201, r.text
    coll = r.json()
    assert client.post("/v1/collections", json={"name": "brand-kit"}).status_code == 409
    r = client.post(f"/v1/collections/{coll['id']}/assets", json={"asset_ids": [a["id"], b["id"], a["id"]]})
    assert r.status_code == 200 and r.json()["asset_count"] == 2
    missing = client.post(f"/v1/collections/{coll['id']}/assets", json={"asset_ids": [a["id"], "0" * 26]})
    assert missing.status_code == 422 and missing.json()["parameter"] == "asset_ids[1]"
    members = client.get("/v1/assets", params={"collection": coll["id"]}).json()["items"]
    assert {m["id"] for m in members} == {a["id"], b["id"]}
    listed = client.get("/v1/collections").json()["items"]
    assert [(c["name"], c["asset_count"]) for c in listed] == [("brand-kit", 2)]
    assert client.delete(f"/v1/collections/{coll['id']}/assets/{a['id']}").json()["asset_count"] == 1
    assert client.delete(f"/v1/collections/{coll['id']}/assets/{a['id']}").status_code == 404
    assert [x["data"] for x in _audit(client, "collection.assets_added")] == [{"asset_ids": [a["id"], b["id"]]}]
    other, _ = make_app()
    assert other.get(f"/v1/collections/{coll['id']}").status_code == 404
    assert client.post("/v1/collections", json={"name": "x"}, headers=_key(client, "viewer")).status_code == 403
    assert client.delete(f"/v1/collections/{coll['id']}").status_code == 204
    assert client.get(f"/v1/assets/{b['id']}").status_code == 200  # the asset stays


def test_xmp_sidecar_is_well_formed_with_the_source_type_and_escaped_metadata(
    make_app: AppFactory, generate: Callable[..., str]
) -> None:
    client, _ = make_app()
    upload = _upload(client, _picture(8))
    title = 'Tom & Jerry <"launch"> ]]>'
    patch = {"title": title, "description": "R&D <i>draft</i>\nline two", "tags": ["q3:launch"], "licence": "CC-BY"}
    assert client.patch(f"/v1/assets/{upload['id']}", json=patch).status_code == 200
    r = client.get(f"/v1/assets/{upload['id']}/xmp")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/rdf+xml")
    body = r.text.split("?>", 1)[1].rsplit("<?xpacket", 1)[0]
    root = ET.fromstring(body)
    ns = xmp.NS
    desc = root.find(f"{{{ns['rdf']}}}RDF/{{{ns['rdf']}}}Description")
    assert desc is not None
    assert desc.findtext(f"{{{ns['Iptc4xmpExt']}}}DigitalSourceType") == xmp.CAPTURE
    assert desc.findtext(f".//{{{ns['dc']}}}title//{{{ns['rdf']}}}li") == title
    assert desc.findtext(f".//{{{ns['dc']}}}description//{{{ns['rdf']}}}li") == "R&D <i>draft</i>\nline two"
    assert desc.findtext(f".//{{{ns['dc']}}}subject//{{{ns['rdf']}}}li") == "q3:launch"
    db = _platform(client).db
    with db.read() as s:
        tenant = s.scalars(select(TenantRow.id)).one()
    made = generate(db, tenant, "a star", model="builtin")
    root = ET.fromstring(client.get(f"/v1/assets/{made}/xmp").text.split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    assert root.findtext(f".//{{{ns['Iptc4xmpExt']}}}DigitalSourceType") == xmp.TRAINED


def _approved(client: TestClient) -> str:
    asset = _upload(client, _picture(9))
    review = client.post(
        f"/v1/assets/{asset['id']}/review", json={"decision": "approve"}, headers=_key(client, "reviewer")
    )
    assert review.status_code == 200, review.text
    return str(asset["id"])


def test_an_expired_asset_is_never_published_nor_delivered(make_app: AppFactory) -> None:
    client, _ = make_app()
    asset_id = _approved(client)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    client.patch(f"/v1/assets/{asset_id}", json={"rights_expires_at": past})
    r = client.post(f"/v1/assets/{asset_id}/publish")
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/rights-expired")
    assert problem["rights_expires_at"][:16] == past[:16] and "expired" in problem["detail"]
    client.patch(f"/v1/assets/{asset_id}", json={"rights_expires_at": None})
    published = client.post(f"/v1/assets/{asset_id}/publish")
    assert published.status_code == 200, published.text
    path = published.json()["url"].split("8000", 1)[1]
    assert client.get(path, headers={"Authorization": ""}).status_code == 200
    client.patch(f"/v1/assets/{asset_id}", json={"rights_expires_at": past})
    # Delivery stops with the rights: the same 403 as for any asset that is not published.
    assert client.get(path, headers={"Authorization": ""}).status_code == 403
    assert client.post(f"/v1/assets/{asset_id}/publish").status_code == 409  # and no fresh URL


class _Receiver:
    """An HTTP receiver on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dam"


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.server.shutdown()


def _wait_for(n: int, received: list[Any]) -> None:
    deadline = time.monotonic() + 30
    while len(received) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_asset_events_go_signed_to_the_tenant_endpoint(make_app: AppFactory, receiver: _Receiver) -> None:
    refused, _ = make_app()
    r = refused.put("/v1/webhooks/endpoint", json={"url": receiver.url})
    assert r.status_code == 422 and r.json()["parameter"] == "url"  # loopback: not without the allowlist
    # The dispatcher's own loop looks for expiring rights (every 0.1 s here).
    client, _ = make_app(webhook_allowed_hosts=["127.0.0.1"], poll_interval_s=0.05, rights_check_interval_s=0.1)
    assert client.get("/v1/webhooks/endpoint").status_code == 404
    assert (
        client.put("/v1/webhooks/endpoint", json={"url": receiver.url}, headers=_key(client, "creator")).status_code
        == 403
    )
    r = client.put("/v1/webhooks/endpoint", json={"url": receiver.url})
    assert r.status_code == 200 and r.json()["url"] == receiver.url
    asset = _upload(client, _picture(10))
    client.patch(f"/v1/assets/{asset['id']}", json={"title": "hero"})
    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    client.patch(f"/v1/assets/{asset['id']}", json={"rights_expires_at": soon})
    _wait_for(4, receiver.received)
    dispatcher = _platform(client).webhooks
    assert dispatcher is not None and dispatcher.check_rights() == 0  # announced once, by the loop
    secret = client.get("/v1/webhooks/secret").json()["secret"]
    events = [Webhook(secret).verify(body, headers) for headers, body in receiver.received]
    assert sorted(e["type"] for e in events) == sorted(
        ["asset.created", "asset.metadata_updated", "asset.metadata_updated", "asset.rights_expiring"]
    )
    updated = [e for e in events if e["type"] == "asset.metadata_updated"]
    assert sorted(tuple(e["data"]["changed"]) for e in updated) == [("rights_expires_at",), ("title",)]
    assert all(e["data"]["asset"]["id"] == asset["id"] for e in events)
    log = client.get("/v1/webhooks/asset-deliveries").json()["items"]
    deadline = time.monotonic() + 30
    while any(d["state"] != "delivered" for d in log) and time.monotonic() < deadline:
        time.sleep(0.05)
        log = client.get("/v1/webhooks/asset-deliveries").json()["items"]
    assert [d["state"] for d in log] == ["delivered"] * 4
    assert json.loads(receiver.received[0][1])["id"] == receiver.received[0][0]["webhook-id"]
    assert client.delete("/v1/webhooks/endpoint").status_code == 204
    _upload(client, _picture(11))
    assert len(client.get("/v1/webhooks/asset-deliveries").json()["items"]) == 4  # no endpoint, no event
