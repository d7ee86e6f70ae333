"""/v1/schemas: the canonical JSON Schemas (the same text as the committed schemas/ files)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from reelfoundry.errors import NotFound
from reelfoundry.schema import EXPORTED, json_schema

router = APIRouter(prefix="/schemas", tags=["schemas"])


@router.get("", summary="List schema names")
def list_schemas() -> dict[str, list[str]]:
    """Names accepted by ``GET /v1/schemas/{name}``."""
    return {"items": sorted(EXPORTED)}


@router.get("/{name}", summary="Read one JSON Schema")
def get_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one canonical type."""
    if name.removesuffix(".json") not in EXPORTED:
        raise NotFound(f"schema {name!r} not found; known: {', '.join(sorted(EXPORTED))}")
    return json_schema(name.removesuffix(".json"))
