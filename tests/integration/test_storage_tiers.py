"""Storage tiers in a real server: a job's video is written to the hot tier, the server's lifecycle loop moves it
to the cold tier once unread long enough, it is still served, and its job's storage cost is re-priced."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from server import Server, server_env, wait_state

#: About 1.7 s without a read, checked every 0.3 s.
COLD_AFTER_DAYS = 0.00002


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("tiers") / "data"
    env = server_env(storage_tiering="true", storage_cold_after_days=COLD_AFTER_DAYS, storage_lifecycle_interval_s=0.3)
    srv = Server(data_dir, env).start()
    yield srv
    srv.stop()


def test_a_video_moves_to_cold_is_still_served_and_its_storage_is_repriced(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": "Tiered", "model": "template", "num_frames": 6}).json()
        done = wait_state(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        asset_id, tenant = done["asset_id"], done["tenant_id"]
        hot = server.data_dir / "hot" / tenant / f"{asset_id}.mp4"
        cold = server.data_dir / "media" / tenant / f"{asset_id}.mp4"
        before = Decimal(done["cost"]["storage_usd"])
        assert before > 0
        deadline = time.monotonic() + 30
        while hot.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not hot.exists() and cold.is_file()
        got = c.get(f"/v1/assets/{asset_id}/content")
        assert got.status_code == 200 and got.content == cold.read_bytes()
        part = c.get(f"/v1/assets/{asset_id}/content", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == got.content[:100]
        cost = c.get(f"/v1/jobs/{job['id']}").json()["cost"]
    # moved about 2 s after the job ended: nearly the whole retention at the cold rate (S3 Standard-IA $0.0125
    # against local disk $0.08 per GB-month)
    after = Decimal(cost["storage_usd"])
    all_cold = before * Decimal("0.0125") / Decimal("0.08")
    assert all_cold - Decimal("1e-10") <= after < all_cold * Decimal("1.01")  # (stored to 1e-10 dollars)
    parts = ("compute_usd", "idle_usd", "storage_usd", "egress_usd")
    assert Decimal(cost["total_usd"]) == sum(Decimal(cost[k]) for k in parts)
