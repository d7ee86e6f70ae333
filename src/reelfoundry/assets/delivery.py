"""Signed, expiring delivery URLs for published assets.

A delivery URL needs no API key: ``/v1/delivery/{asset_id}?expires=<unix s>&signature=<hex>``, where the
signature is an HMAC-SHA256 over the asset id, the expiry and the SHA-256 of the published file, keyed
with the server's delivery secret. Changing any part of the URL breaks the signature; the file it was
issued for is the only file it serves; and the route serves nothing that is not published, whatever
the signature says.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reelfoundry.errors import Forbidden, Gone


@dataclass(frozen=True)
class DeliveryUrl:
    """The path and query of a delivery URL and when it stops working."""

    path: str
    expires_at: datetime


class DeliverySigner:
    """Issues and checks delivery URL signatures with one secret."""

    def __init__(self, secret: bytes, ttl_s: float) -> None:
        if len(secret) < 16:
            raise ValueError("the delivery key must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _signature(self, asset_id: str, sha256: str, expires: int) -> str:
        message = f"{asset_id}\n{expires}\n{sha256}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def issue(self, asset_id: str, sha256: str, now: datetime | None = None) -> DeliveryUrl:
        """A URL for the published file with digest ``sha256``, valid for ``ttl_s`` seconds."""
        now = now or datetime.now(UTC)
        expires_at = (now + timedelta(seconds=self.ttl_s)).replace(microsecond=0)
        expires = int(expires_at.timestamp())
        signature = self._signature(asset_id, sha256, expires)
        return DeliveryUrl(f"/v1/delivery/{asset_id}?expires={expires}&signature={signature}", expires_at)

    def check(self, asset_id: str, sha256: str, expires: int, signature: str, now: datetime | None = None) -> None:
        """Forbidden for a signature this server did not make for this file; Gone once expired."""
        expected = self._signature(asset_id, sha256, expires)
        if not sha256 or not signature.isascii() or not hmac.compare_digest(expected, signature.lower()):
            raise Forbidden("not a valid delivery URL")
        if (now or datetime.now(UTC)).timestamp() >= expires:
            raise Gone("this delivery URL has expired; publish again for a new one")
