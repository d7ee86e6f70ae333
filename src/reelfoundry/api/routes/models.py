"""/v1/models: the portfolio's model cards; the platform's admin adds, approves and removes cards without a restart.

A card added here is a candidate: listed, but not routable until ``POST /v1/models/{id}/approve``, which needs a
passing onboarding report of that very card (``reelfoundry models onboard``, stored in model_evaluations)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from reelfoundry.api.deps import Cursor, Limit, PlatformDep, Reader, TenantAdmin
from reelfoundry.errors import BadRequest, ConfigurationError, Conflict, Forbidden, InvalidParameter, NotFound
from reelfoundry.platform import Platform
from reelfoundry.portfolio.config import MAX_CARDS
from reelfoundry.portfolio.registry import BACKENDS, backend_class
from reelfoundry.schema import ModelCard, Page
from reelfoundry.schema.model_card import ModelLifecycle
from reelfoundry.store import audit
from reelfoundry.store import models as modelstore
from reelfoundry.store.keys import Principal

router = APIRouter(prefix="/models", tags=["models"])


def _operator(principal: Principal) -> None:
    # Cards are the whole platform's, not a tenant's: only the operator tenant's admins change them.
    if not principal.is_operator:
        raise Forbidden("only the platform operator's admin keys add or remove models")


def _no_import_paths(card: ModelCard) -> None:
    # A `module:Class` is imported where the card is used (this server at once, workers when they load it): over
    # the API that would let a bearer key import any installed module into the platform's processes. Cards that
    # need code of their own go in the models file, which only someone on the machine can change.
    if card.backend not in BACKENDS:
        raise InvalidParameter(
            "backend",
            f"a card added over the API names a registered backend ({', '.join(sorted(BACKENDS))}), not "
            f"{card.backend[:256]!r}; import paths go in the models file",
        )
    pipeline_class = card.options.get("pipeline_class")
    if card.backend == "diffusers" and isinstance(pipeline_class, str) and ":" in pipeline_class:
        raise InvalidParameter(
            "options.pipeline_class",
            f"a card added over the API names a diffusers pipeline class, not the import path {pipeline_class[:256]!r};"
            " import paths go in the models file",
        )


#: A Hugging Face Hub repository id: ``owner/name``.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def _weights_where_allowed(card: ModelCard, models_root: Path | None) -> None:
    # Workers load whatever directory a diffusers card names; over the API only a Hub id, or a directory under
    # the operator's models_root, so a key cannot point the platform at arbitrary files on its machines.
    path = card.options.get("path")
    if card.backend != "diffusers" or not isinstance(path, str) or _HUB_ID.match(path):
        return
    if models_root is not None:
        root = models_root.expanduser().resolve()
        if Path(path).expanduser().resolve().is_relative_to(root) and not path.startswith("."):
            return
    where = (
        f"a directory under {str(models_root)!r}" if models_root else "set REELFOUNDRY_MODELS_ROOT to allow a directory"
    )
    raise InvalidParameter(
        "options.path",
        f"a card added over the API loads weights from a Hub id (owner/name) or {where}, not {path[:256]!r}",
    )


def _public(platform: Platform, card: ModelCard) -> ModelCard:
    """The card as the API shows it: with its lifecycle status."""
    return card.model_copy(update={"status": platform.portfolio.status(card.id)})


@router.get("", response_model=Page[ModelCard], summary="List models, by id")
def list_models(platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50) -> Page[ModelCard]:
    """Model cards in id order; the cursor is the last id of the previous page."""
    platform.portfolio.refresh(platform.db)
    cards = platform.portfolio.cards
    ids = sorted(cards)
    if cursor is not None:
        if cursor not in cards:
            raise BadRequest(f"cursor {cursor[:64]!r} is not a model id", parameter="cursor")
        ids = [i for i in ids if i > cursor]
    page = ids[:limit]
    nxt = page[-1] if len(ids) > limit else None
    return Page[ModelCard](items=[_public(platform, cards[i]) for i in page], next_cursor=nxt)


@router.get("/{model_id}", response_model=ModelCard, summary="Read a model card")
def get_model(model_id: str, platform: PlatformDep, principal: Reader) -> ModelCard:
    """One model card ("auto" is not a model)."""
    platform.portfolio.refresh(platform.db)
    card = platform.portfolio.cards.get(model_id)
    if card is None:
        raise NotFound(f"model {model_id!r} not found")
    return _public(platform, card)


@router.post("", status_code=201, response_model=ModelCard, summary="Add a model card (operator admin)")
def add_model(card: ModelCard, platform: PlatformDep, principal: TenantAdmin) -> ModelCard:
    """Add a card to the portfolio as a candidate, listed on every server within a second and routable once
    approved (after onboarding); a ``status`` or ``evaluation`` in the body is ignored. Its backend must be a
    registered one (an import path, of a backend or a diffusers pipeline class, only in the models file); its id
    must be new (the models file's and built-in cards are changed in the file). Audited."""
    _operator(principal)
    # What the platform sets is not taken from the body (a card read with GET may be posted back as it is).
    card = card.model_copy(update={"status": None, "evaluation": None})
    _no_import_paths(card)
    _weights_where_allowed(card, platform.settings.models_root)
    try:  # an unknown backend or bad options are a 422 now, not a failed job later (no weights load here)
        backend_class(card.backend)(card)
    except ConfigurationError as exc:
        raise InvalidParameter("backend", exc.detail) from None
    platform.portfolio.refresh(platform.db, force=True)
    if card.id in platform.portfolio.cards:
        raise Conflict(f"model {card.id!r} already exists; delete it first (or edit the models file it comes from)")
    # The router judges every card for every request, and every server re-reads these each second.
    if len(platform.portfolio.added) >= MAX_CARDS:
        raise Conflict(f"the portfolio holds {MAX_CARDS} cards added over the API, the most it takes; delete one")
    try:
        with platform.db.write() as session:
            modelstore.add_card(session, card, principal.key_id, status=modelstore.CANDIDATE)
            audit.append_by(session, principal, "model.added", subject=card.id, data=card.model_dump(mode="json"))
    except IntegrityError:
        raise Conflict(f"model {card.id!r} already exists") from None
    platform.portfolio.refresh(platform.db, force=True)
    return _public(platform, card)


@router.post("/{model_id}/approve", response_model=ModelCard, summary="Approve a candidate model (operator admin)")
def approve_model(model_id: str, platform: PlatformDep, principal: TenantAdmin) -> ModelCard:
    """Make a candidate card routable: its newest onboarding report (``reelfoundry models onboard``) must have
    passed, and be of this very card. Approving an approved card changes nothing. Audited."""
    _operator(principal)
    platform.portfolio.refresh(platform.db, force=True)
    if model_id in platform.portfolio.fixed:
        raise Conflict(f"model {model_id!r} comes from the models file or is built in: it is approved by definition")
    card = platform.portfolio.added.get(model_id)
    if card is None:
        raise NotFound(f"model {model_id!r} not found")
    with platform.db.write() as session:
        report = modelstore.passing_report(session, card)
        if report is None:
            raise Conflict(
                f"model {model_id!r} has no passing onboarding report of its current card: "
                "run `reelfoundry models onboard` with this card"
            )
        row = modelstore.approve(session, model_id)
        if row is None:
            raise NotFound(f"model {model_id!r} not found")
        audit.append_by(session, principal, "model.approved", subject=model_id, data={"report": report.id})
    platform.portfolio.refresh(platform.db, force=True)
    return _public(platform, platform.portfolio.cards[model_id])


@router.get("/{model_id}/lifecycle", response_model=ModelLifecycle, summary="A model's way to production")
def model_lifecycle(model_id: str, platform: PlatformDep, principal: Reader) -> ModelLifecycle:
    """Registered → approved → first production job of a card added over the API, with the time between (model
    agility). Cards of the models file and built-in ones have none (404)."""
    with platform.db.write() as session:  # the first job, once found, is kept on the card's row
        facts = modelstore.agility(session, model_id)
    if facts is None:
        raise NotFound(f"model {model_id!r} was not added over the API: it has no lifecycle")
    return ModelLifecycle.model_validate(facts)


@router.delete("/{model_id}", response_model=ModelCard, summary="Remove a model card (operator admin)")
def delete_model(model_id: str, platform: PlatformDep, principal: TenantAdmin) -> ModelCard:
    """Remove a card added over the API. Jobs already queued on it still run: their route keeps the card."""
    _operator(principal)
    platform.portfolio.refresh(platform.db, force=True)
    card = platform.portfolio.cards.get(model_id)
    if card is None:
        raise NotFound(f"model {model_id!r} not found")
    if model_id in platform.portfolio.fixed:
        raise Conflict(f"model {model_id!r} comes from the models file or is built in; remove it there")
    removed = _public(platform, card)
    with platform.db.write() as session:
        if not modelstore.delete_card(session, model_id):
            raise NotFound(f"model {model_id!r} not found")
        audit.append_by(session, principal, "model.deleted", subject=model_id)
    platform.portfolio.refresh(platform.db, force=True)
    return removed
