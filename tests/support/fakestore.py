"""An ObjectStore for tests: a LocalStore underneath, that can be made to fail like an S3 outage, or to presign.

It stands for a remote store: an outage (``down``, or ``fail_puts_after`` puts) raises StorageUnavailable from every
call, as the S3 store does when its endpoint cannot be reached; ``presign_base`` makes presign return a URL. It
also records which methods were called, so a test can show a caller went through the protocol.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from reelfoundry.assets.objectstore import LocalStore, ObjectInfo, StorageUnavailable


class FakeStore:
    """A LocalStore that can fail on purpose (see the module docstring)."""

    kind = "file"

    def __init__(self, root: Path, *, presign_base: str | None = None) -> None:
        self.local = LocalStore(root)
        self.down = False
        #: Fail every put after this many have succeeded (None: never).
        self.fail_puts_after: int | None = None
        self.presign_base = presign_base
        self.calls: list[str] = []
        self.puts = 0

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise StorageUnavailable(f"object store unreachable ({name}): connection refused")

    def objects(self) -> list[str]:
        """Every key stored (files under the root, ``.part`` files included: a half-written object shows)."""
        root = self.local.root
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> ObjectInfo:
        self._call("put_file")
        if self.fail_puts_after is not None and self.puts >= self.fail_puts_after:
            raise StorageUnavailable("object store unreachable (put_file): timed out")
        self.puts += 1
        return self.local.put_file(key, source, content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        self._call("put_bytes")
        return self.local.put_bytes(key, data, content_type)

    def stat(self, key: str) -> ObjectInfo | None:
        self._call("stat")
        return self.local.stat(key)

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        self._call("read_range")
        return self.local.read_range(key, start, end)

    def read_bytes(self, key: str) -> bytes:
        self._call("read_bytes")
        return self.local.read_bytes(key)

    def delete(self, key: str) -> None:
        self._call("delete")
        self.local.delete(key)

    def presign(self, key: str, expires_s: int, filename: str | None = None) -> str | None:
        self._call("presign")
        if self.presign_base is None:
            return None
        return f"{self.presign_base}/{key}?expires_in={expires_s}&filename={filename}"

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: Path) -> Iterator[Path]:
        self._call("local_copy")
        with self.local.local_copy(key, scratch) as path:
            yield path
