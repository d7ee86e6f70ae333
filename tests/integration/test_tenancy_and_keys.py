"""Keys, roles and tenant isolation: a key never sees another tenant's rows."""

from __future__ import annotations

import httpx
import pytest
from server import Server, wait_state


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, str]:
    """Tenant A (operator) with a finished job; tenant B's admin and viewer keys; A's creator and viewer."""
    with server.client() as admin:

        def key(role: str, tenant: str | None = None) -> str:
            body = {"name": f"{role}-{tenant}", "role": role, **({"tenant": tenant} if tenant else {})}
            r = admin.post("/v1/keys", json=body)
            assert r.status_code == 201, r.text
            return str(r.json()["secret"])

        keys = {
            "b_admin": key("admin", "tenant-b"),
            "b_viewer": key("viewer", "tenant-b"),
            "a_creator": key("creator"),
            "a_viewer": key("viewer"),
        }
        job = admin.post("/v1/jobs", json={"prompt": "mine", "model": "template", "num_frames": 6}).json()
        done = wait_state(admin, job["id"], {"succeeded"})
    return {**keys, "job": job["id"], "asset": done["asset_id"], "a_admin": server.admin_key}


ENDPOINTS = [
    ("GET", "/v1/jobs/{job}"),
    ("POST", "/v1/jobs/{job}/cancel"),
    ("GET", "/v1/jobs/{job}/events"),
    ("GET", "/v1/assets/{asset}"),
    ("GET", "/v1/assets/{asset}/content"),
    ("GET", "/v1/assets/{asset}/poster"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_other_tenant_gets_404_everywhere(server: Server, world: dict[str, str], method: str, path: str) -> None:
    url = path.format(**world)
    with server.client(world["b_admin"]) as b:
        r = b.request(method, url)
    assert r.status_code == 404, (url, r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/not-found")


def test_other_tenant_lists_are_empty_and_keys_cannot_be_revoked(server: Server, world: dict[str, str]) -> None:
    with server.client(world["b_admin"]) as b:
        assert b.get("/v1/jobs").json()["items"] == []
        assert b.get("/v1/assets").json()["items"] == []
        assert b.get("/v1/webhooks/deliveries").json()["items"] == []
        a_keys = server.client().get("/v1/keys").json()["items"]
        assert all(k["tenant"] == "default" for k in a_keys)
        assert b.delete(f"/v1/keys/{a_keys[0]['id']}").status_code == 404
        assert {k["tenant"] for k in b.get("/v1/keys").json()["items"]} == {"tenant-b"}
        assert b.post("/v1/keys", json={"name": "x", "role": "admin", "tenant": "default"}).status_code == 403


def test_roles(server: Server, world: dict[str, str]) -> None:
    with server.client(world["a_viewer"]) as viewer:
        assert viewer.get(f"/v1/jobs/{world['job']}").status_code == 200
        r = viewer.post("/v1/jobs", json={"prompt": "x", "model": "template"})
        assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
        assert viewer.post("/v1/keys", json={"name": "x", "role": "admin"}).status_code == 403
    with server.client(world["a_creator"]) as creator:
        assert creator.post("/v1/jobs", json={"prompt": "x", "model": "template", "num_frames": 2}).status_code == 201
        assert creator.get("/v1/keys").status_code == 403


def test_bad_and_revoked_keys_get_401(server: Server, world: dict[str, str]) -> None:
    for header in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer rf_01ARZ3NDEKTSV4RRFFQ69G5FAV_wrong"},
    ):
        r = httpx.get(f"{server.url}/v1/jobs", headers=header)
        assert r.status_code == 401 and r.json()["type"].endswith("/unauthenticated")
    with server.client() as admin:
        created = admin.post("/v1/keys", json={"name": "temp", "role": "viewer"}).json()
        with server.client(created["secret"]) as temp:
            assert temp.get("/v1/jobs").status_code == 200
            revoked = admin.delete(f"/v1/keys/{created['id']}").json()
            assert revoked["revoked_at"] is not None and "secret" not in revoked
            assert temp.get("/v1/jobs").status_code == 401


def test_key_secrets_are_stored_hashed(server: Server, world: dict[str, str]) -> None:
    db = (server.data_dir / "reelfoundry.db").read_bytes()
    wal = server.data_dir / "reelfoundry.db-wal"
    raw = db + (wal.read_bytes() if wal.exists() else b"")
    for name in ("b_admin", "a_creator"):
        assert world[name].split("_", 2)[2].encode() not in raw


def test_other_tenant_cannot_use_an_upload_as_input(server: Server, world: dict[str, str]) -> None:
    from test_uploads import _png

    with server.client() as a:
        image = a.post("/v1/assets", content=_png(), headers={"Content-Type": "image/png"}).json()
    with server.client(world["b_admin"]) as b:
        assert b.get(f"/v1/assets/{image['id']}/content").status_code == 404
        r = b.post("/v1/jobs", json={"prompt": "x", "model": "template", "inputs": [image["id"]]})
        assert r.status_code == 422 and r.json()["parameter"] == "inputs[0]"
        assert b.post("/v1/assets", content=_png(), headers={"Content-Type": "image/png"}).status_code == 201
    with server.client(world["a_viewer"]) as viewer:
        assert viewer.post("/v1/assets", content=_png(), headers={"Content-Type": "image/png"}).status_code == 403


def test_key_secrets_never_appear_after_creation(server: Server, world: dict[str, str]) -> None:
    """A secret exists in clear only in the 201 that created it: not in lists, reads, the audit or server log."""
    secrets = [world[k] for k in ("b_admin", "b_viewer", "a_creator", "a_viewer")]
    seen: list[str] = []
    with server.client() as admin:
        for path in ("/v1/keys", "/v1/jobs", f"/v1/jobs/{world['job']}", f"/v1/jobs/{world['job']}/events"):
            seen.append(admin.get(path).text)
        bad = admin.get("/v1/jobs", headers={"Authorization": f"Bearer {world['a_viewer']}x"})
        assert bad.status_code == 401
        seen.append(bad.text)
    with server.client(world["b_admin"]) as b:
        seen.append(b.get("/v1/keys").text)
    log = (server.data_dir.parent / f"{server.data_dir.name}-server.log").read_text(errors="replace")
    from reelfoundry.store import Database, audit
    from reelfoundry.store.tables import AuditRow

    db = Database(f"sqlite:///{server.data_dir / 'reelfoundry.db'}")
    audit.Sealer(db, 1.0).seal_now()  # what the server wrote moments ago may still be pending
    try:
        with db.read() as session:
            seen.extend(str((r.subject, r.data)) for r in session.query(AuditRow))
    finally:
        db.dispose()
    for secret in secrets:
        token_secret = secret.split("_", 2)[2]  # rf_<key id>_<secret>: the id may appear, the secret may not
        assert all(token_secret not in text for text in [*seen, log]), "a key secret leaked"
