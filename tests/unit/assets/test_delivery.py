"""Delivery URL signatures: bound to asset, expiry and file digest; they expire; the secret is kept 0600."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from reelfoundry.assets.delivery import DeliverySigner
from reelfoundry.errors import Forbidden, Gone
from reelfoundry.server_secret import derive, load_server_secret

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
A, B = "01JD3K6Z0C8W4Q2M9V5T7RXYZA", "01JD3K6Z0C8W4Q2M9V5T7RXYZB"


def parts(path: str) -> tuple[str, int, str]:
    url = urlsplit(path)
    q = parse_qs(url.query)
    return url.path.rsplit("/", 1)[1], int(q["expires"][0]), q["signature"][0]


def test_a_url_checks_only_for_its_asset_file_and_expiry() -> None:
    signer = DeliverySigner(b"k" * 32, ttl_s=600)
    url = signer.issue(A, "f" * 64, now=NOW)
    assert url.expires_at == NOW + timedelta(seconds=600)
    asset, expires, sig = parts(url.path)
    assert asset == A and expires == int(url.expires_at.timestamp())
    signer.check(A, "f" * 64, expires, sig, now=NOW)
    signer.check(A, "f" * 64, expires, sig.upper(), now=NOW)
    for args in ((B, "f" * 64, expires), (A, "e" * 64, expires), (A, "f" * 64, expires + 1)):
        with pytest.raises(Forbidden):
            signer.check(*args, sig, now=NOW)
    with pytest.raises(Forbidden):
        DeliverySigner(b"o" * 32, 600).check(A, "f" * 64, expires, sig, now=NOW)
    with pytest.raises(Gone):
        signer.check(A, "f" * 64, expires, sig, now=url.expires_at)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        DeliverySigner(b"short", 60)


def test_the_data_dir_secret_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_server_secret(None, tmp_path)
    assert len(first) == 64 and load_server_secret(None, tmp_path) == first
    assert stat.S_IMODE((tmp_path / "secret.key").stat().st_mode) == 0o600
    assert load_server_secret("configured-secret-value", tmp_path) == b"configured-secret-value"
    assert list(tmp_path.iterdir()) == [tmp_path / "secret.key"]


def test_each_purpose_gets_its_own_key() -> None:
    keys = {derive(b"s" * 32, p) for p in ("delivery", "ui-session", "ui-csrf")}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
