"""``reelfoundry budgets create|list|delete``: spending limits (admin to change, anyone to read)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, client, common_options, emit, print_json, table
from reelfoundry.cli.common import valid_id as _id
from reelfoundry.schema import BudgetCreate
from reelfoundry.schema.budget import BudgetPeriod, BudgetScope, Enforcement

budgets_app = typer.Typer(help="Spending limits per tenant, project or campaign.", no_args_is_help=True)

COLUMNS = [
    "id",
    "name",
    "scope",
    "scope_value",
    "period",
    "enforcement",
    "limit_usd",
    "spent_usd",
    "reserved_usd",
    "remaining_usd",
]


@budgets_app.command("create")
@common_options()
def budgets_create(
    name: Annotated[str, typer.Option("--name", help="Label for the budget.")],
    limit_usd: Annotated[str, typer.Option("--limit-usd", help="The limit in US dollars, e.g. 250 or 12.50.")],
    scope: Annotated[BudgetScope, typer.Option("--scope", help="What the budget covers.")] = BudgetScope.tenant,
    scope_value: Annotated[
        str | None, typer.Option("--scope-value", help="The project or campaign name (with --scope project|campaign).")
    ] = None,
    period: Annotated[BudgetPeriod, typer.Option("--period", help="When spend restarts.")] = BudgetPeriod.month,
    enforcement: Annotated[
        Enforcement, typer.Option("--enforcement", help="hard: refuse jobs over budget; soft: only warn.")
    ] = Enforcement.hard,
    as_json: AsJson = False,
) -> None:
    """Create a budget (admin)."""
    try:
        limit = Decimal(limit_usd)
    except InvalidOperation:
        raise CLIError(f"--limit-usd must be a number of dollars, got {limit_usd!r}") from None
    body = BudgetCreate(
        name=name, scope=scope, scope_value=scope_value, period=period, limit_usd=limit, enforcement=enforcement
    )
    budget = client().json("POST", "/v1/budgets", json=body.model_dump(mode="json", exclude_none=True))
    emit(budget, as_json, f"created budget {budget['id']} ({budget['name']}: {budget['limit_usd']} USD per {period})")


@budgets_app.command("list")
@common_options()
def budgets_list(
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: AsJson = False,
) -> None:
    """The tenant's budgets with what is spent, reserved and remaining in the current period."""
    page = client().json("GET", "/v1/budgets", params={"limit": limit})
    if as_json:
        print_json(page["items"])
    else:
        table(page["items"], COLUMNS, "Budgets")


@budgets_app.command("delete")
@common_options()
def budgets_delete(budget_id: str, as_json: AsJson = False) -> None:
    """Delete a budget (admin); jobs stop counting against it at once."""
    budget = client().json("DELETE", f"/v1/budgets/{_id('budget', budget_id)}")
    emit(budget, as_json, f"deleted budget {budget_id}")
