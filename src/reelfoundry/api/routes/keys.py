"""/v1/keys: create, list and revoke API keys (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from reelfoundry.api.deps import Cursor, KeyAdmin, Limit, PlatformDep
from reelfoundry.errors import Forbidden
from reelfoundry.schema import KeyCreate, KeyCreated, KeyPublic, Page
from reelfoundry.store import keys as keystore
from reelfoundry.store.tables import TenantRow

router = APIRouter(prefix="/keys", tags=["keys"])


@router.post("", status_code=201, response_model=KeyCreated, summary="Create an API key")
def create_key(body: KeyCreate, platform: PlatformDep, principal: KeyAdmin) -> KeyCreated:
    """A new key in the caller's tenant (or, for the operator tenant, in a named tenant)."""
    with platform.db.write() as session:
        if body.tenant is None or body.tenant == principal.tenant_name:
            tenant = session.get(TenantRow, principal.tenant_id)
            assert tenant is not None
        elif principal.is_operator:
            tenant = keystore.get_or_create_tenant(session, body.tenant)
        else:
            raise Forbidden("only the operator tenant's admins may create keys in another tenant")
        row, token = keystore.create_key(session, tenant, body.name, body.role, actor=principal.key_id)
        public = keystore.to_key(row, tenant.name)
    return KeyCreated(**public.model_dump(), secret=token)


@router.get("", response_model=Page[KeyPublic], summary="List the tenant's API keys")
def list_keys(platform: PlatformDep, principal: KeyAdmin, cursor: Cursor = None, limit: Limit = 50) -> Page[KeyPublic]:
    """Keys without their secrets, newest first."""
    with platform.db.read() as session:
        rows, nxt = keystore.list_keys(session, principal.tenant_id, cursor=cursor, limit=limit)
        return Page[KeyPublic](items=[keystore.to_key(r, principal.tenant_name) for r in rows], next_cursor=nxt)


@router.delete("/{key_id}", response_model=KeyPublic, summary="Revoke an API key")
def revoke_key(key_id: str, platform: PlatformDep, principal: KeyAdmin) -> KeyPublic:
    """Revoke a key of the tenant; it stops working at once."""
    with platform.db.write() as session:
        row = keystore.revoke_key(session, principal.tenant_id, key_id, actor=principal.key_id)
        public = keystore.to_key(row, principal.tenant_name)
    platform.principals.clear()
    return public
