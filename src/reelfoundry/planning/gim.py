"""The Generative Infrastructure Matrix (GIM): deployment options scored on the blueprint's five drivers.

The blueprint asks a CTO to map requirements onto five drivers — Volume, Latency, Security, Cost and
Fine-tuning control — and to pick the deployment that serves the business objective. Here every driver turns
one or two facts of the :class:`~reelfoundry.planning.scenario.Scenario` into a *need* between 0 and 1, and
each option has a *capability* on that driver; the driver's score (0–10) is how far the capability covers
the need::

    score = 10 − need × (10 − capability)

so a driver the scenario does not care about (need 0) scores 10 for everyone and cannot decide the ranking,
and a hard need (1) scores exactly the capability. Cost is the exception: it is measured, not rated — each
option's total cost of ownership over the horizon from :mod:`reelfoundry.planning.tco` (catalog prices, or
the platform's own cost records with ``--from-usage``), scored ``10 × cheapest ÷ this option``.

The total is the weighted mean of the five scores with the scenario's ``weights``. Every driver of every
option reports the facts it read, the formula and the numbers, so a reader can redo the sum by hand, and
changing one fact moves only the drivers that name it.

The capabilities are this module's stated judgement (``CAPABILITY``, with the reason for each), the same for
every scenario; "management complexity" — the blueprint's reason the bank's on-premise option failed — enters
as the ``ops`` factor: GPU capacity an organisation cannot operate is capacity it does not have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reelfoundry.planning.scenario import FineTuning, GpuOps, Scenario

if TYPE_CHECKING:
    from reelfoundry.planning.tco import Measured

OPTIONS = ("on_premise", "public_cloud_api", "specialised_cloud_vpc", "hybrid")
DRIVERS = ("volume", "latency", "security", "cost", "fine_tuning")

LABELS = {
    "on_premise": "On-premise GPU cluster",
    "public_cloud_api": "Public cloud video API",
    "specialised_cloud_vpc": "Specialised GPU cloud in a private VPC",
    "hybrid": "Hybrid: private base capacity + cloud burst",
}

#: How much of an option's rated volume and latency capability an organisation realises with its GPU skills.
#: On-premise depends on them fully (racking, drivers, schedulers, failures are yours); a specialised cloud's
#: managed Kubernetes and support carry part of it; a video API needs none. Hybrid runs its private base on
#: on-premise GPUs only when there are skills to run them, else on reserved cloud GPUs (see tco.py).
OPS_FACTOR: dict[str, dict[GpuOps, float]] = {
    "on_premise": {GpuOps.none: 0.4, GpuOps.some: 0.75, GpuOps.strong: 1.0},
    "specialised_cloud_vpc": {GpuOps.none: 0.85, GpuOps.some: 0.95, GpuOps.strong: 1.0},
    "hybrid": {GpuOps.none: 0.85, GpuOps.some: 0.9, GpuOps.strong: 1.0},
    "public_cloud_api": {GpuOps.none: 1.0, GpuOps.some: 1.0, GpuOps.strong: 1.0},
}

#: Rated capability (0–10) of each option on the rated drivers, and why.
CAPABILITY: dict[str, dict[str, tuple[float, str]]] = {
    "latency": {
        "on_premise": (9.5, "dedicated GPUs next to the data, warm models, no internet hop"),
        "specialised_cloud_vpc": (8.5, "dedicated reserved GPUs kept warm; one private network hop"),
        "hybrid": (8.5, "a warm private base; bursts may wait for cloud capacity"),
        "public_cloud_api": (3.0, "shared vendor queues, per-account rate limits, minutes per clip, no control"),
    },
    "security": {
        "on_premise": (10.0, "data and weights never leave your premises"),
        "hybrid": (9.0, "sensitive work stays on the private base; only bursts cross into a private cloud"),
        "specialised_cloud_vpc": (8.5, "single-tenant VPC, private networking, provider under contract"),
        "public_cloud_api": (2.0, "prompts and inputs go to a multi-tenant vendor API with its own retention"),
    },
    "fine_tuning": {
        "on_premise": (10.0, "your weights, any method (LoRA, full fine-tunes), any schedule"),
        "specialised_cloud_vpc": (9.0, "your weights and training jobs on rented GPUs"),
        "hybrid": (9.0, "your weights; training bursts on rented GPUs"),
        "public_cloud_api": (1.0, "vendor models only: style references at most, no weights of your own"),
    },
}

#: Volume capability as a function of the volume level x (0 = 100 video-minutes a month, 1 = a million):
#: (intercept, slope). An API is easiest at low volume and gets dear and rate-limited at scale; owned GPUs
#: sit idle at low volume and pay off at high volume; rented GPUs scale elastically either way.
VOLUME_LINE: dict[str, tuple[float, float, str]] = {
    "public_cloud_api": (10.0, -6.0, "no fleet to run at low volume; linear per-second prices and quotas at scale"),
    "on_premise": (2.0, 8.0, "owned GPUs idle at low volume and pay off when kept busy at high volume"),
    "specialised_cloud_vpc": (6.0, 3.0, "elastic rented capacity, reserved for the base load"),
    "hybrid": (5.0, 3.5, "an owned or reserved base sized for the steady load, cloud for the rest"),
}

#: Latency need: a target of LATENCY_STRICT_S or less is a hard need (1), LATENCY_LAX_S or more none (0),
#: log-linear between (people wait for a video for seconds to minutes; batch work for hours).
LATENCY_STRICT_S = 10.0
LATENCY_LAX_S = 3600.0
#: Volume level: log10 of peak video-minutes a month, 100 → 0 and 1,000,000 → 1.
VOLUME_MIN_MINUTES = 100.0
VOLUME_MAX_MINUTES = 1_000_000.0
FINE_TUNING_NEED = {FineTuning.none: 0.0, FineTuning.light: 0.5, FineTuning.heavy: 1.0}


@dataclass(frozen=True)
class CostFact:
    """One deployment option's cost over the horizon, and where the figure comes from."""

    total_usd: float
    source: str
    option_id: str = ""


