"""/v1/tenant: the caller's tenant and its settings."""

from __future__ import annotations

from fastapi import APIRouter

from reelfoundry.api.deps import PlatformDep, Reader, TenantAdmin
from reelfoundry.schema import TenantSettings, TenantUpdate
from reelfoundry.store import audit
from reelfoundry.store.tables import TenantRow

router = APIRouter(prefix="/tenant", tags=["tenant"])


def _settings(row: TenantRow) -> TenantSettings:
    return TenantSettings(id=row.id, name=row.name, allow_self_approval=row.allow_self_approval)


@router.get("", response_model=TenantSettings, summary="Read the caller's tenant settings")
def get_tenant(platform: PlatformDep, principal: Reader) -> TenantSettings:
    """The settings of the tenant the key belongs to."""
    with platform.db.read() as session:
        row = session.get(TenantRow, principal.tenant_id)
        assert row is not None
        return _settings(row)


@router.patch("", response_model=TenantSettings, summary="Change the caller's tenant settings (admin)")
def update_tenant(body: TenantUpdate, platform: PlatformDep, principal: TenantAdmin) -> TenantSettings:
    """Fields left out keep their value. Each change is in the audit log."""
    changes = body.model_dump(exclude_none=True)
    with platform.db.write() as session:
        row = session.get(TenantRow, principal.tenant_id)
        assert row is not None
        for name, value in changes.items():
            setattr(row, name, value)
        if changes:
            audit.append_by(session, principal, "tenant.updated", subject=row.id, data=changes)
        return _settings(row)
