"""/v1/delivery: published files behind signed, expiring URLs (no API key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from reelfoundry.api.deps import PlatformDep
from reelfoundry.api.files import binary_response, file_response
from reelfoundry.errors import NotFound
from reelfoundry.store import assets as assetstore

router = APIRouter(prefix="/delivery", tags=["delivery"])


@router.get(
    "/{asset_id}",
    summary="Fetch a published file with a signed delivery URL",
    response_class=StreamingResponse,
    responses={
        200: binary_response(["video/mp4"], "The published file."),
        206: binary_response(["video/mp4"], "One byte range."),
        304: {"description": "Not modified (ETag matched)."},
        403: {"description": "Not a valid delivery URL of a published asset."},
        404: {"description": "The published file is missing from storage."},
        410: {"description": "The URL has expired."},
    },
)
def get_delivery(
    asset_id: str,
    platform: PlatformDep,
    expires: Annotated[int, Query(ge=0, le=2**40, description="Unix time the URL stops working.")],
    signature: Annotated[str, Query(min_length=64, max_length=64, pattern=r"^[0-9a-fA-F]{64}$")],
    range_: Annotated[str | None, Header(alias="range", max_length=200)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """The published rendition (with its review manifest); only ever a published asset's.

    A URL for anything else — an unknown id, an asset not published, a changed signature — is the same
    403, so the route tells nobody without a valid URL which assets exist or are published.
    """
    with platform.db.read() as session:
        row = assetstore.find_published(session, asset_id)
    # No published file: check against a digest no signature was made for, so the answer is the 403 below.
    platform.delivery.check(asset_id, (row.published_sha256 or "") if row else "", expires, signature)
    assert row is not None and row.published_key is not None and row.published_sha256 is not None
    path = platform.storage.path(row.published_key)
    if not path.is_file():
        raise NotFound(f"the published file of asset {asset_id} is missing from storage")
    remaining = max(0, expires - int(datetime.now(UTC).timestamp()))
    return file_response(
        path,
        media_type=row.media_type,
        etag=f'"{row.published_sha256}"',
        cache_control=f"public, max-age={min(remaining, 86400)}",
        range_=range_,
        if_none_match=if_none_match,
        on_sent=platform.egress_meter(row.job_id),
    )
