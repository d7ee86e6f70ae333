"""/v1/verify: check the C2PA provenance of an uploaded file against the platform's trust anchor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from reelfoundry.api.deps import PlatformDep, Reader
from reelfoundry.api.uploads import receive_upload
from reelfoundry.errors import BadRequest, UnsupportedMediaType
from reelfoundry.provenance.manifest import verify

router = APIRouter(tags=["provenance"])
#: What can carry a C2PA manifest here: the platform's own videos and the images it takes as inputs.
VERIFIABLE = {"video/mp4": ".mp4", "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@router.post(
    "/verify",
    summary="Verify a file's C2PA manifests (the body is the file)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in VERIFIABLE},
        }
    },
)
async def verify_upload(request: Request, platform: PlatformDep, principal: Reader) -> dict[str, Any]:
    """The manifest chain, claim generator, actions and validation state, trusting the configured CA.

    ``valid`` is false for a file whose manifests fail validation and for one with none.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in VERIFIABLE:
        raise UnsupportedMediaType(f"Content-Type must be one of {', '.join(VERIFIABLE)}, got {media_type or 'none'!r}")
    anchor = platform.credentials.trust_anchor_pem
    # The c2pa reader picks its parser by the file's extension.
    async with receive_upload(
        request, limit=platform.settings.max_verify_bytes, key=principal.key_id, suffix=VERIFIABLE[media_type]
    ) as upload:
        if upload.size == 0:
            raise BadRequest("the request body is empty: send the file to verify")
        return (await run_in_threadpool(verify, upload.path, anchor)).to_json()
