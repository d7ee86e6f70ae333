"""Storage tiers on a real object store: a local hot tier in front of SeaweedFS S3 (cold), with the index in
SQLite; moves by the lifecycle rule, transparent reads and ranges, presigned URLs from cold, a crash mid-move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from seaweed import BUCKET, SeaweedFS

from reelfoundry.assets.lifecycle import Rule, apply_moves, plan_moves
from reelfoundry.assets.objectstore import LocalStore
from reelfoundry.assets.s3 import S3Store
from reelfoundry.assets.tiered import TieredStore
from reelfoundry.store import Database
from reelfoundry.store.objects import ObjectIndex

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def clock() -> list[datetime]:
    return [T0]


@pytest.fixture
def tiered(seaweedfs: SeaweedFS, s3_prefix: str, tmp_path: Path, clock: list[datetime]) -> Iterator[TieredStore]:
    db = Database(f"sqlite:///{tmp_path / 'index.db'}")
    db.migrate()
    cold = S3Store(BUCKET, s3_prefix, endpoint_url=seaweedfs.endpoint, timeout_s=10)
    yield TieredStore(LocalStore(tmp_path / "hot"), cold, ObjectIndex(db, lambda: clock[0]))
    db.dispose()


def _run(store: TieredStore) -> list[str]:
    moves = plan_moves(store.index.all("hot"), store.index.now(), Rule(cold_after_days=30))
    return [f"{m.key}:{m.outcome}" for m in apply_moves(store, moves)]


def test_a_move_to_s3_keeps_reads_ranges_and_presigned_urls_working(tiered: TieredStore, clock: list[datetime]) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    tiered.put_bytes("t/a.mp4", data)
    assert tiered.cold.stat("t/a.mp4") is None
    assert tiered.presign("t/a.mp4", 60) is None  # hot: the API serves it
    clock[0] = T0 + 29 * DAY
    assert _run(tiered) == []
    clock[0] = T0 + 30 * DAY
    assert _run(tiered) == ["t/a.mp4:done"]
    assert tiered.hot.stat("t/a.mp4") is None
    info = tiered.cold.stat("t/a.mp4")
    assert info is not None and info.size == len(data)
    assert tiered.read_bytes("t/a.mp4") == data
    assert b"".join(tiered.read_range("t/a.mp4", 1000, 1999)) == data[1000:2000]
    url = tiered.presign("t/a.mp4", 60)
    assert url is not None
    got = httpx.get(url, headers={"Range": "bytes=0-9"}, timeout=10)
    assert got.status_code == 206 and got.content == data[:10]
    tiered.delete("t/a.mp4")
    assert tiered.stat("t/a.mp4") is None and tiered.cold.stat("t/a.mp4") is None
    assert tiered.index.get("t/a.mp4") is None


def test_a_crash_after_the_upload_leaves_both_copies_and_a_rerun_finishes(
    tiered: TieredStore, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiered.put_bytes("t/b.mp4", b"x" * 10_000)
    clock[0] = T0 + 31 * DAY

    def crash(key: str) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(tiered.hot, "delete", crash)
    with pytest.raises(KeyboardInterrupt):
        _run(tiered)
    monkeypatch.undo()
    assert tiered.hot.stat("t/b.mp4") is not None and tiered.cold.stat("t/b.mp4") is not None
    row = tiered.index.get("t/b.mp4")
    assert row is not None and row.tier == "hot"
    assert _run(tiered) == ["t/b.mp4:done"]
    assert tiered.hot.stat("t/b.mp4") is None and tiered.read_bytes("t/b.mp4") == b"x" * 10_000
