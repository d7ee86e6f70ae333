"""When to retry a request and how long to wait first (shared by the sync and async clients).

* 429 and 503 are retried for every request: the server refuses them before doing anything (rate limit,
  upload slots). The wait is the response's ``Retry-After`` (seconds or an HTTP date) when it has one,
  else exponential backoff with jitter.
* A connection that could not be opened (connect error or timeout) is retried for every request: nothing
  was sent.
* Any other transport failure (a connection dropped mid-exchange, a read timeout) is retried only for
  idempotent requests: GET, and POST /v1/jobs with an ``Idempotency-Key``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

RETRY_STATUSES = frozenset({429, 503})
#: A Retry-After longer than this is not waited for: the error goes to the caller at once.
MAX_RETRY_AFTER_S = 120.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true too, and float() refuses it
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """At most ``max_retries`` retries, backing off from ``base_s`` doubling up to ``cap_s``."""

    max_retries: int = 3
    base_s: float = 0.5
    cap_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1-based) when the server gave none: full jitter."""
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))

    def status_delay(self, attempt: int, response: httpx.Response) -> float | None:
        """The wait before retrying after ``response``, or None when it must not be retried."""
        if response.status_code not in RETRY_STATUSES or attempt > self.max_retries:
            return None
        after = parse_retry_after(response.headers.get("retry-after"))
        if after is None:
            return self.backoff(attempt)
        return after if after <= MAX_RETRY_AFTER_S else None

    def error_delay(self, attempt: int, error: httpx.TransportError, idempotent: bool) -> float | None:
        """The wait before retrying after a transport ``error``, or None when it must not be retried."""
        if attempt > self.max_retries:
            return None
        if idempotent or isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
            return self.backoff(attempt)
        return None
