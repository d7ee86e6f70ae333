"""A job on a vendor-hosted model through a real server: its output takes the local path (C2PA, review, cost).

The vendors' clouds cannot be reached from here, so the server talks to a local fake of Replicate's API
(tests/fakes/vendors.py) on 127.0.0.1, which the allow-list admits as an output host.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from faulty_backend import CARD as FAULTY_CARD
from server import Server, server_env, wait_state

from reelfoundry.provenance.credentials import CA_FILE, DEV_DIR
from reelfoundry.provenance.manifest import TRAINED_ALGORITHMIC, verify

sys.path.insert(0, str(Path(__file__).parents[1] / "fakes"))
from vendors import FakeReplicate, FakeVendor, Running, tiny_mp4

PRICE = Decimal("0.04")
TOKEN = "r8_integration"
CARD = {
    "id": "replicate-video",
    "name": "A video model on Replicate (fake)",
    "backend": "replicate",
    "hosting": {"vendor": "replicate", "region": "us"},
    "price_usd_per_video_second": str(PRICE),
    "default_num_frames": 12,
    "default_fps": 8,
    "default_width": 32,
    "default_height": 32,
    "max_num_frames": 64,
    "max_width": 64,
    "max_height": 64,
    "speed": {"api": {"s_per_step_mpf": 0.0, "overhead_s": 2.0, "source": "assumed"}},
    "quality": {"score": 0.9, "source": "assumed"},
    "options": {"model": "acme/video-1", "input_map": {"num_frames": "num_frames"}},
}


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeVendor]:
    mp4 = tiny_mp4(tmp_path_factory.mktemp("vendor") / "out.mp4")  # 12 frames at 8 fps: 1.5 s
    with Running(FakeReplicate(output=mp4, key=TOKEN)) as fake:
        yield fake


@pytest.fixture(scope="module")
def vendor_server(tmp_path_factory: pytest.TempPathFactory, vendor: FakeVendor) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("vendor-server")
    models = root / "models.yaml"
    models.write_text(yaml.safe_dump({"models": [FAULTY_CARD, CARD]}))
    env = server_env(
        job_timeout_s=60,
        replicate_api_token=TOKEN,
        replicate_base_url=vendor.url,
        vendor_poll_interval_s=0.05,
        webhook_allowed_hosts=json.dumps(["127.0.0.1"]),
    )
    env["REELFOUNDRY_MODELS_FILE"] = str(models)
    env.pop("REELFOUNDRY_EXTRA_MODELS", None)
    srv = Server(root / "data", env).start()
    yield srv
    srv.stop()


def test_a_vendor_job_is_signed_reviewed_and_costs_the_vendors_price(vendor_server: Server, vendor: FakeVendor) -> None:
    body = {"prompt": "a paper boat on a pond", "model": "replicate-video", "num_frames": 12, "seed": 3}
    with vendor_server.client() as c:
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 201, r.text
        done = wait_state(c, r.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=60)
        assert done["state"] == "succeeded", done.get("error")
        asset = c.get(f"/v1/assets/{done['asset_id']}").json()
        content = c.get(f"/v1/assets/{done['asset_id']}/content")
    # The vendor was asked as its protocol says, with the key from the settings.
    (submit,) = vendor.of("submit")
    assert submit.headers["authorization"] == f"Bearer {TOKEN}"
    assert submit.body["input"]["prompt"] == "a paper boat on a pond" and submit.body["input"]["num_frames"] == 12
    # The same path as a local model's output: C2PA-signed by this server, waiting for review.
    assert asset["review_state"] == "pending_review"
    assert asset["num_frames"] == 12 and asset["duration_s"] == pytest.approx(1.5)
    stored = vendor_server.data_dir / "vendor.mp4"
    stored.write_bytes(content.content)
    report = verify(stored, (vendor_server.data_dir / DEV_DIR / CA_FILE).read_bytes())
    assert report.trusted and report.actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC
    assert report.manifests[0].assertions["com.reelfoundry.generation"]["model"] == "replicate-video"
    # Its cost: the vendor's price for the seconds delivered, no local device time or energy.
    cost = done["cost"]
    assert Decimal(cost["compute_usd"]) == PRICE * Decimal("1.5")
    assert cost["device_seconds"] == 0 and cost["energy_method"] == "vendor" and Decimal(cost["energy_kwh"]) == 0
    assert (cost["provider"], cost["region"], cost["device"]) == ("replicate", "us", "api")
    total = sum(Decimal(cost[k]) for k in ("compute_usd", "idle_usd", "storage_usd", "egress_usd"))
    assert Decimal(cost["total_usd"]) == total
