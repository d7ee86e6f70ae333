"""``reelfoundry usage`` and ``reelfoundry prices``: what jobs cost, and the price catalog."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import (
    AsJson,
    PriceKind,
    common_options,
    console,
    friendly,
    print_json,
    server_or_database,
    table,
)


@common_options()
def usage(
    by: Annotated[
        str | None, typer.Option("--by", help="Comma-separated: tenant, project, campaign, model, device, day.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start date (YYYY-MM-DD) or datetime.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End date (inclusive) or datetime.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Draw spend per day by the first group as a PNG.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """What jobs cost, in money, energy and carbon, with cost per video. Reads the server, or the data dir
    directly when no server answers there."""
    from reelfoundry.finops import usage as report

    keys = report.parse_by(by)
    if chart is not None and not chart.parent.resolve().is_dir():
        raise CLIError(f"directory {str(chart.parent)!r} does not exist")
    params = {k: v for k, v in {"by": by, "from": start, "to": end}.items() if v}
    span = report.parse_when("from", start, end=False), report.parse_when("to", end, end=True)
    rows = _usage_rows(params, keys, *span)
    if chart is not None:
        first = keys[0] if keys else "model"
        daily_keys = [first, "day"] if first != "day" else ["day"]
        daily = _usage_rows({**params, "by": ",".join(daily_keys)}, daily_keys, *span)
        from reelfoundry.finops.chart import spend_chart

        spend_chart(daily, first, chart)
        console.print(f"wrote {chart}", highlight=False)
    if as_json:
        print_json(rows)
    elif as_csv:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif chart is None or rows:
        figures = ["total_usd", "energy_kwh", "co2e_kg", "cost_per_video_usd", "cost_per_approved_video_usd"]
        from decimal import Decimal

        from reelfoundry.finops.meter import significant

        def short(value: Any) -> str | None:  # exact figures are in --json and --csv
            return None if value is None else significant(Decimal(str(value)), 4)

        shown = [{**r, **{k: short(r.get(k)) for k in figures}} for r in rows]
        table(shown, [*keys, "jobs", "video_seconds", *figures], "Usage (--json for exact figures)")


def _usage_rows(params: dict[str, str], keys: list[str], start: Any, end: Any) -> list[dict[str, Any]]:
    """Rows from the server, or from the data dir's database when no server answers."""
    from reelfoundry.finops import usage as report

    def local(session: Any) -> dict[str, Any]:
        return {"rows": report.to_json(report.report(session, tenant_id=None, by=keys, start=start, end=end))}

    return list(server_or_database("/v1/usage", params, local)["rows"])


@friendly
def prices(
    kind: Annotated[PriceKind | None, typer.Option("--kind", help="Only this section of the catalog.")] = None,
    as_json: AsJson = False,
) -> None:
    """The price catalog the meter uses: every row with its source and date."""
    from reelfoundry.finops.catalog import Catalog, load_catalog

    section_kind = kind.value if kind else None
    catalog = load_catalog()
    rows = catalog.rows(section_kind)
    if as_json:
        print_json({"version": catalog.version, "currency": catalog.currency, "rows": rows})
        return
    for section in [section_kind] if section_kind else Catalog.SECTIONS:
        part = [r for r in rows if r["kind"] == section]
        value = next(
            k
            for k in (
                "usd_per_device_hour",
                "usd_per_gb",
                "usd_per_gb_month",
                "watts",
                "value",
                "g_co2e_per_kwh",
                "usd_per_second",
            )
            if k in part[0]
        )
        keys = [k for k in ("provider", "device", "pricing_model", "region", "tier", "item", "model") if k in part[0]]
        table(part, [*keys, value, "as_of"], f"{section} (catalog {catalog.version}; sources: --json)")
