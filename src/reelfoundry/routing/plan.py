"""``plan(request, portfolio, state) -> RoutePlan``: the router, called once at admission.

Every approved card is considered (or only the requested one when the request names a model); cards still
awaiting onboarding (``state.candidates``) never are, and naming one is a 422. Each passes the hard filters in
this order, and a loser keeps the first one it failed:

``capability``  the task: a template spec needs the template model, an image-to-video model needs an input
``size``        frames, width, height and fps within the card's limits (the request resolved against it)
``data-class``  the request's data class is one the card may process (vendor APIs never take confidential
                or restricted data: the card schema refuses such a card)
``hosting``     a vendor API needs its key configured on this platform
``unavailable`` a self-hosted model needs a worker of a device class it runs on, with the memory it needs
``cooldown``    the model failed repeatedly and rests until its cooldown ends (not for a named model)
``budget``      the estimate is within ``constraints.max_cost_usd`` and what the tenant's hard budgets have left
``deadline``    queue wait plus run time is within ``constraints.deadline_s``

Among those that pass, ``constraints.objective`` picks: ``cost`` the cheapest, ``quality`` the best,
``latency`` the soonest done, and ``auto`` the cheapest of those meeting the quality floor
(``constraints.min_quality``, else the platform's default), or the best if none does. The others follow as
fallbacks, in the same order, for when the chosen backend fails.

Estimates: run time from the card's ``speed`` on a device class with the memory the job needs (the fastest
for ``latency``, else the cheapest that meets the deadline; else the platform's per-backend guess), cost from
the catalog price of that device (a vendor API: its price per second of video), queue wait as the jobs queued
ahead × this job's run time ÷ the worker slots (an approximation: it assumes the jobs ahead are like this one;
a vendor's job waits too, since a worker slot polls the vendor for it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from reelfoundry.errors import BudgetExceeded, InvalidParameter, PolicyDenied, ReelFoundryError, UnknownModel
from reelfoundry.finops.estimate import estimate_seconds, estimate_usd, vendor_usd
from reelfoundry.finops.meter import Rates
from reelfoundry.portfolio.base import GenerationParams, check_card_limits
from reelfoundry.scheduling.profiles import DEVICE_MEMORY_GIB
from reelfoundry.schema import (
    Candidate,
    ModelCard,
    ResolvedParams,
    RoutePlan,
    VideoRequest,
)
from reelfoundry.schema.model_card import API_DEVICE

#: How many fallbacks a plan keeps.
MAX_FALLBACKS = 3
#: How many losers a plan lists (the rest are counted in ``omitted``).
MAX_LOSERS_KEPT = 24
#: A vendor API card without a stated speed is assumed to take this long.
DEFAULT_API_S = 120.0


@dataclass(frozen=True)
class RouterState:
    """What the router knows of the platform at admission. Plain data, so tests and the simulator make their own."""

    #: Device classes the workers offer, each with its rates; empty = unknown (an API-only node that cannot see
    #: its workers), in which case self-hosted models are not filtered by device.
    devices: Mapping[str, Rates] = field(default_factory=dict)
    #: Rates for pricing when ``devices`` is empty (and for the storage part of vendor jobs).
    default_rates: Rates | None = None
    #: Vendors whose API key is configured.
    vendors: frozenset[str] = frozenset()
    #: Models resting after repeated failures, with when they may be tried again.
    cooldowns: Mapping[str, datetime] = field(default_factory=dict)
    #: The least a hard budget of the tenant has left for this job's labels (None: no hard budget).
    budget_left_usd: Decimal | None = None
    #: Jobs queued ahead of this one (same or higher priority), and the worker slots that serve them.
    queued_ahead: int = 0
    slots: int = 1
    #: The quality floor of ``auto`` when the request gives none.
    min_quality: float = 0.5
    #: Cards registered but not approved (candidates of onboarding): never routed, not even when named.
    candidates: frozenset[str] = frozenset()
    #: The job timeout: no estimate of the device time charged exceeds it (the job is stopped then). Time estimates
    #: are not capped: a job estimated beyond it cannot finish, so it meets no deadline.
    timeout_s: float = 900.0
    now: datetime | None = None


class Unroutable(InvalidParameter):
    """No model passes the hard filters (422 naming the constraint that decided it)."""


@dataclass
class _Verdict:
    card: ModelCard
    params: GenerationParams | None = None
    usd: Decimal | None = None
    seconds: float | None = None
    where: str | None = None
    filtered_by: str | None = None
    detail: str | None = None
    #: The request field to name in a 422 when this was the last candidate standing.
    parameter: str = "model"
    error: ReelFoundryError | None = None

    @property
    def quality(self) -> float:
        return self.card.quality.score if self.card.quality is not None else 0.0

    def fail(self, name: str, detail: str, parameter: str, error: ReelFoundryError | None = None) -> _Verdict:
        self.filtered_by, self.detail, self.parameter, self.error = name, detail, parameter, error
        return self


def resolve_params(card: ModelCard, request: VideoRequest) -> GenerationParams:
    """Fill a request's gaps from the card and check them against the card's limits (InvalidParameter naming
    the field). Input paths are not part of a plan; the engine adds them when it runs the job."""
    fps = request.fps or card.default_fps
    if request.num_frames is not None:
        num_frames = request.num_frames
    elif request.duration_s is not None:
        num_frames = max(1, round(request.duration_s * fps))
    elif request.template is not None:
        num_frames = max(1, round(request.template.duration_s * fps))
    else:
        num_frames = card.default_num_frames
    width = request.width or card.default_width
    height = request.height or card.default_height
    check_card_limits(card, num_frames, width, height)
    if fps > card.max_fps:
        raise InvalidParameter("fps", f"fps must be at most {card.max_fps} for {card.id}, got {fps}")
    if request.seed is None:
        raise InvalidParameter("seed", "seed must be fixed before resolving (admission fills it)")
    return GenerationParams(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_frames=num_frames,
        fps=fps,
        width=width,
        height=height,
        seed=request.seed,
        steps=request.steps or card.default_steps,
        guidance_scale=request.guidance_scale if request.guidance_scale is not None else card.default_guidance_scale,
        template=request.template,
    )


def _capability(card: ModelCard, request: VideoRequest) -> str | None:
    if request.template is not None and card.task != "template":
        return f"a template spec is rendered by a template model; {card.id} is {card.task}"
    if card.task == "image-to-video" and not request.inputs:
        return f"{card.id} is image-to-video: give the first frame as inputs[0]"
    return None


def _estimate(v: _Verdict, request: VideoRequest, state: RouterState, objective: str) -> None:
    """Cost, time and where, on the best device class for the objective among those with the memory: the soonest
    done for ``latency``, else the cheapest meeting the deadline."""
    card, params = v.card, v.params
    assert params is not None
    # A vendor's job also waits for a worker slot: the worker polls the vendor until the video is ready.
    wait_jobs = state.queued_ahead / max(1, state.slots)
    if card.vendor is not None:
        speed = card.speed.get(API_DEVICE)
        run = (
            speed.seconds(params.num_frames, params.width, params.height, params.steps or 1) if speed else DEFAULT_API_S
        )
        v.seconds = run * (1 + wait_jobs)
        rates = state.default_rates or next(iter(state.devices.values()), None)
        v.usd = estimate_usd(card, params, rates, timeout_s=state.timeout_s) if rates else vendor_usd(card, params)
        v.where = f"{card.vendor} API ({card.hosting.region})"  # type: ignore[union-attr]
        return
    need = card.resources.memory_gib(1, params.num_frames, params.width, params.height)
    options: list[tuple[Decimal, float, str]] = []
    devices = state.devices or ({"": state.default_rates} if state.default_rates else {})
    for device, rates in devices.items():
        if device and (device not in card.resources.devices or need > DEVICE_MEMORY_GIB.get(device, float("inf"))):
            continue
        run = estimate_seconds(card, params, device or None)
        usd = estimate_usd(card, params, rates, timeout_s=state.timeout_s, device=device or None)
        options.append((usd, run * (1 + wait_jobs), device))
    if not options:
        v.usd, v.seconds, v.where = Decimal(0), estimate_seconds(card, params) * (1 + wait_jobs), None
        return
    deadline = request.constraints.deadline_s
    meeting = [o for o in options if deadline is None or o[1] <= deadline]
    if objective == "latency" or not meeting:
        usd, seconds, device = min(options, key=lambda o: (o[1], o[0]))
    else:
        usd, seconds, device = min(meeting, key=lambda o: (o[0], o[1]))
    v.usd, v.seconds, v.where = usd, seconds, device or None


def _judge(card: ModelCard, request: VideoRequest, state: RouterState, objective: str) -> _Verdict:
    v = _Verdict(card)
    reason = _capability(card, request)
    if reason is not None:
        return v.fail("capability", reason, "template" if request.template is not None else "inputs")
    try:
        v.params = resolve_params(card, request)
    except InvalidParameter as exc:
        return v.fail("size", exc.detail, exc.parameter or "model", exc)
    data_class = request.constraints.data_class
    if data_class not in card.data_classes:
        where = "a vendor API" if card.vendor else "this model"
        detail = f"{data_class.value} requests may not run on {card.id} ({where} takes {_classes(card)})"
        return v.fail("data-class", detail, "constraints.data_class", PolicyDenied("data-class", detail))
    if card.vendor is not None and card.vendor not in state.vendors:
        return v.fail("hosting", f"{card.id} runs on the {card.vendor} API, whose key is not configured", "model")
    if card.vendor is None and state.devices:
        runnable = [d for d in state.devices if d in card.resources.devices]
        if not runnable:
            detail = f"{card.id} runs on {card.resources.devices}; the workers offer {sorted(state.devices)}"
            return v.fail("unavailable", detail, "model")
        need = card.resources.memory_gib(1, v.params.num_frames, v.params.width, v.params.height)
        if not any(need <= DEVICE_MEMORY_GIB.get(d, float("inf")) for d in runnable):
            return v.fail("unavailable", f"{card.id} needs {need:.1f} GiB; no worker device has it", "model")
    until = state.cooldowns.get(card.id)
    if objective != "explicit" and until is not None and (state.now is None or until > state.now):
        return v.fail("cooldown", f"{card.id} failed repeatedly and rests until {until.isoformat()}", "model")
    _estimate(v, request, state, objective)
    assert v.usd is not None and v.seconds is not None
    ceiling = request.constraints.max_cost_usd
    if ceiling is not None and v.usd > ceiling:
        detail = f"{card.id} is estimated at ${format(v.usd, 'f')}, over constraints.max_cost_usd ${ceiling}"
        return v.fail("budget", detail, "constraints.max_cost_usd")
    if state.budget_left_usd is not None and v.usd > state.budget_left_usd:
        detail = (
            f"{card.id} is estimated at ${format(v.usd, 'f')}; the tenant's budget has ${state.budget_left_usd} left"
        )
        return v.fail("budget", detail, "budget")
    deadline = request.constraints.deadline_s
    if deadline is not None and v.seconds > deadline:
        detail = (
            f"{card.id} would take about {v.seconds:.0f} s (queue and run), over constraints.deadline_s {deadline:g} s"
        )
        return v.fail("deadline", detail, "constraints.deadline_s")
    return v


def _classes(card: ModelCard) -> str:
    return ", ".join(c.value for c in card.data_classes) or "none"


def _rank(objective: str, floor: float, strict: bool) -> tuple[str, Callable[[_Verdict], tuple[Any, ...]]]:
    """A sort key for the objective, and the sentence that explains the first place. ``strict``: the request set
    ``min_quality`` itself, so ``cost`` and ``latency`` too prefer the models meeting it."""
    if objective == "quality":
        return "the best quality", lambda v: (-v.quality, v.usd, v.seconds, v.card.id)
    below = (lambda v: v.quality < floor) if strict else (lambda v: False)
    meeting = f" meeting quality {floor:g}" if strict else ""
    if objective == "latency":
        return f"the soonest finished{meeting}", lambda v: (below(v), v.seconds, v.usd, -v.quality, v.card.id)
    if objective == "cost":
        return f"the cheapest{meeting}", lambda v: (below(v), v.usd, -v.quality, v.seconds, v.card.id)
    return (
        f"the cheapest meeting quality {floor:g}",
        lambda v: (v.quality < floor, v.usd if v.quality >= floor else -v.quality, v.seconds, v.card.id),
    )


def plan(request: VideoRequest, portfolio: Mapping[str, ModelCard], state: RouterState) -> RoutePlan:
    """Route a request (its seed already fixed); Unroutable, PolicyDenied or BudgetExceeded when no model passes."""
    explicit = request.model != "auto"
    if explicit:
        if request.model not in portfolio:
            raise UnknownModel(request.model, sorted(portfolio))
        if request.model in state.candidates:
            raise Unroutable(
                "model",
                f"model {request.model!r} is a candidate: it is routable once onboarding passes and it is approved "
                "(`reelfoundry models onboard`)",
            )
        cards = [portfolio[request.model]]
    else:
        cards = [portfolio[k] for k in sorted(portfolio) if k not in state.candidates]
        if not cards:
            raise Unroutable("model", "no approved model: every card is a candidate awaiting onboarding")
    objective = "explicit" if explicit else request.constraints.objective.value
    verdicts = [_judge(card, request, state, objective) for card in cards]
    passed = [v for v in verdicts if v.filtered_by is None]
    if not passed:
        raise _no_route(request, verdicts)
    strict = request.constraints.min_quality is not None
    floor = request.constraints.min_quality if request.constraints.min_quality is not None else state.min_quality
    phrase, key = _rank(objective, floor, strict)
    ordered = sorted(passed, key=key)
    best = ordered[0]
    if explicit:
        reason = f"the request names {best.card.id}"
    elif (objective == "auto" or (strict and objective != "quality")) and best.quality < floor:
        reason = f"no model passing the filters meets quality {floor:g}; {best.card.id} is the best of {len(passed)}"
    else:
        reason = (
            f"{best.card.id} is {phrase} of {len(passed)} model{'s' if len(passed) > 1 else ''} passing the filters"
        )
    assert best.usd is not None and best.seconds is not None
    # Every model that passed, and the first losers: a plan stays small however large the portfolio.
    losers = [v for v in verdicts if v.filtered_by is not None]
    kept = passed + losers[:MAX_LOSERS_KEPT]
    reason += f" (about ${format(best.usd, 'f')}, {best.seconds:.0f} s, quality {best.quality:g})"
    return RoutePlan(
        objective=objective,
        chosen=best.card.id,
        reason=reason,
        fallbacks=[v.card.id for v in ordered[1 : 1 + MAX_FALLBACKS]],
        candidates=[_candidate(v) for v in kept],
        omitted=len(verdicts) - len(kept),
    )


def resolved(p: GenerationParams) -> ResolvedParams:
    """The numbers of resolved parameters, as a plan stores them."""
    return ResolvedParams(
        num_frames=p.num_frames,
        fps=p.fps,
        width=p.width,
        height=p.height,
        seed=p.seed,
        steps=p.steps,
        guidance_scale=p.guidance_scale,
    )


def _candidate(v: _Verdict) -> Candidate:
    params = resolved(v.params) if v.params is not None and v.filtered_by is None else None
    return Candidate(
        model=v.card.id,
        estimated_usd=v.usd,
        estimated_s=round(v.seconds, 3) if v.seconds is not None else None,
        quality=v.quality,
        where=v.where,
        filtered_by=v.filtered_by,
        detail=v.detail,
        params=params,
    )


#: Which loser explains a refusal best: the one that got furthest through the filters.
_ORDER = ("capability", "size", "data-class", "hosting", "unavailable", "cooldown", "budget", "deadline")


def _no_route(request: VideoRequest, verdicts: list[_Verdict]) -> ReelFoundryError:
    furthest = max(verdicts, key=lambda v: _ORDER.index(v.filtered_by or "capability"))
    if furthest.error is not None and len(verdicts) == 1:
        return furthest.error  # a named model: its own error, as before routing existed
    if furthest.filtered_by == "data-class":
        return PolicyDenied(
            "data-class", f"no model may take {request.constraints.data_class.value} data: {furthest.detail}"
        )
    if furthest.parameter == "budget":
        cheapest = min(v.usd for v in verdicts if v.parameter == "budget" and v.usd is not None)
        return BudgetExceeded(
            f"no model fits the tenant's budget: {furthest.detail}", estimate_usd=format(cheapest, "f")
        )
    summary = "; ".join(f"{v.card.id}: {v.filtered_by} ({v.detail})" for v in verdicts[:8])
    return Unroutable(furthest.parameter, f"no model can run this request: {summary}")
