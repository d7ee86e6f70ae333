"""The blueprint's multi-dimensional ROI model on a scenario's ``roi`` inputs: three pillars, every figure sourced.

1. **Efficiency gains** — per video, the cost without AI (``baseline_hours_per_video`` × ``hourly_rate_usd`` +
   ``baseline_cost_per_video_usd``) against the cost with it (``ai_hours_per_video`` × ``hourly_rate_usd`` + the
   AI cost per video); the difference, and the hours saved, per video, per month (``volume_per_month``) and over
   the horizon (the scenario's volume with its growth). The AI cost per video is ``roi.ai_cost_per_video_usd``
   when given, else the price catalog's cheapest ``video_api`` row × ``seconds_per_video``.
2. **Performance lift** — a baseline campaign (e.g. influencers) against one made with generated video: cost
   per view, per click and per conversion, click-through and conversion rates, revenue and ROAS, and the relative
   change of each (``cost_per_view_change: -0.9`` is 90 % cheaper per view). A campaign that names ``campaign``
   takes views, clicks, conversions, revenue and spend from the outcomes posted for it (``measured``); a figure
   the scenario states itself wins over the measured one, so a spend paid outside the platform can be entered.
3. **Strategic value** — the scenario's factors, each scored 0–5 with a weight and why, and their weighted mean:
   scored assumptions, with money only where the scenario puts a value on a factor.

Every figure is a :class:`Fig` carrying its provenance: ``scenario`` (the file states it), ``measured`` (posted
outcomes), ``catalog`` (a price-catalog row, with its source and date) or ``derived`` (computed from the others,
with the formula). Arithmetic is Decimal; JSON carries numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from reelfoundry.errors import InvalidParameter
from reelfoundry.finops.catalog import Catalog, load_catalog
from reelfoundry.planning.scenario import CampaignFigures, RoiInputs, Scenario

if TYPE_CHECKING:  # a plain dataclass; planning stays free of the store at run time
    from reelfoundry.store.outcomes import OutcomeTotals

D = Decimal
#: A stated conversion rate may differ from conversions ÷ views by this share of itself (rounding in a report)
#: before the two are called inconsistent.
RATE_TOLERANCE = D("0.005")
#: Decimal places of a figure in JSON: a millionth of a dollar is below any cost per view, a millionth of a
#: fraction below any rate a campaign reports.
DIGITS = 6

SCENARIO, MEASURED, CATALOG, DERIVED = "scenario", "measured", "catalog", "derived"


@dataclass(frozen=True)
class Fig:
    """One figure: its value (None when it cannot be had, with ``why``), unit and where it came from."""

    value: Decimal | None
    unit: str
    provenance: str
    formula: str = ""
    why: str = ""
    source: str | None = None
    as_of: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the value as a number (whole counts as integers; 6 decimals at most), its provenance and what
        backs it."""
        value: float | int | None = None
        if self.value is not None:
            whole = self.unit == "count" and self.value == self.value.to_integral_value()
            value = int(self.value) if whole else round(float(self.value), DIGITS)
        out: dict[str, Any] = {"value": value, "unit": self.unit, "provenance": self.provenance}
        for key in ("formula", "why", "source", "as_of"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _none(unit: str, why: str) -> Fig:
    return Fig(None, unit, DERIVED, why=why)


def _ratio(top: Fig, bottom: Fig, unit: str, formula: str) -> Fig:
    """top ÷ bottom, derived; None (with why) when either is missing or the divisor is zero."""
    if top.value is None or bottom.value is None:
        return _none(unit, f"needs {formula.split(' / ')[0]} and {formula.split(' / ')[1]}")
    if bottom.value == 0:
        return _none(unit, f"{formula.split(' / ')[1]} is 0")
    return Fig(top.value / bottom.value, unit, DERIVED, formula=formula)


def _change(ai: Fig, base: Fig, name: str) -> Fig:
    """Relative change ai ÷ baseline − 1 (−0.9: 90 % lower)."""
    if ai.value is None or base.value is None:
        return _none("fraction", f"needs {name} of both campaigns")
    if base.value == 0:
        return _none("fraction", f"the baseline's {name} is 0")
    return Fig(ai.value / base.value - 1, "fraction", DERIVED, formula=f"ai.{name} / baseline.{name} - 1")


# --- Pillar 1: efficiency -------------------------------------------------------------------------------------


def ai_cost_per_video(scenario: Scenario, catalog: Catalog) -> tuple[Fig, dict[str, Any] | None]:
    """The AI cost of one video: the scenario's figure, else the cheapest video API row × seconds per video."""
    roi = scenario.roi or RoiInputs()
    if roi.ai_cost_per_video_usd is not None:
        return Fig(roi.ai_cost_per_video_usd, "usd", SCENARIO), None
    if not catalog.video_api:
        return _none("usd", "the price catalog has no video_api rows; set roi.ai_cost_per_video_usd"), None
    row = min(catalog.video_api, key=lambda r: r.usd_per_second)
    seconds = D(str(scenario.seconds_per_video))
    fig = Fig(
        row.usd_per_second * seconds,
        "usd",
        CATALOG,
        formula=f"video_api {row.provider} / {row.model}: {row.usd_per_second} $/s x seconds_per_video {seconds}",
        source=row.source,
        as_of=row.as_of,
    )
    return fig, {"provider": row.provider, "model": row.model, "usd_per_second": float(row.usd_per_second)}


def efficiency(scenario: Scenario, catalog: Catalog) -> dict[str, Any] | None:
    """Hours and production cost saved per video, per month and over the horizon, net of the AI cost."""
    roi = scenario.roi
    if roi is None or roi.efficiency is None:
        return None
    eff = roi.efficiency
    rate, base_cost = eff.hourly_rate_usd, eff.baseline_cost_per_video_usd
    base_hours, ai_hours = D(str(eff.baseline_hours_per_video)), D(str(eff.ai_hours_per_video))
    volume = D(scenario.volume_per_month)
    videos = D(str(scenario.total_videos())).quantize(D("0.01"))
    ai_cost, api = ai_cost_per_video(scenario, catalog)
    without = base_hours * rate + base_cost
    saved_hours = base_hours - ai_hours
    figs: dict[str, Fig] = {
        "baseline_hours_per_video": Fig(base_hours, "hours", SCENARIO),
        "ai_hours_per_video": Fig(ai_hours, "hours", SCENARIO),
        "hourly_rate_usd": Fig(rate, "usd/hour", SCENARIO),
        "baseline_cost_per_video_usd": Fig(base_cost, "usd", SCENARIO),
        "ai_cost_per_video_usd": ai_cost,
        "volume_per_month": Fig(volume, "videos/month", SCENARIO),
        "cost_per_video_without_ai_usd": Fig(
            without, "usd", DERIVED, formula="baseline_hours_per_video x hourly_rate_usd + baseline_cost_per_video_usd"
        ),
        "hours_saved_per_video": Fig(
            saved_hours, "hours", DERIVED, formula="baseline_hours_per_video - ai_hours_per_video"
        ),
        "hours_saved_per_month": Fig(
            saved_hours * volume, "hours", DERIVED, formula="hours_saved_per_video x volume_per_month"
        ),
    }
    names = ("cost_per_video_with_ai_usd", "saved_per_video_usd", "saved_share", "saved_per_month_usd")
    if ai_cost.value is None:
        figs |= {name: _none("usd", ai_cost.why) for name in (*names, "saved_horizon_usd")}
        return {"figures": figs, "video_api": api}
    with_ai = ai_hours * rate + ai_cost.value
    saved = without - with_ai
    figs["cost_per_video_with_ai_usd"] = Fig(
        with_ai, "usd", DERIVED, formula="ai_hours_per_video x hourly_rate_usd + ai_cost_per_video_usd"
    )
    figs["saved_per_video_usd"] = Fig(
        saved, "usd", DERIVED, formula="cost_per_video_without_ai_usd - cost_per_video_with_ai_usd"
    )
    figs["saved_share"] = (
        Fig(saved / without, "fraction", DERIVED, formula="saved_per_video_usd / cost_per_video_without_ai_usd")
        if without
        else _none("fraction", "the cost per video without AI is 0")
    )
    figs["saved_per_month_usd"] = Fig(saved * volume, "usd", DERIVED, formula="saved_per_video_usd x volume_per_month")
    figs["videos_over_horizon"] = Fig(
        videos,
        "videos",
        DERIVED,
        formula=f"volume_per_month growing {scenario.growth_per_year:g} a year, over {scenario.months} months",
    )
    figs["saved_horizon_usd"] = Fig(saved * videos, "usd", DERIVED, formula="saved_per_video_usd x videos_over_horizon")
    return {"figures": figs, "video_api": api}


# --- Pillar 2: performance lift -------------------------------------------------------------------------------


@dataclass
class Campaign:
    """One campaign's figures after measured outcomes and the scenario's own figures are merged."""

    label: str
    campaign: str | None
    asset: str | None = None
    figures: dict[str, Fig] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        out: dict[str, Any] = {"label": self.label, "campaign": self.campaign}
        if self.asset is not None:
            out["asset"] = self.asset
        if self.note:
            out["note"] = self.note
        out["figures"] = {k: v.to_json() for k, v in self.figures.items()}
        return out


_COUNTED = ("spend_usd", "views", "clicks", "conversions", "revenue_usd")
_UNITS = {"spend_usd": "usd", "views": "count", "clicks": "count", "conversions": "count", "revenue_usd": "usd"}


def campaign(which: str, given: CampaignFigures, measured: OutcomeTotals | None) -> Campaign:
    """A campaign's figures and the metrics derived from them. ``which`` (baseline or ai) names its fields in
    errors: ``roi.ai.conversion_rate`` when a stated rate contradicts the counts."""
    out = Campaign(label=given.label or which, campaign=given.campaign, asset=given.asset)
    if given.measured_from is not None and (measured is None or measured.records == 0):
        out.note = f"no outcomes posted for {given.measured_from}: only the scenario's figures are used"
    figs = out.figures
    for name in _COUNTED:
        stated = getattr(given, name)
        if stated is not None:
            figs[name] = Fig(D(stated), _UNITS[name], SCENARIO)
        elif measured is not None and measured.records > 0:
            figs[name] = Fig(
                D(getattr(measured, name)),
                _UNITS[name],
                MEASURED,
                source=f"{measured.records} outcome(s) posted for {given.measured_from}",
            )
        else:
            figs[name] = Fig(None, _UNITS[name], SCENARIO, why=f"roi.{which}.{name} not given")
    views, conversions = figs["views"], figs["conversions"]
    if given.conversion_rate is not None:
        stated_rate = D(str(given.conversion_rate))
        if conversions.value is None:
            if views.value is not None:
                figs["conversions"] = Fig(
                    views.value * stated_rate, "count", DERIVED, formula="views x conversion_rate"
                )
            figs["conversion_rate"] = Fig(stated_rate, "fraction", SCENARIO)
        else:
            counted = _ratio(conversions, views, "fraction", "conversions / views")
            if counted.value is not None and abs(counted.value - stated_rate) > RATE_TOLERANCE * stated_rate:
                raise InvalidParameter(
                    f"roi.{which}.conversion_rate",
                    f"roi.{which}.conversion_rate {given.conversion_rate:g} contradicts conversions ÷ views "
                    f"= {conversions.value} ÷ {views.value} = {float(counted.value):.6g}; give one of them",
                )
            figs["conversion_rate"] = Fig(stated_rate, "fraction", SCENARIO)
    else:
        figs["conversion_rate"] = _ratio(conversions, views, "fraction", "conversions / views")
    per_conversion, counted_conversions = given.revenue_per_conversion_usd, figs["conversions"].value
    if figs["revenue_usd"].value is None and per_conversion is not None and counted_conversions is not None:
        figs["revenue_usd"] = Fig(
            counted_conversions * per_conversion,
            "usd",
            DERIVED,
            formula=f"conversions x revenue_per_conversion_usd {per_conversion} (scenario)",
        )
    spend = figs["spend_usd"]
    figs["click_through_rate"] = _ratio(figs["clicks"], views, "fraction", "clicks / views")
    figs["cost_per_view_usd"] = _ratio(spend, views, "usd", "spend_usd / views")
    figs["cost_per_click_usd"] = _ratio(spend, figs["clicks"], "usd", "spend_usd / clicks")
    figs["cost_per_conversion_usd"] = _ratio(spend, figs["conversions"], "usd", "spend_usd / conversions")
    figs["roas"] = _ratio(figs["revenue_usd"], spend, "ratio", "revenue_usd / spend_usd")
    return out


#: The metrics compared between the campaigns, in the order they are shown.
COMPARED = (
    "views",
    "conversions",
    "conversion_rate",
    "click_through_rate",
    "cost_per_view_usd",
    "cost_per_click_usd",
    "cost_per_conversion_usd",
    "revenue_usd",
    "roas",
)


def _change_name(metric: str) -> str:
    return metric.removesuffix("_usd") + "_change"


def performance(scenario: Scenario, measured: Mapping[str, OutcomeTotals]) -> dict[str, Any] | None:
    """Both campaigns' figures and the relative change of each compared metric (None without both campaigns)."""
    roi = scenario.roi
    if roi is None or (roi.baseline is None and roi.ai is None):
        return None
    parts: dict[str, Campaign] = {}
    for which in ("baseline", "ai"):
        given: CampaignFigures | None = getattr(roi, which)
        if given is not None:
            key = given.measure_key
            parts[which] = campaign(which, given, measured.get(key) if key else None)
    changes: dict[str, Fig] = {}
    if len(parts) == 2:
        base, ai = parts["baseline"].figures, parts["ai"].figures
        changes = {_change_name(m): _change(ai[m], base[m], m) for m in COMPARED}
    return {"campaigns": parts, "changes": changes}


# --- Pillar 3: strategic value --------------------------------------------------------------------------------


def strategic(scenario: Scenario) -> dict[str, Any] | None:
    """The weighted 0–5 score of the scenario's factors, and money only where the scenario gives some."""
    factors = scenario.roi.strategic if scenario.roi is not None else []
    if not factors:
        return None
    total_weight = sum(D(str(f.weight)) for f in factors)
    if total_weight == 0:
        score = _none("score 0-5", "every factor's weight is 0")
    else:
        score = Fig(
            sum(D(str(f.score)) * D(str(f.weight)) for f in factors) / total_weight,
            "score 0-5",
            DERIVED,
            formula="sum(score x weight) / sum(weight)",
        )
    valued = [f.value_usd_per_year for f in factors if f.value_usd_per_year is not None]
    money = (
        Fig(sum(valued, D(0)), "usd/year", DERIVED, formula="sum of the factors' value_usd_per_year (scenario)")
        if valued
        else _none("usd/year", "no factor is given a money value: strategic value is scored, not priced")
    )
    return {"factors": factors, "score": score, "value_usd_per_year": money}


# --- The whole model ------------------------------------------------------------------------------------------


@dataclass
class RoiResult:
    """The three pillars of one scenario (a pillar the scenario gives no inputs for is None)."""

    scenario: str
    efficiency: dict[str, Any] | None
    performance: dict[str, Any] | None
    strategic: dict[str, Any] | None
    measured: dict[str, OutcomeTotals]

    def to_json(self) -> dict[str, Any]:
        """What ``reelfoundry plan roi --json`` prints."""
        eff = None
        if self.efficiency is not None:
            eff = {
                "figures": {k: v.to_json() for k, v in self.efficiency["figures"].items()},
                "video_api": self.efficiency["video_api"],
            }
        perf = None
        if self.performance is not None:
            perf = {
                **{k: c.to_json() for k, c in self.performance["campaigns"].items()},
                "changes": {k: v.to_json() for k, v in self.performance["changes"].items()},
            }
        strat = None
        if self.strategic is not None:
            strat = {
                "note": "scored assumptions (0-5) stated by the scenario; money only where it gives a value",
                "factors": [
                    {**f.model_dump(mode="json", exclude_none=True), "provenance": SCENARIO}
                    for f in self.strategic["factors"]
                ],
                "score": self.strategic["score"].to_json(),
                "value_usd_per_year": self.strategic["value_usd_per_year"].to_json(),
            }
        return {
            "scenario": self.scenario,
            "efficiency": eff,
            "performance": perf,
            "strategic": strat,
            "measured": {k: v.to_json() for k, v in sorted(self.measured.items())},
        }


def measured_targets(scenario: Scenario) -> dict[str, CampaignFigures]:
    """The campaigns (``roi.baseline``/``roi.ai``) to measure from posted outcomes, by their ``measure_key``
    (a campaign's name, ``asset:ID``: the keys of ``compute``'s ``measured``)."""
    roi = scenario.roi
    if roi is None:
        return {}
    named = [c for c in (roi.baseline, roi.ai) if c is not None]
    return {c.measure_key: c for c in named if c.measure_key is not None}


def compute(
    scenario: Scenario, measured: Mapping[str, OutcomeTotals] | None = None, catalog: Catalog | None = None
) -> RoiResult:
    """The ROI model of a scenario; ``measured`` maps what measures a campaign (:func:`measured_targets`) to
    the totals of those posted outcomes.
    InvalidParameter naming the field (``roi``, ``roi.ai.conversion_rate``) when the inputs cannot be used."""
    if scenario.roi is None:
        raise InvalidParameter("roi", f"scenario {scenario.name!r} has no roi section (see examples/scenarios/)")
    got = dict(measured or {})
    return RoiResult(
        scenario=scenario.name,
        efficiency=efficiency(scenario, catalog or load_catalog()),
        performance=performance(scenario, got),
        strategic=strategic(scenario),
        measured={k: v for k, v in got.items() if k in measured_targets(scenario)},
    )
