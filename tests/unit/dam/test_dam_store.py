"""The DAM in the store, on SQLite and PostgreSQL: indexing of generated assets, metadata edits, search (filters,
full text, semantic), training's asset set and rights-expiry announcements."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from reelfoundry.assets import search as searching
from reelfoundry.errors import InvalidParameter, NotFound
from reelfoundry.schema import ReviewState
from reelfoundry.schema.dam import AssetUpdate, CollectionCreate, SearchMode
from reelfoundry.store import Database
from reelfoundry.store import assets as assetstore
from reelfoundry.store import collections as collectionstore
from reelfoundry.store import webhooks as outbox
from reelfoundry.store.tables import AssetRow, AssetSearchRow, AssetWebhookRow, utcnow

#: make(tenant_id, prompt, model="template") → a generated asset's id (the ``make_generated`` fixture)
MakeGenerated = Callable[..., str]


def _update(db: Database, tenant: str, asset_id: str, **fields: object) -> dict[str, dict[str, object]]:
    with db.write() as s:
        row = assetstore.get_asset(s, tenant, asset_id)
        return assetstore.update_metadata(s, row, AssetUpdate.model_validate(fields), utcnow())


def _search(db: Database, tenant: str, q: str, mode: SearchMode = SearchMode.text, **filters: object) -> list[str]:
    with db.write() as s:
        hits = assetstore.search(
            s,
            tenant,
            q,
            filters=assetstore.AssetFilters(**filters),
            mode=mode,
            limit=10,  # type: ignore[arg-type]
        )
        return [r.id for r, _ in hits]


def _set_state(db: Database, asset_id: str, state: ReviewState) -> None:
    with db.write() as s:
        row = s.get(AssetRow, asset_id)
        assert row is not None
        row.review_state = state.value


def test_a_generated_asset_is_indexed_with_suggested_tags_never_applied(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    asset_id = make_generated(tenant_ids[0], "A yellow star moving left on a purple background")
    with database.read() as s:
        row = assetstore.get_asset(s, tenant_ids[0], asset_id)
        entry = s.get(AssetSearchRow, asset_id)
    assert row.suggested_tags == ["moving left", "yellow", "star", "purple", "background"]
    assert row.tags is None and row.origin == "generated"
    assert entry is not None and entry.body == "A yellow star moving left on a purple background"
    assert entry.embedding is None  # embedded lazily, by the first semantic search


def test_metadata_edits_report_changes_and_accepted_suggestions_move_to_tags(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    tenant = tenant_ids[0]
    asset_id = make_generated(tenant, "a red circle growing on a green background")
    changes = _update(database, tenant, asset_id, title="Launch teaser", tags=["Spring ", "spring", "Q3"])
    assert changes == {
        "title": {"from": None, "to": "Launch teaser"},
        "tags": {"from": [], "to": ["spring", "q3"]},
    }
    assert _update(database, tenant, asset_id, title="Launch teaser") == {}  # no change, nothing to audit
    with pytest.raises(InvalidParameter) as caught:
        _update(database, tenant, asset_id, accept_suggestions=["blue"])
    assert caught.value.parameter == "accept_suggestions"
    changes = _update(database, tenant, asset_id, accept_suggestions=["red", "circle"])
    assert changes["tags"]["to"] == ["spring", "q3", "red", "circle"]
    assert changes["suggested_tags"]["to"] == ["growing", "green", "background"]
    changes = _update(database, tenant, asset_id, title=None, accept_suggestions=True)
    with database.read() as s:
        row = assetstore.get_asset(s, tenant, asset_id)
        body = s.get(AssetSearchRow, asset_id)
    assert row.title is None and row.suggested_tags is None
    assert row.tags == ["spring", "q3", "red", "circle", "growing", "green", "background"]
    assert row.metadata_updated_at is not None
    assert body is not None and "q3" in body.body.split()  # re-indexed with the new tags


def test_full_text_search_with_filters(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    a, b = tenant_ids
    circle = make_generated(a, "a red circle moving left on a blue background")
    square = make_generated(a, "a red square moving right on a white background", model="builtin")
    card = make_generated(a, "quarterly results title card")
    make_generated(b, "a red circle in tenant b")
    _update(database, a, square, brand="Acme", tags=["hero"], description="the launch square")
    _update(database, a, card, title="Q3 numbers")
    assert set(_search(database, a, "red")) == {circle, square}
    assert _search(database, a, "red circle") == [circle]  # every word must occur
    assert _search(database, a, "launch") == [square]  # description
    assert _search(database, a, "numbers") == [card]  # title
    assert _search(database, a, "acme") == [square]  # brand
    assert _search(database, a, "red", brand="Acme") == [square]
    assert _search(database, a, "red", tag="hero") == [square]
    assert _search(database, a, "red", model="builtin") == [square]
    assert _search(database, a, 'circle" OR "square*') == []  # no query syntax gets through: no OR, no prefix
    assert _search(database, a, "!!!") == []
    assert _search(database, b, "square") == []  # another tenant's text is not searched
    _set_state(database, circle, ReviewState.approved)
    assert _search(database, a, "red", review_state=ReviewState.approved) == [circle]
    now = utcnow()
    assert _search(database, a, "red", created_after=now + timedelta(minutes=1)) == []
    assert set(_search(database, a, "red", created_before=now + timedelta(minutes=1))) == {circle, square}
    with database.write() as s:
        coll = collectionstore.create_collection(s, a, CollectionCreate(name="picks"), None, utcnow())
        collectionstore.add_assets(s, coll, [square, card], None, utcnow())
        coll_id = coll.id
    assert _search(database, a, "red", collection_id=coll_id) == [square]
    with database.read() as s:
        rows, _ = assetstore.list_assets(
            s, a, cursor=None, limit=10, filters=assetstore.AssetFilters(collection_id=coll_id, tag="hero")
        )
    assert [r.id for r in rows] == [square]


def test_semantic_search_ranks_by_meaning_with_a_stored_embedding_per_asset(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    a = tenant_ids[0]
    sunset = make_generated(a, "the sun setting over the ocean at a sandy beach")
    money = make_generated(a, "quarterly financial results and revenue growth")
    shape = make_generated(a, "a red circle moving left on a blue background")
    encode = searching.minilm_encoder()
    with database.write() as s:
        assert assetstore.ensure_embeddings(s, a, encode) == 3
        assert assetstore.ensure_embeddings(s, a, encode) == 0  # stored, not made again
    assert _search(database, a, "earnings report for investors", SearchMode.semantic)[0] == money
    assert _search(database, a, "seaside at dusk", SearchMode.semantic)[0] == sunset
    assert _search(database, a, "geometric shape animation", SearchMode.semantic)[0] == shape
    assert _search(database, a, "seaside at dusk", SearchMode.semantic, model="builtin") == []
    _update(database, a, money, title="beach holiday")  # an edit makes the embedding stale
    with database.read() as s:
        entry = s.get(AssetSearchRow, money)
        assert entry is not None and entry.embedding is None
    with database.write() as s:
        assert assetstore.ensure_embeddings(s, a, encode) == 1
        entry = s.get(AssetSearchRow, money)
        assert entry is not None and entry.embedding is not None
        vector = searching.from_blob(entry.embedding)
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4


def test_training_reads_only_approved_unexpired_assets_without_no_training(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    a, b = tenant_ids
    now = utcnow()
    ok, published, pending, expired, restricted, later, outside = (make_generated(a, f"clip {i}") for i in range(7))
    for asset_id in (ok, expired, restricted, later, outside):
        _set_state(database, asset_id, ReviewState.approved)
    _set_state(database, published, ReviewState.published)
    _update(database, a, expired, rights_expires_at=now - timedelta(seconds=1))
    _update(database, a, later, rights_expires_at=now + timedelta(days=1))
    _update(database, a, restricted, usage_restrictions=["no-training", "no-print"])
    with database.write() as s:
        coll = collectionstore.create_collection(s, a, CollectionCreate(name="train"), None, now)
        collectionstore.add_assets(s, coll, [ok, published, pending, expired, restricted, later], None, now)
        coll_id = coll.id
    with database.read() as s:
        chosen = [r.id for r in assetstore.training_assets(s, a, coll_id, now)]
        assert chosen == sorted([ok, published, later])
        assert [r.id for r in assetstore.training_assets(s, a, coll_id, now + timedelta(days=2))] == sorted(
            [ok, published]
        )
        with pytest.raises(NotFound):
            assetstore.training_assets(s, b, coll_id, now)


def test_rights_expiring_is_announced_once_per_expiry(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    a = tenant_ids[0]
    now = utcnow()
    soon, far, gone = (make_generated(a, f"clip {i}") for i in range(3))
    with database.write() as s:
        outbox.set_endpoint(s, a, "https://hooks.example.com/dam", None, now)
    _update(database, a, soon, rights_expires_at=now + timedelta(days=3))
    _update(database, a, far, rights_expires_at=now + timedelta(days=30))
    _update(database, a, gone, rights_expires_at=now - timedelta(days=1))
    within = timedelta(days=14)

    def announced() -> list[tuple[str, str]]:
        with database.read() as s:
            rows = s.scalars(select(AssetWebhookRow).where(AssetWebhookRow.type == "asset.rights_expiring"))
            return [(r.asset_id, r.url) for r in rows]

    with database.write() as s:
        assert outbox.announce_rights_expiring(s, now, within) == 1
    with database.write() as s:
        assert outbox.announce_rights_expiring(s, now, within) == 0  # once per expiry
    assert announced() == [(soon, "https://hooks.example.com/dam")]
    _update(database, a, soon, rights_expires_at=now + timedelta(days=5))  # a new expiry is announced again
    with database.write() as s:
        assert outbox.announce_rights_expiring(s, now + timedelta(days=17), within) == 1  # far's turn
        assert outbox.announce_rights_expiring(s, now, within) == 1
    assert sorted(announced()) == sorted(
        [(soon, "https://hooks.example.com/dam")] * 2 + [(far, "https://hooks.example.com/dam")]
    )


def test_a_generated_asset_is_announced_to_the_tenant_endpoint_in_the_same_transaction(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    a, b = tenant_ids
    with database.write() as s:
        outbox.set_endpoint(s, a, "https://hooks.example.com/dam", None, utcnow())
    mine = make_generated(a, "a green square shrinking")
    make_generated(b, "tenant b has no endpoint")
    with database.read() as s:
        (row,) = s.scalars(select(AssetWebhookRow))
    body = json.loads(row.body)
    assert (row.asset_id, row.type, row.receiver, row.state) == (
        mine,
        "asset.created",
        "hooks.example.com:443",
        "pending",
    )
    assert body["type"] == "asset.created" and body["id"] == row.id and body["tenant_id"] == a
    assert body["data"]["asset"]["suggested_tags"] == ["shrinking", "green", "square"]


def test_concurrent_edits_of_one_asset_apply_one_after_the_other(
    database: Database, tenant_ids: tuple[str, str], make_generated: MakeGenerated
) -> None:
    import threading

    a = tenant_ids[0]
    asset_id = make_generated(a, "a red circle growing on a green background")
    first_read, second_read = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with database.write() as s:
                row = assetstore.lock_asset(s, a, asset_id)
                first_read.set()
                # Give the second edit every chance to read the row before this one writes: it cannot while the
                # row is locked, so this wait runs out and the second reads after the commit.
                second_read.wait(timeout=1)
                assetstore.update_metadata(s, row, AssetUpdate(accept_suggestions=["red"]), utcnow())
        except BaseException as exc:  # reported below
            errors.append(exc)

    def second() -> None:
        try:
            first_read.wait(timeout=10)
            with database.write() as s:
                row = assetstore.lock_asset(s, a, asset_id)
                second_read.set()
                assetstore.update_metadata(s, row, AssetUpdate(accept_suggestions=["circle"]), utcnow())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with database.read() as s:
        row = assetstore.get_asset(s, a, asset_id)
    assert sorted(row.tags or []) == ["circle", "red"]  # neither edit lost the other's tag
    assert row.suggested_tags == ["growing", "green", "background"]