@dataclass
class DriverScore:
    """One driver of one option: the score and everything that produced it."""

    score: float
    weight: float
    formula: str
    facts: dict[str, Any]
    why: str

    @property
    def weighted(self) -> float:
        return self.score * self.weight

    def to_json(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 2),
            "weight": round(self.weight, 4),
            "weighted": round(self.weighted, 3),
            "formula": self.formula,
            "facts": self.facts,
            "why": self.why,
        }


@dataclass
class OptionScore:
    """One deployment option's weighted score and its five drivers."""

    option: str
    drivers: dict[str, DriverScore]
    notes: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(d.weighted for d in self.drivers.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "option": self.option,
            "label": LABELS[self.option],
            "score": round(self.score, 2),
            "drivers": {name: d.to_json() for name, d in self.drivers.items()},
            "notes": self.notes,
        }


@dataclass
class GimResult:
    """The ranking, best first, with the scenario's derived needs."""

    scenario: str
    needs: dict[str, Any]
    weights: dict[str, float]
    ranking: list[OptionScore]

    @property
    def top(self) -> OptionScore:
        return self.ranking[0]

    def reasons(self) -> list[str]:
        """Why the top option wins: the drivers where it gains most weighted score over the runner-up."""
        top, second = self.ranking[0], self.ranking[1]
        gains = sorted(
            ((top.drivers[d].weighted - second.drivers[d].weighted, d) for d in DRIVERS), key=lambda g: -g[0]
        )
        out = []
        for gain, driver in gains:
            if gain <= 0.005:
                break
            d = top.drivers[driver]
            out.append(
                f"{driver}: {d.score:.1f} vs {second.drivers[driver].score:.1f} for {second.option} "
                f"(+{gain:.2f} weighted) — {d.why}"
            )
        for option in self.ranking[1:]:
            weak = min(DRIVERS, key=lambda name: option.drivers[name].score)
            d = option.drivers[weak]
            if d.score < 5:
                out.append(f"{option.option} falls short on {weak} ({d.score:.1f}/10): {d.why}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "method": "score = 10 − need × (10 − capability) per rated driver; cost = 10 × cheapest ÷ option; "
            "total = Σ weight × score with weights normalised to 1",
            "needs": self.needs,
            "weights": {k: round(v, 4) for k, v in self.weights.items()},
            "ranking": [o.to_json() for o in self.ranking],
            "recommendation": {"option": self.top.option, "label": LABELS[self.top.option], "why": self.reasons()},
        }


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def needs(scenario: Scenario) -> dict[str, Any]:
    """The scenario's facts as needs between 0 and 1 (and the facts they come from)."""
    peak_videos = scenario.volume_in_month(scenario.months - 1)
    peak_minutes = peak_videos * scenario.seconds_per_video / 60.0
    span = math.log10(VOLUME_MAX_MINUTES / VOLUME_MIN_MINUTES)
    volume_level = _clamp(math.log10(max(peak_minutes, 1e-9) / VOLUME_MIN_MINUTES) / span)
    latency_span = math.log10(LATENCY_LAX_S / LATENCY_STRICT_S)
    latency_need = _clamp(math.log10(LATENCY_LAX_S / scenario.latency_target_s) / latency_span)
    return {
        "volume_source": "scenario",
        "peak_videos_per_month": round(peak_videos, 1),
        "peak_video_minutes_per_month": round(peak_minutes, 1),
        "volume_level": round(volume_level, 4),
        "latency_target_s": scenario.latency_target_s,
        "latency_need": round(latency_need, 4),
        "data_classes": [c.value for c in scenario.data_classes],
        "sensitivity": scenario.sensitivity.value,
        "security_need": round(scenario.sensitivity.rank / 3, 4),
        "fine_tuning": scenario.fine_tuning.value,
        "fine_tuning_need": FINE_TUNING_NEED[scenario.fine_tuning],
        "gpu_ops_experience": scenario.gpu_ops_experience.value,
    }


