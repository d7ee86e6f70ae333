"""The router, pure: hard filters, objectives, the reason, fallbacks; and (hypothesis) that no choice ever breaks a
hard filter and no confidential or restricted request ever reaches a vendor API."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reelfoundry.config import Settings
from reelfoundry.errors import BudgetExceeded, InvalidParameter, PolicyDenied, UnknownModel
from reelfoundry.finops.catalog import load_catalog
from reelfoundry.finops.rates import worker_rates
from reelfoundry.models.builtin import builtin_card
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD
from reelfoundry.routing import RouterState, Unroutable, plan
from reelfoundry.schema import ModelCard, TemplateSpec, VideoRequest
from reelfoundry.schema.model_card import SELF_HOSTED_ONLY

WELCOME = TemplateSpec.model_validate_json((Path(__file__).parents[3] / "examples" / "welcome.json").read_text())
CATALOG = load_catalog()
CPU = worker_rates(Settings(worker_device="cpu"), CATALOG)
H100 = worker_rates(Settings(worker_device="H100", worker_provider="aws", worker_device_share="1"), CATALOG)
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def card(model_id: str, quality: float, s_per_step_mpf: float, **extra: Any) -> ModelCard:
    body: dict[str, Any] = {
        "id": model_id,
        "name": model_id,
        "backend": "diffusers",
        "options": {"path": "/nonexistent"},
        "default_num_frames": 16,
        "default_fps": 8,
        "default_width": 64,
        "default_height": 64,
        "max_num_frames": 64,
        "max_width": 256,
        "max_height": 256,
        "default_steps": 10,
        "speed": {
            "cpu": {"s_per_step_mpf": s_per_step_mpf, "overhead_s": 1.0},
            "H100": {"s_per_step_mpf": s_per_step_mpf / 50, "overhead_s": 1.0},
        },
        "quality": {"score": quality, "source": "test"},
    }
    body.update(extra)
    return ModelCard.model_validate(body)


CHEAP = card("cheap", 0.3, 5.0)
GOOD = card("good", 0.9, 100.0)
MID = card("mid", 0.6, 20.0)
GPU_ONLY = card("gpu-only", 0.95, 50.0, resources={"devices": ["H100"], "weights_gib": 10})
VENDOR = card(
    "vendor",
    0.85,
    0.0,
    backend="replicate",
    options={"model": "acme/video"},
    hosting={"vendor": "replicate", "region": "us"},
    price_usd_per_video_second="0.05",
    speed={"api": {"s_per_step_mpf": 0.0, "overhead_s": 1.0}},
)
PORTFOLIO = {c.id: c for c in (CHEAP, GOOD, MID, GPU_ONLY, VENDOR, TEMPLATE_CARD)}
STATE = RouterState(devices={"cpu": CPU}, default_rates=CPU, vendors=frozenset({"replicate"}), min_quality=0.5, now=NOW)


def req(**body: Any) -> VideoRequest:
    return VideoRequest.model_validate({"prompt": "a red circle moving left", "seed": 7, **body})


def filtered(route: Any) -> dict[str, str | None]:
    return {c.model: c.filtered_by for c in route.candidates}


def test_each_objective_picks_by_its_own_measure_and_says_why() -> None:
    by = {o: plan(req(constraints={"objective": o}), PORTFOLIO, STATE) for o in ("cost", "quality", "latency", "auto")}
    assert by["cost"].chosen == "cheap"
    assert by["quality"].chosen == "good"  # gpu-only is better but no H100 worker exists
    assert by["latency"].chosen == "vendor"  # 1 s at the API against seconds to minutes on the CPU
    # auto: the cheapest of those meeting quality 0.5 (mid and vendor and good meet it; mid is cheapest)
    costs = {c.model: c.estimated_usd for c in by["auto"].candidates if c.filtered_by is None}
    meeting = {m: usd for m, usd in costs.items() if PORTFOLIO[m].quality and PORTFOLIO[m].quality.score >= 0.5}
    assert by["auto"].chosen == min(meeting, key=lambda m: meeting[m])
    assert "cheapest" in by["cost"].reason and "cheap" in by["cost"].reason
    assert "quality" in by["quality"].reason and "soonest" in by["latency"].reason
    # fallbacks follow the same order, never the chosen one
    assert by["cost"].fallbacks[0] not in ("cheap",) and len(by["cost"].fallbacks) == 3
    assert filtered(by["cost"])["gpu-only"] == "unavailable"


def test_auto_takes_the_best_when_none_meets_the_quality_floor() -> None:
    route = plan(req(constraints={"min_quality": 0.99}), PORTFOLIO, STATE)
    assert route.chosen == "good" and "no model passing the filters meets quality 0.99" in route.reason


def test_a_gpu_worker_makes_the_gpu_model_routable() -> None:
    state = RouterState(devices={"cpu": CPU, "H100": H100}, default_rates=CPU, now=NOW)
    route = plan(req(constraints={"objective": "quality"}), PORTFOLIO, state)
    assert route.chosen == "gpu-only" and route.candidate("gpu-only").where == "H100"


def test_every_hard_filter_names_itself_on_its_losers() -> None:
    state = RouterState(
        devices={"cpu": CPU},
        default_rates=CPU,
        vendors=frozenset(),
        cooldowns={"mid": NOW + timedelta(minutes=1)},
        now=NOW,
    )
    route = plan(req(width=128, height=128, constraints={"data_class": "internal"}), PORTFOLIO, state)
    f = filtered(route)
    assert f["vendor"] == "hosting" and f["gpu-only"] == "unavailable" and f["mid"] == "cooldown"
    assert f["template"] is None and route.candidate("template").params is not None
    f = filtered(plan(req(template=WELCOME.model_dump(mode="json")), PORTFOLIO, STATE))
    assert f["template"] is None and {f[m] for m in ("cheap", "good", "vendor")} == {"capability"}
    f = filtered(plan(req(width=512, height=512), PORTFOLIO, STATE))
    assert f["cheap"] == "size" and f["template"] is None
    f = filtered(plan(req(constraints={"data_class": "confidential"}), PORTFOLIO, STATE))
    assert f["vendor"] == "data-class"
    route = plan(req(constraints={"max_cost_usd": "0.001"}), PORTFOLIO, STATE)
    assert filtered(route)["good"] == "budget"
    assert all(Decimal(c.estimated_usd) <= Decimal("0.001") for c in route.candidates if c.filtered_by is None)
    route = plan(req(constraints={"deadline_s": 30}), PORTFOLIO, STATE)
    assert filtered(route)["good"] == "deadline" and route.candidate(route.chosen).estimated_s <= 30


def test_a_cooldown_ends_and_the_model_is_routable_again() -> None:
    cooling = RouterState(
        devices={"cpu": CPU}, default_rates=CPU, cooldowns={"cheap": NOW + timedelta(seconds=60)}, now=NOW
    )
    assert plan(req(constraints={"objective": "cost"}), PORTFOLIO, cooling).chosen != "cheap"
    later = RouterState(
        devices={"cpu": CPU},
        default_rates=CPU,
        cooldowns={"cheap": NOW + timedelta(seconds=60)},
        now=NOW + timedelta(seconds=61),
    )
    assert plan(req(constraints={"objective": "cost"}), PORTFOLIO, later).chosen == "cheap"


def test_refusals_name_what_decided_them() -> None:
    with pytest.raises(InvalidParameter) as err:
        plan(req(constraints={"deadline_s": 0.5}), PORTFOLIO, STATE)
    assert err.value.parameter == "constraints.deadline_s" and isinstance(err.value, Unroutable)
    with pytest.raises(InvalidParameter) as err:
        plan(req(constraints={"max_cost_usd": "0"}), PORTFOLIO, STATE)
    assert err.value.parameter == "constraints.max_cost_usd"
    with pytest.raises(BudgetExceeded) as budget:
        plan(req(), PORTFOLIO, RouterState(devices={"cpu": CPU}, default_rates=CPU, budget_left_usd=Decimal(0)))
    assert Decimal(budget.value.extra["estimate_usd"]) > 0
    with pytest.raises(PolicyDenied):
        plan(req(model="vendor", constraints={"data_class": "restricted"}), PORTFOLIO, STATE)
    with pytest.raises(UnknownModel):
        plan(req(model="nope"), PORTFOLIO, STATE)
    with pytest.raises(InvalidParameter) as err:  # a named model's own error, as before routing
        plan(req(model="cheap", template=WELCOME.model_dump(mode="json")), PORTFOLIO, STATE)
    assert err.value.parameter == "template"


def test_a_named_model_is_the_only_candidate_and_has_no_fallbacks() -> None:
    route = plan(req(model="good"), PORTFOLIO, STATE)
    assert route.objective == "explicit" and route.chosen == "good" and route.fallbacks == []
    assert [c.model for c in route.candidates] == ["good"] and route.reason.startswith("the request names good")
    p = route.candidate("good").params
    assert p is not None and (p.num_frames, p.width, p.height, p.steps, p.seed) == (16, 64, 64, 10, 7)


def test_the_shipped_portfolio_routes_a_plain_prompt_to_the_builtin_model_on_a_cpu() -> None:
    builtin = builtin_card()
    assert builtin is not None and builtin.quality is not None and builtin.quality.source.startswith("reelfoundry eval")
    from reelfoundry.portfolio.config import shipped_cards

    cards = {c.id: c for c in [TEMPLATE_CARD, builtin, *shipped_cards()]}
    route = plan(req(), cards, STATE)
    assert route.chosen == "builtin"
    assert {filtered(route)[m] for m in ("ltx-video", "wan-1.3b", "hunyuan-video")} == {"unavailable"}


# -- properties -----------------------------------------------------------------------------------------------

requests = st.builds(
    lambda frames, side, dc, objective, deadline, cost, quality, tmpl: req(
        num_frames=frames,
        width=side,
        height=side,
        constraints={
            "data_class": dc,
            "objective": objective,
            "deadline_s": deadline,
            "max_cost_usd": cost,
            "min_quality": quality,
        },
        **({"template": WELCOME.model_dump(mode="json")} if tmpl else {}),
    ),
    st.integers(1, 80),
    st.sampled_from([16, 32, 64, 128, 256, 512]),
    st.sampled_from(["public", "internal", "confidential", "restricted"]),
    st.sampled_from(["auto", "cost", "quality", "latency"]),
    st.none() | st.floats(1, 5000),
    st.none() | st.decimals(min_value=0, max_value=1, places=4),
    st.none() | st.floats(0, 1),
    st.booleans(),
)
states = st.builds(
    lambda devices, vendors, cooling, budget, ahead: RouterState(
        devices={d: {"cpu": CPU, "H100": H100}[d] for d in devices},
        default_rates=CPU,
        vendors=frozenset(vendors),
        cooldowns={m: NOW + timedelta(seconds=60) for m in cooling},
        budget_left_usd=budget,
        queued_ahead=ahead,
        now=NOW,
    ),
    st.sets(st.sampled_from(["cpu", "H100"])),
    st.sets(st.sampled_from(["replicate", "fal"])),
    st.sets(st.sampled_from(sorted(PORTFOLIO))),
    st.none() | st.decimals(min_value=0, max_value=1, places=4),
    st.integers(0, 50),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests, state=states)
def test_the_choice_satisfies_every_hard_filter(request: VideoRequest, state: RouterState) -> None:
    try:
        route = plan(request, PORTFOLIO, state)
    except (InvalidParameter, PolicyDenied, BudgetExceeded):
        return  # refused, naming why: nothing reaches any backend
    for model in (route.chosen, *route.fallbacks):
        chosen = PORTFOLIO[model]
        c = route.candidate(model)
        assert c.filtered_by is None and c.params is not None
        # capability and size
        assert (request.template is None) or chosen.task == "template"
        assert c.params.num_frames <= chosen.max_num_frames and c.params.width <= chosen.max_width
        assert c.params.height <= chosen.max_height and c.params.fps <= chosen.max_fps
        # data class and hosting: never a vendor for confidential or restricted data, never an unconfigured vendor
        data_class = request.constraints.data_class
        assert data_class in chosen.data_classes
        assert not (chosen.vendor is not None and data_class in SELF_HOSTED_ONLY)
        assert chosen.vendor is None or chosen.vendor in state.vendors
        # a device it can run on, no cooldown, budget and deadline
        assert chosen.vendor is not None or not state.devices or set(state.devices) & set(chosen.resources.devices)
        assert model not in state.cooldowns
        assert c.estimated_usd is not None and c.estimated_s is not None
        if request.constraints.max_cost_usd is not None:
            assert Decimal(c.estimated_usd) <= request.constraints.max_cost_usd
        if state.budget_left_usd is not None:
            assert Decimal(c.estimated_usd) <= state.budget_left_usd
        if request.constraints.deadline_s is not None:
            assert c.estimated_s <= request.constraints.deadline_s + 1e-3


@settings(max_examples=200, deadline=None)
@given(request=requests, state=states)
def test_no_confidential_or_restricted_request_is_ever_routed_to_a_vendor(
    request: VideoRequest, state: RouterState
) -> None:
    body = request.model_dump(mode="json")
    for data_class in SELF_HOSTED_ONLY:
        body["constraints"]["data_class"] = data_class.value
        for model in ("auto", "vendor"):
            _check_self_hosted(VideoRequest.model_validate({**body, "model": model}), state)


def _check_self_hosted(secret: VideoRequest, state: RouterState) -> None:
    try:
        route = plan(secret, PORTFOLIO, state)
    except (InvalidParameter, PolicyDenied, BudgetExceeded):
        return
    assert all(PORTFOLIO[m].vendor is None for m in (route.chosen, *route.fallbacks))


def test_the_estimate_is_for_a_device_with_the_memory_and_the_objectives_device() -> None:
    l40s = worker_rates(Settings(worker_device="L40S", worker_provider="aws", worker_device_share="1"), CATALOG)
    speed = {"s_per_step_mpf": 0.01, "overhead_s": 1.0}
    resources = {"devices": ["L40S", "H100"], "weights_gib": 40, "activation_gib_per_mpf": 2}
    big = card("big", 0.9, 1.0, resources=resources, speed={"L40S": speed, "H100": speed})
    state = RouterState(devices={"L40S": l40s, "H100": H100}, default_rates=l40s, now=NOW)
    # 16 frames of 256×256 need 40 + 2 × 1.05 = 42.1 GiB: the L40S (48 GiB) holds it and costs less
    small = plan(req(model="big", num_frames=16, width=256, height=256), {"big": big}, state)
    assert small.candidate("big").where == "L40S"
    # 64 frames need 40 + 2 × 4.19 = 48.4 GiB: only the H100 holds it, though the L40S is cheaper
    large = plan(req(model="big", num_frames=64, width=256, height=256), {"big": big}, state)
    assert large.candidate("big").where == "H100"
    # latency: the fastest device, though another is cheaper
    fast = card("fast", 0.9, 1.0, speed={"cpu": {"s_per_step_mpf": 5.0}, "H100": {"s_per_step_mpf": 0.1}})
    two = RouterState(devices={"cpu": CPU, "H100": H100}, default_rates=CPU, now=NOW)
    assert plan(req(constraints={"objective": "cost"}), {"fast": fast}, two).candidate("fast").where == "cpu"
    assert plan(req(constraints={"objective": "latency"}), {"fast": fast}, two).candidate("fast").where == "H100"


def test_a_vendor_job_waits_in_the_queue_like_any_other() -> None:
    idle = plan(req(model="vendor"), PORTFOLIO, STATE).candidate("vendor").estimated_s
    busy = RouterState(
        devices={"cpu": CPU}, default_rates=CPU, vendors=frozenset({"replicate"}), queued_ahead=4, slots=2, now=NOW
    )
    assert idle is not None and plan(req(model="vendor"), PORTFOLIO, busy).candidate("vendor").estimated_s == idle * 3


def test_a_job_estimated_beyond_the_job_timeout_meets_no_deadline_it_is_within() -> None:
    # 64 frames of 256×256 (4.2 Mpf) × 10 steps at 50 s per step per Mpf: about 2100 s, past the 900 s timeout
    slow = card("slow", 0.9, 50.0)
    state = RouterState(devices={"cpu": CPU}, default_rates=CPU, timeout_s=900, now=NOW)
    size = {"num_frames": 64, "width": 256, "height": 256}
    estimated = plan(req(model="slow", **size), {"slow": slow}, state).candidate("slow").estimated_s
    assert estimated is not None and estimated > 2000
    with pytest.raises(Unroutable) as err:
        plan(req(model="slow", **size, constraints={"deadline_s": 1000}), {"slow": slow}, state)
    assert err.value.parameter == "constraints.deadline_s"


def test_a_min_quality_the_request_sets_holds_for_cost_and_latency_too() -> None:
    plain = plan(req(constraints={"objective": "cost"}), PORTFOLIO, STATE)
    assert plain.chosen == "cheap"  # quality 0.3: no floor unless the request sets one
    floored = plan(req(constraints={"objective": "cost", "min_quality": 0.5}), PORTFOLIO, STATE)
    assert PORTFOLIO[floored.chosen].quality.score >= 0.5  # type: ignore[union-attr]
    assert "cheapest meeting quality 0.5" in floored.reason
    fast = plan(req(constraints={"objective": "latency", "min_quality": 0.99}), PORTFOLIO, STATE)
    assert "no model passing the filters meets quality 0.99" in fast.reason


def test_a_clip_shorter_than_a_model_makes_is_a_size_loss() -> None:
    long_only = card("long-only", 0.99, 1.0, min_num_frames=32, default_num_frames=32)
    route = plan(req(num_frames=16), {**PORTFOLIO, "long-only": long_only}, STATE)
    assert filtered(route)["long-only"] == "size" and "between 32 and 64" in route.candidate("long-only").detail


def test_a_large_portfolio_keeps_the_plan_small() -> None:
    many = {f"big-{i:04d}": card(f"big-{i:04d}", 0.5, 1.0, max_width=32, default_width=32) for i in range(300)}
    route = plan(req(width=64), {**PORTFOLIO, **many}, STATE)
    passed = [c for c in route.candidates if c.filtered_by is None]
    assert len(route.candidates) - len(passed) == 24 and len(route.candidates) + route.omitted == 300 + len(PORTFOLIO)
    assert route.chosen in {c.model for c in passed} and set(route.fallbacks) <= {c.model for c in passed}


def test_candidates_awaiting_onboarding_are_never_routed() -> None:
    state = replace(STATE, candidates=frozenset({"cheap"}))
    route = plan(req(constraints={"objective": "cost"}), PORTFOLIO, state)
    assert route.chosen != "cheap" and "cheap" not in {c.model for c in route.candidates}
    assert plan(req(constraints={"objective": "cost"}), PORTFOLIO, STATE).chosen == "cheap"  # once approved
    with pytest.raises(Unroutable) as named:
        plan(req(model="cheap"), PORTFOLIO, state)
    assert named.value.parameter == "model" and "candidate" in named.value.detail
    with pytest.raises(Unroutable, match="no approved model"):
        plan(req(), {"cheap": CHEAP}, state)
