"""Webhook delivery from the outbox table: at least once, signed, retried with backoff.

Each POST carries three headers::

    ReelFoundry-Delivery:  <delivery id>            (the same on every retry; dedupe on it)
    ReelFoundry-Timestamp: <unix seconds>
    ReelFoundry-Signature: v1=<hex HMAC-SHA256(tenant secret, "<timestamp>.<body>")>
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from reelfoundry.config import Settings
from reelfoundry.store import Database
from reelfoundry.store.events import to_event
from reelfoundry.store.tables import EventRow, TenantRow, WebhookDeliveryRow, utcnow

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "ReelFoundry-Signature"
TIMESTAMP_HEADER = "ReelFoundry-Timestamp"
DELIVERY_HEADER = "ReelFoundry-Delivery"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: int = 300) -> bool:
    """For receivers: whether a delivery is authentic and fresh."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def backoff_s(attempts: int, base: float, cap: float) -> float:
    """Delay before the next try after ``attempts`` failures: base·2^(attempts-1), capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


class WebhookDispatcher:
    """A background thread that sends due deliveries."""

    def __init__(self, settings: Settings, db: Database, batch: int = 20) -> None:
        self.settings = settings
        self.db = db
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(
            timeout=settings.webhook_timeout_s, follow_redirects=False, limits=httpx.Limits(max_connections=batch)
        )
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="reelfoundry-webhook")

    def start(self) -> None:
        """Run the delivery loop in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="reelfoundry-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop; undelivered rows stay pending for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.webhook_timeout_s * 2 + 5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.deliver_due()
            except Exception:
                log.exception("webhook delivery round failed")
                sent = 0
            if not sent:
                self._stop.wait(self.settings.poll_interval_s)

    def deliver_due(self) -> int:
        """Send every delivery that is due now, several at once; returns how many were tried."""
        now = utcnow()
        # A claim: other dispatchers skip these rows until the lease passes; one send fits in it.
        lease = now + timedelta(seconds=self.settings.webhook_timeout_s * 3)
        with self.db.write() as session:
            stmt = (
                select(WebhookDeliveryRow)
                .where(WebhookDeliveryRow.state == "pending", WebhookDeliveryRow.next_attempt_at <= now)
                .order_by(WebhookDeliveryRow.next_attempt_at, WebhookDeliveryRow.id)
                .limit(self.batch)
                .with_for_update(skip_locked=True)
            )
            work = []
            for row in session.scalars(stmt):
                row.next_attempt_at = lease
                event = session.get(EventRow, row.event_id)
                tenant = session.get(TenantRow, row.tenant_id)
                assert event is not None and tenant is not None
                body = to_event(event).model_dump_json().encode()
                work.append((row.id, row.url, body, tenant.webhook_secret))
        # One slow receiver must not hold up the others: send concurrently.
        list(self._pool.map(lambda w: self._send(*w, lease=lease), work))
        return len(work)

    def _send(self, delivery_id: str, url: str, body: bytes, secret: str, *, lease: datetime) -> None:
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ReelFoundry-Webhooks/1",
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(secret, ts, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = self._client.post(url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"receiver answered {status}"
        except Exception as exc:  # any failure to send (bad host name, TLS, timeout) is a failed attempt
            error = f"{type(exc).__name__}: {exc}"[:500]
        with self.db.write() as session:
            row = session.get(WebhookDeliveryRow, delivery_id, with_for_update=True, populate_existing=True)
            # Only the holder of the claim records the outcome (another dispatcher may have taken over).
            if row is None or row.state != "pending" or row.next_attempt_at != lease:
                return
            row.attempts += 1
            row.last_status = status
            row.last_error = error
            if error is None:
                row.state = "delivered"
                row.delivered_at = utcnow()
            elif row.attempts >= self.settings.webhook_max_attempts:
                row.state = "failed"
            else:
                delay = backoff_s(
                    row.attempts, self.settings.webhook_backoff_base_s, self.settings.webhook_backoff_max_s
                )
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
