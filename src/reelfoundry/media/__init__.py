"""Media files: encode frames to H.264 MP4, write poster JPEGs, probe what a file holds."""

from __future__ import annotations

from reelfoundry.media.encode import encode_mp4, write_poster
from reelfoundry.media.probe import MediaInfo, probe

__all__ = ["MediaInfo", "encode_mp4", "probe", "write_poster"]
