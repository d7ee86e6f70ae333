"""Every CLI test starts from a clean environment: no REELFOUNDRY_* connection settings from the caller, and a
refused connection retried at once (the tests point at the discard port on purpose, to read the data dir)."""

from __future__ import annotations

import pytest

from reelfoundry.client.retry import RetryPolicy


@pytest.fixture(autouse=True)
def clean_cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REELFOUNDRY_SERVER", "REELFOUNDRY_DATA_DIR", "REELFOUNDRY_API_KEY", "REELFOUNDRY_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, attempt: 0.0)
