"""What a file is, from its first bytes: for uploads sent as ``application/octet-stream``."""

from __future__ import annotations

from pathlib import Path

#: The generic type a client may send instead of naming the file's own.
OCTET_STREAM = "application/octet-stream"


def sniff(head: bytes) -> str | None:
    """The media type the leading bytes announce (PNG, JPEG, WebP, MP4), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return None


def sniff_file(path: Path) -> str | None:
    """The media type of the file at ``path`` by its first bytes, or None."""
    with path.open("rb") as fh:
        return sniff(fh.read(16))
