"""The issue's own words, run: PostgreSQL for state and S3 (SeaweedFS) for media make `serve` a node that keeps
nothing of value on its disk — a template job succeeds, its content is served from S3 (the object is there,
the local media directory stays empty), and a published rendition is delivered from S3 too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from seaweed import BUCKET, SeaweedFS
from server import Server, server_env, wait_state

pytestmark = [pytest.mark.scaleout, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def s3_server(seaweedfs: SeaweedFS, pg_url: str, s3_prefix: str, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    env = server_env(
        database_url=pg_url,
        storage_url=f"s3://{BUCKET}/{s3_prefix}",
        s3_endpoint_url=seaweedfs.endpoint,
    )
    srv = Server(tmp_path / "data", env).start()
    yield srv, s3_prefix
    srv.stop()


def test_a_template_job_is_stored_in_and_served_from_s3(s3_server: tuple[Server, str], seaweedfs: SeaweedFS) -> None:
    srv, prefix = s3_server
    with srv.client() as c:
        r = c.post("/v1/jobs", json={"prompt": "Stored in S3", "model": "template", "num_frames": 12})
        assert r.status_code == 201, r.text
        job = wait_state(c, r.json()["id"], {"succeeded", "failed"})
        assert job["state"] == "succeeded", job
        asset = c.get(f"/v1/assets/{job['asset_id']}").json()
        content = c.get(f"/v1/assets/{asset['id']}/content")
        assert content.status_code == 200 and len(content.content) == asset["bytes"]
        part = c.get(f"/v1/assets/{asset['id']}/content", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == content.content[:100]
        assert c.get(f"/v1/assets/{asset['id']}/poster").headers["content-type"] == "image/jpeg"
    s3 = seaweedfs.client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])]
    assert any(k.endswith(f"{asset['id']}.mp4") for k in keys), keys
    body = s3.get_object(Bucket=BUCKET, Key=next(k for k in keys if k.endswith(".mp4")))["Body"].read()
    assert body == content.content
    media = srv.data_dir / "media"
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))
