"""Web UI sessions: a signed cookie naming an API key, re-checked against the key on every request.

The cookie holds ``<key id>.<expiry>.<mac>``, never the key's secret. The MAC covers the key's stored
secret hash too, so revoking or replacing a key ends its sessions at once. Forms carry a CSRF token
derived from the cookie (the cookie is also SameSite=Strict).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

COOKIE = "rf_session"
#: A random value set with the sign-in form; the form posts its MAC back (login CSRF).
LOGIN_COOKIE = "rf_login"
_TOKEN = re.compile(r"(?P<key>[0-9A-HJKMNP-TV-Z]{26})\.(?P<expires>[0-9]{1,12})\.(?P<mac>[0-9a-f]{64})")
#: How long a sign-in lasts.
SESSION_S = 8 * 3600


@dataclass(frozen=True)
class SessionToken:
    """What a session cookie says before it is checked against the key."""

    key_id: str
    expires: int
    mac: str


class SessionSigner:
    """Makes and checks session cookies and CSRF tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, key_id: str, expires: int, secret_hash: str) -> str:
        message = f"session\n{key_id}\n{expires}\n{secret_hash}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def issue(self, key_id: str, secret_hash: str, now: float | None = None) -> str:
        """A cookie value for a signed-in key."""
        expires = int((now if now is not None else time.time()) + SESSION_S)
        return f"{key_id}.{expires}.{self._mac(key_id, expires, secret_hash)}"

    @staticmethod
    def parse(value: str) -> SessionToken | None:
        """The parts of a cookie value, or None when it is not one (ASCII only, bounded lengths)."""
        match = _TOKEN.fullmatch(value)
        if match is None:
            return None
        return SessionToken(match["key"], int(match["expires"]), match["mac"])

    def valid(self, token: SessionToken, secret_hash: str, now: float | None = None) -> bool:
        """Whether the cookie was made here for this key (as it is now) and has not expired."""
        expected = self._mac(token.key_id, token.expires, secret_hash)
        fresh = (now if now is not None else time.time()) < token.expires
        return hmac.compare_digest(expected, token.mac) and fresh

    def csrf(self, cookie_value: str) -> str:
        """The token forms of this session must send back."""
        return hmac.new(self._key, f"csrf\n{cookie_value}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie_value: str, token: str | None) -> bool:
        """Whether a form's token is this session's (constant time)."""
        return token is not None and token.isascii() and hmac.compare_digest(self.csrf(cookie_value), token)
