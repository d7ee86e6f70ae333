"""/v1/models: the portfolio's model cards."""

from __future__ import annotations

from fastapi import APIRouter

from reelfoundry.api.deps import Cursor, Limit, PlatformDep, Reader
from reelfoundry.errors import BadRequest, NotFound
from reelfoundry.schema import ModelCard, Page

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=Page[ModelCard], summary="List models, by id")
def list_models(platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50) -> Page[ModelCard]:
    """Model cards in id order; the cursor is the last id of the previous page."""
    ids = sorted(platform.portfolio.cards)
    if cursor is not None:
        if cursor not in platform.portfolio.cards:
            raise BadRequest(f"cursor {cursor[:64]!r} is not a model id", parameter="cursor")
        ids = [i for i in ids if i > cursor]
    page = ids[:limit]
    nxt = page[-1] if len(ids) > limit else None
    return Page[ModelCard](items=[platform.portfolio.cards[i] for i in page], next_cursor=nxt)


@router.get("/{model_id}", response_model=ModelCard, summary="Read a model card")
def get_model(model_id: str, platform: PlatformDep, principal: Reader) -> ModelCard:
    """One model card ("auto" is not a model)."""
    card = platform.portfolio.cards.get(model_id)
    if card is None:
        raise NotFound(f"model {model_id!r} not found")
    return card
