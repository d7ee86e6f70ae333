"""The engine and the object store, in-process (slots the test ends, a store that can fail like an S3 outage), on
SQLite and PostgreSQL: a job whose output cannot be stored is re-queued with a retryable error, with no asset row
and no object left; inputs reach the worker as copies in the attempt's work dir, never as the store's files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fakestore import FakeStore
from sqlalchemy import func, select

from reelfoundry.assets import keys
from reelfoundry.config import Settings
from reelfoundry.execution.engine import Engine
from reelfoundry.execution.executor import Executor
from reelfoundry.execution.messages import Finished, WorkerOutput, WorkItem, WorkUnit
from reelfoundry.ids import new_id
from reelfoundry.media.probe import MediaInfo
from reelfoundry.portfolio.registry import Portfolio
from reelfoundry.provenance.credentials import dev_credentials
from reelfoundry.schema import VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import assets as assetstore
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.tables import AssetRow, EventRow, JobRow

UNAVAILABLE = "https://reelfoundry.dev/problems/storage-unavailable"


class Slots(Executor):
    """Slots that run nothing: the test ends each attempt, with the output it chooses."""

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots
        self.active: list[WorkItem] = []
        self.started: list[WorkItem] = []
        self.outbox: list[WorkerOutput] = []

    def free_slots(self) -> int:
        return self.slots - len(self.active)

    def execute(self, items: Sequence[WorkUnit]) -> None:
        for item in items:
            assert isinstance(item, WorkItem)
            self.active.append(item)
            self.started.append(item)

    def poll(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> list[WorkerOutput]:
        out, self.outbox = self.outbox, []
        return out

    def cancel(self, job_id: str) -> None:
        pass

    def running(self) -> list[str]:
        return [item.job_id for item in self.active]

    def shutdown(self) -> None:
        pass

    def succeed(self, job_id: str) -> Finished:
        """End the job's attempt with a video and a poster written to its work dir, as a worker does."""
        item = next(i for i in self.active if i.job_id == job_id)
        self.active.remove(item)
        video = item.out_dir / f"{job_id}-{item.attempt}.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + job_id.encode())
        poster = video.with_suffix(".jpg")
        poster.write_bytes(b"\xff\xd8\xff poster")
        data = video.read_bytes()
        media = MediaInfo("video/mp4", len(data), hashlib.sha256(data).hexdigest(), 1.0, 8.0, 64, 64, 8, "h264")
        done = Finished(job_id, item.attempt, media=media, video_path=video, poster_path=poster, seconds=1.0)
        self.outbox.append(done)
        return done

    def cancelled(self, job_id: str) -> None:
        item = next(i for i in self.active if i.job_id == job_id)
        self.active.remove(item)
        self.outbox.append(Finished(job_id, item.attempt, cancelled=True, seconds=1.0))


@dataclass
class Node:
    engine: Engine
    slots: Slots
    store: FakeStore
    db: Database


@pytest.fixture
def node(database: Database, tmp_path: Path) -> Iterator[Node]:
    config = Settings(data_dir=tmp_path / "node", worker_slots=1)
    config.data_dir.mkdir(parents=True)
    store, slots = FakeStore(config.media_dir), Slots()
    portfolio = Portfolio.from_settings(config)
    engine = Engine(config, database, portfolio, store, slots, "node-0", dev_credentials(tmp_path))
    yield Node(engine, slots, store, database)


def _submit(db: Database, tenant: str, **kw: Any) -> str:
    request = VideoRequest(prompt="a red circle", model="builtin", seed=1, **kw)
    with db.write() as session:
        row = jobstore.create_job(
            session,
            tenant_id=tenant,
            request=request,
            model="builtin",
            max_attempts=2,
            body_hash=jobstore.request_hash(request.model_dump(mode="json")),
        )
        return row.id


def _job(db: Database, job_id: str) -> JobRow:
    with db.read() as session:
        row = session.get(JobRow, job_id)
        assert row is not None
        return row


def _events(db: Database, job_id: str) -> list[EventRow]:
    with db.read() as session:
        return list(session.scalars(select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.id)))


def _assets(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(AssetRow)) or 0)


def _work_files(node: Node) -> list[str]:
    return sorted(p.name for p in node.engine.work_dir.iterdir())


