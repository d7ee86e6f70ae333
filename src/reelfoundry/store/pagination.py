"""Cursor pagination over ULID primary keys (newest first)."""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute

from reelfoundry.errors import BadRequest
from reelfoundry.ids import is_id

MAX_LIMIT = 200

R = TypeVar("R")


def encode_cursor(last_id: str) -> str:
    """Opaque cursor pointing after ``last_id``."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The id a cursor points after; BadRequest if it is not one of ours."""
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = ""
    if not is_id(value):
        raise BadRequest(f"cursor {cursor[:64]!r} is not a cursor this API issued", parameter="cursor")
    return value


def paginate(stmt: Select[R], column: InstrumentedAttribute[str], cursor: str | None, limit: int) -> Select[R]:
    """Apply cursor and limit (one extra row is fetched to know whether a next page exists)."""
    if cursor:
        stmt = stmt.where(column < decode_cursor(cursor))
    return stmt.order_by(column.desc()).limit(limit + 1)


def page_of(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """Split the fetched rows into this page and the cursor of the next."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None
