"""Fixtures that run real server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from server import Server, server_env


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here starts real server processes: mark it slow (deselect with -m 'not slow')."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server (SQLite, one worker slot, 20 s timeout, 2 s cancel grace, 2 MB uploads) per test module."""
    data_dir: Path = tmp_path_factory.mktemp("srv") / "data"
    srv = Server(data_dir, server_env(job_timeout_s=20, cancel_grace_s=2, max_upload_bytes=2_000_000)).start()
    yield srv
    srv.stop()
