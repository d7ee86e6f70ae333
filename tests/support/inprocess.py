"""The whole app in-process (TestClient, no worker processes): routes, admission and limits without a server."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from reelfoundry.api.app import create_app
from reelfoundry.config import Settings

#: make(**settings) → (client authenticated as the admin, the admin key)
AppFactory = Callable[..., tuple[TestClient, str]]


def app_factory(stack: ExitStack, root: Path) -> AppFactory:
    """Apps over fresh data dirs under ``root`` (worker_slots=0: jobs stay queued), closed with ``stack``."""
    count = 0

    def make(**settings: Any) -> tuple[TestClient, str]:
        nonlocal count
        count += 1
        values: dict[str, Any] = {"data_dir": root / f"data{count}", "worker_slots": 0} | settings
        config = Settings(**values)
        client = stack.enter_context(TestClient(create_app(config), base_url="http://127.0.0.1:8000"))
        key = config.admin_key_path.read_text().strip()
        client.headers["Authorization"] = f"Bearer {key}"
        return client, key

    return make
