"""The data dir, the database, keys and secrets are the server user's alone, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelfoundry.config import Settings
from reelfoundry.platform import Platform


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_fresh_data_dir_is_private(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"
    platform = Platform(Settings(data_dir=data))
    try:
        platform.bootstrap()
        platform.secret  # noqa: B018 - made on first use
        platform.node  # noqa: B018 - likewise
        platform.credentials  # noqa: B018 - the development signing CA
    finally:
        platform.db.dispose()
    assert _mode(data) == 0o700
    for name in ("reelfoundry.db", "admin.key", "secret.key", "node.id"):
        assert _mode(data / name) == 0o600, name
    for extra in data.glob("reelfoundry.db-*"):  # SQLite's WAL and shared memory copy the database's mode
        assert _mode(extra) == 0o600, extra.name
    # Other users cannot even list the folder, so files inside it (media, the CA) are out of reach too.
    assert not _mode(data) & 0o077


def test_an_existing_data_dir_left_open_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "reelfoundry.db").touch(mode=0o644)
    os.chmod(data, 0o755)
    os.chmod(data / "reelfoundry.db", 0o644)
    platform = Platform(Settings(data_dir=data))
    platform.db.dispose()
    assert _mode(data) == 0o700
    assert _mode(data / "reelfoundry.db") == 0o600


def test_a_folder_that_is_not_a_data_dir_is_left_alone(tmp_path: Path, loose_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    (shared / "notes.txt").write_text("someone else's")
    platform = Platform(Settings(data_dir=shared, database_url=f"sqlite:///{tmp_path / 'elsewhere.db'}"))
    platform.db.dispose()
    assert _mode(shared) == 0o755
