"""The one way to fetch a row by id for a tenant: other tenants' rows are as absent as missing ones."""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from reelfoundry.errors import NotFound
from reelfoundry.ids import is_id


class _TenantRow(Protocol):
    tenant_id: str


R = TypeVar("R", bound=_TenantRow)


def owned(session: Session, model: type[R], tenant_id: str, row_id: str, noun: str) -> R:
    """The row ``row_id`` of ``model`` if it belongs to ``tenant_id``; NotFound naming the ``noun`` otherwise."""
    row = session.get(model, row_id) if is_id(row_id) else None
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"{noun} {row_id!r} not found")
    return row
