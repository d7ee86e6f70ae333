"""``reelfoundry storage lifecycle``: the dry run lists the moves due and changes nothing; the run moves them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelfoundry.assets.objectstore import LocalStore
from reelfoundry.assets.tiered import TieredStore
from reelfoundry.cli.app import app
from reelfoundry.config import Settings
from reelfoundry.store import Database
from reelfoundry.store.objects import ObjectIndex
from reelfoundry.store.tables import utcnow

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir with tiers on, a 40-day-old unread video and a fresh one in the hot tier."""
    for name in ("REELFOUNDRY_SERVER", "REELFOUNDRY_API_KEY", "REELFOUNDRY_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REELFOUNDRY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REELFOUNDRY_STORAGE_TIERING", "true")
    settings = Settings()
    db = Database(settings.resolved_database_url)
    db.migrate()
    hot, cold = LocalStore(tmp_path / "hot"), LocalStore(settings.media_dir)
    TieredStore(hot, cold, ObjectIndex(db, lambda: utcnow() - timedelta(days=40))).put_bytes("t/old.mp4", b"old")
    TieredStore(hot, cold, ObjectIndex(db)).put_bytes("t/new.mp4", b"new")
    db.dispose()
    return tmp_path


def test_dry_run_lists_the_moves_due_and_moves_nothing(data_dir: Path) -> None:
    result = runner.invoke(app, ["storage", "lifecycle", "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["dry_run"] is True and out["cold_after_days"] == 30
    assert [(m["key"], m["from"], m["to"], m["bytes"]) for m in out["moves"]] == [("t/old.mp4", "hot", "cold", 3)]
    assert 39.9 < out["moves"][0]["unread_days"] < 40.1
    assert (data_dir / "hot" / "t" / "old.mp4").is_file() and not (data_dir / "media" / "t" / "old.mp4").exists()
    table = runner.invoke(app, ["storage", "lifecycle", "--dry-run"])
    assert table.exit_code == 0 and "t/old.mp4" in table.stdout and "t/new.mp4" not in table.stdout


def test_the_run_moves_them_and_a_second_finds_nothing(data_dir: Path) -> None:
    result = runner.invoke(app, ["storage", "lifecycle", "--json"])
    assert result.exit_code == 0, result.output
    assert [(m["key"], m["outcome"]) for m in json.loads(result.stdout)["moves"]] == [("t/old.mp4", "done")]
    assert not (data_dir / "hot" / "t" / "old.mp4").exists()
    assert (data_dir / "media" / "t" / "old.mp4").read_bytes() == b"old"
    assert (data_dir / "hot" / "t" / "new.mp4").is_file()
    again = runner.invoke(app, ["storage", "lifecycle", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["moves"] == []


def test_refused_when_tiers_are_off(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFOUNDRY_STORAGE_TIERING", "false")
    result = runner.invoke(app, ["storage", "lifecycle", "--dry-run"])
    assert result.exit_code != 0 and "REELFOUNDRY_STORAGE_TIERING" in result.output
