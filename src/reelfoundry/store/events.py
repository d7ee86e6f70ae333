"""Appending and reading job events; each append also fills the webhook outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelfoundry.ids import new_id
from reelfoundry.outbound.policy import receiver_of
from reelfoundry.schema import Event
from reelfoundry.store.tables import EventRow, JobRow, WebhookDeliveryRow, utcnow


def append_event(session: Session, job: JobRow, type_: str, data: dict[str, Any] | None = None) -> EventRow:
    """Add an event for ``job`` in the caller's transaction (which has already updated the job row).

    The job row is locked by that update, so one job's events get ids in commit order.
    """
    row = EventRow(job_id=job.id, tenant_id=job.tenant_id, type=type_, data=data or {}, created_at=utcnow())
    session.add(row)
    url = job.request.get("webhook_url")
    if url and type_ != "job.progress":
        session.flush()  # the delivery row needs the event id
        session.add(
            WebhookDeliveryRow(
                id=new_id(),
                tenant_id=job.tenant_id,
                event_id=row.id,
                job_id=job.id,
                receiver=receiver_of(url),
                state="pending",
                attempts=0,
                next_attempt_at=row.created_at,
                created_at=row.created_at,
            )
        )
    return row


def events_after(session: Session, job_id: str, after_id: int, limit: int = 500) -> list[EventRow]:
    """Events of one job with id greater than ``after_id``, oldest first."""
    stmt = select(EventRow).where(EventRow.job_id == job_id, EventRow.id > after_id).order_by(EventRow.id).limit(limit)
    return list(session.scalars(stmt))


def to_event(row: EventRow) -> Event:
    """The public schema of an event row."""
    return Event(
        id=row.id, job_id=row.job_id, tenant_id=row.tenant_id, type=row.type, data=row.data, created_at=row.created_at
    )
