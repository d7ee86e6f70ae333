"""Fine-tuning through a real server with the typed client and the CLI: clips generated, approved by a reviewer,
collected; `reelfoundry finetune` trains (the faulty test backend stands in for a trainer) and the new model is
named by the next request; a cancelled fine-tune registers nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server import Server, server_env

from reelfoundry.client import Client
from reelfoundry.schema import VideoRequest

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", server_env(finetune_evaluate="false")).start()
    yield server
    server.stop()


def test_finetune_from_the_cli_then_generate_with_the_new_model(srv: Server) -> None:
    with Client(srv.url, api_key=srv.admin_key) as admin:
        reviewer_key = admin.keys.create("reviewer", "reviewer").secret
        submitted = [admin.jobs.submit(VideoRequest(prompt=f"clip {i}", model="faulty")) for i in range(2)]
        jobs = [admin.jobs.wait(job.id) for job in submitted]
        assets = [job.asset_id for job in jobs if job.asset_id]
        assert len(assets) == 2
        with Client(srv.url, api_key=reviewer_key) as reviewer:
            for asset_id in assets:
                reviewer.assets.review(asset_id, "approve")
        collection = admin.collections.create("brand clips")
        admin.collections.add(collection.id, assets)

        cli = [sys.executable, "-m", "reelfoundry", "finetune", "--server", srv.url, "--api-key", srv.admin_key]
        args = ["--name", "brand-model", "--base", "faulty", "--collection", collection.id, "--steps", "3", "--json"]
        done = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        finetune = json.loads(done.stdout)
        assert finetune["state"] == "succeeded" and sorted(finetune["assets_used"]) == sorted(assets)
        assert admin.finetunes.get(finetune["id"]).adapter_sha256 == finetune["adapter_sha256"]

        job = admin.jobs.wait(admin.jobs.submit(VideoRequest(prompt="with the adapter", model="brand-model")).id)
        assert job.state == "succeeded" and job.model == "brand-model", job

        slow = admin.finetunes.create("slow-model", collection.id, base="faulty", steps=500)
        admin.finetunes.cancel(slow.id)
        assert admin.jobs.wait(slow.job_id or "").state == "cancelled"
        assert admin.finetunes.get(slow.id).state == "cancelled"
        assert [f.name for f in admin.finetunes.list()] == ["slow-model", "brand-model"]

        bad = subprocess.run(
            [*cli, "--name", "x", "--base", "faulty", "--collection", "01NOSUCHCOLLECTION00000000"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert bad.returncode == 2 and "collection" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
