"""The list envelope shared by every collection endpoint."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Opaque cursor for the next page; null on the last.")
