"""Model cards added over the API (their lifecycle: candidate → approved, and model agility), their evaluations,
and each model's health (failures and cooldown) for the router.

A card added over the API starts as a **candidate**: the router skips it until it is approved, which needs a
passing onboarding report (``reelfoundry models onboard``) stored in ``model_evaluations``. Cards of the models
file and the built-in ones are approved by definition (they are not stored here). Model agility is the time from
registration (``created_at``) to approval (``approved_at``) to the first production job (``first_job_at``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from reelfoundry.ids import new_id
from reelfoundry.schema import ModelCard
from reelfoundry.store.tables import (
    AssetRow,
    CollectionAssetRow,
    CollectionRow,
    JobRow,
    ModelCardRow,
    ModelEvaluationRow,
    ModelHealthRow,
    utcnow,
)

#: The lifecycle states of a stored card.
CANDIDATE, APPROVED = "candidate", "approved"
#: The ``suite`` of an onboarding report in model_evaluations (the NRES suites are ``quick`` and ``standard``).
ONBOARDING = "onboarding"
#: Videos a collection may lend as an evaluation reference at most.
MAX_REFERENCE_VIDEOS = 256


def add_card(session: Session, card: ModelCard, created_by: str | None, status: str = APPROVED) -> ModelCardRow:
    """Store a card added over the API (the caller checks its id is free), with its lifecycle status."""
    now = utcnow()
    row = ModelCardRow(
        id=card.id,
        card=card.model_dump(mode="json", exclude={"status", "evaluation"}),
        created_by=created_by,
        created_at=now,
        status=status,
        approved_at=now if status == APPROVED else None,
    )
    session.add(row)
    session.flush()
    return row


def card_digest(card: ModelCard) -> str:
    """SHA-256 of a card's canonical JSON (without what the platform sets): which card an onboarding report is of."""
    body = card.model_dump(mode="json", exclude={"status", "evaluation"})
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def passing_report(session: Session, card: ModelCard) -> ModelEvaluationRow | None:
    """The newest onboarding report of this card if it passed and is of this very card (same digest)."""
    report = latest_onboarding(session, card.id)
    if report is None or report.result.get("passed") is not True:
        return None
    return report if report.result.get("card_sha256") == card_digest(card) else None


def get_card_row(session: Session, model_id: str) -> ModelCardRow | None:
    """The stored row of a card added over the API."""
    return session.get(ModelCardRow, model_id)


def approve(session: Session, model_id: str) -> ModelCardRow | None:
    """candidate → approved (one conditional UPDATE, so two approvals race to one); the row, None if not stored.
    An approved row stays as it was."""
    session.execute(
        update(ModelCardRow)
        .where(ModelCardRow.id == model_id, ModelCardRow.status == CANDIDATE)
        .values(status=APPROVED, approved_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return session.get(ModelCardRow, model_id, populate_existing=True)


def add_evaluation(session: Session, model: str, suite: str, suite_version: str, result: dict[str, Any]) -> str:
    """Store one evaluation (an NRES run or an onboarding report); its id."""
    row = ModelEvaluationRow(
        id=new_id(), model=model, suite=suite, suite_version=suite_version, result=result, created_at=utcnow()
    )
    session.add(row)
    session.flush()
    return row.id


def latest_evaluations(session: Session) -> dict[str, ModelEvaluationRow]:
    """The newest NRES run (not onboarding report) of each model."""
    newest = (
        select(ModelEvaluationRow.model, func.max(ModelEvaluationRow.created_at).label("at"))
        .where(ModelEvaluationRow.suite != ONBOARDING)
        .group_by(ModelEvaluationRow.model)
        .subquery()
    )
    rows = session.scalars(
        select(ModelEvaluationRow)
        .join(newest, (ModelEvaluationRow.model == newest.c.model) & (ModelEvaluationRow.created_at == newest.c.at))
        .where(ModelEvaluationRow.suite != ONBOARDING)
        .order_by(ModelEvaluationRow.id)
    )
    return {row.model: row for row in rows}


def latest_onboarding(session: Session, model: str) -> ModelEvaluationRow | None:
    """The newest onboarding report of a model."""
    return session.scalars(
        select(ModelEvaluationRow)
        .where(ModelEvaluationRow.model == model, ModelEvaluationRow.suite == ONBOARDING)
        .order_by(ModelEvaluationRow.created_at.desc(), ModelEvaluationRow.id.desc())
        .limit(1)
    ).first()


def agility(session: Session, model_id: str) -> dict[str, Any] | None:
    """Registered → approved → first production job of a stored card, with the seconds between; None if the card
    is not stored. The first job is found (and kept in ``first_job_at``) the first time it is asked for after it
    ran: the first job of the model submitted after its approval."""
    row = session.get(ModelCardRow, model_id)
    if row is None:
        return None
    if row.first_job_at is None and row.approved_at is not None:
        first = session.scalar(
            select(func.min(JobRow.created_at)).where(
                JobRow.model == model_id, JobRow.kind == "generate", JobRow.created_at >= row.approved_at
            )
        )
        if first is not None:
            session.execute(
                update(ModelCardRow)
                .where(ModelCardRow.id == model_id, ModelCardRow.first_job_at.is_(None))
                .values(first_job_at=first)
                .execution_options(synchronize_session=False)
            )
            row = session.get(ModelCardRow, model_id, populate_existing=True)
            assert row is not None

    def between(a: datetime | None, b: datetime | None) -> float | None:
        return round((b - a).total_seconds(), 3) if a is not None and b is not None else None

    return {
        "model": model_id,
        "status": row.status,
        "registered_at": row.created_at.isoformat(),
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
        "first_job_at": row.first_job_at.isoformat() if row.first_job_at else None,
        "registered_to_approved_s": between(row.created_at, row.approved_at),
        "approved_to_first_job_s": between(row.approved_at, row.first_job_at),
        "registered_to_first_job_s": between(row.created_at, row.first_job_at),
    }


def collection_video_keys(session: Session, collection: str) -> tuple[str, list[str]]:
    """The collection's name and the storage keys of its videos (newest first, at most
    :data:`MAX_REFERENCE_VIDEOS`), by id or by a name only one tenant uses; LookupError naming why not."""
    found = session.get(CollectionRow, collection) if len(collection) == 26 else None
    if found is None:
        named = list(session.scalars(select(CollectionRow).where(CollectionRow.name == collection).limit(2)))
        if len(named) > 1:
            raise LookupError(f"several tenants have a collection named {collection!r}: give its id")
        if not named:
            raise LookupError(f"no collection {collection!r}")
        found = named[0]
    keys = session.scalars(
        select(AssetRow.storage_key)
        .join(CollectionAssetRow, CollectionAssetRow.asset_id == AssetRow.id)
        .where(CollectionAssetRow.collection_id == found.id, AssetRow.media_type.like("video/%"))
        .order_by(AssetRow.created_at.desc())
        .limit(MAX_REFERENCE_VIDEOS)
    )
    return found.name, list(keys)


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
