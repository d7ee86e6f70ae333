"""/v1/assets: list, read, and download content (Range, ETag) and posters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from reelfoundry import publishing
from reelfoundry.api.deps import Cursor, Limit, PlatformDep, Publisher, Reader, Reviewer, Submitter
from reelfoundry.api.files import binary_body, binary_response, original_response, poster_response
from reelfoundry.api.uploads import receive_upload
from reelfoundry.assets import keys
from reelfoundry.errors import UnsupportedMediaType
from reelfoundry.ids import new_id
from reelfoundry.media.images import IMAGE_TYPES, inspect_image
from reelfoundry.media.sniff import OCTET_STREAM, sniff_file
from reelfoundry.schema import Asset, Page, Publication, ReviewCreate, ReviewState
from reelfoundry.schema.text import PRINTABLE
from reelfoundry.store import assets as assetstore
from reelfoundry.store import pending as pendingstore
from reelfoundry.store.tables import utcnow

router = APIRouter(prefix="/assets", tags=["assets"])
#: What an asset's content can be: generated video, or an uploaded image.
MEDIA_TYPES = ["video/mp4", *IMAGE_TYPES]


@router.get("", response_model=Page[Asset], summary="List assets, newest first")
def list_assets(
    platform: PlatformDep,
    principal: Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
    project: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)] = None,
    campaign: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)] = None,
    review_state: ReviewState | None = None,
) -> Page[Asset]:
    """A page of the tenant's assets, optionally filtered by project, campaign and review state."""
    with platform.db.read() as session:
        rows, nxt = assetstore.list_assets(
            session,
            principal.tenant_id,
            cursor=cursor,
            limit=limit,
            project=project,
            campaign=campaign,
            review_state=review_state,
        )
        return Page[Asset](items=[assetstore.to_asset(r) for r in rows], next_cursor=nxt)


@router.post(
    "",
    status_code=201,
    response_model=Asset,
    summary="Upload an image to use as a job input",
    openapi_extra={"requestBody": binary_body(IMAGE_TYPES)},
)
async def upload_asset(
    request: Request,
    platform: PlatformDep,
    principal: Submitter,
    content_type: Annotated[str, Header(max_length=100)] = "",
    project: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)] = None,
    campaign: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)] = None,
) -> Asset:
    """The raw image is the body (PNG, JPEG or WebP); reference its id in a request's ``inputs``."""
    declared = content_type.split(";")[0].strip().lower()
    if declared not in IMAGE_TYPES and declared != OCTET_STREAM:
        raise UnsupportedMediaType(
            f"Content-Type must be one of {', '.join([*IMAGE_TYPES, OCTET_STREAM])}, got {declared or 'none'!r}"
        )
    async with receive_upload(request, limit=platform.settings.max_upload_bytes, key=principal.key_id) as upload:
        media_type = declared if declared != OCTET_STREAM else await run_in_threadpool(sniff_file, upload.path)
        if media_type not in IMAGE_TYPES:
            raise UnsupportedMediaType(f"the body is not a {', '.join(IMAGE_TYPES)} image")
        info = await run_in_threadpool(inspect_image, upload.path, media_type, upload.size, upload.sha256)
        asset_id = new_id()
        key = keys.upload(principal.tenant_id, asset_id, media_type)

        def store() -> Asset:
            with platform.db.write() as session:  # recorded first: a process that dies after the put leaves no orphan
                pendingstore.record(session, [key], job_id=None, attempt=0, node=platform.node, now=utcnow())
            try:
                platform.storage.put_file(key, upload.path, media_type)  # local store: a rename (tmp beside media)
                with platform.db.write() as session:
                    row = assetstore.add_upload(
                        session,
                        asset_id=asset_id,
                        tenant_id=principal.tenant_id,
                        storage_key=key,
                        media_type=media_type,
                        width=info.width,
                        height=info.height,
                        size=info.bytes,
                        sha256=info.sha256,
                        project=project,
                        campaign=campaign,
                        created_by=principal.key_id,
                    )
                    pendingstore.settle(session, [key])
                    return assetstore.to_asset(row)
            except BaseException:
                pendingstore.discard(platform.db, platform.storage, [key])
                raise

        return await run_in_threadpool(store)


@router.get("/{asset_id}", response_model=Asset, summary="Read an asset's metadata")
def get_asset(asset_id: str, platform: PlatformDep, principal: Reader) -> Asset:
    """One asset of the tenant."""
    with platform.db.read() as session:
        return assetstore.to_asset(assetstore.get_asset(session, principal.tenant_id, asset_id))


@router.post(
    "/{asset_id}/review",
    response_model=Asset,
    summary="Approve or reject an asset (reviewer or admin)",
    responses={
        403: {"description": "Not a reviewer, or the asset's own creator."},
        409: {"description": "Already reviewed."},
    },
)
def review_asset(asset_id: str, body: ReviewCreate, platform: PlatformDep, principal: Reviewer) -> Asset:
    """``pending_review → approved | rejected``. The key that created the asset may not approve it unless the
    tenant allows self-approval."""
    return publishing.review_asset(platform, principal, asset_id, body)


@router.post(
    "/{asset_id}/publish",
    response_model=Publication,
    summary="Publish an approved asset and get a signed, expiring delivery URL",
    responses={
        409: {"description": "The asset is not approved."},
        503: {"description": "Storage is unavailable; retry after Retry-After."},
    },
)
def publish_asset(asset_id: str, platform: PlatformDep, principal: Publisher) -> Publication:
    """``approved → published``: the published file carries a second C2PA manifest recording the review.
    Calling it again on a published asset hands out a fresh URL (under public_base_url, or this server's
    own address)."""
    return publishing.publish_asset(platform, principal, asset_id)


@router.get(
    "/{asset_id}/content",
    summary="Download the media (supports Range and If-None-Match)",
    response_class=StreamingResponse,
    responses={
        200: binary_response(MEDIA_TYPES, "The whole file (its media type: video/mp4, or the uploaded image's)."),
        206: binary_response(MEDIA_TYPES, "One byte range."),
        304: {"description": "Not modified (ETag matched)."},
        503: {"description": "Storage is unavailable; retry after Retry-After."},
    },
)
def get_asset_content(
    asset_id: str,
    platform: PlatformDep,
    principal: Reader,
    range_: Annotated[str | None, Header(alias="range", max_length=200)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """The original bytes, for keys of the tenant; ETag is the quoted SHA-256.

    This serves unreviewed assets to the tenant's own keys (reviewers need to watch them). Anything meant
    for an audience goes out through ``POST /v1/assets/{id}/publish``, which needs an approval first.
    """
    with platform.db.read() as session:
        row = assetstore.get_asset(session, principal.tenant_id, asset_id)
    return original_response(
        platform.storage,
        row,
        range_=range_,
        if_none_match=if_none_match,
        on_sent=platform.egress_meter(row.job_id),
    )


@router.get(
    "/{asset_id}/poster",
    summary="A JPEG still of the video",
    response_class=Response,
    responses={
        200: binary_response(["image/jpeg"], "The poster, a JPEG."),
        503: {"description": "Storage is unavailable; retry after Retry-After."},
    },
)
def get_asset_poster(asset_id: str, platform: PlatformDep, principal: Reader) -> Response:
    """The poster image made when the asset was stored."""
    with platform.db.read() as session:
        row = assetstore.get_asset(session, principal.tenant_id, asset_id)
    return poster_response(platform.storage, row)
