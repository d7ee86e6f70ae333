"""Every storage key the platform makes: the one place the layout of the media store is decided.

Keys live under the owning tenant's id, one object per file (the layout data dirs already hold)::

    <tenant_id>/<asset_id>.mp4                        a generated video
    <tenant_id>/<asset_id>.jpg                        its poster still
    <tenant_id>/<asset_id>.<png|jpg|webp>             an uploaded image
    <tenant_id>/<asset_id>.published-<id>.<ext>       a published rendition (review manifest signed on)

Callers never build a key themselves; they ask here, and get a key :func:`check_key` accepts.
"""

from __future__ import annotations

from reelfoundry.assets.objectstore import check_key
from reelfoundry.ids import new_id

#: File extension of each media type the store holds.
EXTENSIONS = {"video/mp4": "mp4", "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _key(tenant_id: str, name: str) -> str:
    """``<tenant_id>/<name>``, each one path segment; ValueError otherwise."""
    if "/" in tenant_id or "/" in name:
        raise ValueError(f"invalid storage key {tenant_id + '/' + name!r}: ids are one path segment")
    return check_key(f"{tenant_id}/{name}")


def extension(media_type: str) -> str:
    """The extension objects of ``media_type`` are stored with (``bin`` for a type the store does not know)."""
    return EXTENSIONS.get(media_type, "bin")


def video(tenant_id: str, asset_id: str) -> str:
    """A generated video (MP4)."""
    return _key(tenant_id, f"{asset_id}.mp4")


def poster(tenant_id: str, asset_id: str) -> str:
    """The JPEG poster still of a generated video."""
    return _key(tenant_id, f"{asset_id}.jpg")


def upload(tenant_id: str, asset_id: str, media_type: str) -> str:
    """An uploaded input image; ValueError for a media type uploads cannot have."""
    if media_type not in EXTENSIONS or media_type == "video/mp4":
        raise ValueError(f"no upload key for media type {media_type!r}")
    return _key(tenant_id, f"{asset_id}.{EXTENSIONS[media_type]}")


def published(tenant_id: str, asset_id: str, media_type: str, version: str | None = None) -> str:
    """A published rendition of an asset; each publication gets its own ``version`` (a new id by default), so a
    rendition being served is never overwritten by a concurrent publish."""
    return _key(tenant_id, f"{asset_id}.published-{version or new_id()}.{extension(media_type)}")


def adapter(tenant_id: str, finetune_id: str, filename: str) -> str:
    """One file of a fine-tune's adapter (the weights, its config); ValueError for a file name that is not one
    plain name."""
    if not filename or filename.startswith(".") or not all(c.isalnum() or c in "._-" for c in filename):
        raise ValueError(f"invalid adapter file name {filename!r}")
    return _key(tenant_id, f"{finetune_id}.adapter-{filename}")
