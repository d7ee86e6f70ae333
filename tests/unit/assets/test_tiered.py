"""TieredStore on two local stores (hot and "cold"), with its index in a real database: transparent reads,
moves by the lifecycle rule, crashes in the middle of a move, deletes from both tiers, access times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reelfoundry.assets.lifecycle import Rule, apply_moves, plan_moves
from reelfoundry.assets.objectstore import LocalStore
from reelfoundry.assets.tiered import TieredStore
from reelfoundry.store import Database
from reelfoundry.store.objects import ACCESS_RESOLUTION, ObjectIndex

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
RULE = Rule(cold_after_days=30)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'test.db'}")
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, sqlite: Database, clock: Clock) -> TieredStore:
    return TieredStore(LocalStore(tmp_path / "hot"), LocalStore(tmp_path / "cold"), ObjectIndex(sqlite, clock))


def _run(store: TieredStore) -> list[str]:
    moves = plan_moves(store.index.all("hot"), store.index.now(), RULE)
    return [f"{m.key}:{m.outcome}" for m in apply_moves(store, moves)]


def test_writes_go_hot_and_are_indexed(store: TieredStore) -> None:
    store.put_bytes("t/a.mp4", b"video")
    assert store.hot.stat("t/a.mp4") is not None and store.cold.stat("t/a.mp4") is None
    row = store.index.get("t/a.mp4")
    assert row is not None and (row.tier, row.bytes, row.last_access_at) == ("hot", 5, T0)


def test_an_unread_object_moves_to_cold_and_reads_stay_the_same(store: TieredStore, clock: Clock) -> None:
    data = bytes(range(256)) * 1000
    store.put_bytes("t/a.mp4", data)
    clock.now = T0 + 29 * DAY
    assert _run(store) == []
    clock.now = T0 + 30 * DAY
    assert _run(store) == ["t/a.mp4:done"]
    assert store.hot.stat("t/a.mp4") is None
    assert store.cold.read_bytes("t/a.mp4") == data
    row = store.index.get("t/a.mp4")
    assert row is not None and (row.tier, row.moved_at) == ("cold", T0 + 30 * DAY)
    # transparent: the same bytes, ranges and size from the tiered store
    assert store.read_bytes("t/a.mp4") == data
    assert b"".join(store.read_range("t/a.mp4", 10, 99)) == data[10:100]
    info = store.stat("t/a.mp4")
    assert info is not None and info.size == len(data)
    with store.local_copy("t/a.mp4", store.hot.root.parent) as path:
        assert path.read_bytes() == data
    assert store.hot.stat("t/a.mp4") is None  # a cold read does not pull it back by default
    assert _run(store) == []  # nothing left to do


def test_a_read_resets_the_clock_and_is_written_at_most_once_an_hour(store: TieredStore, clock: Clock) -> None:
    store.put_bytes("t/a.mp4", b"x")
    clock.now = T0 + 20 * DAY
    assert store.read_bytes("t/a.mp4") == b"x"
    row = store.index.get("t/a.mp4")
    assert row is not None and row.last_access_at == T0 + 20 * DAY
    clock.now += ACCESS_RESOLUTION / 2
    assert store.index.touch("t/a.mp4") is False  # within the hour: no write
    row = store.index.get("t/a.mp4")
    assert row is not None and row.last_access_at == T0 + 20 * DAY
    clock.now = T0 + 40 * DAY
    assert _run(store) == []  # read 20 days ago
    clock.now = T0 + 50 * DAY
    assert _run(store) == ["t/a.mp4:done"]


def test_a_crash_between_copy_and_delete_leaves_it_readable_and_a_rerun_finishes(
    store: TieredStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes("t/a.mp4", b"abc")
    clock.now = T0 + 31 * DAY

    def crash(key: str) -> None:
        raise KeyboardInterrupt("killed")  # not an Exception: nothing after it runs, as in a crash

    monkeypatch.setattr(store.hot, "delete", crash)
    with pytest.raises(KeyboardInterrupt):
        _run(store)
    monkeypatch.undo()
    assert store.hot.stat("t/a.mp4") is not None and store.cold.stat("t/a.mp4") is not None
    assert store.read_bytes("t/a.mp4") == b"abc"
    row = store.index.get("t/a.mp4")
    assert row is not None and row.tier == "hot"
    clock.now += 31 * DAY  # (that read reset its clock)
    assert _run(store) == ["t/a.mp4:done"]
    assert store.hot.stat("t/a.mp4") is None and store.cold.read_bytes("t/a.mp4") == b"abc"
    row = store.index.get("t/a.mp4")
    assert row is not None and row.tier == "cold"


def test_a_crash_after_the_hot_delete_before_the_row_update_is_finished_by_a_rerun(
    store: TieredStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_bytes("t/a.mp4", b"abc")
    clock.now = T0 + 31 * DAY
    monkeypatch.setattr(store.index, "set_tier", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        _run(store)
    monkeypatch.undo()
    assert store.hot.stat("t/a.mp4") is None
    assert store.read_bytes("t/a.mp4") == b"abc"  # from cold
    clock.now += 31 * DAY  # (that read reset its clock)
    assert _run(store) == ["t/a.mp4:done"]
    row = store.index.get("t/a.mp4")
    assert row is not None and row.tier == "cold"


def test_a_bad_copy_keeps_the_hot_file(store: TieredStore, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    store.put_bytes("t/a.mp4", b"abcdef")
    clock.now = T0 + 31 * DAY
    real_put = store.cold.put_file

    def short_put(key: str, source: Path, content_type: str | None = None):  # type: ignore[no-untyped-def]
        source.write_bytes(b"abc")  # a truncated upload the store accepted
        return real_put(key, source, content_type)

    monkeypatch.setattr(store.cold, "put_file", short_put)
    assert _run(store) == ["t/a.mp4:failed"]
    assert store.hot.read_bytes("t/a.mp4") == b"abcdef"
    row = store.index.get("t/a.mp4")
    assert row is not None and row.tier == "hot"


def test_delete_removes_both_tiers_and_the_row(store: TieredStore, clock: Clock) -> None:
    store.put_bytes("t/a.mp4", b"a")
    store.cold.put_bytes("t/a.mp4", b"a")  # as after an interrupted move
    store.delete("t/a.mp4")
    assert store.stat("t/a.mp4") is None and store.index.get("t/a.mp4") is None
    with pytest.raises(FileNotFoundError):
        store.read_bytes("t/a.mp4")
    store.delete("t/a.mp4")  # idempotent


def test_an_object_gone_from_both_tiers_is_forgotten(store: TieredStore, clock: Clock) -> None:
    store.put_bytes("t/a.mp4", b"a")
    store.hot.delete("t/a.mp4")  # behind the index's back
    clock.now = T0 + 31 * DAY
    assert _run(store) == ["t/a.mp4:gone"]
    assert store.index.get("t/a.mp4") is None


def test_presign_comes_from_cold_only_when_the_object_is_there(store: TieredStore, clock: Clock) -> None:
    def cold_presign(key: str, expires_s: int, filename: str | None = None) -> str:
        return f"https://cold/{key}"

    store.cold.presign = cold_presign  # type: ignore[method-assign]
    store.put_bytes("t/a.mp4", b"a")
    assert store.presign("t/a.mp4", 60) is None  # hot: the API serves it
    clock.now = T0 + 31 * DAY
    _run(store)
    assert store.presign("t/a.mp4", 60) == "https://cold/t/a.mp4"


def test_writes_can_go_straight_to_cold_and_promotion_brings_a_read_back(tmp_path: Path, sqlite: Database) -> None:
    index = ObjectIndex(sqlite)
    cold_first = TieredStore(LocalStore(tmp_path / "h"), LocalStore(tmp_path / "c"), index, write_tier="cold")
    cold_first.put_bytes("t/a.mp4", b"a")
    assert cold_first.hot.stat("t/a.mp4") is None and cold_first.cold.stat("t/a.mp4") is not None
    row = index.get("t/a.mp4")
    assert row is not None and row.tier == "cold"
    promoting = TieredStore(cold_first.hot, cold_first.cold, index, promote_on_read=True)
    assert promoting.read_bytes("t/a.mp4") == b"a"
    assert promoting.hot.read_bytes("t/a.mp4") == b"a"
    row = index.get("t/a.mp4")
    assert row is not None and row.tier == "hot"


def test_the_platform_tiers_its_store_only_when_asked(tmp_path: Path) -> None:
    from reelfoundry.config import Settings
    from reelfoundry.platform import Platform

    plain = Platform(Settings(data_dir=tmp_path / "a"))
    assert isinstance(plain.storage, LocalStore)
    plain.db.dispose()
    tiered = Platform(Settings(data_dir=tmp_path / "b", storage_tiering=True))
    assert isinstance(tiered.storage, TieredStore)
    assert tiered.storage.hot.root == (tmp_path / "b" / "hot").resolve()
    assert tiered.storage.cold.root == (tmp_path / "b" / "media").resolve()  # type: ignore[attr-defined]
    tiered.db.dispose()


def test_the_background_loop_moves_due_objects(store: TieredStore, clock: Clock) -> None:
    import time

    from reelfoundry.assets.lifecycle import LifecycleLoop
    from reelfoundry.config import Settings

    store.put_bytes("t/a.mp4", b"a")
    clock.now = T0 + 31 * DAY
    loop = LifecycleLoop.start_for(Settings(storage_lifecycle_interval_s=0.05), store)
    assert loop is not None and LifecycleLoop.start_for(Settings(), store.hot) is None
    try:
        deadline = time.monotonic() + 10
        while store.hot.stat("t/a.mp4") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        loop.stop()
    row = store.index.get("t/a.mp4")
    assert row is not None and row.tier == "cold" and store.cold.read_bytes("t/a.mp4") == b"a"


def test_a_write_to_hot_needs_no_cold_store_and_an_overwrite_leaves_no_older_cold_copy(
    store: TieredStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reelfoundry.assets.objectstore import StorageUnavailable

    def down(*args: object, **kwargs: object) -> None:
        raise StorageUnavailable("cold store down")

    with monkeypatch.context() as m:
        for name in ("put_file", "put_bytes", "stat", "delete", "read_bytes", "read_range"):
            m.setattr(store.cold, name, down)
        store.put_bytes("t/a.mp4", b"v1")
        assert store.read_bytes("t/a.mp4") == b"v1"
    clock.now = T0 + 31 * DAY
    assert _run(store) == ["t/a.mp4:done"]
    store.put_bytes("t/a.mp4", b"v2")  # overwritten while cold: the new version is hot, the old one gone
    assert store.cold.stat("t/a.mp4") is None and store.read_bytes("t/a.mp4") == b"v2"
    row = store.index.get("t/a.mp4")
    assert row is not None and (row.tier, row.bytes, row.moved_at) == ("hot", 2, None)


def test_a_cold_tier_the_catalog_cannot_price_fails_the_start(tmp_path: Path, sqlite: Database) -> None:
    from reelfoundry.assets.stores import make_store
    from reelfoundry.config import Settings
    from reelfoundry.errors import ConfigurationError

    settings = Settings(data_dir=tmp_path, storage_tiering=True, storage_cold_tier="aws/Tape")
    with pytest.raises(ConfigurationError, match="storage_cold_tier: no storage price for aws/Tape"):
        make_store(settings, sqlite)
    assert isinstance(make_store(settings), LocalStore)  # (tiers need the database their index is in)
