"""Fixtures for the DAM tests: generated assets made through the job store, as the engine makes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from inprocess import AppFactory, app_factory

from reelfoundry.ids import new_id
from reelfoundry.schema import VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import AssetRow, utcnow

#: make(tenant_id, prompt, model="template") → the id of a succeeded job's asset
MakeGenerated = Callable[..., str]


def generated(db: Database, tenant_id: str, prompt: str, model: str = "template") -> str:
    """Submit, claim and complete a job; its asset's id (indexed by ``complete`` like any job output)."""
    request = VideoRequest(prompt=prompt, seed=1)
    with db.write() as s:
        job = jobstore.create_job(
            s,
            tenant_id=tenant_id,
            request=request,
            model=model,
            max_attempts=1,
            body_hash=jobstore.request_hash(request.model_dump(mode="json")),
            idempotency_key=None,
        )
        job_id = job.id
    with db.write() as s:
        claimed = jobstore.claim_ids(s, [job_id], "n1", jobstore.lease_deadline(60))
        assert claimed
    asset_id = new_id()
    with db.write() as s:
        asset = AssetRow(
            id=asset_id,
            tenant_id=tenant_id,
            job_id=job_id,
            media_type="video/mp4",
            storage_key=f"{tenant_id}/{asset_id}.mp4",
            bytes=1,
            sha256="0" * 64,
            created_at=utcnow(),
        )
        assert jobstore.complete(s, job_id, 1, asset) is not None
    return asset_id


@pytest.fixture
def generate() -> Callable[..., str]:
    """:func:`generated`, for tests whose database is an app's."""
    return generated


@pytest.fixture
def make_generated(database: Database) -> MakeGenerated:
    """Generated assets in ``database``."""

    def make(tenant_id: str, prompt: str, model: str = "template") -> str:
        return generated(database, tenant_id, prompt, model)

    return make


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """In-process apps over fresh data dirs, each shut down after the test."""
    with ExitStack() as stack:
        yield app_factory(stack, tmp_path)
