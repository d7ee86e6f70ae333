"""ObjectStore: the one interface media storage has (local filesystem or S3), and its local implementation.

Callers never see a path: they put a file, stat, read a byte range, delete, presign, or ask for a local copy
for tools that need one (PyAV, c2pa) — on the local store that copy is the file itself, read-only by contract.
Keys are made by :mod:`reelfoundry.assets.keys`, never by callers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from reelfoundry.errors import ReelFoundryError

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
#: Read size for streaming an object out.
CHUNK = 256 * 1024


class StorageUnavailable(ReelFoundryError):
    """The object store cannot be reached or answered with an error; retrying later may work (503)."""

    status = 503
    type_slug = "storage-unavailable"
    title = "Storage unavailable"
    recoverable = True

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows of one object."""

    key: str
    size: int
    modified: datetime


def check_key(key: str) -> str:
    """``key`` if it is a well-formed storage key (no '..', no leading '/'); ValueError otherwise."""
    if not _KEY.match(key) or ".." in key.split("/") or len(key) > 1024:
        raise ValueError(f"invalid storage key {key!r}")
    return key


@runtime_checkable
class ObjectStore(Protocol):
    """Where media lives. Every method may raise :class:`StorageUnavailable` when the backend is down."""

    #: ``file`` or ``s3``: how delivery can work (only ``s3`` presigns).
    kind: str

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> ObjectInfo:
        """Store the file ``source`` under ``key`` (then ``source`` is gone). Atomic: readers see the old object
        or the whole new one, never a part."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Store ``data`` under ``key``, atomically."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """The object's size and time, or None if there is none."""
        ...

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (inclusive; None = to the end) in chunks. FileNotFoundError if absent."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The whole object (for small ones: posters). FileNotFoundError if absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...

    def presign(self, key: str, expires_s: int, filename: str | None = None) -> str | None:
        """A URL that serves the object without credentials for ``expires_s`` seconds, or None where the store
        cannot make one (the local store: the API serves it instead)."""
        ...

    def local_copy(self, key: str, scratch: Path) -> contextlib.AbstractContextManager[Path]:
        """A local file with the object's bytes while the context lasts (a temporary copy under ``scratch``,
        removed after; the local store yields its own file, which the caller must not change)."""
        ...


class LocalStore:
    """Objects as files under one root directory (the embedded default, or an NVMe hot tier)."""

    kind = "file"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> ObjectInfo:
        dest = self._file(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.move(str(source), tmp)  # a rename on one filesystem, a copy otherwise
        os.replace(tmp, dest)
        return self._info(key, dest)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        dest = self._file(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        return self._info(key, dest)

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._file(key)
        return self._info(key, path) if path.is_file() else None

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._file(key)
        handle: BinaryIO = path.open("rb")  # FileNotFoundError now, not at the first chunk
        return _chunks(handle, start, end)

    def read_bytes(self, key: str) -> bytes:
        return self._file(key).read_bytes()

    def delete(self, key: str) -> None:
        self._file(key).unlink(missing_ok=True)

    def presign(self, key: str, expires_s: int, filename: str | None = None) -> str | None:
        self._file(key)  # a bad key is refused here as on S3
        return None

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: Path) -> Iterator[Path]:
        path = self._file(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        yield path

    @staticmethod
    def _info(key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(key=key, size=st.st_size, modified=datetime.fromtimestamp(st.st_mtime, UTC))


def _chunks(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = None if end is None else end - start + 1
        while left is None or left > 0:
            chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk


def discard(store: ObjectStore, *keys: str | None) -> None:
    """Delete objects nothing will record (an upload or output whose row was not written), best effort: a store
    that fails now only leaves an orphan behind (logged), never hides the error that made the caller clean up."""
    for key in keys:
        if key is None:
            continue
        try:
            store.delete(key)
        except Exception:
            logging.getLogger(__name__).warning("could not delete orphaned object %s", key, exc_info=True)
