"""/v1/assets: list and search, upload (images and MP4), read and edit metadata, download content (Range, ETag),
posters and XMP sidecars; and the tenant's endpoint for asset events (/v1/webhooks/endpoint)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from reelfoundry import publishing
from reelfoundry.api.deps import Cursor, KeyAdmin, Limit, PlatformDep, Publisher, Reader, Reviewer, Submitter
from reelfoundry.api.files import binary_body, binary_response, original_response, poster_response
from reelfoundry.api.uploads import VideoInfo, inspect_video, receive_upload
from reelfoundry.assets import keys, phash, xmp
from reelfoundry.errors import InvalidParameter, NotFound, PayloadTooLarge, UnsupportedMediaType
from reelfoundry.ids import new_id
from reelfoundry.media.images import IMAGE_TYPES, ImageInfo, inspect_image
from reelfoundry.media.sniff import OCTET_STREAM, sniff_file
from reelfoundry.schema import Asset, Page, Publication, ReviewCreate, ReviewState
from reelfoundry.schema.dam import (
    AssetUpdate,
    AssetWebhookDelivery,
    Origin,
    SearchMode,
    WebhookEndpoint,
    WebhookEndpointUpdate,
)
from reelfoundry.schema.text import PRINTABLE
from reelfoundry.store import assets as assetstore
from reelfoundry.store import audit
from reelfoundry.store import pending as pendingstore
from reelfoundry.store import webhooks as outbox
from reelfoundry.store.tables import JobRow, utcnow

router = APIRouter(prefix="/assets", tags=["assets"])
#: What an asset's content can be: generated or uploaded video, or an uploaded image.
MEDIA_TYPES = ["video/mp4", *IMAGE_TYPES]
VIDEO = "video/mp4"
#: What an upload may be.
UPLOAD_TYPES = [*IMAGE_TYPES, VIDEO]

Label = Annotated[str | None, Query(max_length=128, pattern=PRINTABLE)]


@router.get("", response_model=Page[Asset], summary="List or search assets")
def list_assets(
    platform: PlatformDep,
    principal: Reader,
    cursor: Cursor = None,
    limit: Limit = 50,
    project: Label = None,
    campaign: Label = None,
    review_state: Annotated[ReviewState | None, Query(description="The review state (the asset's state).")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=500,
            pattern=PRINTABLE,
            description="Search the prompt, title, description, tags and brand; results come best first, one "
            "page (no next_cursor).",
        ),
    ] = None,
    mode: Annotated[
        SearchMode, Query(description="text: every word of q occurs (full text); semantic: nearest in meaning.")
    ] = SearchMode.text,
    model: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Made by this model.")] = None,
    brand: Label = None,
    tag: Annotated[str | None, Query(max_length=64, pattern=PRINTABLE, description="Carries this tag.")] = None,
    collection: Annotated[str | None, Query(max_length=26, description="In this collection (its id).")] = None,
    origin: Origin | None = None,
    created_after: Annotated[datetime | None, Query(description="Created at or after this time.")] = None,
    created_before: Annotated[datetime | None, Query(description="Created before this time.")] = None,
) -> Page[Asset]:
    """The tenant's assets filtered by project, campaign, review state, model, brand, tag, collection, origin and
    creation time: newest first a page at a time, or, with ``q``, the best ``limit`` matches."""
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise InvalidParameter(name, f"{name} needs a timezone (e.g. 2026-12-01T00:00:00Z)")
    filters = assetstore.AssetFilters(
        project=project,
        campaign=campaign,
        review_state=review_state,
        model=model,
        brand=brand,
        tag=tag.lower().strip() if tag else None,
        collection_id=collection,
        origin=origin,
        created_after=created_after,
        created_before=created_before,
    )
    if q is None:
        with platform.db.read() as session:
            rows, nxt = assetstore.list_assets(
                session, principal.tenant_id, cursor=cursor, limit=limit, filters=filters
            )
            return Page[Asset](items=[assetstore.to_asset(r) for r in rows], next_cursor=nxt)
    # A semantic search may store embeddings it had to make first: a write transaction.
    with platform.db.write() as session:
        hits = assetstore.search(session, principal.tenant_id, q, filters=filters, mode=mode, limit=limit)
        items = [assetstore.to_asset(r).model_copy(update={"score": round(score, 6)}) for r, score in hits]
    return Page[Asset](items=items, next_cursor=None)


def _check_type(declared: str) -> None:
    if declared not in UPLOAD_TYPES and declared != OCTET_STREAM:
        raise UnsupportedMediaType(
            f"Content-Type must be one of {', '.join([*UPLOAD_TYPES, OCTET_STREAM])}, got {declared or 'none'!r}"
        )


@router.post(
    "",
    status_code=201,
    response_model=Asset,
    summary="Upload an image or MP4 video (brand material, or a job input)",
    openapi_extra={"requestBody": binary_body(UPLOAD_TYPES)},
)
async def upload_asset(
    request: Request,
    platform: PlatformDep,
    principal: Submitter,
    content_type: Annotated[str, Header(max_length=100)] = "",
    project: Label = None,
    campaign: Label = None,
) -> Asset:
    """The raw file is the body: a PNG, JPEG or WebP image, or an MP4 video. It goes through the review gate like
    generated media; ``near_duplicates`` names the tenant's assets whose key frames look nearly the same."""
    settings = platform.settings
    declared = content_type.split(";")[0].strip().lower()
    _check_type(declared)
    # A declared image stops at the image cap as it streams; a video, or a body of unknown type, at the larger one.
    limit = (
        settings.max_upload_bytes
        if declared in IMAGE_TYPES
        else max(settings.max_upload_bytes, settings.max_video_upload_bytes)
    )
    async with receive_upload(request, limit=limit, key=principal.key_id) as upload:
        media_type = declared if declared != OCTET_STREAM else await run_in_threadpool(sniff_file, upload.path)
        if media_type not in UPLOAD_TYPES:
            raise UnsupportedMediaType(f"the body is not a {', '.join(UPLOAD_TYPES)} file")
        if media_type != VIDEO and upload.size > settings.max_upload_bytes:
            raise PayloadTooLarge(f"an image upload may be {settings.max_upload_bytes} bytes at most")
        if media_type == VIDEO:
            if (await run_in_threadpool(sniff_file, upload.path)) != VIDEO:
                raise InvalidParameter("body", "Content-Type says video/mp4 but the body is not an MP4")
            info: ImageInfo | VideoInfo = await run_in_threadpool(
                lambda: inspect_video(upload.path, max_duration_s=settings.max_video_upload_duration_s)
            )
        else:
            info = await run_in_threadpool(inspect_image, upload.path, media_type, upload.size, upload.sha256)
        hashes = await run_in_threadpool(_hashes, upload.path, media_type)
        asset_id = new_id()
        # An uploaded video is stored where a generated one would be: one asset id, one file.
        key = (
            keys.video(principal.tenant_id, asset_id)
            if media_type == VIDEO
            else keys.upload(principal.tenant_id, asset_id, media_type)
        )

        def store() -> Asset:
            with platform.db.write() as session:  # recorded first: a process that dies after the put leaves no orphan
                pendingstore.record(session, [key], job_id=None, attempt=0, node=platform.node, now=utcnow())
            try:
                platform.storage.put_file(key, upload.path, media_type)  # local store: a rename (tmp beside media)
                with platform.db.write() as session:
                    duplicates = phash.near_duplicates(
                        hashes, assetstore.duplicate_candidates(session, principal.tenant_id)
                    )
                    video = info if isinstance(info, VideoInfo) else None
                    row = assetstore.add_upload(
                        session,
                        asset_id=asset_id,
                        tenant_id=principal.tenant_id,
                        storage_key=key,
                        media_type=media_type,
                        width=info.width,
                        height=info.height,
                        size=upload.size,
                        sha256=upload.sha256,
                        project=project,
                        campaign=campaign,
                        created_by=principal.key_id,
                        phash=hashes or None,
                        duration_s=video.duration_s if video else None,
                        fps=video.fps if video else None,
                        num_frames=video.num_frames if video else None,
                        codec=video.codec if video else None,
                    )
                    session.flush()
                    now = utcnow()
                    assetstore.catalogue(session, row, now)
                    outbox.enqueue_asset_event(session, row, "asset.created", now, {"near_duplicates": duplicates})
                    pendingstore.settle(session, [key])
                    return assetstore.to_asset(row).model_copy(update={"near_duplicates": duplicates})
            except BaseException:
                pendingstore.discard(platform.db, platform.storage, [key])
                raise

        return await run_in_threadpool(store)


