"""The webhook dispatcher in-process, on both databases: fair shares, Standard Webhooks, refusal at send time."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from receivers import RawReceiver, answer, trickle, wait_for
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from reelfoundry.config import Settings
from reelfoundry.events.webhooks import WebhookDispatcher, webhook_client
from reelfoundry.outbound import OutboundPolicy
from reelfoundry.schema import VideoRequest
from reelfoundry.store import Database
from reelfoundry.store import jobs as jobstore
from reelfoundry.store.events import append_event
from reelfoundry.store.tables import Base, TenantRow, WebhookDeliveryRow


def _jobs(database: Database, tenant_id: str, url: str, n: int) -> list[str]:
    ids = []
    with database.write() as session:
        for i in range(n):
            request = VideoRequest(prompt=f"job {i}", webhook_url=url)  # type: ignore[arg-type]
            row = jobstore.create_job(
                session, tenant_id=tenant_id, request=request, model="template", max_attempts=1, body_hash="h"
            )
            ids.append(row.id)
    return ids


def _deliveries(database: Database, tenant_id: str) -> list[WebhookDeliveryRow]:
    with database.read() as session:
        stmt = select(WebhookDeliveryRow).where(WebhookDeliveryRow.tenant_id == tenant_id)
        return list(session.scalars(stmt))


@pytest.fixture
def settings() -> Settings:
    return Settings(
        poll_interval_s=0.05,
        webhook_timeout_s=60,
        webhook_concurrency=4,
        webhook_concurrency_per_receiver=2,
        webhook_concurrency_per_tenant=3,
        webhook_allowed_hosts=["127.0.0.1"],
    )


@pytest.fixture
def stop_trickle() -> Iterator[threading.Event]:
    stop = threading.Event()
    yield stop
    stop.set()


def test_a_slow_receiver_delays_only_its_own_deliveries(
    database: Database, tenant_ids: tuple[str, str], settings: Settings, stop_trickle: threading.Event
) -> None:
    slow = RawReceiver(trickle(0.5, stop_trickle))  # one byte every 0.5 s: never a per-read timeout
    fast = RawReceiver(answer(204))
    a, b = tenant_ids
    _jobs(database, a, slow.url, 6)
    _jobs(database, b, fast.url, 5)
    dispatcher = WebhookDispatcher(settings, database, webhook_client(OutboundPolicy(["127.0.0.1"]), settings))
    dispatcher.start()
    try:
        wait_for(lambda: all(d.state == "delivered" for d in _deliveries(database, b)), what="tenant B's deliveries")
        # Everything of B's went out while A's receiver still held its first answers: A has at most its
        # per-receiver share of connections open, and none of its deliveries has finished an attempt.
        assert len(fast.requests) == 5
        assert slow.connections <= settings.webhook_concurrency_per_receiver
        assert all(d.attempts == 0 and d.state == "pending" for d in _deliveries(database, a))
    finally:
        stop_trickle.set()
        dispatcher.stop()
        slow.close()
        fast.close()


def test_deliveries_are_standard_webhooks_signed_with_the_tenant_secret(
    database: Database, tenant_ids: tuple[str, str], settings: Settings
) -> None:
    receiver = RawReceiver(answer(200, body=b"thanks"))
    job_ids = _jobs(database, tenant_ids[0], receiver.url, 2)
    with database.read() as session:
        tenant = session.get(TenantRow, tenant_ids[0])
        assert tenant is not None
        secret = tenant.webhook_secret
    dispatcher = WebhookDispatcher(settings, database, webhook_client(OutboundPolicy(["127.0.0.1"]), settings))
    dispatcher.start()
    try:
        wait_for(lambda: len(receiver.requests) == 2, what="two deliveries")
        wait_for(lambda: all(d.state == "delivered" for d in _deliveries(database, tenant_ids[0])), what="records")
    finally:
        dispatcher.stop()
        receiver.close()
    seen = set()
    for raw in receiver.requests:
        head, _, body = raw.partition(b"\r\n\r\n")
        headers = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n")[1:])
        event = Webhook(secret).verify(body, {k.lower(): v for k, v in headers.items()})
        seen.add(event["job_id"])
        assert headers["webhook-id"] in {d.id for d in _deliveries(database, tenant_ids[0])}
    assert seen == set(job_ids)


def test_an_address_refused_at_send_time_fails_without_a_connection(
    database: Database, tenant_ids: tuple[str, str], settings: Settings
) -> None:
    """The URL passed at submission; by the time it is sent the host is refused (DNS changed, allowlist
    shrank). No connection, no retry: the delivery fails and the log says why."""
    receiver = RawReceiver(answer(204))
    _jobs(database, tenant_ids[0], receiver.url, 1)
    dispatcher = WebhookDispatcher(settings, database, webhook_client(OutboundPolicy(), settings))
    dispatcher.start()
    try:
        wait_for(lambda: all(d.state == "failed" for d in _deliveries(database, tenant_ids[0])), what="refusal")
    finally:
        dispatcher.stop()
        receiver.close()
    (delivery,) = _deliveries(database, tenant_ids[0])
    assert delivery.attempts == 1 and delivery.last_status is None
    assert (
        delivery.last_error is not None
        and delivery.last_error.startswith("refused: ")
        and "loopback" in delivery.last_error
    )
    assert receiver.connections == 0


def test_the_webhook_url_is_stored_once_per_job_however_many_events(
    database: Database, tenant_ids: tuple[str, str]
) -> None:
    """It used to be copied into every delivery row (a 1 MB URL, stored again for each event)."""
    url = "https://hooks.example.com/" + "p" * 2000
    (job_id,) = _jobs(database, tenant_ids[0], url, 1)
    with database.write() as session:
        job = jobstore.get_job(session, tenant_ids[0], job_id)
        for kind in ("job.running", "job.succeeded"):
            append_event(session, job, kind)
    copies = 0
    with database.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                copies += sum(url in str(value) for value in row)
    assert len(_deliveries(database, tenant_ids[0])) == 3
    assert copies == 1


def test_a_name_server_hiccup_is_retried_not_given_up(
    database: Database, tenant_ids: tuple[str, str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unwell(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", unwell)
    _jobs(database, tenant_ids[0], "https://hooks.example.com/in", 1)
    dispatcher = WebhookDispatcher(settings, database, webhook_client(OutboundPolicy(), settings))
    dispatcher.start()
    try:
        wait_for(lambda: all(d.attempts >= 1 for d in _deliveries(database, tenant_ids[0])), what="an attempt")
    finally:
        dispatcher.stop()
    (delivery,) = _deliveries(database, tenant_ids[0])
    assert delivery.state == "pending", delivery.last_error
    assert delivery.last_error is not None and "could not be resolved now" in delivery.last_error
