"""Tenants and API keys. A key is ``rf_<id>_<secret>``; only SHA-256 of the secret is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from reelfoundry.errors import Unauthenticated
from reelfoundry.events import signing
from reelfoundry.ids import is_id, new_id
from reelfoundry.schema import KeyPublic, Role
from reelfoundry.store import audit
from reelfoundry.store.owned import owned
from reelfoundry.store.pagination import page_of, paginate
from reelfoundry.store.tables import ApiKeyRow, TenantRow, utcnow

OPERATOR_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its tenant and role."""

    key_id: str
    tenant_id: str
    tenant_name: str
    role: Role
    is_operator: bool


# Built once: authentication runs on every request, and building the statement costs more than running it.
_AUTH_QUERY = (
    select(
        ApiKeyRow.secret_hash, ApiKeyRow.revoked_at, ApiKeyRow.role, TenantRow.id, TenantRow.name, TenantRow.is_operator
    )
    .join(TenantRow, TenantRow.id == ApiKeyRow.tenant_id)
    .where(ApiKeyRow.id == bindparam("key_id"))
)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def get_or_create_tenant(session: Session, name: str, *, is_operator: bool = False) -> TenantRow:
    """The tenant called ``name``, created (with a webhook secret) if new."""
    row = session.scalar(select(TenantRow).where(TenantRow.name == name))
    if row is None:
        row = TenantRow(
            id=new_id(), name=name, is_operator=is_operator, webhook_secret=signing.new_secret(), created_at=utcnow()
        )
        session.add(row)
        session.flush()
    return row


def create_key(
    session: Session, tenant: TenantRow, name: str, role: Role, *, actor: str = "system"
) -> tuple[ApiKeyRow, str]:
    """A new key and its bearer token (the only time the token exists in clear)."""
    token = new_token()
    return import_key(session, tenant, name, role, token, actor=actor, imported=False), token


#: The least length of a key's secret part (``secrets.token_urlsafe(32)`` makes 43 characters).
MIN_SECRET_CHARS = 32


def new_token() -> str:
    """A fresh key token (``rf_<id>_<secret>``); :func:`import_key` stores it (``reelfoundry keys token`` makes one
    offline, for an operator's secret store)."""
    return f"rf_{new_id()}_{secrets.token_urlsafe(32)}"


def parse_token(token: str) -> tuple[str, str]:
    """A token made elsewhere as (key id, secret); ValueError, saying what is wrong, unless it is
    ``rf_<id>_<secret>`` with a secret of at least ``MIN_SECRET_CHARS`` URL-safe characters."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "rf" or not is_id(parts[1]):
        raise ValueError("a key looks like rf_<26-character id>_<secret>; make one with `reelfoundry keys token`")
    secret = parts[2]
    if len(secret) < MIN_SECRET_CHARS or not all(c.isascii() and (c.isalnum() or c in "-_") for c in secret):
        raise ValueError(f"a key's secret is at least {MIN_SECRET_CHARS} URL-safe characters")
    return parts[1], secret


def import_key(
    session: Session,
    tenant: TenantRow,
    name: str,
    role: Role,
    token: str,
    *,
    actor: str = "system",
    imported: bool = True,
) -> ApiKeyRow:
    """Store the key of ``token`` (only its secret's hash is kept), audited. ValueError, saying what is wrong, for a
    token that is not ``rf_<id>_<secret>`` with a secret of at least ``MIN_SECRET_CHARS`` URL-safe characters, or
    whose id is taken."""
    key_id, secret = parse_token(token)
    if session.get(ApiKeyRow, key_id) is not None:
        raise ValueError("a key with that id exists already")
    row = ApiKeyRow(
        id=key_id,
        tenant_id=tenant.id,
        name=name,
        role=role.value,
        secret_hash=_hash(secret),
        created_by=actor if is_id(actor) else None,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    data = {"name": name, "role": role.value, **({"imported": True} if imported else {})}
    audit.append(session, "key.created", actor=actor, tenant_id=tenant.id, subject=row.id, data=data)
    return row


def authenticate(session: Session, token: str) -> Principal:
    """The principal of a bearer token; Unauthenticated if unknown, malformed or revoked."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "rf" or not is_id(parts[1]):
        raise Unauthenticated("malformed API key")
    found = session.execute(_AUTH_QUERY, {"key_id": parts[1]}).one_or_none()
    if found is None or not hmac.compare_digest(found.secret_hash, _hash(parts[2])) or found.revoked_at is not None:
        raise Unauthenticated("unknown or revoked API key")
    return Principal(parts[1], found.id, found.name, Role(found.role), found.is_operator)


def principal_by_id(session: Session, key_id: str) -> tuple[Principal, str] | None:
    """A live key's principal and secret hash by key id (web sessions re-check the key on every request)."""
    if not is_id(key_id):
        return None
    found = session.execute(_AUTH_QUERY, {"key_id": key_id}).one_or_none()
    if found is None or found.revoked_at is not None:
        return None
    return Principal(key_id, found.id, found.name, Role(found.role), found.is_operator), found.secret_hash


class PrincipalCache:
    """Verified keys for a few seconds, so a burst of requests costs one look-up.

    Keyed by the token's hash, never the token. Revocation clears it here at once;
    other servers sharing the database stop accepting the key within ``ttl_s``.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[Principal, float]] = {}

    def get(self, token: str) -> Principal | None:
        """The cached principal of ``token`` if still fresh."""
        if self.ttl_s <= 0:
            return None
        hit = self._entries.get(_hash(token))
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, token: str, principal: Principal) -> None:
        """Remember a verified principal."""
        if self.ttl_s > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[_hash(token)] = (principal, time.monotonic() + self.ttl_s)

    def clear(self) -> None:
        """Forget everything (after a revocation)."""
        self._entries.clear()


def revoke_key(session: Session, tenant_id: str, key_id: str, *, actor: str = "system") -> ApiKeyRow:
    """Revoke a key of this tenant (idempotent)."""
    row = owned(session, ApiKeyRow, tenant_id, key_id, "key")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.append(session, "key.revoked", actor=actor, tenant_id=tenant_id, subject=row.id)
    return row


def list_keys(
    session: Session, tenant_id: str, *, cursor: str | None, limit: int
) -> tuple[list[ApiKeyRow], str | None]:
    """A page of the tenant's keys, newest first."""
    stmt = select(ApiKeyRow).where(ApiKeyRow.tenant_id == tenant_id)
    return page_of(list(session.scalars(paginate(stmt, ApiKeyRow.id, cursor, limit))), limit)


def to_key(row: ApiKeyRow, tenant_name: str) -> KeyPublic:
    """The public schema of a key (no secret)."""
    return KeyPublic(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        tenant=tenant_name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
