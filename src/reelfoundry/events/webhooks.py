"""Webhook delivery from the outbox table: at least once, signed (Standard Webhooks), retried with backoff.

Deliveries go out through the guarded outbound client (public addresses only unless allowed, one
deadline per attempt, answers capped) and fairly: at most ``webhook_concurrency_per_receiver`` in flight
to one receiver and ``webhook_concurrency_per_tenant`` for one tenant, each send on its own thread, so a
slow or dead receiver holds only its own share while everyone else's deliveries go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from reelfoundry.config import Settings
from reelfoundry.events import signing
from reelfoundry.outbound import (
    GuardedClient,
    OutboundError,
    OutboundPolicy,
    RefusedDestination,
    ResolutionFailed,
    Unresolvable,
)
from reelfoundry.store import Database
from reelfoundry.store import webhooks as outbox
from reelfoundry.store.tables import utcnow

log = logging.getLogger(__name__)

USER_AGENT = "ReelFoundry-Webhooks/2"


def backoff_s(attempts: int, base: float, cap: float) -> float:
    """Delay before the next try after ``attempts`` failures: base·2^(attempts-1), capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


def webhook_client(policy: OutboundPolicy, settings: Settings) -> GuardedClient:
    """The guarded client webhooks use: the platform's policy, the attempt deadline and the answer cap."""
    return GuardedClient(
        policy,
        deadline_s=settings.webhook_timeout_s,
        max_response_bytes=settings.webhook_max_response_bytes,
    )


class WebhookDispatcher:
    """A background thread that claims due deliveries within the fair shares and sends each on a pool thread."""

    def __init__(self, settings: Settings, db: Database, client: GuardedClient) -> None:
        self.settings = settings
        self.db = db
        self.client = client
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._receivers: Counter[str] = Counter()
        self._tenants: Counter[str] = Counter()
        self._in_flight = 0
        self._pool = ThreadPoolExecutor(max_workers=settings.webhook_concurrency, thread_name_prefix="rf-webhook")
        self._last_rights_check = -float("inf")

    def start(self) -> None:
        """Run the claim loop in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="reelfoundry-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming; sends in flight finish within their deadline, the rest stay pending for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def in_flight(self) -> int:
        """Deliveries being sent now."""
        with self._lock:
            return self._in_flight

    def _run(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() - self._last_rights_check >= self.settings.rights_check_interval_s:
                self._last_rights_check = time.monotonic()
                try:
                    self.check_rights()
                except Exception:
                    log.exception("rights expiry check failed")
            try:
                started = self.dispatch_due()
            except Exception:
                log.exception("webhook claim round failed")
                started = 0
            if not started:
                self._wake.wait(self.settings.poll_interval_s)
                self._wake.clear()

    def check_rights(self) -> int:
        """Queue ``asset.rights_expiring`` for assets whose rights expire within ``rights_warning_days`` (once per
        expiry); returns how many."""
        within = timedelta(days=self.settings.rights_warning_days)
        with self.db.write() as session:
            return outbox.announce_rights_expiring(session, utcnow(), within)

    def dispatch_due(self) -> int:
        """Claim the deliveries that are due and fit the shares, and start sending them; returns how many."""
        s = self.settings
        with self._lock:
            room = s.webhook_concurrency - self._in_flight
            receivers, tenants = dict(self._receivers), dict(self._tenants)
        if room <= 0:
            return 0
        now = utcnow()
        # The claim outlasts a send (one deadline) with room to record it; after that another
        # dispatcher may take the delivery over.
        lease = now + timedelta(seconds=s.webhook_timeout_s * 3)
        shares = {"per_receiver": s.webhook_concurrency_per_receiver, "per_tenant": s.webhook_concurrency_per_tenant}
        with self.db.write() as session:
            claimed = outbox.claim_due(
                session,
                now=now,
                lease=lease,
                room=room,
                in_flight_receivers=receivers,
                in_flight_tenants=tenants,
                **shares,
            )
            for item in claimed:  # asset events share the same fair shares
                receivers[item.receiver] = receivers.get(item.receiver, 0) + 1
                tenants[item.tenant_id] = tenants.get(item.tenant_id, 0) + 1
            claimed += outbox.claim_due_assets(
                session,
                now=now,
                lease=lease,
                room=room - len(claimed),
                in_flight_receivers=receivers,
                in_flight_tenants=tenants,
                **shares,
            )
        for item in claimed:
            with self._lock:
                self._in_flight += 1
                self._receivers[item.receiver] += 1
                self._tenants[item.tenant_id] += 1
            self._pool.submit(self._deliver, item)
        return len(claimed)

    def _deliver(self, item: outbox.Claimed) -> None:
        try:
            self.send(item)
        except Exception:
            log.exception("webhook delivery %s could not be recorded", item.id)
        finally:
            with self._lock:
                self._in_flight -= 1
                self._receivers[item.receiver] -= 1
                self._tenants[item.tenant_id] -= 1
                for counter, key in ((self._receivers, item.receiver), (self._tenants, item.tenant_id)):
                    if counter[key] <= 0:
                        del counter[key]
            self._wake.set()

    def send(self, item: outbox.Claimed) -> None:
        """One attempt of one claimed delivery, and its outcome recorded (whatever goes wrong on the way)."""
        s = self.settings
        status: int | None = None
        error: str | None = None
        give_up = False
        try:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **signing.headers(item.secrets, item.id, int(time.time()), item.body),
            }
            response = self.client.post(item.url, item.body, headers, parameter="webhook_url")
            status = response.status
            if not 200 <= status < 300:
                error = f"receiver answered {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        except (Unresolvable, ResolutionFailed) as exc:
            error = exc.detail  # DNS may answer again: retried like an unreachable receiver
        except RefusedDestination as exc:
            # The host now resolves somewhere it may not go (it passed at submission), or the allowlist
            # shrank. Retrying would only probe again.
            error, give_up = f"refused: {exc.detail}", True
        except OutboundError as exc:
            error = str(exc)
        except Exception as exc:  # a bug here must still count an attempt, or the row would retry forever
            log.exception("webhook delivery %s failed unexpectedly", item.id)
            error = f"internal error: {type(exc).__name__}"
        if error is not None:
            log.info("webhook delivery %s to %s failed: %s", item.id, item.receiver, error)

        def retry_in(attempts: int) -> float | None:
            if give_up or attempts >= s.webhook_max_attempts:
                return None
            return backoff_s(attempts, s.webhook_backoff_base_s, s.webhook_backoff_max_s)

        with self.db.write() as session:
            outbox.record_attempt(
                session, item, status=status, error=error and error[:500], retry_in_s=retry_in, now=utcnow()
            )
