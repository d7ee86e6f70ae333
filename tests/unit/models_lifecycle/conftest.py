"""Fixtures for in-process app tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from inprocess import AppFactory, app_factory


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Build apps over fresh data dirs; each is shut down (its lifespan ends) after the test."""
    with ExitStack() as stack:
        yield app_factory(stack, tmp_path)
