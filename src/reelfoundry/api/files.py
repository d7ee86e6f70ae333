"""Serving a stored file over HTTP: whole, one byte range, or 304 when the ETag matches."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi import Response
from fastapi.responses import StreamingResponse

from reelfoundry.api.ranges import parse_range
from reelfoundry.assets.storage import LocalStorage
from reelfoundry.errors import NotFound
from reelfoundry.store.tables import AssetRow

CHUNK = 256 * 1024
_BINARY = {"type": "string", "format": "binary"}


def binary_body(media_types: Iterable[str]) -> dict[str, Any]:
    """The OpenAPI request body of an upload: the file's bytes.

    Documented as ``application/octet-stream`` (the server then tells the type from the bytes), the one
    binary type standard generators handle; sending the file's own type works the same.
    """
    return {
        "required": True,
        "description": f"The file's bytes. Content-Type application/octet-stream, or the file's own type: "
        f"{', '.join(media_types)}.",
        "content": {"application/octet-stream": {"schema": _BINARY}},
    }


def binary_response(media_types: Iterable[str], description: str) -> dict[str, Any]:
    """An OpenAPI response of raw bytes, under each real media type and ``application/octet-stream``."""
    return {
        "description": description,
        "content": {t: {"schema": _BINARY} for t in (*media_types, "application/octet-stream")},
    }


def _file_chunks(path: Path, start: int, length: int, on_sent: Callable[[int], None] | None) -> Iterator[bytes]:
    """Read the span in chunks; report the bytes sent when done (from a thread if the client went away,
    since the generator is then closed wherever it happens to be, perhaps on the event loop)."""
    sent = 0
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            while length > 0:
                data = fh.read(min(CHUNK, length))
                if not data:
                    break
                length -= len(data)
                yield data
                sent += len(data)
    except GeneratorExit:
        if on_sent is not None and sent:
            threading.Thread(target=on_sent, args=(sent,), daemon=True).start()
        raise
    if on_sent is not None and sent:
        on_sent(sent)


def file_response(
    path: Path,
    *,
    media_type: str,
    etag: str,
    cache_control: str,
    range_: str | None,
    if_none_match: str | None,
    on_sent: Callable[[int], None] | None = None,
) -> Response:
    """A streaming response for ``path`` honouring Range and If-None-Match; ``on_sent`` gets the bytes sent."""
    size = path.stat().st_size
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": cache_control}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    if range_ is not None:
        span = parse_range(range_, size)
        if span is not None:
            start, end = span
            length = end - start + 1
            headers.update({"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(length)})
            return StreamingResponse(
                _file_chunks(path, start, length, on_sent), 206, headers=headers, media_type=media_type
            )
    headers["Content-Length"] = str(size)
    return StreamingResponse(_file_chunks(path, 0, size, on_sent), 200, headers=headers, media_type=media_type)


def original_response(
    storage: LocalStorage,
    row: AssetRow,
    *,
    range_: str | None,
    if_none_match: str | None,
    on_sent: Callable[[int], None] | None,
) -> Response:
    """An asset's original file, for the tenant's own eyes (review, the creator's preview).

    ``on_sent`` (required: every way out is metered) is charged the bytes sent, e.g. the platform's egress meter.

    Never cached by anyone else: the way out to an audience is a delivery URL of the published rendition.
    """
    path = storage.path(row.storage_key)
    if not path.is_file():
        raise NotFound(f"content of asset {row.id} is missing from storage")
    return file_response(
        path,
        media_type=row.media_type,
        etag=f'"{row.sha256}"',
        cache_control="private, no-store",
        range_=range_,
        if_none_match=if_none_match,
        on_sent=on_sent,
    )


def poster_response(storage: LocalStorage, row: AssetRow) -> Response:
    """The JPEG still made when a video asset was stored."""
    if row.poster_key is None or not storage.exists(row.poster_key):
        raise NotFound(f"asset {row.id} has no poster")
    data = storage.path(row.poster_key).read_bytes()
    headers = {"ETag": f'"{row.sha256}-poster"', "Cache-Control": "private, no-store"}
    return Response(data, media_type="image/jpeg", headers=headers)
