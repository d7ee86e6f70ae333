"""/v1/kpi: the KPI scorecard of the caller's tenant (or every tenant, for the operator's admins) over a window."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from reelfoundry.api.deps import PlatformDep, Reader
from reelfoundry.errors import Forbidden, InvalidParameter
from reelfoundry.finops import usage
from reelfoundry.kpi import scorecard
from reelfoundry.schema import Role, Scorecard
from reelfoundry.store.tables import utcnow

router = APIRouter(prefix="/kpi", tags=["kpi"])


@router.get(
    "",
    response_model=Scorecard,
    response_model_by_alias=True,
    summary="The KPI scorecard: utilisation, queue wait, unit costs, velocity, agility, leverage, approval",
)
def get_kpi(
    platform: PlatformDep,
    principal: Reader,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description="Start (inclusive).")] = None,
    to: Annotated[str | None, Query(max_length=40, description="End (a date: inclusive of that day).")] = None,
    all_tenants: Annotated[bool, Query(description="Every tenant (operator admins only).")] = False,
) -> Scorecard:
    """Each KPI with its value, unit, definition, the count it rests on and its provenance (measured), or
    ``available: false`` and the reason; daily trends for charts."""
    start, end = usage.parse_when("from", from_, end=False), usage.parse_when("to", to, end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidParameter("to", "to must be after from")
    if all_tenants and not (principal.is_operator and principal.role == Role.admin):
        raise Forbidden("only the operator tenant's admins may report on every tenant")
    with platform.db.read() as session:
        return scorecard(session, None if all_tenants else principal.tenant_id, start, end, utcnow())
