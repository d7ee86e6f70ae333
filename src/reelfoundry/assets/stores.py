"""Which ObjectStore the settings name: ``storage_url`` is ``file:///path`` (or unset: the data dir's media
folder) or ``s3://bucket/prefix``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reelfoundry.assets.objectstore import LocalStore, ObjectStore

if TYPE_CHECKING:
    from reelfoundry.config import Settings
    from reelfoundry.store.db import Database


@dataclass(frozen=True)
class StorageLocation:
    """A parsed ``storage_url``: a local directory, or a bucket and key prefix."""

    scheme: Literal["file", "s3"]
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""


def parse_storage_url(url: str) -> StorageLocation:
    """``file:///path`` or ``s3://bucket[/prefix]``; ValueError (saying what is wrong) for anything else."""
    from reelfoundry.assets.s3 import check_bucket, check_prefix  # no boto3 import: only the name rules

    if url.startswith("file://"):
        path = url.removeprefix("file://")
        if not path or any(c in path for c in "?#\x00"):
            raise ValueError(f"storage_url {url!r}: use file:///absolute/path")
        return StorageLocation("file", path=Path(path))
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        try:
            return StorageLocation("s3", bucket=check_bucket(bucket), prefix=check_prefix(prefix))
        except ValueError as exc:
            raise ValueError(f"storage_url {url!r}: {exc}") from None
    raise ValueError(f"storage_url {url!r}: use file:///path or s3://bucket/prefix")


def make_store(settings: Settings, db: Database | None = None) -> ObjectStore:
    """The store ``settings`` name. Makes no request, except creating a missing bucket when
    ``s3_create_bucket`` is set. With ``storage_tiering`` (and the ``db`` its index lives in): a
    :class:`~reelfoundry.assets.tiered.TieredStore`, hot under ``storage_hot_dir``, cold the store above;
    ConfigurationError when the catalog has no price for ``storage_cold_tier``."""
    cold = _base_store(settings)
    if not settings.storage_tiering or db is None:
        return cold
    from reelfoundry.assets.lifecycle import cold_price, cost_repricer
    from reelfoundry.assets.tiered import TieredStore
    from reelfoundry.errors import ConfigurationError, ReelFoundryError
    from reelfoundry.store.objects import ObjectIndex

    try:  # a cold tier the catalog cannot price fails the start, not every lifecycle run later
        cold_usd = cold_price(settings)
    except ReelFoundryError as exc:
        raise ConfigurationError(f"storage_cold_tier: {exc.detail}") from None
    hot = LocalStore(settings.storage_hot_dir or settings.data_dir / "hot")
    return TieredStore(
        hot,
        cold,
        ObjectIndex(db),
        write_tier=settings.storage_write_tier,
        promote_on_read=settings.storage_promote_on_read,
        on_move=cost_repricer(cold_usd),  # a promotion back to hot re-prices as a move to cold does
    )


def _base_store(settings: Settings) -> ObjectStore:
    location = parse_storage_url(settings.storage_url) if settings.storage_url else StorageLocation("file")
    if location.scheme == "file":
        return LocalStore(settings.media_dir)
    from reelfoundry.assets.s3 import S3Store

    store = S3Store(
        location.bucket,
        location.prefix,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        addressing_style=settings.s3_addressing_style,
        timeout_s=settings.s3_timeout_s,
    )
    if settings.s3_create_bucket:
        store.ensure_bucket(create=True)
    return store
