"""/v1/verify: check the C2PA provenance of an uploaded file against the platform's trust anchor."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from reelfoundry.api.deps import PlatformDep, Reader
from reelfoundry.api.files import binary_body
from reelfoundry.api.uploads import receive_upload
from reelfoundry.errors import BadRequest, UnsupportedMediaType
from reelfoundry.media.sniff import OCTET_STREAM, sniff_file
from reelfoundry.provenance.manifest import verify

router = APIRouter(tags=["provenance"])
#: What can carry a C2PA manifest here: the platform's own videos and the images it takes as inputs.
VERIFIABLE = {"video/mp4": ".mp4", "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@router.post(
    "/verify",
    summary="Verify a file's C2PA manifests (the body is the file)",
    openapi_extra={"requestBody": binary_body(VERIFIABLE)},
)
async def verify_file(request: Request, platform: PlatformDep, principal: Reader) -> dict[str, Any]:
    """The manifest chain, claim generator, actions and validation state, trusting the configured CA.

    ``valid`` is false for a file whose manifests fail validation and for one with none.
    """
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared not in VERIFIABLE and declared != OCTET_STREAM:
        raise UnsupportedMediaType(
            f"Content-Type must be one of {', '.join([*VERIFIABLE, OCTET_STREAM])}, got {declared or 'none'!r}"
        )
    anchor = platform.credentials.trust_anchor_pem
    async with receive_upload(request, limit=platform.settings.max_verify_bytes, key=principal.key_id) as upload:
        if upload.size == 0:
            raise BadRequest("the request body is empty: send the file to verify")
        media_type = declared if declared != OCTET_STREAM else await run_in_threadpool(sniff_file, upload.path)
        if media_type not in VERIFIABLE:
            raise UnsupportedMediaType(f"the body is not a {', '.join(VERIFIABLE)} file")
        # The c2pa reader picks its parser by the file's extension: a second name for the same file.
        named = upload.path.with_name(upload.path.name + VERIFIABLE[media_type])
        os.link(upload.path, named)
        try:
            return (await run_in_threadpool(verify, named, anchor)).to_json()
        finally:
            named.unlink(missing_ok=True)
