"""Scheduling: a pure placement core, a fleet and trace format, and a trace simulator.

from reelfoundry.scheduling import gen_trace, load_fleet, simulate
fleet = load_fleet("examples/fleets/h100.yaml")
simulate(gen_trace(2000, seed=7), fleet, "reelfoundry")["cost_per_video_usd"]
"""

from __future__ import annotations

from reelfoundry.scheduling.fleet import Fleet, Node, Slot, SlotType, load_fleet, parse_fleet
from reelfoundry.scheduling.policy import POLICIES, Placement, fifo, schedule
from reelfoundry.scheduling.profiles import PROFILES, ModelProfile
from reelfoundry.scheduling.queue import Job, JobQueue
from reelfoundry.scheduling.simulator import Timeline, plot_timeline, simulate
from reelfoundry.scheduling.trace import gen_trace, jobs_from_records, load_trace, parse_trace, write_trace

__all__ = [
    "POLICIES",
    "PROFILES",
    "Fleet",
    "Job",
    "JobQueue",
    "ModelProfile",
    "Node",
    "Placement",
    "Slot",
    "SlotType",
    "Timeline",
    "fifo",
    "gen_trace",
    "jobs_from_records",
    "load_fleet",
    "load_trace",
    "parse_fleet",
    "parse_trace",
    "plot_timeline",
    "schedule",
    "simulate",
    "write_trace",
]
