"""The review UI checks the same roles as the API, for every role, and charges its downloads as egress.

A ``worker`` key (which /v1/assets refuses) once signed in to /ui/, saw the queue and prompts, and
downloaded originals and posters. Each role here signs in through the form (login cookie + CSRF field) and
tries the queue, the original, the poster and the review and publish forms.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from server import Server, server_env, wait_state

from reelfoundry.server_secret import derive, load_server_secret
from reelfoundry.store import Database
from reelfoundry.store import keys as keystore
from reelfoundry.web.session import SessionSigner

ROLES = ["admin", "creator", "reviewer", "viewer", "worker"]
#: What each role may do in the UI: the API's Action table (governance/roles.py), written out.
MAY = {
    "admin": {"read", "review", "publish"},
    "creator": {"read", "publish"},
    "reviewer": {"read", "review", "publish"},
    "viewer": {"read"},
    "worker": set(),
}
PROMPT = "A slow blue square, for the role checks"
REFUSED = "this key's role (worker) may not use the review ui"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("ui-roles") / "data"
    srv = Server(data_dir, server_env()).start()
    yield srv
    srv.stop()


def make_asset(server: Server, key: str) -> dict[str, Any]:
    """A finished template job's asset (pending review), submitted with ``key``."""
    with server.client(key) as c:
        r = c.post("/v1/jobs", json={"prompt": PROMPT, "model": "template", "num_frames": 8})
        assert r.status_code == 201, r.text
        done = wait_state(c, r.json()["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        asset: dict[str, Any] = c.get(f"/v1/assets/{done['asset_id']}").json()
        return asset


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, Any]:
    """A key of every role (made by the admin key), a pending asset and an approved one (both a creator's)."""
    with server.client() as admin:
        made = {}
        for role in ROLES:
            r = admin.post("/v1/keys", json={"name": f"ui-{role}", "role": role})
            assert r.status_code == 201, r.text
            made[role] = r.json()
    keys = {role: k["secret"] for role, k in made.items()}
    pending = make_asset(server, keys["creator"])
    approved = make_asset(server, keys["creator"])
    with server.client(keys["reviewer"]) as c:
        r = c.post(f"/v1/assets/{approved['id']}/review", json={"decision": "approve", "comment": ""})
        assert r.status_code == 200, r.text
    with server.client() as c:
        original = c.get(f"/v1/assets/{pending['id']}/content").content
    return {
        "keys": keys,
        "key_ids": {role: k["id"] for role, k in made.items()},
        "pending": pending,
        "approved": approved,
        "original": original,
    }


def sign_in(ui: httpx.Client, key: str) -> httpx.Response:
    """What a browser does: get the form (its login cookie and CSRF field), post the key."""
    form = ui.get("/ui/login")
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text)
    assert form.status_code == 200 and match, form.text
    return ui.post("/ui/login", data={"api_key": key, "csrf": match.group(1), "next": "/ui/"})


def session_made_before(server: Server, key_id: str) -> str:
    """A valid session cookie for ``key_id``, as the server would have issued one (e.g. before the role check)."""
    db = Database(f"sqlite:///{server.data_dir / 'reelfoundry.db'}")
    try:
        with db.read() as session:
            found = keystore.principal_by_id(session, key_id)
    finally:
        db.dispose()
    assert found is not None
    signer = SessionSigner(derive(load_server_secret(None, server.data_dir), "ui-session"))
    return signer.issue(key_id, found[1])


def csrf_of(server: Server, cookie: str) -> str:
    """The CSRF token forms of the session ``cookie`` carry (so a refusal is about the role, not the token)."""
    return SessionSigner(derive(load_server_secret(None, server.data_dir), "ui-session")).csrf(cookie)


def ui_client(server: Server, world: dict[str, Any], role: str) -> tuple[httpx.Client, str]:
    """A client holding ``role``'s session cookie and its CSRF token.

    Roles that may read sign in through the form. A key that may not gets no session from the form (checked
    here); it is given one made the old way, to show such a cookie opens nothing either.
    """
    ui = httpx.Client(base_url=server.url)
    r = sign_in(ui, world["keys"][role])
    if "read" in MAY[role]:
        assert r.status_code == 303 and r.headers["location"] == "/ui/", (r.status_code, r.text)
        cookie = ui.cookies["rf_session"]
    else:
        assert r.status_code == 403, r.text
        assert "rf_session" not in r.cookies and "rf_session" not in ui.cookies
        assert REFUSED.replace("worker", role) in html.unescape(r.text).lower(), r.text
        assert '<form method="post" action="/ui/login">' in r.text  # the login page, to try another key
        ui.close()
        cookie = session_made_before(server, world["key_ids"][role])
        ui = httpx.Client(base_url=server.url, headers={"Cookie": f"rf_session={cookie}"})
    return ui, csrf_of(server, cookie)


