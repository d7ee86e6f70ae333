"""The canonical data format (schema v1): pydantic models exported as JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reelfoundry.schema.budget import Budget, BudgetCreate, BudgetPeriod, BudgetScope, Enforcement
from reelfoundry.schema.cost import CostRecord
from reelfoundry.schema.job import FINAL_STATES, TRANSITIONS, Asset, Event, Job, JobError, JobState, Problem
from reelfoundry.schema.keys import KeyCreate, KeyCreated, KeyPublic, Role
from reelfoundry.schema.kpi import Scorecard
from reelfoundry.schema.model_card import ModelCard, Quality, Resources, Speed, VendorHosting
from reelfoundry.schema.outcome import Outcome, OutcomeCreate, OutcomeSummary
from reelfoundry.schema.page import Page
from reelfoundry.schema.request import Constraints, DataClass, Labels, Objective, Priority, VideoRequest
from reelfoundry.schema.review import (
    DECISION_STATE,
    REVIEW_TRANSITIONS,
    Publication,
    Review,
    ReviewCreate,
    ReviewDecision,
    ReviewState,
    TenantSettings,
    TenantUpdate,
)
from reelfoundry.schema.route import Candidate, ResolvedParams, RoutePlan
from reelfoundry.schema.template import TemplateSpec
from reelfoundry.schema.usage import UsageReport, UsageRow
from reelfoundry.schema.webhooks import WebhookDelivery, WebhookRotation, WebhookSecret

#: Types published as JSON Schema, by the name used in files and URLs.
EXPORTED: dict[str, type[BaseModel]] = {
    "VideoRequest": VideoRequest,
    "Job": Job,
    "Asset": Asset,
    "Event": Event,
    "ModelCard": ModelCard,
    "RoutePlan": RoutePlan,
    "Problem": Problem,
    "Review": Review,
    "CostRecord": CostRecord,
    "Budget": Budget,
    "Publication": Publication,
    "TemplateSpec": TemplateSpec,
}

SCHEMA_BASE = "https://reelfoundry.dev/schemas/v1/"


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of an exported type, with a stable ``$id``."""
    model = EXPORTED[name]
    schema = model.model_json_schema(mode="validation" if name == "VideoRequest" else "serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{SCHEMA_BASE}{name}.json", **schema}


def render(name: str) -> str:
    """The exact text written to ``schemas/<name>.json``."""
    return json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n"


def export_all(directory: Path) -> list[Path]:
    """Write one JSON Schema file per exported type; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in EXPORTED:
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


__all__ = [
    "DECISION_STATE",
    "EXPORTED",
    "FINAL_STATES",
    "REVIEW_TRANSITIONS",
    "TRANSITIONS",
    "Asset",
    "Budget",
    "BudgetCreate",
    "BudgetPeriod",
    "BudgetScope",
    "Candidate",
    "Constraints",
    "CostRecord",
    "DataClass",
    "Enforcement",
    "Event",
    "Job",
    "JobError",
    "JobState",
    "KeyCreate",
    "KeyCreated",
    "KeyPublic",
    "Labels",
    "ModelCard",
    "Objective",
    "Outcome",
    "OutcomeCreate",
    "OutcomeSummary",
    "Page",
    "Priority",
    "Problem",
    "Publication",
    "Quality",
    "ResolvedParams",
    "Resources",
    "Review",
    "ReviewCreate",
    "ReviewDecision",
    "ReviewState",
    "Role",
    "RoutePlan",
    "Scorecard",
    "Speed",
    "TemplateSpec",
    "TenantSettings",
    "TenantUpdate",
    "UsageReport",
    "UsageRow",
    "VendorHosting",
    "VideoRequest",
    "WebhookDelivery",
    "WebhookRotation",
    "WebhookSecret",
    "export_all",
    "json_schema",
    "render",
]
