"""Fine-tune jobs through a started platform (SQLite, one real worker process, the faulty test backend standing in
for a trainer): ``POST /v1/finetunes`` trains on the collection's trainable assets only, the adapter is stored and
pinned and its model generates with it; a cancelled fine-tune registers nothing and leaves nothing behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import pytest
import yaml
from fastapi.testclient import TestClient
from faulty_backend import CARD as FAULTY_CARD
from safetensors.numpy import load_file
from sqlalchemy import select
from typer.testing import CliRunner

from reelfoundry.api.app import create_app
from reelfoundry.cli.app import app
from reelfoundry.config import Settings
from reelfoundry.ids import new_id
from reelfoundry.platform import Platform
from reelfoundry.store.tables import (
    AssetRow,
    CollectionAssetRow,
    CollectionRow,
    CostRecordRow,
    ModelCardRow,
    PendingObjectRow,
    utcnow,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[TestClient, Platform, dict[str, str]]]:
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({"models": [FAULTY_CARD]}))
    settings = Settings(
        data_dir=tmp_path / "data", worker_slots=1, models_file=models, poll_interval_s=0.05, progress_interval_s=0
    )
    platform = Platform(settings)
    platform.start()
    with ExitStack() as stack:
        client = stack.enter_context(TestClient(create_app(settings, platform)))
        key = (settings.data_dir / "admin.key").read_text().strip()
        yield client, platform, {"Authorization": f"Bearer {key}"}


def _wait(client: TestClient, headers: dict[str, str], path: str, states: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = client.get(path, headers=headers).json()
        if body["state"] in states:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.05)


def _clips(client: TestClient, platform: Platform, headers: dict[str, str], n: int) -> tuple[str, list[str]]:
    """``n`` generated clips, approved, in a new collection; (collection id, asset ids)."""
    assets = []
    for i in range(n):
        r = client.post("/v1/jobs", json={"prompt": f"clip {i}", "model": "faulty"}, headers=headers)
        assert r.status_code == 201, r.text
        assets.append(_wait(client, headers, f"/v1/jobs/{r.json()['id']}", {"succeeded"})["asset_id"])
    with platform.db.write() as session:
        tenant = session.get(AssetRow, assets[0]).tenant_id  # type: ignore[union-attr]
        collection = CollectionRow(id=new_id(), tenant_id=tenant, name=f"brand-{new_id()}", created_at=utcnow())
        session.add(collection)
        for asset_id in assets:
            session.get(AssetRow, asset_id).review_state = "approved"  # type: ignore[union-attr]
            session.add(CollectionAssetRow(collection_id=collection.id, asset_id=asset_id, added_at=utcnow()))
    return collection.id, assets


def test_a_finetune_trains_on_trainable_assets_only_and_its_model_generates_with_the_adapter(
    node: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, headers = node
    collection, assets = _clips(client, platform, headers, 5)
    with platform.db.write() as session:  # one may not be trained on, one's rights have expired, one is unapproved
        session.get(AssetRow, assets[2]).usage_restrictions = ["no-training"]  # type: ignore[union-attr]
        session.get(AssetRow, assets[3]).rights_expires_at = utcnow() - timedelta(days=1)  # type: ignore[union-attr]
        session.get(AssetRow, assets[4]).review_state = "rejected"  # type: ignore[union-attr]
    body = {"name": "acme-test", "base": "faulty", "collection": collection, "steps": 3, "seed": 7}
    r = client.post("/v1/finetunes", json=body, headers=headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "queued" and created["assets_used"] == assets[:2]
    finetune = _wait(client, headers, f"/v1/finetunes/{created['id']}", {"succeeded", "failed", "cancelled"})
    assert finetune["state"] == "succeeded", finetune
    job = client.get(f"/v1/jobs/{finetune['job_id']}", headers=headers).json()
    assert job["kind"] == "finetune" and job["state"] == "succeeded" and job["asset_id"] is None
    assert job["cost"] is not None and float(job["cost"]["device_seconds"]) > 0
    # The adapter is in the store, pinned on the new model's card.
    with platform.db.read() as session:
        card = session.get(ModelCardRow, "acme-test")
        assert card is not None and card.status == "approved"
        lora = card.card["options"]["lora"]
        assert lora["sha256"] == finetune["adapter_sha256"] and set(lora["files"]) == {
            "adapter_model.safetensors",
            "adapter_config.json",
        }
        assert session.scalars(select(PendingObjectRow)).all() == []
        assert len(session.scalars(select(CostRecordRow).where(CostRecordRow.job_id == job["id"])).all()) == 1
    for key in lora["files"].values():
        assert platform.storage.stat(key) is not None
    # The fine-tuned model generates with its adapter (the faulty backend renders the adapter's grey).
    deadline = time.monotonic() + 10
    while "acme-test" not in platform.portfolio.cards:  # API-added cards reach the portfolio within a second
        assert time.monotonic() < deadline
        time.sleep(0.1)
    r = client.post("/v1/jobs", json={"prompt": "brand clip", "model": "acme-test"}, headers=headers)
    assert r.status_code == 201, r.text
    done = _wait(client, headers, f"/v1/jobs/{r.json()['id']}", {"succeeded", "failed"})
    assert done["state"] == "succeeded", done
    cached = platform.settings.data_dir / "adapters" / lora["sha256"] / "adapter_model.safetensors"
    assert cached.is_file()
    # `reelfoundry generate` on the same data dir (no server) finds the model and renders with its adapter.
    grey = int(load_file(str(cached))["grey"][0])
    out = platform.settings.data_dir.parent / "local.mp4"
    env = {"REELFOUNDRY_MODELS_FILE": str(platform.settings.models_file)}
    args = ["generate", "local clip", "--model", "acme-test", "--data-dir", str(platform.settings.data_dir)]
    result = CliRunner().invoke(app, [*args, "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert abs(float(first.mean()) - grey) < 4, (first.mean(), grey)
    # Trained on this tenant's assets: to another tenant the model does not exist.
    other = client.post("/v1/keys", json={"name": "o", "role": "creator", "tenant": "other-co"}, headers=headers)
    assert other.status_code == 201, other.text
    theirs = {"Authorization": f"Bearer {other.json()['secret']}"}
    refused = client.post("/v1/jobs", json={"prompt": "brand clip", "model": "acme-test"}, headers=theirs)
    assert refused.status_code in (404, 422) and "acme-test" in refused.text, refused.text
    # The new model was evaluated (quick NRES suite) against the clips it was trained on, in the background.
    deadline = time.monotonic() + 90
    while (evaluation := client.get(f"/v1/finetunes/{created['id']}", headers=headers).json()["evaluation"]) is None:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert evaluation.get("error") is None, evaluation
    assert evaluation["suite"] == "quick" and evaluation["model"] == "acme-test" and evaluation["nres"] > 0
    assert "the fine-tune's collection (2 videos)" in evaluation["reference"]
    # A second fine-tune may not take a model id in use.
    again = client.post("/v1/finetunes", json=body, headers=headers)
    assert again.status_code == 409, again.text


def test_a_finetune_cancelled_mid_way_registers_nothing_and_leaves_nothing(
    node: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, headers = node
    collection, _ = _clips(client, platform, headers, 1)
    body = {"name": "slow-brand", "base": "faulty", "collection": collection, "steps": 200}
    created = client.post("/v1/finetunes", json=body, headers=headers).json()
    job_path = f"/v1/jobs/{created['job_id']}"
    deadline = time.monotonic() + 30
    while client.get(job_path, headers=headers).json()["progress"] <= 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = client.post(f"/v1/finetunes/{created['id']}/cancel", headers=headers)
    assert r.status_code == 202, r.text
    finetune = _wait(client, headers, f"/v1/finetunes/{created['id']}", {"succeeded", "failed", "cancelled"})
    assert finetune["state"] == "cancelled" and finetune["adapter_sha256"] is None
    with platform.db.read() as session:
        assert session.get(ModelCardRow, "slow-brand") is None
        assert session.scalars(select(PendingObjectRow)).all() == []
    work = platform.settings.data_dir / "work"
    assert not any(p.name.endswith(".adapter") for p in work.iterdir())
    assert "slow-brand" not in platform.portfolio.cards


def test_a_collection_with_nothing_trainable_is_refused_and_no_job_is_made(
    node: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, headers = node
    collection, assets = _clips(client, platform, headers, 1)
    with platform.db.write() as session:
        session.get(AssetRow, assets[0]).usage_restrictions = ["no-training"]  # type: ignore[union-attr]
    jobs_before = len(client.get("/v1/jobs", headers=headers).json()["items"])
    body = {"name": "nothing", "base": "faulty", "collection": collection}
    r = client.post("/v1/finetunes", json=body, headers=headers)
    assert r.status_code == 422 and "collection" in r.text, r.text
    assert len(client.get("/v1/jobs", headers=headers).json()["items"]) == jobs_before
    assert client.post("/v1/finetunes", json={**body, "base": "template"}, headers=headers).status_code == 422
