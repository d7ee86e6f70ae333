"""Storage keys: one module makes them, in the layout existing data dirs already hold."""

from __future__ import annotations

import pytest

from reelfoundry.assets import keys
from reelfoundry.assets.objectstore import check_key
from reelfoundry.ids import new_id

TENANT, ASSET = "01J0TENANT0000000000000000", "01J0ASSET00000000000000000"


def test_each_kind_of_object_keeps_todays_layout() -> None:
    assert keys.video(TENANT, ASSET) == f"{TENANT}/{ASSET}.mp4"
    assert keys.poster(TENANT, ASSET) == f"{TENANT}/{ASSET}.jpg"
    assert keys.upload(TENANT, ASSET, "image/png") == f"{TENANT}/{ASSET}.png"
    assert keys.upload(TENANT, ASSET, "image/jpeg") == f"{TENANT}/{ASSET}.jpg"
    assert keys.upload(TENANT, ASSET, "image/webp") == f"{TENANT}/{ASSET}.webp"
    assert keys.published(TENANT, ASSET, "video/mp4", "V1") == f"{TENANT}/{ASSET}.published-V1.mp4"
    assert keys.published(TENANT, ASSET, "image/png", "V1") == f"{TENANT}/{ASSET}.published-V1.png"


def test_every_publication_gets_a_key_of_its_own() -> None:
    first, second = (keys.published(TENANT, ASSET, "video/mp4") for _ in range(2))
    assert first != second
    assert first.startswith(f"{TENANT}/{ASSET}.published-") and first.endswith(".mp4")


def test_a_type_the_store_does_not_know_is_stored_as_bin() -> None:
    assert keys.extension("application/x-unknown") == "bin"
    assert keys.published(TENANT, ASSET, "application/x-unknown", "V").endswith(".published-V.bin")


def test_uploads_are_images_only() -> None:
    with pytest.raises(ValueError, match="media type"):
        keys.upload(TENANT, ASSET, "video/mp4")
    with pytest.raises(ValueError, match="media type"):
        keys.upload(TENANT, ASSET, "text/html")


@pytest.mark.parametrize("tenant", ["", "..", "../etc", "a/b", "/abs", ".hidden"])
def test_a_key_that_could_escape_its_tenant_is_refused(tenant: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        keys.video(tenant, ASSET)
    with pytest.raises(ValueError, match="invalid storage key"):
        keys.poster(TENANT, f"../{ASSET}")


def test_keys_are_well_formed_for_every_store() -> None:
    tenant, asset = new_id(), new_id()
    made = [
        keys.video(tenant, asset),
        keys.poster(tenant, asset),
        keys.upload(tenant, asset, "image/webp"),
        keys.published(tenant, asset, "video/mp4"),
    ]
    assert all(check_key(k) == k and k.startswith(f"{tenant}/") for k in made)
    assert len(set(made)) == len(made)
