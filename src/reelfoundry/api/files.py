"""Serving a stored object over HTTP: whole, one byte range, or 304 when the ETag matches.

Everything goes through the :class:`~reelfoundry.assets.objectstore.ObjectStore` protocol (stat, then a byte
range): no path of a stored object is ever opened here, so the same code serves the local store and S3.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import Response
from fastapi.responses import StreamingResponse

from reelfoundry.api.ranges import parse_range
from reelfoundry.assets.objectstore import ObjectStore
from reelfoundry.errors import NotFound
from reelfoundry.store.tables import AssetRow

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


def _metered(chunks: Iterator[bytes], on_sent: Callable[[int], None] | None) -> Iterator[bytes]:
    """Pass the store's chunks on; report the bytes sent when done (from a thread if the client went away,
    since the generator is then closed wherever it happens to be, perhaps on the event loop)."""
    sent = 0
    try:
        for data in chunks:
            yield data
            sent += len(data)
    except GeneratorExit:
        if on_sent is not None and sent:
            threading.Thread(target=on_sent, args=(sent,), daemon=True).start()
        raise
    except BaseException:  # the store failed mid-body: what went out is still charged
        if on_sent is not None and sent:
            on_sent(sent)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the store's file or connection, now rather than whenever it is collected
    if on_sent is not None and sent:
        on_sent(sent)


def object_response(
    store: ObjectStore,
    key: str,
    *,
    media_type: str,
    etag: str,
    cache_control: str,
    range_: str | None,
    if_none_match: str | None,
    missing: str,
    on_sent: Callable[[int], None] | None = None,
) -> Response:
    """A streaming response of the object ``key`` honouring Range and If-None-Match; ``on_sent`` gets the bytes
    sent. NotFound (``missing`` its detail) when the store has no such object; StorageUnavailable (503) when the
    store cannot be reached."""
    info = store.stat(key)
    if info is None:
        raise NotFound(missing)
    size = info.size
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": cache_control}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    start, end, status = 0, None if size == 0 else size - 1, 200
    if range_ is not None:
        span = parse_range(range_, size)
        if span is not None:
            (start, end), status = span, 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = 0 if end is None else end - start + 1
    try:
        chunks = store.read_range(key, start, end) if length else iter(())
    except FileNotFoundError:  # deleted between the stat and the read
        raise NotFound(missing) from None
    headers["Content-Length"] = str(length)
    return StreamingResponse(_metered(chunks, on_sent), status, headers=headers, media_type=media_type)


def original_response(
    storage: ObjectStore,
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
    return object_response(
        storage,
        row.storage_key,
        media_type=row.media_type,
        etag=f'"{row.sha256}"',
        cache_control="private, no-store",
        range_=range_,
        if_none_match=if_none_match,
        missing=f"content of asset {row.id} is missing from storage",
        on_sent=on_sent,
    )


def poster_response(storage: ObjectStore, row: AssetRow) -> Response:
    """The JPEG still made when a video asset was stored."""
    if row.poster_key is None:
        raise NotFound(f"asset {row.id} has no poster")
    try:
        data = storage.read_bytes(row.poster_key)
    except FileNotFoundError:
        raise NotFound(f"asset {row.id} has no poster") from None
    headers = {"ETag": f'"{row.sha256}-poster"', "Cache-Control": "private, no-store"}
    return Response(data, media_type="image/jpeg", headers=headers)
