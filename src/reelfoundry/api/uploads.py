"""Receiving a file upload: the body streamed to a private temporary file, hashed and capped as it arrives.

A request body is never held in memory whole: it goes to ``<data_dir>/tmp`` (0700; files 0600) in bounded
pieces, with its SHA-256 and size computed on the way. ``<data_dir>/tmp`` sits beside the media directory, so
keeping an upload is a rename. At most ``max_concurrent_uploads`` uploads are in progress per server; one more
is refused at once with 503 and Retry-After rather than queued, so a burst of large uploads cannot pile up
disk, memory or threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from reelfoundry.errors import BadRequest, InvalidParameter, PayloadTooLarge, RequestTimeout, ServiceBusy
from reelfoundry.localfiles import temp_dir

#: Bytes gathered before one write: file writes and hashing run off the event loop, in pieces this big.
WRITE_CHUNK = 1_048_576
#: What a refused upload is told to wait before trying again.
RETRY_AFTER_S = 2
#: How temp files of uploads are named (``upload-<random><suffix>``).
PREFIX = "upload-"


@dataclass(frozen=True)
class Upload:
    """A received body: the temporary file holding it, its size and SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str


class UploadSlots:
    """A fixed number of uploads in progress at once, and a share of them per API key; never waits."""

    def __init__(self, limit: int, per_key: int | None = None) -> None:
        self.limit = limit
        self.per_key = min(limit, per_key or limit)
        self._in_use = 0
        self._by_key: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        """Uploads in progress now."""
        return self._in_use

    def try_acquire(self, key: str = "") -> str | None:
        """Take a slot for ``key``; None when taken, else why not (all busy, or the key's share in use)."""
        with self._lock:
            if self._in_use >= self.limit:
                return f"{self.limit} uploads are in progress, the most this server takes at once"
            if self._by_key[key] >= self.per_key:
                return f"this API key already has {self.per_key} uploads in progress, its most at once"
            self._in_use += 1
            self._by_key[key] += 1
            return None

    def release(self, key: str = "") -> None:
        """Give ``key``'s slot back."""
        with self._lock:
            self._in_use -= 1
            self._by_key[key] -= 1
            if self._by_key[key] <= 0:
                del self._by_key[key]


def upload_slots(request: Request) -> UploadSlots:
    """The server's upload slots, made on first use from ``max_concurrent_uploads``.

    They live on the app (one per server process), since the platform is built elsewhere; there is no await
    between the look-up and the store, so two first uploads cannot make two sets. Making them also sweeps
    the temp dir: no upload of this process has begun yet, so what is there was left by one that crashed
    (a data dir has one server at a time).
    """
    state = request.app.state
    slots: UploadSlots | None = getattr(state, "upload_slots", None)
    if slots is None:
        settings = state.platform.settings
        for stale in temp_dir(settings.data_dir).glob(PREFIX + "*"):
            stale.unlink(missing_ok=True)
        slots = UploadSlots(settings.max_concurrent_uploads, settings.max_concurrent_uploads_per_key)
        state.upload_slots = slots
    return slots


@contextlib.asynccontextmanager
async def receive_upload(request: Request, *, limit: int, key: str, suffix: str = "") -> AsyncIterator[Upload]:
    """Stream the request body of API key ``key`` into a temporary file ending in ``suffix`` and yield it.

    ServiceBusy (503) when every upload slot, or the key's share of them, is taken; PayloadTooLarge (413) past
    ``limit`` bytes; RequestTimeout (408) when the body takes longer than ``upload_timeout_s`` to arrive (a
    client trickling bytes would otherwise hold its slot for ever); BadRequest when the client goes away
    mid-body. The file is removed when the block ends, however it ends, unless the block moved it elsewhere
    (e.g. into media storage). The slot is held until then, so the work done on the file is bounded too.
    """
    slots = upload_slots(request)
    refused = slots.try_acquire(key)
    if refused is not None:
        raise ServiceBusy(f"{refused}; try again shortly", retry_after_s=RETRY_AFTER_S)
    settings = request.app.state.platform.settings
    try:
        directory = temp_dir(settings.data_dir)
        fd, name = tempfile.mkstemp(suffix=suffix, prefix=PREFIX, dir=directory)  # mode 0600
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                try:
                    with anyio.fail_after(settings.upload_timeout_s):
                        size, digest = await _copy_body(request, fh, limit)
                except TimeoutError:
                    raise RequestTimeout(
                        f"the upload did not arrive within {settings.upload_timeout_s:g} s "
                        "(REELFOUNDRY_UPLOAD_TIMEOUT_S)"
                    ) from None
            yield Upload(path, size, digest)
        finally:
            path.unlink(missing_ok=True)
    finally:
        slots.release(key)


async def _copy_body(request: Request, fh: BinaryIO, limit: int) -> tuple[int, str]:
    """Write the body to ``fh`` in WRITE_CHUNK pieces; its size and SHA-256."""
    sha = hashlib.sha256()
    size = 0
    pending = bytearray()

    def write(data: bytes) -> None:
        sha.update(data)
        fh.write(data)

    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes")
            pending += chunk
            if len(pending) >= WRITE_CHUNK:
                await run_in_threadpool(write, bytes(pending))
                pending.clear()
    except ClientDisconnect:
        # Nobody is left to read an answer; a 400 keeps it out of the unexpected-error log.
        raise BadRequest("the client went away before the upload finished") from None
    if pending:
        await run_in_threadpool(write, bytes(pending))
    await run_in_threadpool(fh.flush)
    return size, sha.hexdigest()


@dataclass(frozen=True)
class VideoInfo:
    """What an uploaded MP4 is, from its header and first frame."""

    width: int
    height: int
    fps: float | None
    duration_s: float | None
    num_frames: int | None
    codec: str


#: Container names PyAV gives an MP4 (the family ffmpeg reads with one demuxer).
MP4_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})
MAX_VIDEO_PIXELS = 8192 * 8192


def inspect_video(path: Path, *, max_duration_s: float) -> VideoInfo:
    """Check that the file at ``path`` is an MP4 with a decodable video stream within the limits; InvalidParameter
    naming ``body`` otherwise. Reads the header and decodes one frame, whatever the file's size."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not MP4_FORMATS & set(container.format.name.split(",")):
                raise InvalidParameter("body", f"body is a {container.format.name} file, not an MP4")
            if not container.streams.video:
                raise InvalidParameter("body", "the MP4 has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if not width or not height or width * height > MAX_VIDEO_PIXELS:
                raise InvalidParameter("body", f"video is {width}×{height}; at most {MAX_VIDEO_PIXELS:,} pixels")
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            if duration is None and container.duration:
                duration = container.duration / 1_000_000
            if duration is not None and duration > max_duration_s:
                raise InvalidParameter(
                    "body", f"video lasts {duration:.1f} s; uploads may last {max_duration_s:g} s at most"
                )
            next(container.decode(stream))  # at least one frame decodes
            fps = float(stream.average_rate) if stream.average_rate else None
            return VideoInfo(width, height, fps, duration, stream.frames or None, stream.codec_context.name)
    except InvalidParameter:
        raise
    except Exception as exc:  # PyAV raises many types for corrupt input
        raise InvalidParameter("body", f"body is not a readable MP4 video: {type(exc).__name__}") from None
