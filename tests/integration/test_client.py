"""reelfoundry.client against a real server: submit, wait, download (resumed), errors, pages, admin calls."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from server import Server

from reelfoundry.client import ApiError, AsyncClient, Client
from reelfoundry.schema import Event, Job, JobState, ModelCard


def onboard_and_approve(server: Server, card: ModelCard) -> None:
    """What the operator does with a card added over the API: `reelfoundry models onboard` on the server's data
    dir (the checks pass, the candidate is approved), then the server sees it within its portfolio refresh."""
    path = server.data_dir.parent / f"{card.id}.json"  # JSON is YAML
    path.write_text(card.model_dump_json(exclude={"status", "evaluation"}))
    cmd = [sys.executable, "-m", "reelfoundry", "models", "onboard", str(path), "--data-dir", str(server.data_dir)]
    done = subprocess.run(cmd, env=server.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        if httpx.get(f"{server.url}/v1/models/{card.id}", headers=headers).json()["status"] == "approved":
            return
        time.sleep(0.2)
    raise AssertionError(f"{card.id} was not approved")


def test_must_work_line(server: Server) -> None:
    """The documented line, run verbatim (only the address is this test server's)."""
    line = (
        'from reelfoundry.client import Client; c = Client("http://127.0.0.1:8000", api_key=KEY); '
        'job = c.jobs.submit(prompt="Hello", model="template"); c.jobs.wait(job.id)'
    )
    scope: dict[str, Any] = {"KEY": server.admin_key}
    exec(line.replace("http://127.0.0.1:8000", server.url), scope)
    c, job = scope["c"], scope["job"]
    done = c.jobs.get(job.id)
    c.close()
    assert done.state == JobState.succeeded and done.asset_id is not None


class CutOnce(httpx.BaseTransport):
    """Passes requests to the network, but breaks the first content download after ``at`` bytes."""

    def __init__(self, at: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.at = at
        self.ranges: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/content"):
            return response
        self.ranges.append(request.headers.get("range"))
        if len(self.ranges) > 1:
            return response
        stream = response.stream
        assert isinstance(stream, httpx.SyncByteStream)

        def broken() -> Iterator[bytes]:
            sent = 0
            for chunk in stream:
                if sent + len(chunk) >= self.at:
                    yield chunk[: self.at - sent]
                    stream.close()
                    raise httpx.ReadError("connection cut by the test")
                sent += len(chunk)
                yield chunk

        return httpx.Response(response.status_code, headers=response.headers, stream=_Stream(broken()))


class _Stream(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


def test_wait_download_resume_and_verify(server: Server, tmp_path: Path) -> None:
    transport = CutOnce(at=5000)
    events: list[Event] = []
    with Client(server.url, api_key=server.admin_key, transport=transport) as c:
        job = c.jobs.submit(prompt="Resume me", model="template", num_frames=24)
        done = c.jobs.wait(job.id, on_progress=events.append, timeout=60)
        assert done.state == JobState.succeeded and done.asset_id
        assert events[-1].type == "job.succeeded" and [e.id for e in events] == sorted(e.id for e in events)
        asset = c.assets.get(done.asset_id)
        out = c.assets.download(asset.id, tmp_path / "video.mp4")
        assert hashlib.sha256(out.read_bytes()).hexdigest() == asset.sha256
        assert transport.ranges[0] is None and transport.ranges[1] == "bytes=5000-"
        report = c.verify(out)
        assert report["valid"] is True, report


def test_errors_pages_and_admin_calls(server: Server) -> None:
    with Client(server.url, api_key=server.admin_key) as c:
        with pytest.raises(ApiError) as info:
            c.jobs.submit(prompt="Hello", model="template", webhook_url="not a url")
        assert info.value.status == 422 and info.value.parameter == "webhook_url"
        assert str(info.value).startswith("422 validation: webhook_url: ")
        with pytest.raises(ApiError) as missing:
            c.jobs.get("01NOSUCHJOB")
        assert missing.value.status == 404

        for i in range(3):
            c.jobs.submit(prompt=f"page {i}", model="template", num_frames=12)
        listed = list(c.jobs.list(limit=1))
        assert len(listed) >= 3 and len({j.id for j in listed}) == len(listed)
        assert all(isinstance(j, Job) for j in listed)
        assert "template" in {m.id for m in c.models.list(limit=1)}
        promo = c.models.get("template").model_copy(update={"id": "promo-client", "default_width": 320})
        added = c.models.add(promo)
        assert added.id == "promo-client" and added.status == "candidate"
        onboard_and_approve(server, promo)
        routed = c.jobs.submit(prompt="a promo", model="promo-client", num_frames=12)
        assert routed.route is not None and routed.route.chosen == "promo-client"
        assert c.models.delete("promo-client").default_width == 320
        with pytest.raises(ApiError) as gone:
            c.models.get("promo-client")
        assert gone.value.status == 404

        key = c.keys.create("client-test", "viewer")
        assert key.secret and key.id in {k.id for k in c.keys.list()}
        assert c.keys.revoke(key.id).revoked_at is not None
        with Client(server.url, api_key=key.secret) as revoked, pytest.raises(ApiError) as denied:
            revoked.jobs.get("x")
        assert denied.value.status == 401

        budget = c.budgets.create(name="client-test", limit_usd=Decimal("100"), enforcement="soft")
        assert budget.id in {b.id for b in c.budgets.list()}
        assert c.budgets.delete(budget.id).id == budget.id
        assert c.usage(by="model").rows is not None
        secret = c.webhooks.secret()
        assert c.webhooks.rotate(grace_s=0).secret != secret.secret
        assert list(c.webhooks.deliveries()) == []


def test_async_submit_and_wait(server: Server) -> None:
    async def main() -> Job:
        async with AsyncClient(server.url, api_key=server.admin_key) as c:
            job = await c.jobs.submit(prompt="Async hello", model="template")
            return await c.jobs.wait(job.id, timeout=60)

    assert asyncio.run(main()).state == JobState.succeeded