def _ops_why(why: str, ops: float, skill: str) -> str:
    usable = f"with gpu_ops_experience {skill} only {ops:.0%} of the rated capability is usable"
    return f"management complexity: {usable} ({why})"


def _rated(driver: str, option: str, need: float, facts: dict[str, Any], ops: float = 1.0) -> tuple[float, str, str]:
    capability, why = CAPABILITY[driver][option]
    effective = capability * ops
    score = 10.0 - need * (10.0 - effective)
    if ops < 1.0:
        formula = f"10 − need × (10 − capability × ops) = 10 − {need:.3f} × (10 − {capability:g} × {ops:g})"
        why = _ops_why(why, ops, str(facts.get("gpu_ops_experience")))
    else:
        formula = f"10 − need × (10 − capability) = 10 − {need:.3f} × (10 − {capability:g})"
    return score, formula, why


def rank(scenario: Scenario, costs: Mapping[str, CostFact] | None) -> GimResult:
    """Score the four options for ``scenario``; ``costs`` maps each option to its TCO (None: cost scores 10
    for all and says it was not priced)."""
    n = needs(scenario)
    weights = scenario.weights.normalised()
    ops_skill = scenario.gpu_ops_experience
    cheapest = min((c.total_usd for c in costs.values()), default=0.0) if costs else 0.0
    ranking = []
    for option in OPTIONS:
        ops = OPS_FACTOR[option][ops_skill]
        drivers: dict[str, DriverScore] = {}
        notes: list[str] = []

        a, b, why = VOLUME_LINE[option]
        x = n["volume_level"]
        raw = a + b * x
        facts = {
            "volume_per_month": scenario.volume_per_month,
            "growth_per_year": scenario.growth_per_year,
            "horizon_years": scenario.horizon_years,
            "seconds_per_video": scenario.seconds_per_video,
            "peak_video_minutes_per_month": n["peak_video_minutes_per_month"],
            "volume_level": x,
        }
        if ops < 1.0:
            facts["gpu_ops_experience"] = ops_skill.value
            formula = f"({a:g} + {b:g} × volume_level) × ops = ({a:g} + {b:g} × {x:.3f}) × {ops:g}"
            why = _ops_why(why, ops, ops_skill.value)
        else:
            formula = f"{a:g} + {b:g} × volume_level = {a:g} + {b:g} × {x:.3f}"
        drivers["volume"] = DriverScore(_clamp(raw * ops / 10) * 10, weights["volume"], formula, facts, why)

        facts = {"latency_target_s": scenario.latency_target_s, "latency_need": n["latency_need"]}
        if option in ("on_premise", "specialised_cloud_vpc", "hybrid") and ops < 1.0:
            facts["gpu_ops_experience"] = ops_skill.value
        score, formula, why = _rated("latency", option, n["latency_need"], facts, ops)
        drivers["latency"] = DriverScore(score, weights["latency"], formula, facts, why)

        facts = {
            "data_classes": n["data_classes"],
            "sensitivity": n["sensitivity"],
            "security_need": n["security_need"],
        }
        score, formula, why = _rated("security", option, n["security_need"], facts)
        if option == "public_cloud_api" and n["sensitivity"] == "restricted":
            score, formula = 0.0, "0: restricted data may not leave for a multi-tenant vendor API"
            why = "restricted data cannot be sent to a public API at all"
            notes.append("fails the security axis: the scenario handles restricted data")
        drivers["security"] = DriverScore(score, weights["security"], formula, facts, why)

        if costs and option in costs:
            cost = costs[option]
            ratio = cheapest / cost.total_usd if cost.total_usd > 0 else 1.0
            facts = {
                "total_usd": round(cost.total_usd, 2),
                "cheapest_total_usd": round(cheapest, 2),
                "priced_as": cost.option_id,
                "source": cost.source,
            }
            formula = f"10 × cheapest ÷ this = 10 × {cheapest:,.0f} ÷ {cost.total_usd:,.0f}"
            why = f"${cost.total_usd:,.0f} over {scenario.horizon_years:g} years ({cost.option_id})"
            drivers["cost"] = DriverScore(10.0 * ratio, weights["cost"], formula, facts, why)
        else:
            drivers["cost"] = DriverScore(10.0, weights["cost"], "not priced: 10 for every option", {}, "no TCO")

        facts = {"fine_tuning": n["fine_tuning"], "fine_tuning_need": n["fine_tuning_need"]}
        score, formula, why = _rated("fine_tuning", option, n["fine_tuning_need"], facts)
        drivers["fine_tuning"] = DriverScore(score, weights["fine_tuning"], formula, facts, why)

        if option == "on_premise" and ops_skill is GpuOps.none:
            notes.append("management complexity: needs a GPU operations team the scenario does not have")
        ranking.append(OptionScore(option, drivers, notes))
    ranking.sort(key=lambda o: (-round(o.score, 9), OPTIONS.index(o.option)))
    return GimResult(scenario.name, n, weights, ranking)


def evaluate(scenario: Scenario, measured: Measured | None = None) -> GimResult:
    """:func:`rank` with each option's cost from the TCO model (:mod:`reelfoundry.planning.tco`): the cheapest
    priced option of each deployment that can carry the work — spot (preemptible) capacity only when the
    scenario has no latency need (batch work that may be interrupted and retried). With ``measured`` (the
    platform's own cost records), its volume and seconds per video replace the scenario's."""
    from reelfoundry.planning import tco

    result = tco.compute(scenario, measured=measured)
    if measured is not None:
        scenario = measured.apply(scenario)
    batch = needs(scenario)["latency_need"] == 0
    costs: dict[str, CostFact] = {}
    source = "measured volume, catalog prices" if measured is not None else "catalog"
    for option in result.options:  # cheapest first
        if option.deployment not in OPTIONS or option.deployment in costs:
            continue
        if option.pricing_model == "spot" and not batch:
            continue
        costs[option.deployment] = CostFact(float(option.total_usd), source, option.id)
    ranked = rank(scenario, costs)
    if measured is not None:
        ranked.needs["volume_source"] = "measured"
    return ranked
