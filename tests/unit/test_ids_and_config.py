"""ULIDs and settings validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reelfoundry.config import Settings
from reelfoundry.ids import is_id, new_id


def test_ids_are_ulids_and_sort_by_creation() -> None:
    ids = [new_id() for _ in range(2000)]
    assert all(is_id(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert not is_id("not-an-id") and not is_id("0" * 25) and not is_id("I" * 26)


def test_settings_refuse_contradictions() -> None:
    with pytest.raises(ValidationError, match="webhook_backoff_max_s"):
        Settings(webhook_backoff_base_s=10, webhook_backoff_max_s=1)
    with pytest.raises(ValidationError, match="executor"):
        Settings(executor="k8s://x:1")
    for url in ("ftp://host/x", "s3://Bad_Bucket", "s3://media/../up", "s3://ab", "file://"):
        with pytest.raises(ValidationError, match="storage_url"):
            Settings(storage_url=url)
    with pytest.raises(ValidationError, match="s3_endpoint_url"):
        Settings(s3_endpoint_url="http://user:secret@127.0.0.1:8333")
    with pytest.raises(ValidationError, match="s3_addressing_style"):
        Settings(s3_addressing_style="sideways")
    pem: dict[str, object] = {k: Path("/x.pem") for k in ("signing_cert_chain", "signing_key", "signing_trust_anchor")}
    pem["public_base_url"] = "https://media.example.com"
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(environment="production", metrics_token="m" * 20, **pem)
    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(environment="production", secret_key="s" * 32, **pem)
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(secret_key="short")
    assert Settings(environment="production", secret_key="s" * 32, metrics_token="m" * 20, **pem).secret_key
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(public_base_url="javascript:alert(1)")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFOUNDRY_WORKER_SLOTS", "3")
    monkeypatch.setenv("REELFOUNDRY_MODELS_FILE", "/etc/reelfoundry/models.yaml")
    monkeypatch.setenv("REELFOUNDRY_FLEET_DEVICES", '["H100", "L40S"]')
    s = Settings()
    assert s.worker_slots == 3 and str(s.models_file) == "/etc/reelfoundry/models.yaml"
    assert s.fleet_devices == ["H100", "L40S"]
    assert s.resolved_database_url.startswith("sqlite:///")
