"""Still images uploaded as inputs: check what they are before storing them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from reelfoundry.errors import InvalidParameter

#: Upload types accepted, by MIME type → PIL format name.
IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class ImageInfo:
    """What an uploaded image is."""

    media_type: str
    width: int
    height: int
    bytes: int
    sha256: str


def inspect_image(path: Path, media_type: str, size: int, sha256: str) -> ImageInfo:
    """Check that the file at ``path`` is a decodable image of ``media_type``; InvalidParameter("body") otherwise.

    ``size`` and ``sha256`` were computed as the file was received (reading it again would only repeat that).
    """
    try:
        with Image.open(path) as img:
            fmt, (width, height) = img.format, img.size
            if width * height > MAX_PIXELS:
                raise InvalidParameter("body", f"image is {width}×{height}, over the {MAX_PIXELS:,}-pixel limit")
            img.verify()
    except InvalidParameter:
        raise
    except Exception as exc:  # PIL raises many types for corrupt input
        raise InvalidParameter("body", f"body is not a readable {media_type} image: {exc}") from None
    if fmt != IMAGE_TYPES[media_type]:
        raise InvalidParameter("body", f"Content-Type says {media_type} but the body is {fmt or 'unknown'}")
    return ImageInfo(media_type, width, height, size, sha256)
