"""The DAM through ``reelfoundry`` against a real server on PostgreSQL: upload (image and MP4, near duplicates),
tag, edit, search (filters, full text, semantic), collections and XMP, with one-line errors and exit code 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from server import Server, server_env, wait_state

from reelfoundry.assets import xmp
from reelfoundry.media.encode import encode_mp4


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory, pg_admin: str) -> Iterator[Server]:
    """One server on a fresh PostgreSQL database (the ``pg_url`` fixture is per test, so made here)."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"dam_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = pg_admin.rsplit("/", 1)[0] + f"/{name}"
    data_dir: Path = tmp_path_factory.mktemp("dam") / "data"
    srv = Server(data_dir, server_env(database_url=url, job_timeout_s=60)).start()
    yield srv
    srv.stop()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def rf(srv: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reelfoundry", *args, "--server", srv.url, "--api-key", srv.admin_key],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def ok(srv: Server, *args: str) -> Any:
    r = rf(srv, *args, "--json")
    assert r.returncode == 0, (args, r.stderr)
    return json.loads(r.stdout)


def _picture(path: Path, size: int, fmt: str) -> Path:
    img = Image.new("RGB", (size, size), (20, 40, 160))
    draw = ImageDraw.Draw(img)
    draw.ellipse((size // 8, size // 8, size // 2, size // 2), fill=(250, 200, 0))
    draw.rectangle((size // 2, size // 2, size - size // 8, size - size // 10), fill=(230, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    path.write_bytes(buf.getvalue())
    return path


def test_the_dam_from_the_command_line(pg_server: Server, tmp_path: Path) -> None:
    srv = pg_server
    with srv.client() as c:
        job = c.post(
            "/v1/jobs",
            json={
                "prompt": "Quarterly results for the spring launch",
                "model": "template",
                "num_frames": 4,
                "fps": 4,
                "width": 160,
                "height": 96,
            },
        )
        assert job.status_code == 201, job.text
        made = wait_state(c, job.json()["id"], {"succeeded", "failed"})
        assert made["state"] == "succeeded", made
    generated = made["asset_id"]

    logo = ok(
        srv,
        "assets",
        "upload",
        str(_picture(tmp_path / "logo.png", 128, "PNG")),
        "--title",
        "Acme logo",
        "--brand",
        "Acme",
        "--tag",
        "Logo",
    )
    assert (logo["title"], logo["brand"], logo["tags"], logo["near_duplicates"]) == ("Acme logo", "Acme", ["logo"], [])
    copy = ok(srv, "assets", "upload", str(_picture(tmp_path / "copy.jpg", 100, "JPEG")), "--brand", "Acme")
    assert copy["near_duplicates"] == [logo["id"]]
    frames = [np.full((48, 64, 3), (10 * i, 90, 200), dtype=np.uint8) for i in range(6)]
    encode_mp4(frames, 6, tmp_path / "clip.mp4")
    clip = ok(srv, "assets", "upload", str(tmp_path / "clip.mp4"))
    assert (clip["media_type"], clip["num_frames"], clip["origin"]) == ("video/mp4", 6, "uploaded")

    assert [a["id"] for a in ok(srv, "assets", "search", "quarterly launch")] == [generated]
    assert {a["id"] for a in ok(srv, "assets", "search", "--brand", "Acme")} == {logo["id"], copy["id"]}
    assert [a["id"] for a in ok(srv, "assets", "search", "logo", "--origin", "uploaded")] == [logo["id"]]
    assert ok(srv, "assets", "search", "--model", "template")[0]["id"] == generated
    semantic = ok(srv, "assets", "search", "financial earnings report", "--semantic", "--limit", "3")
    assert semantic[0]["id"] == generated

    suggested = ok(srv, "assets", "show", generated)["suggested_tags"]
    assert "quarterly" in suggested
    tagged = ok(srv, "assets", "tag", generated, "--accept", "quarterly", "--add", "finance")
    assert tagged["tags"] == ["finance", "quarterly"] and "quarterly" not in tagged["suggested_tags"]
    assert [a["id"] for a in ok(srv, "assets", "search", "--tag", "finance")] == [generated]
    edited = ok(
        srv,
        "assets",
        "edit",
        logo["id"],
        "--licence",
        "internal",
        "--restrict",
        "no-training",
        "--rights-expire",
        "2027-01-31T00:00:00",
    )
    assert edited["licence"] == "internal" and edited["rights_expires_at"].startswith("2027-01-31T00:00:00")

    coll = ok(srv, "collections", "create", "brand-kit", "--description", "for the LoRA")
    assert ok(srv, "collections", "add", coll["id"], logo["id"], clip["id"])["asset_count"] == 2
    assert {a["id"] for a in ok(srv, "assets", "search", "--collection", coll["id"])} == {logo["id"], clip["id"]}
    assert ok(srv, "collections", "remove", coll["id"], clip["id"])["asset_count"] == 1
    assert [(c["name"], c["asset_count"]) for c in ok(srv, "collections", "list")] == [("brand-kit", 1)]

    out = tmp_path / "logo.xmp"
    assert rf(srv, "assets", "xmp", generated, "-o", str(out)).returncode == 0
    root = ET.fromstring(out.read_text().split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    assert root.findtext(f".//{{{xmp.NS['Iptc4xmpExt']}}}DigitalSourceType") == xmp.ALGORITHMIC  # a template render

    for args, words in (
        (("assets", "tag", "not-an-id", "--add", "x"), "not a valid asset id"),
        (("assets", "tag", generated, "--add", "<b>"), "not a tag"),
        (("collections", "create", "brand-kit"), "already exists"),
        (("assets", "upload", str(tmp_path / "notes.txt")), "expected a .png"),
    ):
        r = rf(srv, *args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_the_typed_clients_edit_search_and_collect(pg_server: Server, tmp_path: Path) -> None:
    import asyncio

    from reelfoundry.client import ApiError, AsyncClient, Client

    png = _picture(tmp_path / "mark.png", 64, "PNG").read_bytes()
    with Client(pg_server.url, api_key=pg_server.admin_key) as c:
        r = c.request("POST", "/v1/assets", content=png, headers={"Content-Type": "image/png"})
        asset_id = r.json()["id"]
        edited = c.assets.update(asset_id, title="Typed client mark", tags=["Typed"], brand="Globex")
        assert (edited.title, edited.tags, edited.brand) == ("Typed client mark", ["typed"], "Globex")
        assert c.assets.update(asset_id, brand=None).brand is None
        assert [a.id for a in c.assets.search("typed client")] == [asset_id]
        assert [a.id for a in c.assets.search(tag="typed", origin="uploaded")] == [asset_id]
        coll = c.collections.create("typed-picks")
        assert c.collections.add(coll.id, [asset_id, asset_id]).asset_count == 1
        assert [x.id for x in c.collections.list() if x.name == "typed-picks"] == [coll.id]
        with pytest.raises(ApiError) as caught:
            c.assets.update(asset_id, tags=["<b>"])
        assert caught.value.status == 422

    async def run() -> None:
        async with AsyncClient(pg_server.url, api_key=pg_server.admin_key) as ac:
            found = await ac.assets.search("mark", collection=coll.id)
            assert [a.id for a in found] == [asset_id]
            assert (await ac.collections.remove(coll.id, asset_id)).asset_count == 0
            await ac.collections.delete(coll.id)
            with pytest.raises(ApiError):
                await ac.collections.get(coll.id)

    asyncio.run(run())