@pytest.mark.parametrize("fails", ["video", "poster"])
def test_a_job_whose_output_cannot_be_stored_is_requeued_with_no_asset_and_no_object(
    node: Node, tenant_ids: tuple[str, str], fails: str
) -> None:
    job_id = _submit(node.db, tenant_ids[0])
    node.engine.step()
    assert [i.job_id for i in node.slots.started] == [job_id]
    # The store goes away: at once, or after the video went in and before the poster did (a half-written asset).
    node.store.fail_puts_after = 0 if fails == "video" else 1
    node.slots.succeed(job_id)
    node.engine.step()

    row = _job(node.db, job_id)
    assert row.state == "queued" and row.attempts == 1 and row.asset_id is None
    requeued = _events(node.db, job_id)[-1]
    assert requeued.type == "job.requeued"
    assert requeued.data["error"]["type"] == UNAVAILABLE and "could not be stored" in requeued.data["error"]["detail"]
    assert _assets(node.db) == 0
    assert node.store.objects() == []  # the video put before the poster failed was deleted again
    assert _work_files(node) == []  # and the attempt's files are gone from the work dir

    # The store is back: the next attempt stores its output and succeeds.
    node.store.fail_puts_after = None
    node.engine.step()
    done = node.slots.succeed(job_id)
    assert done.attempt == 2
    node.engine.step()
    row = _job(node.db, job_id)
    assert row.state == "succeeded" and row.asset_id is not None
    assert node.store.objects() == sorted(
        [keys.video(tenant_ids[0], row.asset_id), keys.poster(tenant_ids[0], row.asset_id)]
    )


def test_a_storage_outage_on_the_last_attempt_fails_the_job_with_that_error(
    node: Node, tenant_ids: tuple[str, str]
) -> None:
    job_id = _submit(node.db, tenant_ids[0])
    node.store.fail_puts_after = 0
    for _ in range(2):
        node.engine.step()
        node.slots.succeed(job_id)
        node.engine.step()
    row = _job(node.db, job_id)
    assert row.state == "failed" and row.error_type == UNAVAILABLE and row.attempts == 2
    assert _assets(node.db) == 0 and node.store.objects() == []


def _input(node: Node, tenant_id: str, data: bytes) -> str:
    asset_id = new_id()
    key = keys.upload(tenant_id, asset_id, "image/png")
    node.store.local.put_bytes(key, data)
    with node.db.write() as session:
        assetstore.add_upload(
            session,
            asset_id=asset_id,
            tenant_id=tenant_id,
            storage_key=key,
            media_type="image/png",
            width=1,
            height=1,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            project=None,
            campaign=None,
            created_by=None,
        )
    return asset_id


def test_inputs_reach_the_worker_as_copies_in_the_work_dir_removed_when_the_attempt_ends(
    node: Node, tenant_ids: tuple[str, str]
) -> None:
    first, second = b"\x89PNG first", b"\x89PNG second"
    inputs = [_input(node, tenant_ids[0], first), _input(node, tenant_ids[0], second)]
    job_id = _submit(node.db, tenant_ids[0], inputs=inputs)
    node.engine.step()
    [item] = node.slots.started
    paths = item.params.inputs
    assert [p.read_bytes() for p in paths] == [first, second]
    assert all(p.parent == node.engine.work_dir and job_id in p.name for p in paths)
    assert not any(p.is_relative_to(node.store.local.root) for p in paths)  # never the store's own files
    assert "read_range" in node.store.calls
    node.slots.cancelled(job_id)
    node.engine.step()
    assert _job(node.db, job_id).state == "cancelled" and _work_files(node) == []


def test_inputs_the_store_cannot_give_requeue_the_job_before_it_reaches_a_worker(
    node: Node, tenant_ids: tuple[str, str]
) -> None:
    job_id = _submit(node.db, tenant_ids[0], inputs=[_input(node, tenant_ids[0], b"\x89PNG")])
    node.store.down = True
    node.engine.step()
    assert node.slots.started == [] and node.slots.free_slots() == 1
    row = _job(node.db, job_id)
    assert row.state == "queued" and row.attempts == 1
    assert _events(node.db, job_id)[-1].data["error"]["type"] == UNAVAILABLE
    assert _work_files(node) == [] and node.engine._running == {}
    node.store.down = False
    node.engine.step()
    assert [i.job_id for i in node.slots.started] == [job_id]


def test_an_input_gone_from_storage_fails_the_job_for_good(node: Node, tenant_ids: tuple[str, str]) -> None:
    asset_id = _input(node, tenant_ids[0], b"\x89PNG")
    job_id = _submit(node.db, tenant_ids[0], inputs=[asset_id])
    for key in node.store.objects():
        node.store.local.delete(key)
    node.engine.step()
    row = _job(node.db, job_id)
    assert node.slots.started == [] and row.state == "failed"
    assert row.error_type is not None and row.error_type.endswith("/invalid-parameter")
    assert row.error_detail == "inputs[0] is missing from storage"
