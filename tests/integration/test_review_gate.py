"""The review gate over HTTP: pending → approved | rejected → published, who may decide, delivery URLs."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from server import Server, server_env, wait_state

from reelfoundry.assets.delivery import DeliverySigner
from reelfoundry.provenance.manifest import GENERATION_LABEL, REVIEW_LABEL, verify
from reelfoundry.server_secret import derive, load_server_secret


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with short delivery URLs and a small JSON body limit."""
    data_dir: Path = tmp_path_factory.mktemp("gate") / "data"
    srv = Server(data_dir, server_env(max_body_bytes=4096)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def keys(server: Server) -> dict[str, str]:
    """Tenant default: creator, reviewer, viewer (and the admin); tenant other: an admin and a reviewer."""
    with server.client() as admin:

        def key(role: str, tenant: str | None = None) -> str:
            body = {"name": f"{role}-{tenant or 'default'}", "role": role, **({"tenant": tenant} if tenant else {})}
            r = admin.post("/v1/keys", json=body)
            assert r.status_code == 201, r.text
            return str(r.json()["secret"])

        return {
            "admin": server.admin_key,
            "creator": key("creator"),
            "reviewer": key("reviewer"),
            "viewer": key("viewer"),
            "other_admin": key("admin", "other"),
            "other_reviewer": key("reviewer", "other"),
        }


def make_asset(server: Server, key: str, **labels: str) -> dict[str, Any]:
    """A finished template job's asset, submitted with ``key``."""
    with server.client(key) as c:
        body = {"prompt": "Review me", "model": "template", "num_frames": 8, "labels": labels}
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 201, r.text
        done = wait_state(c, r.json()["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        asset: dict[str, Any] = c.get(f"/v1/assets/{done['asset_id']}").json()
        return asset


def review(server: Server, key: str, asset_id: str, decision: str, comment: str = "") -> httpx.Response:
    with server.client(key) as c:
        return c.post(f"/v1/assets/{asset_id}/review", json={"decision": decision, "comment": comment})


def publish(server: Server, key: str, asset_id: str) -> httpx.Response:
    with server.client(key) as c:
        return c.post(f"/v1/assets/{asset_id}/publish")


def problem(r: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["type"].endswith("/" + slug), body
    return body


def test_pending_then_approved_then_published_with_a_url_that_serves_the_review_manifest(
    server: Server, keys: dict[str, str]
) -> None:
    asset = make_asset(server, keys["creator"], project="launch")
    assert asset["review_state"] == "pending_review"
    assert asset["review"] is None and asset["published_at"] is None
    problem(publish(server, keys["creator"], asset["id"]), 409, "invalid-transition")

    r = review(server, keys["reviewer"], asset["id"], "approve", "On brand; music cleared.")
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["review_state"] == "approved"
    assert approved["review"]["decision"] == "approve"
    assert approved["review"]["reviewer_role"] == "reviewer"
    assert approved["review"]["comment"] == "On brand; music cleared."

    r = publish(server, keys["creator"], asset["id"])
    assert r.status_code == 200, r.text
    pub = r.json()
    assert pub["url"].startswith(server.url + "/v1/delivery/" + asset["id"] + "?")
    delivered = httpx.get(pub["url"])  # no API key
    assert delivered.status_code == 200
    assert delivered.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(delivered.content).hexdigest() == pub["sha256"] != asset["sha256"]
    assert len(delivered.content) == pub["bytes"]
    partial = httpx.get(pub["url"], headers={"Range": "bytes=0-99"})
    assert partial.status_code == 206 and partial.content == delivered.content[:100]

    # The published file carries a second manifest whose ingredient is the generation's manifest.
    path = server.data_dir.parent / "published.mp4"
    path.write_bytes(delivered.content)
    anchor = (server.data_dir / "provenance" / "dev-ca.pem").read_bytes()
    report = verify(path, anchor)
    assert report.valid and report.validation_state == "Trusted", report.failures
    assert [a["action"] for a in report.actions] == ["c2pa.opened", "c2pa.published"]
    reviewed, generated = report.manifests
    assert reviewed.ingredients == [generated.label]
    facts = reviewed.assertions[REVIEW_LABEL]
    assert facts["decision"] == "approve" and facts["reviewer_role"] == "reviewer"
    assert facts["comment_sha256"] == hashlib.sha256(b"On brand; music cleared.").hexdigest()
    assert facts["reviewed_at"] == approved["review"]["reviewed_at"].replace("Z", "+00:00")
    assert generated.actions[0]["action"] == "c2pa.created"
    assert generated.assertions[GENERATION_LABEL]["job_id"] == asset["job_id"]

    with server.client(keys["viewer"]) as c:
        now = c.get(f"/v1/assets/{asset['id']}").json()
        assert now["review_state"] == "published" and now["published_at"] is not None
    # Publishing again hands out a fresh URL to the same published file.
    again = publish(server, keys["reviewer"], asset["id"]).json()
    assert again["sha256"] == pub["sha256"] and again["published_at"] == pub["published_at"]
    assert httpx.get(again["url"]).content == delivered.content


def test_an_uploaded_image_goes_through_the_same_gate(server: Server, keys: dict[str, str]) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 30, 30)).save(buf, format="PNG")
    with server.client(keys["creator"]) as c:
        r = c.post("/v1/assets", content=buf.getvalue(), headers={"Content-Type": "image/png"})
        assert r.status_code == 201, r.text
        image = r.json()
    assert image["review_state"] == "pending_review" and image["created_by"] is not None
    problem(publish(server, keys["creator"], image["id"]), 409, "invalid-transition")
    assert review(server, keys["reviewer"], image["id"], "approve").status_code == 200
    pub = publish(server, keys["creator"], image["id"]).json()
    delivered = httpx.get(pub["url"])
    assert delivered.status_code == 200 and delivered.headers["content-type"] == "image/png"
    path = server.data_dir.parent / "published.png"
    path.write_bytes(delivered.content)
    report = verify(path, (server.data_dir / "provenance" / "dev-ca.pem").read_bytes())
    assert report.trusted and report.manifests[0].assertions[REVIEW_LABEL]["decision"] == "approve"
    assert Image.open(io.BytesIO(delivered.content)).size == (48, 32)


def test_forbidden_transitions_are_409(server: Server, keys: dict[str, str]) -> None:
    asset = make_asset(server, keys["creator"])
    assert review(server, keys["reviewer"], asset["id"], "reject", "Off brand.").json()["review_state"] == "rejected"
    body = problem(review(server, keys["reviewer"], asset["id"], "approve"), 409, "invalid-transition")
    assert body["review_state"] == "rejected"
    problem(review(server, keys["reviewer"], asset["id"], "reject"), 409, "invalid-transition")
    problem(publish(server, keys["admin"], asset["id"]), 409, "invalid-transition")

    ok = make_asset(server, keys["creator"])
    assert review(server, keys["reviewer"], ok["id"], "approve").status_code == 200
    problem(review(server, keys["admin"], ok["id"], "approve"), 409, "invalid-transition")
    problem(review(server, keys["admin"], ok["id"], "reject"), 409, "invalid-transition")
    assert publish(server, keys["creator"], ok["id"]).status_code == 200
    problem(review(server, keys["admin"], ok["id"], "reject"), 409, "invalid-transition")


def test_wrong_role_is_403_and_other_tenant_is_404(server: Server, keys: dict[str, str]) -> None:
    asset = make_asset(server, keys["creator"])
    for role in ("creator", "viewer"):
        problem(review(server, keys[role], asset["id"], "approve"), 403, "forbidden")
    problem(publish(server, keys["viewer"], asset["id"]), 403, "forbidden")
    for role in ("other_admin", "other_reviewer"):
        problem(review(server, keys[role], asset["id"], "approve"), 404, "not-found")
    assert review(server, keys["reviewer"], asset["id"], "approve").status_code == 200
    problem(publish(server, keys["other_admin"], asset["id"]), 404, "not-found")
    with server.client(keys["creator"]) as c:
        assert c.get(f"/v1/assets/{asset['id']}").json()["review_state"] == "approved"


def test_the_key_that_made_an_asset_cannot_approve_it_unless_the_tenant_allows(
    server: Server, keys: dict[str, str]
) -> None:
    own = make_asset(server, keys["admin"])
    body = problem(review(server, keys["admin"], own["id"], "approve"), 403, "forbidden")
    assert "may not approve" in body["detail"]
    with server.client(keys["reviewer"]) as c:
        problem(c.patch("/v1/tenant", json={"allow_self_approval": True}), 403, "forbidden")
    with server.client() as admin:
        assert admin.get("/v1/tenant").json()["allow_self_approval"] is False
        problem(admin.patch("/v1/tenant", json={"allow_self_approval": "sometimes"}), 422, "validation")
        r = admin.patch("/v1/tenant", json={"allow_self_approval": True})
        assert r.status_code == 200 and r.json()["allow_self_approval"] is True
        try:
            assert review(server, keys["admin"], own["id"], "approve").json()["review_state"] == "approved"
        finally:
            admin.patch("/v1/tenant", json={"allow_self_approval": False})
    # Another tenant's setting is its own.
    with server.client(keys["other_admin"]) as other:
        assert other.get("/v1/tenant").json()["allow_self_approval"] is False


def test_nothing_unapproved_is_reachable_through_a_delivery_url(server: Server, keys: dict[str, str]) -> None:
    pending = make_asset(server, keys["creator"])
    rejected = make_asset(server, keys["creator"])
    review(server, keys["reviewer"], rejected["id"], "reject")
    approved = make_asset(server, keys["creator"])
    review(server, keys["reviewer"], approved["id"], "approve")
    published = make_asset(server, keys["creator"])
    review(server, keys["reviewer"], published["id"], "approve")
    url = publish(server, keys["creator"], published["id"]).json()["url"]
    query = parse_qs(urlsplit(url).query)

    # Even a signature made with the server's own key serves nothing that is not published; and the answer
    # is the same 403 as for a bad signature, so it tells nobody which assets exist or are published.
    signer = DeliverySigner(derive(load_server_secret(None, server.data_dir), "delivery"), 3600)
    for asset in (pending, rejected, approved):
        forged = signer.issue(asset["id"], asset["sha256"])
        problem(httpx.get(server.url + forged.path), 403, "forbidden")
        swapped = url.replace(published["id"], asset["id"])
        problem(httpx.get(swapped), 403, "forbidden")
    unknown = signer.issue("01ARZ3NDEKTSV4RRFFQ69G5FAV", "0" * 64)
    assert httpx.get(server.url + unknown.path).json()["detail"] == "not a valid delivery URL"

    # A URL changed in any part stops working; an expired one is gone.
    sig, expires = query["signature"][0], query["expires"][0]
    problem(httpx.get(url.replace(sig, sig[::-1])), 403, "forbidden")
    problem(httpx.get(url.replace(f"expires={expires}", f"expires={int(expires) + 60}")), 403, "forbidden")
    old = signer.issue(published["id"], published["sha256"])  # signed for the original, not the published file
    problem(httpx.get(server.url + old.path), 403, "forbidden")
    expired = DeliverySigner(derive(load_server_secret(None, server.data_dir), "delivery"), 0.001)
    with server.client() as c:
        sha = c.post(f"/v1/assets/{published['id']}/publish").json()["sha256"]
    stale = expired.issue(published["id"], sha)
    time.sleep(1.1)
    problem(httpx.get(server.url + stale.path), 410, "gone")
    for bad in ("expires=abc", "signature=zz", ""):
        r = httpx.get(f"{server.url}/v1/delivery/{published['id']}?{bad}")
        assert r.status_code == 422, (bad, r.status_code)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/delivery/..%2F..%2Fadmin.key?expires=1&signature=" + "0" * 64,
        "/v1/delivery/%2e%2e%2fsecret.key?expires=1&signature=" + "0" * 64,
        "/v1/delivery/%2e%2e?expires=1&signature=" + "0" * 64,
        "/v1/assets/..%2F..%2Fadmin.key/review",
        "/v1/assets/..%2Fsecret.key/publish",
        "/v1/assets/%2e%2e/publish",
    ],
)
def test_path_traversal_in_asset_ids_is_rejected(server: Server, keys: dict[str, str], path: str) -> None:
    delivery = path.startswith("/v1/delivery")
    with server.client(keys["admin"]) as c:
        body = {"decision": "approve"} if path.endswith("/review") else None
        r = c.request("GET" if delivery else "POST", path, json=body)
    # An encoded slash matches no route (404); an id that is not an id is no published asset (403).
    assert r.status_code in (403, 404), (path, r.status_code, r.text)
    assert b"BEGIN" not in r.content and len(r.content) < 2000


