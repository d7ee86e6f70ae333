"""TieredStore: a hot tier (local disk, an NVMe cache) in front of a cold one (the object store), as one ObjectStore.

- writes go to the hot tier (or straight to the cold one, ``write_tier="cold"``) and are entered in the index
  (``stored_objects``: tier, size, last read), so the lifecycle rule never lists a store;
- reads are transparent: the hot copy if there is one, else the cold one (a cold read is served from cold, not
  pulled back, unless ``promote_on_read``); each read is noted in the index, at most once an hour per object;
- ``stat``/``delete`` cover both tiers; a presigned URL comes from the cold store when the object is only there
  (a hot object is served by the API, as on the local store).

Reading the hot tier first and falling back to the cold one makes every step of a move safe to interrupt: an
object is in at least one tier at every moment (see :mod:`reelfoundry.assets.lifecycle`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from reelfoundry.assets.objectstore import LocalStore, ObjectInfo, ObjectStore
from reelfoundry.store.objects import ObjectIndex, StoredObject, Tier

log = logging.getLogger(__name__)


class TieredStore:
    """Hot ``LocalStore`` + cold ``ObjectStore`` behind the ObjectStore protocol, with ``index`` of where each is."""

    def __init__(
        self,
        hot: LocalStore,
        cold: ObjectStore,
        index: ObjectIndex,
        *,
        write_tier: Tier = "hot",
        promote_on_read: bool = False,
        on_move: Callable[[Session, StoredObject], object] | None = None,
    ) -> None:
        self.hot, self.cold, self.index = hot, cold, index
        self.write_tier: Tier = write_tier
        self.promote_on_read = promote_on_read
        #: Runs in the transaction that records a promotion back to hot (the re-pricing of the job's storage).
        self.on_move = on_move
        #: Presigning works where the cold store can (S3); a hot object is served by the API.
        self.kind = cold.kind

    def _writes(self) -> ObjectStore:
        return self.hot if self.write_tier == "hot" else self.cold

    # -- writes
    def put_file(self, key: str, source: Path, content_type: str | None = None) -> ObjectInfo:
        info = self._writes().put_file(key, source, content_type)
        self._recorded(key, info)
        return info

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        info = self._writes().put_bytes(key, data, content_type)
        self._recorded(key, info)
        return info

    def _recorded(self, key: str, info: ObjectInfo) -> None:
        """Index a written object. An overwrite of one the other tier held removes that older copy (best effort:
        a write to hot never fails because the cold store is down; reads prefer hot, and a move overwrites it)."""
        before = self.index.record_put(key, self.write_tier, info.size)
        if before is None or before == self.write_tier:
            return
        try:
            (self.cold if self.write_tier == "hot" else self.hot).delete(key)
        except Exception:
            log.warning("could not remove the older copy of %s from the %s tier", key, before, exc_info=True)

    # -- reads
    def stat(self, key: str) -> ObjectInfo | None:
        return self.hot.stat(key) or self.cold.stat(key)

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            chunks = self.hot.read_range(key, start, end)
        except FileNotFoundError:
            chunks = self.cold.read_range(key, start, end)  # FileNotFoundError when in neither
            self._promote(key)
        self._touch(key)
        return chunks

    def read_bytes(self, key: str) -> bytes:
        try:
            data = self.hot.read_bytes(key)
        except FileNotFoundError:
            data = self.cold.read_bytes(key)
            self._promote(key)
        self._touch(key)
        return data

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: Path) -> Iterator[Path]:
        if self.hot.stat(key) is None:
            with self.cold.local_copy(key, scratch) as path:
                self._touch(key)
                yield path
            return
        with self.hot.local_copy(key, scratch) as path:
            self._touch(key)
            yield path

    def presign(self, key: str, expires_s: int, filename: str | None = None) -> str | None:
        if self.hot.stat(key) is not None:
            return None  # the API streams it from local disk
        self._touch(key)
        return self.cold.presign(key, expires_s, filename)

    def delete(self, key: str) -> None:
        self.hot.delete(key)
        self.cold.delete(key)
        self.index.forget(key)

    # -- helpers
    def _touch(self, key: str) -> None:
        try:
            self.index.touch(key)
        except Exception:  # the read succeeded; a missed access time only makes a move come sooner
            log.warning("could not record a read of %s", key, exc_info=True)

    def _promote(self, key: str) -> None:
        """Bring a cold object back to the hot tier after a read of it (``promote_on_read``), best effort."""
        if not self.promote_on_read:
            return
        try:
            with tempfile.TemporaryDirectory(dir=self.hot.root, prefix=".promote-") as scratch:
                with self.cold.local_copy(key, Path(scratch)) as path:
                    tmp = Path(scratch) / "object"
                    shutil.copyfile(path, tmp)
                info = self.hot.put_file(key, tmp)
            self.index.set_tier(key, "hot", self.index.now(), self.on_move)
            self.cold.delete(key)
            log.info("promoted %s (%d bytes) to the hot tier", key, info.size)
        except Exception:
            log.warning("could not promote %s to the hot tier", key, exc_info=True)