def refused(r: httpx.Response, role: str, original: bytes) -> None:
    """A 403 page and nothing of the file."""
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    assert original[:256] not in r.content and PROMPT not in r.text


@pytest.mark.parametrize("role", ROLES)
def test_the_queue_and_the_files_follow_the_roles_read_permission(
    server: Server, world: dict[str, Any], role: str
) -> None:
    asset = world["pending"]
    ui, _ = ui_client(server, world, role)
    with closing(ui):
        queue = ui.get("/ui/", params={"state": "all"})
        content = ui.get(f"/ui/assets/{asset['id']}/content")
        poster = ui.get(f"/ui/assets/{asset['id']}/poster")
    if "read" in MAY[role]:
        assert queue.status_code == 200 and f'id="asset-{asset["id"]}"' in queue.text and PROMPT in queue.text
        assert content.status_code == 200 and content.content == world["original"]
        assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
        assert poster.content[:2] == b"\xff\xd8"
    else:
        for r in (queue, content, poster):
            refused(r, role, world["original"])
        assert REFUSED.replace("worker", role) in html.unescape(queue.text).lower()


@pytest.mark.parametrize("role", ROLES)
def test_the_review_form_follows_the_roles_review_permission(server: Server, world: dict[str, Any], role: str) -> None:
    allowed = "review" in MAY[role]
    asset = make_asset(server, world["keys"]["creator"]) if allowed else world["pending"]
    ui, csrf = ui_client(server, world, role)
    with closing(ui):
        form = {"decision": "approve", "comment": f"by the {role}", "next": "/ui/", "csrf": csrf}
        r = ui.post(f"/ui/assets/{asset['id']}/review", data=form)
    with server.client() as api:
        after = api.get(f"/v1/assets/{asset['id']}").json()
    if allowed:
        assert r.status_code == 303 and f"reviewed={asset['id']}" in r.headers["location"], r.text
        assert after["review_state"] == "approved" and after["review"]["reviewer_role"] == role
    else:
        refused(r, role, world["original"])
        assert after["review_state"] == "pending_review"


@pytest.mark.parametrize("role", ROLES)
def test_the_publish_form_follows_the_roles_publish_permission(
    server: Server, world: dict[str, Any], role: str
) -> None:
    asset = world["approved"]
    ui, csrf = ui_client(server, world, role)
    with closing(ui):
        r = ui.post(f"/ui/assets/{asset['id']}/publish", data={"next": "/ui/", "csrf": csrf})
    if "publish" in MAY[role]:
        assert r.status_code == 200 and f"/v1/delivery/{asset['id']}?" in html.unescape(r.text), r.text
    else:
        refused(r, role, world["original"])
        assert "/v1/delivery/" not in r.text


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll until ``condition()`` is truthy (a deadline for a hang, not a speed test)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def test_downloads_through_the_ui_are_charged_to_the_jobs_egress(server: Server, world: dict[str, Any]) -> None:
    asset = world["pending"]

    def egress() -> int:
        with server.client() as api:
            job = api.get(f"/v1/jobs/{asset['job_id']}").json()
        return int(job["cost"]["egress_bytes"])

    before = egress()
    ui, _ = ui_client(server, world, "viewer")
    with closing(ui):
        whole = ui.get(f"/ui/assets/{asset['id']}/content")
        part = ui.get(f"/ui/assets/{asset['id']}/content", headers={"Range": "bytes=0-99"})
    assert whole.status_code == 200 and part.status_code == 206 and len(part.content) == 100
    sent = len(whole.content) + 100
    # The charge is written as the last chunk goes out, so it may land just after the client has it all.
    wait_for(lambda: egress() >= before + sent, f"{sent} egress bytes on job {asset['job_id']}")
    assert egress() == before + sent