def test_oversized_and_malformed_review_bodies_are_4xx(server: Server, keys: dict[str, str]) -> None:
    asset = make_asset(server, keys["creator"])
    with server.client(keys["reviewer"]) as c:
        url = f"/v1/assets/{asset['id']}/review"
        problem(c.post(url, json={"decision": "approve", "comment": "x" * 5000}), 413, "payload-too-large")
        problem(c.post(url, json={"decision": "approve", "comment": "x" * 4001}), 422, "validation")
        problem(c.post(url, json={"decision": "maybe"}), 422, "validation")
        problem(c.post(url, json={"decision": "approve", "comment": "nul \u0000 byte"}), 422, "validation")
        problem(c.post(url, json={"decision": "approve", "extra": 1}), 422, "validation")
        problem(c.post(url, content=b"{not json", headers={"Content-Type": "application/json"}), 422, "validation")
        big = c.post(f"/v1/assets/{asset['id']}/publish", content=b"x" * 10_000)
        problem(big, 413, "payload-too-large")
        assert c.get(f"/v1/assets/{asset['id']}").json()["review_state"] == "pending_review"


def test_reviews_and_publications_are_events_and_audit_entries(server: Server, keys: dict[str, str]) -> None:
    asset = make_asset(server, keys["creator"])
    review(server, keys["reviewer"], asset["id"], "approve", "ok")
    publish(server, keys["creator"], asset["id"])
    with server.client(keys["viewer"]) as c, c.stream("GET", f"/v1/jobs/{asset['job_id']}/events") as r:
        types = [json.loads(line[6:])["type"] for line in r.iter_lines() if line.startswith("data: ")]
    assert types[-3:] == ["job.succeeded", "asset.approved", "asset.published"]

    from reelfoundry.store import Database, audit
    from reelfoundry.store.tables import AuditRow

    db = Database(f"sqlite:///{server.data_dir / 'reelfoundry.db'}")
    audit.Sealer(db, 1.0).seal_now()  # what the server wrote moments ago may still be pending
    try:
        with db.read() as session:
            assert audit.verify(session).ok
            rows = [r for r in session.query(AuditRow).order_by(AuditRow.seq) if r.subject == asset["id"]]
    finally:
        db.dispose()
    assert [r.action for r in rows] == ["asset.reviewed", "asset.published"]
    assert rows[0].data["comment_sha256"] == hashlib.sha256(b"ok").hexdigest()
    assert rows[0].data["reviewer_role"] == "reviewer" and rows[0].actor != rows[1].actor
