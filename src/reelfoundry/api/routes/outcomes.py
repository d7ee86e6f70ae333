"""/v1/outcomes: what assets and campaigns achieved (creators and admins post; every reader reads and sums)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from reelfoundry.api.deps import Cursor, Limit, PlatformDep, Reader, Submitter
from reelfoundry.errors import Forbidden, InvalidParameter
from reelfoundry.finops.usage import parse_when
from reelfoundry.schema import Page, Role
from reelfoundry.schema.outcome import Outcome, OutcomeCreate, OutcomeSummary
from reelfoundry.schema.text import PRINTABLE
from reelfoundry.store import assets as assetstore
from reelfoundry.store import audit
from reelfoundry.store import outcomes as outcomestore

router = APIRouter(prefix="/outcomes", tags=["outcomes"])

Campaign = Annotated[str | None, Query(min_length=1, max_length=128, pattern=PRINTABLE, description="Campaign name.")]
From = Annotated[
    str | None, Query(alias="from", max_length=40, description="Start (inclusive): a date or ISO datetime.")
]
To = Annotated[str | None, Query(max_length=40, description="End (a date: inclusive of that day).")]


def _span(from_: str | None, to: str | None) -> tuple[datetime | None, datetime | None]:
    start, end = parse_when("from", from_, end=False), parse_when("to", to, end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidParameter("to", "to must be after from")
    return start, end


@router.post("", status_code=201, response_model=Outcome, summary="Post an outcome of an asset or a campaign")
def post_outcome(body: OutcomeCreate, platform: PlatformDep, principal: Submitter) -> Outcome:
    """Views, clicks, conversions, revenue and spend of an asset or a campaign over a period. An asset's campaign
    is used when none is given; an asset of another tenant is not found (404)."""
    with platform.db.write() as session:
        campaign = body.campaign
        if body.asset_id is not None:
            asset = assetstore.get_asset(session, principal.tenant_id, body.asset_id)
            campaign = campaign or asset.campaign
        row = outcomestore.create(session, principal.tenant_id, body, campaign=campaign, actor=principal.key_id)
        audit.append_by(
            session,
            principal,
            "outcome.posted",
            subject=row.id,
            data=body.model_dump(mode="json", exclude_none=True) | {"campaign": campaign},
        )
        return outcomestore.to_outcome(row)


@router.get("", response_model=Page[Outcome], summary="List outcomes")
def list_outcomes(
    platform: PlatformDep,
    principal: Reader,
    asset_id: Annotated[str | None, Query(alias="asset", max_length=64, description="Only this asset's.")] = None,
    campaign: Campaign = None,
    from_: From = None,
    to: To = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[Outcome]:
    """The tenant's outcomes, newest first, by asset, campaign and window (a period's end, or when posted)."""
    start, end = _span(from_, to)
    with platform.db.read() as session:
        rows, nxt = outcomestore.list_outcomes(
            session,
            principal.tenant_id,
            asset_id=asset_id,
            campaign=campaign,
            start=start,
            end=end,
            cursor=cursor,
            limit=limit,
        )
        return Page[Outcome](items=[outcomestore.to_outcome(r) for r in rows], next_cursor=nxt)


@router.get("/summary", response_model=OutcomeSummary, summary="Outcome totals, overall and by campaign")
def outcome_summary(
    platform: PlatformDep,
    principal: Reader,
    campaign: Campaign = None,
    asset_id: Annotated[str | None, Query(alias="asset", max_length=64, description="Only this asset's.")] = None,
    from_: From = None,
    to: To = None,
    all_tenants: Annotated[bool, Query(description="Every tenant (operator admins only).")] = False,
) -> OutcomeSummary:
    """Sums of views, clicks, conversions, revenue and spend in the window (of one campaign or asset, if named),
    and the same per campaign."""
    start, end = _span(from_, to)
    if all_tenants and not (principal.is_operator and principal.role == Role.admin):
        raise Forbidden("only the operator tenant's admins may sum every tenant's outcomes")
    tenant_id = None if all_tenants else principal.tenant_id
    with platform.db.read() as session:
        return outcomestore.summary(session, tenant_id, start, end, campaign, asset_id)