def _hashes(path: Any, media_type: str) -> str:
    """Key-frame hashes of an upload ("" when its frames cannot be read: the upload is still taken)."""
    try:
        return phash.hashes_of(path, media_type)
    except Exception:  # the file passed inspection; a hash is a bonus, not a gate
        return ""


@router.get("/{asset_id}", response_model=Asset, summary="Read an asset's metadata")
def get_asset(asset_id: str, platform: PlatformDep, principal: Reader) -> Asset:
    """One asset of the tenant."""
    with platform.db.read() as session:
        return assetstore.to_asset(assetstore.get_asset(session, principal.tenant_id, asset_id))


_UPDATE_EXAMPLE = {
    "title": "Spring teaser, blue cut",
    "tags": ["spring", "teaser"],
    "brand": "Acme",
    "licence": "internal",
    "rights_expires_at": "2027-06-30T00:00:00Z",
    "usage_restrictions": ["no-training"],
    "accept_suggestions": True,
}


@router.patch(
    "/{asset_id}",
    response_model=Asset,
    summary="Edit an asset's metadata (audited)",
    openapi_extra={"requestBody": {"content": {"application/json": {"example": _UPDATE_EXAMPLE}}}},
)
def update_asset(asset_id: str, body: AssetUpdate, platform: PlatformDep, principal: Submitter) -> Asset:
    """Title, description, tags, brand, licence, consent reference, rights expiry and usage restrictions; a field
    sent as null is cleared. ``accept_suggestions`` moves suggested tags into tags. Each change is written to the
    audit log (field, old and new value) and sent to the tenant's endpoint as ``asset.metadata_updated``."""
    with platform.db.write() as session:
        row = assetstore.lock_asset(session, principal.tenant_id, asset_id)
        now = utcnow()
        changes = assetstore.update_metadata(session, row, body, now)
        if changes:
            audit.append_by(session, principal, "asset.metadata_updated", subject=row.id, data={"changes": changes})
            outbox.enqueue_asset_event(session, row, "asset.metadata_updated", now, {"changed": sorted(changes)})
        return assetstore.to_asset(row)


