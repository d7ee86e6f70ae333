"""Scheduling: a pure placement core, a fleet and trace format, and a trace simulator.

from reelfoundry.scheduling import gen_trace, load_fleet, simulate
fleet = load_fleet("examples/fleets/h100.yaml")
simulate(gen_trace(2000, seed=7), fleet, "reelfoundry")["cost_per_video_usd"]
"""

from __future__ import annotations

from typing import Any

from reelfoundry.scheduling.fleet import Autoscale, Fleet, Node, Slot, SlotType, Unit, load_fleet, parse_fleet
from reelfoundry.scheduling.policy import POLICIES, Placement, ScaleAction, autoscale, fifo, schedule
from reelfoundry.scheduling.profiles import (
    DeviceSpeed,
    ModelProfile,
    default_profiles,
    load_models,
    load_profiles,
    profiles_from_cards,
)
from reelfoundry.scheduling.queue import Job, JobQueue
from reelfoundry.scheduling.simulator import Timeline, plot_timeline, simulate
from reelfoundry.scheduling.trace import gen_trace, jobs_from_records, load_trace, parse_trace, write_trace

__all__ = [
    "POLICIES",
    "PROFILES",
    "Autoscale",
    "DeviceSpeed",
    "Fleet",
    "Job",
    "JobQueue",
    "ModelProfile",
    "Node",
    "Placement",
    "ScaleAction",
    "Slot",
    "SlotType",
    "Timeline",
    "Unit",
    "autoscale",
    "default_profiles",
    "fifo",
    "gen_trace",
    "jobs_from_records",
    "load_fleet",
    "load_models",
    "load_profiles",
    "load_trace",
    "parse_fleet",
    "parse_trace",
    "plot_timeline",
    "profiles_from_cards",
    "schedule",
    "simulate",
    "write_trace",
]


def __getattr__(name: str) -> Any:
    # PROFILES (the shipped portfolio's profiles) is read from the model cards on first use.
    if name == "PROFILES":
        return default_profiles()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
