"""Files and folders only this server's user may read: the data dir, the database, keys and secrets.

Modes are set explicitly rather than left to the umask: under the common umask 022 a plain mkdir or
open makes them world-readable, and the database holds every tenant's webhook secret.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

#: Files whose presence says a folder is a ReelFoundry data dir (so tightening its mode is ours to do).
_MARKERS = ("reelfoundry.db", "admin.key", "node.id", "secret.key")


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) with mode 0700; tighten an existing data dir that is looser."""
    existed = path.is_dir()
    path.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return
    if not existed or any((path / name).exists() for name in _MARKERS):
        os.chmod(path, 0o700)
        if existed:
            log.warning("%s was readable by other users (mode %o); made it 0700", path, mode)
    else:
        log.warning("%s is readable by other users (mode %o); consider chmod 700", path, mode)


def temp_dir(data_dir: Path) -> Path:
    """``<data_dir>/tmp`` (uploads arriving, local copies of stored objects), created private (0700) if missing."""
    path = data_dir / "tmp"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask, and an older directory may be wider
    return path


def private_file(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600 (created empty if missing, tightened if looser)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def write_private(path: Path, text: str, *, exclusive: bool = True) -> None:
    """Write ``text`` to a new file readable only by its owner (0600 from the moment it exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
