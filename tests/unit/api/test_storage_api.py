"""Media served over the ObjectStore protocol, in-process: Range, ETag and 404 through stat + read_range; a storage
outage is a 503 problem with Retry-After (and no half-written asset); presigned delivery redirects."""

from __future__ import annotations

import hashlib
import io
from typing import Any
from urllib.parse import urlsplit

import pytest
from fakestore import FakeStore
from fastapi.testclient import TestClient
from inprocess import AppFactory
from PIL import Image

from reelfoundry.platform import Platform
from reelfoundry.store.tables import AssetRow


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (20, 120, 220)).save(buf, format="PNG")
    return buf.getvalue()


def _app(make_app: AppFactory, **settings: Any) -> tuple[TestClient, Platform, FakeStore]:
    client, _ = make_app(**settings)
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    store = FakeStore(platform.settings.media_dir)
    platform.storage = store
    return client, platform, store


def _upload(client: TestClient, data: bytes) -> dict[str, Any]:
    r = client.post("/v1/assets", content=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _approved(client: TestClient, data: bytes) -> str:
    """An upload a reviewer approved: its id."""
    asset = _upload(client, data)
    reviewer = client.post("/v1/keys", json={"name": "r", "role": "reviewer"}).json()["secret"]
    review = client.post(
        f"/v1/assets/{asset['id']}/review",
        json={"decision": "approve", "comment": "ok"},
        headers={"Authorization": f"Bearer {reviewer}"},
    )
    assert review.status_code == 200, review.text
    return str(asset["id"])


def _published(client: TestClient, data: bytes) -> tuple[str, str]:
    """An approved, published upload: its id and the path + query of its delivery URL."""
    asset_id = _approved(client, data)
    publication = client.post(f"/v1/assets/{asset_id}/publish")
    assert publication.status_code == 200, publication.text
    url = urlsplit(publication.json()["url"])
    return asset_id, f"{url.path}?{url.query}"


def _assert_unavailable(r: Any) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/storage-unavailable") and r.headers["Retry-After"] == "5"


def test_content_is_served_through_the_store_with_range_etag_and_404(make_app: AppFactory) -> None:
    client, platform, store = _app(make_app)
    data = _png()
    asset = _upload(client, data)
    sent: list[int] = []
    platform.egress_meter = lambda job_id: sent.append  # type: ignore[method-assign]
    url = f"/v1/assets/{asset['id']}/content"
    etag = f'"{hashlib.sha256(data).hexdigest()}"'

    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["ETag"] == etag and whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Content-Length"] == str(len(data))
    assert {"stat", "read_range"} <= set(store.calls) and "local_copy" not in store.calls

    part = client.get(url, headers={"Range": "bytes=8-23"})
    assert part.status_code == 206 and part.content == data[8:24]
    assert part.headers["Content-Range"] == f"bytes 8-23/{len(data)}" and part.headers["Content-Length"] == "16"
    tail = client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    assert sent == [len(data), 16, 10]  # the bytes that went out, each response its own charge

    cached = client.get(url, headers={"If-None-Match": f'"other", {etag}'})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == etag
    assert sent == [len(data), 16, 10]

    with platform.db.read() as session:
        row = session.get(AssetRow, asset["id"])
        assert row is not None
    platform.storage.delete(row.storage_key)
    gone = client.get(url)
    assert gone.status_code == 404 and "missing from storage" in gone.json()["detail"]
    assert client.get(f"/v1/assets/{asset['id']}/poster").status_code == 404  # an upload has no poster


def test_a_storage_outage_is_a_503_problem_with_retry_after(make_app: AppFactory) -> None:
    client, platform, store = _app(make_app)
    asset_id, delivery = _published(client, _png())
    with platform.db.write() as session:  # as a generated video has (uploads have none)
        row = session.get(AssetRow, asset_id)
        assert row is not None
        row.poster_key = row.storage_key
    store.down = True
    _assert_unavailable(client.get(f"/v1/assets/{asset_id}/content"))
    _assert_unavailable(client.get(f"/v1/assets/{asset_id}/content", headers={"Range": "bytes=0-1"}))
    _assert_unavailable(client.get(delivery))
    _assert_unavailable(client.get(f"/v1/assets/{asset_id}/poster"))
    store.down = False
    assert client.get(delivery).status_code == 200  # once the store is back, everything works again


def test_an_upload_the_store_cannot_take_leaves_no_asset(make_app: AppFactory) -> None:
    client, _, store = _app(make_app)
    store.down = True
    _assert_unavailable(client.post("/v1/assets", content=_png(), headers={"Content-Type": "image/png"}))
    store.down = False
    assert client.get("/v1/assets").json()["items"] == [] and store.objects() == []
    assert _upload(client, _png())["media_type"] == "image/png"


def test_publishing_while_the_store_is_down_publishes_nothing(make_app: AppFactory) -> None:
    client, _, store = _app(make_app)
    asset_id = _approved(client, _png())
    store.fail_puts_after = store.puts  # the signed rendition cannot be stored
    _assert_unavailable(client.post(f"/v1/assets/{asset_id}/publish"))
    assert client.get(f"/v1/assets/{asset_id}").json()["review_state"] == "approved"
    assert [k for k in store.objects() if "published" in k] == []
    store.fail_puts_after = None
    assert client.post(f"/v1/assets/{asset_id}/publish").status_code == 200


@pytest.mark.parametrize("mode", ["api", "presigned"])
def test_delivery_redirects_to_the_presigned_url_only_in_presigned_mode(make_app: AppFactory, mode: str) -> None:
    client, platform, store = _app(make_app, delivery_mode=mode)
    store.presign_base = "https://bucket.example"
    data = _png()
    asset_id, delivery = _published(client, data)
    r = client.get(delivery, follow_redirects=False)
    if mode == "api":
        assert r.status_code == 200 and "presign" not in store.calls
        return
    assert r.status_code == 307 and r.headers["Cache-Control"] == "no-store"
    location = r.headers["location"]
    with platform.db.read() as session:
        row = session.get(AssetRow, asset_id)
        assert row is not None and row.published_key is not None
    assert (
        location.startswith(f"https://bucket.example/{row.published_key}?") and f"filename={asset_id}.png" in location
    )
    expires_in = int(location.split("expires_in=")[1].split("&")[0])
    assert 0 < expires_in <= min(platform.settings.delivery_url_ttl_s, platform.settings.s3_presign_ttl_s)
    # The signature is checked first: a changed URL is the same 403, never a redirect.
    forged = delivery[:-1] + ("0" if delivery[-1] != "0" else "1")
    assert client.get(forged, follow_redirects=False).status_code == 403
    # A store that cannot presign (the local one) is streamed through the API, whatever the mode.
    store.presign_base = None
    assert client.get(delivery, follow_redirects=False).status_code == 200
