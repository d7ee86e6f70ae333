"""Per-API-key rate limits (the ``limits`` package): job submissions and everything else, counted apart.

Counters live in this process (``memory://``) or in Redis (``redis://…``) so several API processes
share them. A sliding window counter: this window's count plus the previous window's, weighted by how much
of it the sliding window still covers — close to "at most N in any window of the period" (not N per clock
minute), in two counters per key, where an exact moving window keeps every hit's time.
Over the limit is a 429 problem with ``Retry-After``; every limited response carries the
``RateLimit-Limit``/``-Remaining``/``-Reset`` and ``RateLimit-Policy`` headers
(draft-ietf-httpapi-ratelimit-headers-07).
"""

from __future__ import annotations

import logging
import math
import time

import limits
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reelfoundry.config import Settings
from reelfoundry.errors import RateLimited

log = logging.getLogger(__name__)

#: Where request handlers leave the headers for the middleware below to add to the response.
STATE_KEY = "rate_limit_headers"
_STORAGE_ERROR_LOG_S = 60.0


class RateLimits:
    """The two per-key limits and the counter storage they share."""

    def __init__(self, settings: Settings) -> None:
        url = settings.rate_limit_storage_url
        # A Redis that stops answering must cost a request a second at most, not a hung connect.
        options = {"socket_connect_timeout": 1, "socket_timeout": 1} if url.startswith("redis") else {}
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(url, **options))
        #: Whether counting is a network round trip (Redis), to be kept off the event loop.
        self.remote = not settings.rate_limit_storage_url.startswith("memory://")
        self._items = {
            "submit": limits.parse(settings.rate_limit_submit) if settings.rate_limit_submit else None,
            "read": limits.parse(settings.rate_limit_read) if settings.rate_limit_read else None,
        }
        self._storage_error_logged = 0.0

    def hit(self, key_id: str, kind: str) -> dict[str, str]:
        """Count one ``kind`` ("submit" or "read") request of ``key_id``; its headers, or RateLimited.

        If the counter storage cannot be reached the request goes through (logged once a minute): a
        Redis outage must not take the API down with it.
        """
        item = self._items[kind]
        if item is None:
            return {}
        try:
            allowed = self._limiter.hit(item, kind, key_id)
            stats = self._limiter.get_window_stats(item, kind, key_id)
        except Exception:
            now = time.monotonic()
            if now - self._storage_error_logged > _STORAGE_ERROR_LOG_S:
                self._storage_error_logged = now
                log.exception("rate-limit storage unreachable; requests pass unlimited until it is back")
            return {}
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        headers = {
            "RateLimit-Limit": str(item.amount),
            "RateLimit-Remaining": str(max(0, stats.remaining)),
            "RateLimit-Reset": str(reset),
            "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
        }
        if not allowed:
            what = "job submissions" if kind == "submit" else "requests"
            raise RateLimited(
                f"this API key sent more than {item.amount} {what} in {_period(item)}; retry in {reset} s",
                retry_after_s=reset,
                limit_headers=headers,
            )
        return headers


def _period(item: limits.RateLimitItem) -> str:
    seconds = item.get_expiry()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{'a' if n == 1 else n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds} s"


class RateLimitHeaders:
    """Adds the rate-limit headers a handler counted against (left in the request state) to its response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get(STATE_KEY)
                if extra:
                    present = {k.lower() for k, _ in message.get("headers", [])}
                    message.setdefault("headers", [])
                    message["headers"] = [
                        *message["headers"],
                        *(
                            (k.lower().encode(), v.encode())
                            for k, v in extra.items()
                            if k.lower().encode() not in present
                        ),
                    ]
            await send(message)

        await self.app(scope, receive, with_headers)
