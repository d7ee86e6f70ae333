"""Local-filesystem media storage. Keys are made by the platform, never by callers."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class LocalStorage:
    """Stores objects as files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file behind ``key``; ValueError for a key that could escape the root."""
        if not _KEY.match(key) or ".." in key.split("/"):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root / key

    def put_file(self, key: str, source: Path) -> None:
        """Move ``source`` into storage under ``key`` (atomic within one filesystem)."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.move(str(source), tmp)
        os.replace(tmp, dest)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, atomically (a temp file renamed into place)."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    def delete(self, key: str) -> None:
        """Remove an object if present."""
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return self.path(key).is_file()
