"""``reelfoundry outcomes add|list|summary``: what assets and campaigns achieved (views, clicks, conversions,
revenue, spend), posted for the ROI model and the KPI scorecard."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, client, common_options, emit, print_json, server_or_database, table
from reelfoundry.cli.common import valid_id as _id
from reelfoundry.schema.outcome import OutcomeCreate

outcomes_app = typer.Typer(
    help="Outcomes of assets and campaigns: views, clicks, conversions, revenue and spend.", no_args_is_help=True
)

COLUMNS = ["id", "campaign", "asset_id", "channel", "views", "clicks", "conversions", "revenue_usd", "spend_usd", "at"]
TOTALS = ["campaign", "records", "views", "clicks", "conversions", "revenue_usd", "spend_usd"]

From = Annotated[str | None, typer.Option("--from", help="Start date (YYYY-MM-DD) or datetime.")]
To = Annotated[str | None, typer.Option("--to", help="End date (inclusive) or datetime.")]
Campaign = Annotated[str | None, typer.Option("--campaign", help="Campaign name.")]


def _usd(option: str, value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise CLIError(f"{option} must be a number of dollars, got {value!r}") from None


@outcomes_app.command("add")
@common_options()
def outcomes_add(
    asset: Annotated[str | None, typer.Option("--asset", help="The asset's id (its campaign fills in).")] = None,
    campaign: Campaign = None,
    views: Annotated[int, typer.Option("--views", min=0)] = 0,
    clicks: Annotated[int, typer.Option("--clicks", min=0)] = 0,
    conversions: Annotated[int, typer.Option("--conversions", min=0, help="View-through ones included.")] = 0,
    revenue_usd: Annotated[str, typer.Option("--revenue-usd", help="Revenue attributed, in dollars.")] = "0",
    spend_usd: Annotated[str, typer.Option("--spend-usd", help="Media spend, in dollars.")] = "0",
    channel: Annotated[str | None, typer.Option("--channel", help="Where it ran (tiktok, web, email…).")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Start of the period measured (date or datetime).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="End of the period measured (a date: that whole day).")
    ] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    as_json: AsJson = False,
) -> None:
    """Post an outcome of an asset or a campaign (creators and admins)."""
    from reelfoundry.finops.usage import parse_when

    if asset is None and campaign is None:
        raise CLIError("name the outcome's --asset, its --campaign or both")
    body = OutcomeCreate(
        asset_id=_id("asset", asset) if asset is not None else None,
        campaign=campaign,
        channel=channel,
        views=views,
        clicks=clicks,
        conversions=conversions,
        revenue_usd=_usd("--revenue-usd", revenue_usd),
        spend_usd=_usd("--spend-usd", spend_usd),
        period_start=parse_when("from", start, end=False),
        period_end=parse_when("to", end, end=True),
        note=note,
    )
    made = client().json("POST", "/v1/outcomes", json=body.model_dump(mode="json", exclude_none=True))
    emit(made, as_json, f"posted outcome {made['id']} ({made['campaign'] or 'no campaign'}: {made['views']} views)")


@outcomes_app.command("list")
@common_options()
def outcomes_list(
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset's.")] = None,
    campaign: Campaign = None,
    start: From = None,
    end: To = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: AsJson = False,
) -> None:
    """The tenant's outcomes, newest first."""
    params: dict[str, Any] = {"asset": asset, "campaign": campaign, "from": start, "to": end, "limit": limit}
    page = client().json("GET", "/v1/outcomes", params={k: v for k, v in params.items() if v is not None})
    if as_json:
        print_json(page["items"])
    else:
        table(page["items"], COLUMNS, "Outcomes")


@outcomes_app.command("summary")
@common_options()
def outcomes_summary(
    asset: Annotated[str | None, typer.Option("--asset", help="Only this asset's.")] = None,
    campaign: Campaign = None,
    start: From = None,
    end: To = None,
    as_json: AsJson = False,
) -> None:
    """Totals of views, clicks, conversions, revenue and spend, and the same by campaign. Reads the server, or
    the data dir directly when no server answers there."""
    summary = summary_of(campaign, start, end, asset)
    if as_json:
        print_json(summary)
        return
    rows = [*summary["by_campaign"], {"campaign": "(total)", **summary["totals"]}]
    table(rows, TOTALS, "Outcomes")


def summary_of(campaign: str | None, start: str | None, end: str | None, asset: str | None = None) -> dict[str, Any]:
    """``GET /v1/outcomes/summary`` from the server, or the same sums from the data dir's database (every
    tenant's: whoever can read the file is the operator) when no server answers."""
    given = {"campaign": campaign, "asset": asset, "from": start, "to": end}
    params = {k: v for k, v in given.items() if v is not None}
    from reelfoundry.finops.usage import parse_when
    from reelfoundry.store import outcomes as outcomestore

    when = parse_when("from", start, end=False), parse_when("to", end, end=True)
    if when[0] is not None and when[1] is not None and when[0] >= when[1]:
        raise CLIError("--to must be after --from")  # as the server refuses it, with or without one

    def local(session: Any) -> dict[str, Any]:
        return outcomestore.summary(session, None, *when, campaign, asset).model_dump(mode="json")

    return dict(server_or_database("/v1/outcomes/summary", params, local))
