"""The engine and the object store, in-process (slots the test ends, a store that can fail like an S3 outage, a
manual clock), on SQLite and PostgreSQL: a job whose output cannot be stored is re-queued with a retryable error
after a back-off that does not use an attempt, with no asset row and no object left — the objects its clean-up
could not delete while the store was down are swept once it is back; inputs reach the worker as copies in the
attempt's work dir, never as the store's files."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakestore import FakeStore
from sqlalchemy import func, select

from reelfoundry.assets import keys
from reelfoundry.clock import ManualClock
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
from reelfoundry.store.tables import AssetRow, EventRow, JobRow, PendingObjectRow

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
    clock: ManualClock


def _node(database: Database, tmp_path: Path, slots: int = 1, **settings: Any) -> Node:
    config = Settings(data_dir=tmp_path / "node", worker_slots=1, **settings)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store, executor, clock = FakeStore(config.media_dir), Slots(slots), ManualClock(datetime.now(UTC))
    portfolio = Portfolio.from_settings(config)
    engine = Engine(config, database, portfolio, store, executor, "node-0", dev_credentials(tmp_path), clock=clock)
    return Node(engine, executor, store, database, clock)


@pytest.fixture
def node(database: Database, tmp_path: Path) -> Iterator[Node]:
    yield _node(database, tmp_path)


def _pending(db: Database) -> list[str]:
    with db.read() as session:
        return sorted(session.scalars(select(PendingObjectRow.key)))


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
    # Re-queued after a back-off, and the attempt the outage took is not counted against max_attempts.
    assert row.storage_retries == 1 and row.not_before == node.clock.now() + timedelta(seconds=2)
    requeued = _events(node.db, job_id)[-1]
    assert requeued.type == "job.requeued"
    assert requeued.data["error"]["type"] == UNAVAILABLE and "could not be stored" in requeued.data["error"]["detail"]
    assert requeued.data["retry_in_s"] == 2.0 and requeued.data["uses_attempt"] is False
    assert _assets(node.db) == 0
    assert node.store.objects() == []  # the video put before the poster failed was deleted again
    assert _pending(node.db) == []  # and nothing is left for the sweep
    assert _work_files(node) == []  # and the attempt's files are gone from the work dir

    # The store is back, but the back-off has not passed: the job waits.
    node.store.fail_puts_after = None
    node.clock.advance(1.9)
    node.engine.step()
    assert len(node.slots.started) == 1 and _job(node.db, job_id).state == "queued"
    node.clock.advance(0.1)
    node.engine.step()
    done = node.slots.succeed(job_id)
    assert done.attempt == 2
    node.engine.step()
    row = _job(node.db, job_id)
    assert row.state == "succeeded" and row.asset_id is not None
    assert node.store.objects() == sorted(
        [keys.video(tenant_ids[0], row.asset_id), keys.poster(tenant_ids[0], row.asset_id)]
    )
    assert _pending(node.db) == []  # recording the asset settled its keys


def test_storage_failures_past_the_retry_limit_count_as_attempts_and_then_fail_the_job(
    database: Database, tmp_path: Path, tenant_ids: tuple[str, str]
) -> None:
    node = _node(database, tmp_path, storage_retry_limit=2, storage_retry_base_s=1.0, storage_retry_max_s=1.5)
    job_id = _submit(node.db, tenant_ids[0])  # max_attempts=2
    node.store.fail_puts_after = 0
    delays = []
    for _ in range(4):
        node.engine.step()
        node.slots.succeed(job_id)
        node.engine.step()
        row = _job(node.db, job_id)
        if row.state == "queued":
            event = _events(node.db, job_id)[-1]
            delays.append(event.data.get("retry_in_s"))
            node.clock.advance(2.0)
    row = _job(node.db, job_id)
    # Two free retries (1 s, then 1.5 s: capped), then one counted retry (at once), then failed: 4 attempts.
    assert delays == [1.0, 1.5, None]
    assert row.state == "failed" and row.error_type == UNAVAILABLE and row.attempts == 4
    assert row.storage_retries == 2
    assert _assets(node.db) == 0 and node.store.objects() == [] and _pending(node.db) == []


def test_objects_the_clean_up_could_not_delete_are_swept_once_the_store_is_back(
    node: Node, tenant_ids: tuple[str, str]
) -> None:
    job_id = _submit(node.db, tenant_ids[0])
    node.engine.step()
    [item] = node.slots.started
    assert item.output_keys is not None
    assert _pending(node.db) == sorted([item.output_keys.video, item.output_keys.poster])  # recorded at the claim
    # The video goes in, the poster's put fails, and the store stays down for the clean-up's delete too.
    node.store.fail_puts_after = 1
    original_delete = node.store.delete

    def delete_while_down(key: str) -> None:
        node.store.down = True
        original_delete(key)

    node.store.delete = delete_while_down  # type: ignore[method-assign]
    node.slots.succeed(job_id)
    node.engine.step()
    assert _job(node.db, job_id).state == "queued" and _assets(node.db) == 0
    assert node.store.local.stat(item.output_keys.video) is not None  # an orphan, for now
    assert _pending(node.db) == sorted([item.output_keys.video, item.output_keys.poster])
    # Sweeps while the store is down delete nothing and back off; once it is back the orphan goes.
    node.clock.advance(5.0)
    node.engine.step()
    assert node.store.local.stat(item.output_keys.video) is not None
    node.store.delete = original_delete  # type: ignore[method-assign]
    node.store.down = False
    node.store.fail_puts_after = None
    node.clock.advance(5.0)
    node.engine.step()
    assert node.store.objects() == []
    # Only the keys of the job's next attempt (claimed in the same step, its back-off over) are pending now.
    [retry] = node.slots.started[1:]
    assert retry.output_keys is not None and retry.output_keys != item.output_keys
    assert _pending(node.db) == sorted([retry.output_keys.video, retry.output_keys.poster])


def test_an_object_written_by_an_attempt_that_died_before_recording_it_is_swept_after_a_restart(
    database: Database, tmp_path: Path, tenant_ids: tuple[str, str]
) -> None:
    node = _node(database, tmp_path)
    job_id = _submit(node.db, tenant_ids[0])
    node.engine.step()
    [item] = node.slots.started
    assert item.output_keys is not None
    # The engine put the video, then its process was killed before the asset was recorded.
    node.store.local.put_bytes(item.output_keys.video, b"\x00\x00\x00\x18ftypmp42")
    # Another node's sweep does not touch it within the grace: the attempt might still be writing.
    other = _node(database, tmp_path / "other")
    other.engine.step()
    assert node.store.objects() == [item.output_keys.video]
    # The node restarts (with no free slot, so that it only tidies up): its job is re-queued, and what its
    # attempt left is an orphan now.
    again = _node(database, tmp_path, slots=0)
    again.engine.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while _pending(node.db) and datetime.now(UTC) < deadline:
            again.clock.advance(5.0)
            again.engine.wake()
            time.sleep(0.05)
    finally:
        again.engine.stop()
    assert _pending(node.db) == [] and node.store.objects() == []
    row = _job(node.db, job_id)
    assert row.state == "queued" and row.asset_id is None and _assets(node.db) == 0


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
    assert _pending(node.db) == []  # the attempt wrote nothing: its keys are no longer pending
    node.store.down = False
    node.clock.advance(2.0)  # the storage back-off
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
