"""The server's secret key: signs delivery URLs and web UI sessions, one derived key per purpose."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "secret.key"


def load_server_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret key, or the data dir's (made on first use, mode 0600)."""
    if configured:
        return configured.encode()
    path = data_dir / SECRET_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # first writer wins; a concurrent second keeps the first's secret
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def derive(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose, so a signature made for one use is never valid for another."""
    return hmac.new(secret, f"reelfoundry/{purpose}".encode(), hashlib.sha256).digest()
