"""Image uploads feed template image layers; bad uploads are refused cleanly."""

from __future__ import annotations

import hashlib
import io
import stat

import numpy as np
from PIL import Image
from server import Server, wait_state


def _png(width: int = 96, height: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_upload_then_render_with_pan_and_zoom(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/assets", content=_png(), headers={"Content-Type": "image/png"}, params={"project": "brand"})
        assert r.status_code == 201, r.text
        image = r.json()
        assert (image["media_type"], image["width"], image["height"], image["project"]) == (
            "image/png",
            96,
            64,
            "brand",
        )
        spec = {
            "variables": {"client_name": "Ada"},
            "scenes": [
                {
                    "duration_s": 1,
                    "layers": [
                        {"type": "image", "input": 0, "zoom_from": 1, "zoom_to": 1.5, "pan_to": [0.2, 0.3]},
                        {"type": "text", "text": "Hi {client_name}", "fade_in_s": 0.3},
                    ],
                }
            ],
        }
        job = c.post(
            "/v1/jobs", json={"prompt": "x", "model": "template", "fps": 12, "template": spec, "inputs": [image["id"]]}
        )
        assert job.status_code == 201, job.text
        done = wait_state(c, job.json()["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        assert c.get(f"/v1/assets/{done['asset_id']}").json()["num_frames"] == 12
        assert c.get(f"/v1/assets/{image['id']}/content").content == _png()


def test_bad_uploads(server: Server) -> None:
    with server.client() as c:
        cases = [
            (b"not an image", "image/png", 422),
            (_png(), "text/plain", 415),
            (_png(), "image/jpeg", 422),
            (b"\x89PNG" + b"0" * 2_100_000, "image/png", 413),
        ]
        before = len(c.get("/v1/assets", params={"limit": 200}).json()["items"])
        for body, ctype, status in cases:
            r = c.post("/v1/assets", content=body, headers={"Content-Type": ctype})
            assert r.status_code == status, (ctype, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        assert len(c.get("/v1/assets", params={"limit": 200}).json()["items"]) == before


def test_a_video_is_not_an_image_input(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": "v", "model": "template", "num_frames": 2}).json()
        video = wait_state(c, job["id"], {"succeeded"})["asset_id"]
        spec = {"scenes": [{"duration_s": 1, "layers": [{"type": "image", "input": 0}]}]}
        r = c.post("/v1/jobs", json={"prompt": "x", "model": "template", "template": spec, "inputs": [video]})
        assert r.status_code == 422 and r.json()["parameter"] == "inputs", r.text


def test_a_streamed_upload_is_stored_whole_with_its_digest_and_no_temp_file_left(server: Server) -> None:
    body = _png(300, 200)
    with server.client() as c:
        # Sent in pieces without a Content-Length: the server streams it to <data_dir>/tmp, then moves it.
        r = c.post("/v1/assets", content=iter([body[:1000], body[1000:]]), headers={"Content-Type": "image/png"})
        assert r.status_code == 201, r.text
        asset = r.json()
        assert (asset["bytes"], asset["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        assert (asset["width"], asset["height"]) == (300, 200)
        assert c.get(f"/v1/assets/{asset['id']}/content").content == body
    tmp = server.data_dir / "tmp"
    assert tmp.is_dir() and stat.S_IMODE(tmp.stat().st_mode) == 0o700
    assert list(tmp.iterdir()) == []
