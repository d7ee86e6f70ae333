"""/v1/budgets: spending limits per tenant, project or campaign (admin to change, anyone to read)."""

from __future__ import annotations

from fastapi import APIRouter

from reelfoundry.api.deps import Cursor, Limit, PlatformDep, Reader, TenantAdmin
from reelfoundry.schema import Budget, BudgetCreate, Page
from reelfoundry.store import audit
from reelfoundry.store import budgets as budgetstore

router = APIRouter(prefix="/budgets", tags=["budgets"])


@router.post("", status_code=201, response_model=Budget, summary="Create a budget (admin)")
def create_budget(body: BudgetCreate, platform: PlatformDep, principal: TenantAdmin) -> Budget:
    """A hard budget makes admission refuse jobs it cannot cover (402); a soft one only warns (event, webhook)."""
    with platform.db.write() as session:
        row = budgetstore.create(session, principal.tenant_id, body, principal.key_id)
        audit.append_by(
            session,
            principal,
            "budget.created",
            subject=row.id,
            data=body.model_dump(mode="json"),
        )
        return budgetstore.to_budget(session, row)


@router.get("", response_model=Page[Budget], summary="List budgets with what is spent and reserved")
def list_budgets(platform: PlatformDep, principal: Reader, cursor: Cursor = None, limit: Limit = 50) -> Page[Budget]:
    """The tenant's budgets, each with its current period's spend, reservations and what remains."""
    with platform.db.read() as session:
        rows, nxt = budgetstore.list_budgets(session, principal.tenant_id, cursor=cursor, limit=limit)
        return Page[Budget](items=[budgetstore.to_budget(session, r) for r in rows], next_cursor=nxt)


@router.get("/{budget_id}", response_model=Budget, summary="Read a budget")
def get_budget(budget_id: str, platform: PlatformDep, principal: Reader) -> Budget:
    """One budget and where it stands."""
    with platform.db.read() as session:
        return budgetstore.to_budget(session, budgetstore.get(session, principal.tenant_id, budget_id))


@router.delete("/{budget_id}", response_model=Budget, summary="Delete a budget (admin)")
def delete_budget(budget_id: str, platform: PlatformDep, principal: TenantAdmin) -> Budget:
    """Remove a budget; jobs stop counting against it at once."""
    with platform.db.write() as session:
        row = budgetstore.get(session, principal.tenant_id, budget_id)
        out = budgetstore.to_budget(session, row)
        session.delete(row)
        audit.append_by(session, principal, "budget.deleted", subject=row.id)
        return out
