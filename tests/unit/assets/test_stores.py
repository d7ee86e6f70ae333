"""storage_url → the store: parsing and validation, and S3 without boto3 installed (no server needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reelfoundry.assets.objectstore import LocalStore
from reelfoundry.assets.s3 import content_disposition
from reelfoundry.assets.stores import StorageLocation, make_store, parse_storage_url
from reelfoundry.config import Settings
from reelfoundry.errors import ConfigurationError


def test_parse_storage_url() -> None:
    assert parse_storage_url("file:///srv/media") == StorageLocation("file", path=Path("/srv/media"))
    assert parse_storage_url("s3://media") == StorageLocation("s3", bucket="media")
    assert parse_storage_url("s3://media.example-1/rf/prod/") == StorageLocation(
        "s3", bucket="media.example-1", prefix="rf/prod"
    )
    for bad in ("s3://", "s3://ab", "s3://UPPER", "s3://-media", "s3://a..b", "s3://10.0.0.1", "s3://" + "a" * 64):
        with pytest.raises(ValueError, match="bucket"):
            parse_storage_url(bad)
    for bad in ("s3://media/../x", "s3://media/a b", "s3://media/a//b", "s3://media/x?y"):
        with pytest.raises(ValueError, match="prefix"):
            parse_storage_url(bad)
    for bad in ("http://x", "S3://media", "file://", "media"):
        with pytest.raises(ValueError, match="storage_url"):
            parse_storage_url(bad)


def test_settings_accept_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELFOUNDRY_STORAGE_URL", "s3://reelfoundry/media")
    monkeypatch.setenv("REELFOUNDRY_S3_ENDPOINT_URL", "http://127.0.0.1:8333")
    s = Settings()
    assert s.storage_url == "s3://reelfoundry/media" and s.s3_endpoint_url == "http://127.0.0.1:8333"
    assert (s.s3_region, s.s3_addressing_style, s.s3_create_bucket) == ("us-east-1", "path", False)


def test_the_local_store_is_the_default(tmp_path: Path) -> None:
    store = make_store(Settings(data_dir=tmp_path))
    assert isinstance(store, LocalStore) and store.root == (tmp_path / "media").resolve()


def test_s3_without_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "boto3" or m.startswith(("boto3.", "botocore"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 → ImportError, as when it is not installed
    settings = Settings(storage_url="s3://media/x")  # the settings load without it
    with pytest.raises(ConfigurationError, match=r"reelfoundry\[s3\]"):
        make_store(settings)


def test_content_disposition_keeps_the_name_and_quotes_nothing_unsafe() -> None:
    assert content_disposition("clip.mp4") == "attachment; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4"
    header = content_disposition('a"b\\c\r\nd é.mp4')
    assert "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="a_b_c__d _.mp4"; ')
    assert header.endswith("filename*=UTF-8''a%22b%5Cc%0D%0Ad%20%C3%A9.mp4")
