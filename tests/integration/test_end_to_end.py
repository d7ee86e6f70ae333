"""A template job through a real server: submit over HTTP, follow SSE, download, decode."""

from __future__ import annotations

import io

import av
import httpx
from server import Server, sse_events, wait_state


def test_submit_follow_download_decode(server: Server) -> None:
    with server.client() as c:
        r = c.post(
            "/v1/jobs", json={"prompt": "Hello", "model": "template", "num_frames": 36, "width": 320, "height": 180}
        )
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["state"] == "queued" and r.headers["location"] == f"/v1/jobs/{job['id']}"
        types = [ev["type"] for ev in sse_events(c, job["id"])]
        assert types[0] == "job.queued" and types[-1] == "job.succeeded"
        assert "job.running" in types and "job.progress" in types
        done = c.get(f"/v1/jobs/{job['id']}").json()
        assert done["state"] == "succeeded" and done["progress"] == 1.0
        asset = c.get(f"/v1/assets/{done['asset_id']}").json()
        assert (asset["width"], asset["height"], asset["num_frames"], asset["codec"]) == (320, 180, 36, "h264")
        content = c.get(f"/v1/assets/{done['asset_id']}/content")
        assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
        assert len(content.content) == asset["bytes"]
    with av.open(io.BytesIO(content.content)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 36
    assert (frames[0].width, frames[0].height) == (320, 180)


def test_range_etag_and_poster(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": "Ranges", "model": "template", "num_frames": 12}).json()
        asset_id = wait_state(c, job["id"], {"succeeded"})["asset_id"]
        url = f"/v1/assets/{asset_id}/content"
        full = c.get(url)
        part = c.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == full.content[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(full.content)}"
        tail = c.get(url, headers={"Range": "bytes=-5"})
        assert tail.content == full.content[-5:]
        assert c.get(url, headers={"If-None-Match": full.headers["etag"]}).status_code == 304
        beyond = c.get(url, headers={"Range": f"bytes={len(full.content)}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(full.content)}"
        poster = c.get(f"/v1/assets/{asset_id}/poster")
        assert poster.status_code == 200 and poster.content[:3] == b"\xff\xd8\xff"


def test_health_ready_and_openapi(server: Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{server.url}/readyz").json()["checks"] == {"database": "ok", "engine": "ok"}
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/jobs" in spec["paths"] and "/v1/jobs/{job_id}/events" in spec["paths"]
    assert httpx.get(f"{server.url}/v1/schemas/VideoRequest").json()["required"] == ["prompt"]
