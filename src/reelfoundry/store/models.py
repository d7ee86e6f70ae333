"""Model cards added over the API, and each model's health (failures and cooldown) for the router."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from reelfoundry.schema import ModelCard
from reelfoundry.store.tables import ModelCardRow, ModelHealthRow, utcnow


def add_card(session: Session, card: ModelCard, created_by: str | None) -> ModelCardRow:
    """Store a card added over the API (the caller checks its id is free)."""
    row = ModelCardRow(id=card.id, card=card.model_dump(mode="json"), created_by=created_by, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def delete_card(session: Session, model_id: str) -> bool:
    """Remove a card added over the API; False if there was none."""
    removed = session.scalars(delete(ModelCardRow).where(ModelCardRow.id == model_id).returning(ModelCardRow.id))
    return removed.first() is not None


def stored_card_ids(session: Session) -> set[str]:
    """Ids of the cards added over the API."""
    return set(session.scalars(select(ModelCardRow.id)))


def cooldowns(session: Session, now: datetime | None = None) -> dict[str, datetime]:
    """Models resting now, with when they may be tried again."""
    now = now or utcnow()
    stmt = select(ModelHealthRow.model, ModelHealthRow.cooldown_until).where(ModelHealthRow.cooldown_until > now)
    return {model: until for model, until in session.execute(stmt) if until is not None}


def record_success(session: Session, model: str) -> None:
    """A job of ``model`` succeeded: its failure streak and any cooldown end (one UPDATE, often of no row)."""
    session.execute(
        update(ModelHealthRow)
        .where(ModelHealthRow.model == model, ModelHealthRow.failures > 0)
        .values(failures=0, cooldown_until=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def record_outcome(
    session: Session, model: str, *, ok: bool, threshold: int, cooldown_s: float, now: datetime | None = None
) -> ModelHealthRow:
    """Count a backend success (resets the count) or failure; the ``threshold``-th failure in a row starts a
    cooldown of ``cooldown_s`` (LiteLLM's allowed_fails / cooldown_time). After it, one more failure starts the
    next cooldown at once; a success ends the streak."""
    now = now or utcnow()
    # A broken model fails its jobs on every worker at once: the first failures race to create its row, so it is
    # inserted if absent (a no-op for all but one) and then locked, never added after a read that found none.
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(ModelHealthRow)
        .values(model=model, failures=0, cooldown_until=None, updated_at=now)
        .on_conflict_do_nothing(index_elements=[ModelHealthRow.model])
    )
    row = session.get(ModelHealthRow, model, with_for_update=True, populate_existing=True)
    assert row is not None
    if ok:
        row.failures, row.cooldown_until = 0, None
    else:
        row.failures += 1
        if row.failures >= threshold:
            row.cooldown_until = now + timedelta(seconds=cooldown_s)
    row.updated_at = now
    session.flush()
    return row
