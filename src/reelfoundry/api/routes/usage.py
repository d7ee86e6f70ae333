"""/v1/usage: what the tenant's jobs cost, by group and period, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from reelfoundry.api.deps import PlatformDep, Reader
from reelfoundry.errors import Forbidden, InvalidParameter
from reelfoundry.finops import usage
from reelfoundry.schema import Role, UsageReport, UsageRow

router = APIRouter(prefix="/usage", tags=["usage"])


@router.get(
    "",
    response_model=UsageReport,
    response_model_exclude_unset=True,
    response_model_by_alias=True,
    summary="Usage and cost by tenant, project, campaign, model, device or day",
    responses={200: {"content": {"text/csv": {}}, "description": "The report (CSV with format=csv)."}},
)
def get_usage(
    platform: PlatformDep,
    principal: Reader,
    by: Annotated[str | None, Query(max_length=100, description="Comma-separated: " + ", ".join(usage.GROUPS))] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description="Start (inclusive).")] = None,
    to: Annotated[str | None, Query(max_length=40, description="End (a date: inclusive of that day).")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv.")] = "json",
    all_tenants: Annotated[bool, Query(description="Every tenant (operator admins only).")] = False,
) -> UsageReport | Response:
    """Jobs, seconds of video, device-seconds, money, energy and carbon, and unit economics per group."""
    keys = usage.parse_by(by)
    start, end = usage.parse_when("from", from_, end=False), usage.parse_when("to", to, end=True)
    if start is not None and end is not None and start >= end:
        raise InvalidParameter("to", "to must be after from")
    if all_tenants and not (principal.is_operator and principal.role == Role.admin):
        raise Forbidden("only the operator tenant's admins may report on every tenant")
    with platform.db.read() as session:
        rows = usage.report(
            session, tenant_id=None if all_tenants else principal.tenant_id, by=keys, start=start, end=end
        )
    if format == "csv":
        return Response(_csv(usage.to_json(rows), keys), media_type="text/csv")
    return UsageReport(by=keys, start=start, end=end, rows=[UsageRow(**row) for row in rows])


def _csv(rows: list[dict[str, object]], keys: list[str]) -> str:
    out = io.StringIO()
    fields = [*keys, *(f for f in UsageRow.model_fields if f not in usage.GROUPS)]
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