@router.get(
    "/{asset_id}/xmp",
    summary="The asset's XMP sidecar (IPTC digital source type and its metadata)",
    response_class=Response,
    responses={200: binary_response([xmp.MEDIA_TYPE], "The XMP packet (RDF/XML, UTF-8).")},
)
def get_asset_xmp(asset_id: str, platform: PlatformDep, principal: Reader) -> Response:
    """An XMP packet to keep beside the file (``<id>.xmp``): title, description, tags, licence, rights expiry,
    usage restrictions, brand, consent reference and IPTC ``DigitalSourceType``."""
    with platform.db.read() as session:
        row = assetstore.get_asset(session, principal.tenant_id, asset_id)
        job = session.get(JobRow, row.job_id) if row.job_id else None
        model = job.model if job is not None else None
    sidecar = xmp.Sidecar(
        asset_id=row.id,
        media_type=row.media_type,
        sha256=row.sha256,
        created_at=row.created_at,
        digital_source_type=xmp.source_type(row.origin, model),
        title=row.title,
        description=row.description,
        tags=tuple(row.tags or ()),
        brand=row.brand,
        licence=row.licence,
        consent_ref=row.consent_ref,
        rights_expires_at=row.rights_expires_at,
        usage_restrictions=tuple(row.usage_restrictions or ()),
        model=model,
    )
    return Response(
        xmp.render(sidecar),
        media_type=xmp.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{row.id}.xmp"'},
    )


