"""/v1/delivery: published files behind signed, expiring URLs (no API key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from reelfoundry.api.deps import PlatformDep
from reelfoundry.api.files import binary_response, object_response
from reelfoundry.assets import keys
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
        307: {
            "description": "delivery_mode presigned: a redirect to the store's own URL of the file.",
            "headers": {"Location": {"description": "The presigned URL.", "schema": {"type": "string"}}},
        },
        403: {"description": "Not a valid delivery URL of a published asset."},
        404: {"description": "The published file is missing from storage."},
        410: {"description": "The URL has expired."},
        503: {"description": "Storage is unavailable; retry after Retry-After."},
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

    With ``delivery_mode`` ``presigned`` and a store that presigns (S3), a valid URL redirects (307) to the
    store's own URL of the file, valid as long as this one but at most ``s3_presign_ttl_s``; otherwise the file
    is streamed from here.

    A URL for anything else — an unknown id, an asset not published, a changed signature — is the same
    403, so the route tells nobody without a valid URL which assets exist or are published.
    """
    with platform.db.read() as session:
        row = assetstore.find_published(session, asset_id)
    # No published file: check against a digest no signature was made for, so the answer is the 403 below.
    platform.delivery.check(asset_id, (row.published_sha256 or "") if row else "", expires, signature)
    assert row is not None and row.published_key is not None and row.published_sha256 is not None
    remaining = max(0, expires - int(datetime.now(UTC).timestamp()))
    if platform.settings.delivery_mode == "presigned":
        filename = f"{row.id}.{keys.extension(row.media_type)}"
        expires_s = max(1, min(remaining, platform.settings.s3_presign_ttl_s))
        url = platform.storage.presign(row.published_key, expires_s, filename=filename)
        if url is not None:  # the store serves it (and its egress is the store's to count)
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    return object_response(
        platform.storage,
        row.published_key,
        media_type=row.media_type,
        etag=f'"{row.published_sha256}"',
        cache_control=f"public, max-age={min(remaining, 86400)}",
        range_=range_,
        if_none_match=if_none_match,
        missing=f"the published file of asset {asset_id} is missing from storage",
        on_sent=platform.egress_meter(row.job_id),
    )
