"""The review UI's search box and collection pages (in-process app, SQLite)."""

from __future__ import annotations

import io
import re

from fastapi.testclient import TestClient
from inprocess import AppFactory
from PIL import Image


def _sign_in(client: TestClient, key: str) -> str:
    """Sign the client in to the UI; the CSRF token of its session."""
    client.headers.pop("Authorization")
    form = client.get("/ui/login")
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text)
    assert match, form.text
    signed_in = client.post(
        "/ui/login", data={"api_key": key, "csrf": match.group(1), "next": "/ui/"}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    page = client.get("/ui/collections")
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert token, page.text
    return token.group(1)


def _upload(client: TestClient, key: str, colour: tuple[int, int, int], title: str) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(buf, format="PNG")
    auth = {"Authorization": f"Bearer {key}"}
    asset = client.post("/v1/assets", content=buf.getvalue(), headers={**auth, "Content-Type": "image/png"}).json()
    client.patch(f"/v1/assets/{asset['id']}", json={"title": title, "tags": ["ui"]}, headers=auth)
    return str(asset["id"])


def _shown(html: str) -> set[str]:
    return set(re.findall(r'id="asset-([0-9A-Z]{26})"', html))


def test_the_queue_searches_and_collections_gather_assets(make_app: AppFactory) -> None:
    client, key = make_app()
    sunrise = _upload(client, key, (250, 160, 40), "Sunrise over the harbour")
    logo = _upload(client, key, (20, 20, 200), "Blue logo & mark")
    csrf = _sign_in(client, key)
    assert _shown(client.get("/ui/", params={"state": "all"}).text) == {sunrise, logo}
    found = client.get("/ui/", params={"state": "all", "q": "harbour"})
    assert found.status_code == 200 and _shown(found.text) == {sunrise}
    assert 'value="harbour"' in found.text and "Blue logo &amp; mark" not in found.text
    assert _shown(client.get("/ui/", params={"state": "all", "q": "\x00x"}).text) == {sunrise, logo}  # refused: all

    made = client.post("/ui/collections", data={"csrf": csrf, "name": "brand <kit>"}, follow_redirects=False)
    assert made.status_code == 303
    page = client.get(made.headers["location"])
    assert "Collection brand &lt;kit&gt; created." in page.text
    coll_id = re.search(r'id="collection-([0-9A-Z]{26})"', page.text)
    assert coll_id
    added = client.post(
        f"/ui/collections/{coll_id.group(1)}/assets",
        data={"csrf": csrf, "asset_id": logo, "next": "/ui/?state=all"},
        follow_redirects=False,
    )
    assert added.status_code == 303 and "added_to=" in added.headers["location"]
    assert "Added to collection brand &lt;kit&gt;." in client.get(added.headers["location"]).text
    inside = client.get("/ui/", params={"state": "all", "collection": coll_id.group(1)})
    assert _shown(inside.text) == {logo}
    assert re.search(rf'<tr id="collection-{coll_id.group(1)}">.*?<td>1</td>', client.get("/ui/collections").text, re.S)
    forged = client.post("/ui/collections", data={"csrf": "0" * 64, "name": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    again = client.post("/ui/collections", data={"csrf": csrf, "name": "brand <kit>"}, follow_redirects=False)
    assert again.status_code == 409 and "already exists" in again.text