@router.get("/{asset_id}/duplicates", response_model=Page[Asset], summary="Near duplicates of an asset")
def list_asset_duplicates(asset_id: str, platform: PlatformDep, principal: Reader) -> Page[Asset]:
    """The tenant's assets whose key frames look nearly the same as this one's (perceptual hashes), nearest first;
    empty for an asset without hashes (generated media)."""
    with platform.db.read() as session:
        row = assetstore.get_asset(session, principal.tenant_id, asset_id)
        if not row.phash:
            return Page[Asset](items=[], next_cursor=None)
        found = phash.near_duplicates(
            row.phash, assetstore.duplicate_candidates(session, principal.tenant_id, exclude=row.id)
        )
        items = [assetstore.to_asset(assetstore.get_asset(session, principal.tenant_id, a)) for a in found[:200]]
    return Page[Asset](items=items, next_cursor=None)


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


# -- the tenant's endpoint for asset events --------------------------------------------------------------------

webhook_router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _endpoint_or_404(platform: Any, tenant_id: str) -> WebhookEndpoint:
    with platform.db.read() as session:
        row = outbox.get_endpoint(session, tenant_id)
        if row is None:
            raise NotFound("no webhook endpoint is set for asset events (PUT /v1/webhooks/endpoint)")
        return WebhookEndpoint(url=row.url, updated_at=row.updated_at)


@webhook_router.get("/endpoint", response_model=WebhookEndpoint, summary="The endpoint for asset events (admin)")
def get_webhook_endpoint(platform: PlatformDep, principal: KeyAdmin) -> WebhookEndpoint:
    """Where asset.created, asset.metadata_updated and asset.rights_expiring go (signed like job webhooks)."""
    return _endpoint_or_404(platform, principal.tenant_id)


@webhook_router.put(
    "/endpoint",
    response_model=WebhookEndpoint,
    summary="Set the endpoint for asset events (admin)",
    responses={503: {"description": "The URL's name server did not answer; retry after Retry-After."}},
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": {"url": "https://hooks.example.com/dam"}}}}
    },
)
def set_webhook_endpoint(body: WebhookEndpointUpdate, platform: PlatformDep, principal: KeyAdmin) -> WebhookEndpoint:
    """The URL passes the same outbound policy as a job's ``webhook_url`` (public addresses only unless allowed),
    and is checked again before every send."""
    url = str(body.url)
    platform.outbound.check(url, "url")
    with platform.db.write() as session:
        row = outbox.set_endpoint(session, principal.tenant_id, url, principal.key_id, utcnow())
        audit.append_by(session, principal, "webhook.endpoint_set", subject=principal.tenant_id, data={"url": url})
        return WebhookEndpoint(url=row.url, updated_at=row.updated_at)


@webhook_router.delete(
    "/endpoint", status_code=204, response_class=Response, summary="Stop sending asset events (admin)"
)
def delete_webhook_endpoint(platform: PlatformDep, principal: KeyAdmin) -> Response:
    """Events already queued are still delivered; no new ones are queued."""
    with platform.db.write() as session:
        if not outbox.delete_endpoint(session, principal.tenant_id):
            raise NotFound("no webhook endpoint is set for asset events")
        audit.append_by(session, principal, "webhook.endpoint_deleted", subject=principal.tenant_id)
    return Response(status_code=204)


@webhook_router.get(
    "/asset-deliveries", response_model=Page[AssetWebhookDelivery], summary="Asset-event deliveries, newest first"
)
def list_asset_webhook_deliveries(
    platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50
) -> Page[AssetWebhookDelivery]:
    """Every delivery of an asset event to the tenant's endpoint with its attempts and last outcome."""
    with platform.db.read() as session:
        rows, nxt = outbox.list_asset_deliveries(session, principal.tenant_id, cursor=cursor, limit=limit)
        fields = AssetWebhookDelivery.model_fields.keys()
        items = [AssetWebhookDelivery(**{f: getattr(r, f) for f in fields}) for r in rows]
    return Page[AssetWebhookDelivery](items=items, next_cursor=nxt)
