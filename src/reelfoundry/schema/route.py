"""RoutePlan: which model a job runs on and why, decided once at admission and stored on the job."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from reelfoundry.schema.cost import DecimalString

#: The hard filters, in the order the router applies them; a loser names the first one it failed.
HardFilter = Literal["capability", "size", "data-class", "hosting", "unavailable", "cooldown", "budget", "deadline"]


class ResolvedParams(BaseModel):
    """A request's generation parameters, resolved against one model's card (every value concrete)."""

    model_config = ConfigDict(extra="forbid")

    num_frames: int
    fps: int
    width: int
    height: int
    seed: int
    steps: int | None = None
    guidance_scale: float | None = None


class Candidate(BaseModel):
    """One model the router considered: its estimates and, if it lost on a hard filter, which one."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    estimated_usd: DecimalString | None = Field(None, description="Estimated cost of the job on it (decimal string).")
    estimated_s: float | None = Field(None, description="Estimated seconds until done: queue wait plus run time.")
    quality: float = Field(0.0, description="The card's quality score (0 when unknown).")
    where: str | None = Field(None, description="The device class it would run on, or the vendor API.")
    filtered_by: HardFilter | None = Field(None, description="The hard filter that removed it; none if it passed.")
    detail: str | None = Field(None, description="Why that filter removed it.")
    params: ResolvedParams | None = Field(None, description="The request resolved against its card (if it passed).")


class RoutePlan(BaseModel):
    """The router's decision for one job: every candidate, the choice, the reason and the fallbacks."""

    model_config = ConfigDict(extra="forbid", title="RoutePlan")

    objective: Literal["auto", "quality", "cost", "latency", "explicit"] = Field(
        ..., description="The request's constraints.objective, or explicit when the request named its model."
    )
    chosen: str = Field(..., description="The model the job runs on first.")
    reason: str = Field(..., description="Why that model, in one sentence.")
    fallbacks: list[str] = Field(
        default_factory=list, description="Models tried next, in order, if the chosen one fails on its backend."
    )
    candidates: list[Candidate] = Field(
        default_factory=list, description="Every model that passed the hard filters, and the first 24 that did not."
    )
    omitted: int = Field(0, ge=0, description="Models that did not pass and are not listed, to keep the plan small.")

    def candidate(self, model: str) -> Candidate:
        """The candidate entry of ``model`` (KeyError if it was not considered)."""
        for c in self.candidates:
            if c.model == model:
                return c
        raise KeyError(model)
