"""What the router knows at admission, read from the platform (the impure half; ``plan`` is the pure one)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reelfoundry.config import Settings
from reelfoundry.errors import ReelFoundryError
from reelfoundry.finops.catalog import Catalog
from reelfoundry.finops.meter import Rates
from reelfoundry.finops.rates import worker_rates
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.routing.plan import RouterState
from reelfoundry.schema import JobState, ResolvedParams, VideoRequest
from reelfoundry.store import budgets as budgetstore
from reelfoundry.store import models as modelstore
from reelfoundry.store.jobs import PRIORITY
from reelfoundry.store.tables import JobRow, utcnow

if TYPE_CHECKING:
    from reelfoundry.platform import Platform

log = logging.getLogger(__name__)

#: Settings that name a vendor's key, by vendor.
VENDOR_KEYS = {"replicate": "replicate_api_token", "fal": "fal_api_key"}


def fleet_rates(settings: Settings, catalog: Catalog, node: Rates) -> dict[str, Rates]:
    """Rates per device class the workers offer: this node's (when it runs workers) and ``fleet_devices``,
    priced from the catalog for this node's provider and pricing model."""
    devices: dict[str, Rates] = {}
    if settings.worker_slots > 0:
        devices[node.device] = node
    for device in settings.fleet_devices:
        if device in devices:
            continue
        update = {"worker_device": device, "worker_usd_per_device_hour": None, "worker_device_share": "1"}
        try:
            devices[device] = worker_rates(settings.model_copy(update=update), catalog)
        except ReelFoundryError as exc:
            raise ReelFoundryError(f"fleet_devices: {device}: {exc.detail}") from None
    return devices


def configured_vendors(settings: Settings) -> frozenset[str]:
    """Vendors whose API key is set."""
    return frozenset(v for v, attr in VENDOR_KEYS.items() if getattr(settings, attr, None))


def local_state(settings: Settings, catalog: Catalog) -> RouterState:
    """The router's view on a machine without a server (``reelfoundry generate``): its own device, no queue."""
    rates = worker_rates(settings, catalog)
    return RouterState(
        devices={rates.device: rates},
        default_rates=rates,
        vendors=configured_vendors(settings),
        min_quality=settings.routing_min_quality,
        timeout_s=settings.job_timeout_s,
        now=utcnow(),
    )


def router_state(platform: Platform, session: Session, tenant_id: str, request: VideoRequest) -> RouterState:
    """The router's view for one request of ``tenant_id``."""
    settings = platform.settings
    now = utcnow()
    ahead = session.scalar(
        select(func.count())
        .select_from(JobRow)
        .where(JobRow.state == JobState.queued.value, JobRow.priority <= PRIORITY[request.priority.value])
    )
    budget_left = None
    if budgetstore.any_budget(session, tenant_id):
        for budget in budgetstore.applicable(
            session, tenant_id, request.labels.project, request.labels.campaign, lock=False
        ):
            if budget.enforcement == "hard":
                left = budgetstore.standing(session, budget, now).remaining(budget.limit_usd)
                budget_left = left if budget_left is None else min(budget_left, left)
    return RouterState(
        devices=platform.fleet_rates,
        default_rates=platform.rates,
        vendors=configured_vendors(settings),
        cooldowns=modelstore.cooldowns(session, now),
        budget_left_usd=budget_left,
        candidates=frozenset(platform.portfolio.candidates - platform.portfolio.fixed.keys()),
        queued_ahead=int(ahead or 0),
        slots=max(1, settings.worker_slots + settings.fleet_slots),
        min_quality=settings.routing_min_quality,
        timeout_s=settings.job_timeout_s,
        now=now,
    )


def work_params(request: VideoRequest, resolved: ResolvedParams, inputs: tuple[Path, ...] = ()) -> GenerationParams:
    """What a backend gets: the request's texts and template with the plan's resolved numbers and the inputs."""
    return GenerationParams(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_frames=resolved.num_frames,
        fps=resolved.fps,
        width=resolved.width,
        height=resolved.height,
        seed=resolved.seed,
        steps=resolved.steps,
        guidance_scale=resolved.guidance_scale,
        template=request.template,
        inputs=inputs,
    )
