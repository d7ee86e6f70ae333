"""Reviews and publications under concurrency, on SQLite and PostgreSQL: one decision wins, one published file."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from reelfoundry import publishing
from reelfoundry.assets import keys
from reelfoundry.config import Settings
from reelfoundry.errors import InvalidTransition
from reelfoundry.ids import new_id
from reelfoundry.media.encode import encode_mp4
from reelfoundry.platform import Platform
from reelfoundry.provenance.manifest import TRAINED_ALGORITHMIC, sign_mp4
from reelfoundry.schema import ReviewCreate, ReviewDecision, Role
from reelfoundry.store import audit
from reelfoundry.store import keys as keystore
from reelfoundry.store.keys import Principal
from reelfoundry.store.tables import AssetRow, AuditRow, utcnow


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    plat = Platform(Settings(data_dir=tmp_path / "data", database_url=db_url))
    plat.db.migrate()
    yield plat
    plat.db.dispose()


def _asset(platform: Platform, tenant_id: str, created_by: str) -> str:
    frames = [np.full((32, 32, 3), (30 * i, 60, 200), dtype=np.uint8) for i in range(6)]
    raw = platform.settings.data_dir / "raw.mp4"
    encode_mp4(frames, 6, raw)
    signed = platform.settings.data_dir / "signed.mp4"
    sign_mp4(raw, signed, platform.credentials, title="t.mp4", source_type=TRAINED_ALGORITHMIC, generation={})
    asset_id = new_id()
    key = keys.video(tenant_id, asset_id)
    size = signed.stat().st_size
    platform.storage.put_file(key, signed)
    with platform.db.write() as s:
        s.add(
            AssetRow(
                id=asset_id,
                tenant_id=tenant_id,
                job_id=None,
                media_type="video/mp4",
                storage_key=key,
                poster_key=None,
                bytes=size,
                sha256="0" * 64,
                created_by=created_by,
                review_state="pending_review",
                created_at=utcnow(),
            )
        )
    return asset_id


def _race(n: int, fn: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results.append(fn(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_approve_and_reject_racing_leave_one_decision(platform: Platform) -> None:
    with platform.db.write() as s:
        tenant = keystore.get_or_create_tenant(s, "acme")
        principals = [
            Principal(
                keystore.create_key(s, tenant, f"r{i}", Role.reviewer)[0].id,
                tenant.id,
                tenant.name,
                Role.reviewer,
                False,
            )
            for i in range(4)
        ]
    asset_id = _asset(platform, principals[0].tenant_id, created_by="someone-else")
    decisions = [ReviewDecision.approve, ReviewDecision.reject]
    results, errors = _race(
        4, lambda i: publishing.review_asset(platform, principals[i], asset_id, ReviewCreate(decision=decisions[i % 2]))
    )
    assert len(results) == 1 and len(errors) == 3 and all(isinstance(e, InvalidTransition) for e in errors)
    with platform.db.read() as s:
        row = s.get(AssetRow, asset_id)
        assert row is not None and row.review_state == results[0].review_state
        assert row.reviewer_key_id == results[0].review.reviewer_key_id


def test_concurrent_reviews_have_one_winner_and_concurrent_publishes_one_file(platform: Platform) -> None:
    with platform.db.write() as s:
        tenant = keystore.get_or_create_tenant(s, "acme")
        tenant_id, tenant_name = tenant.id, tenant.name
        reviewers = [keystore.create_key(s, tenant, f"r{i}", Role.reviewer)[0].id for i in range(6)]
    asset_id = _asset(platform, tenant_id, created_by="someone-else")
    principals = [Principal(k, tenant_id, tenant_name, Role.reviewer, False) for k in reviewers]

    approve = ReviewCreate(decision=ReviewDecision.approve, comment="ok")
    results, errors = _race(6, lambda i: publishing.review_asset(platform, principals[i], asset_id, approve))
    assert len(results) == 1 and len(errors) == 5, errors
    assert all(isinstance(e, InvalidTransition) for e in errors)
    assert results[0].review_state == "approved" and results[0].review.reviewer_key_id in reviewers

    pubs, errors = _race(5, lambda i: publishing.publish_asset(platform, principals[i], asset_id))
    assert not errors and len(pubs) == 5
    assert len({p.sha256 for p in pubs}) == 1 and len({p.published_at for p in pubs}) == 1
    published = [p.name for p in (platform.settings.media_dir / tenant_id).iterdir() if "published" in p.name]
    assert len(published) == 1
    audit.Sealer(platform.db, 1.0).seal_now()
    with platform.db.read() as s:
        actions = [r.action for r in s.scalars(select(AuditRow).where(AuditRow.subject == asset_id))]
    assert actions.count("asset.reviewed") == 1 and actions.count("asset.published") == 1
    assert actions.count("asset.delivery_url_issued") == 4
