"""``reelfoundry simulate``: replay a job trace on a fleet, on a virtual clock, with FIFO or the scheduler."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, emit, friendly, print_json, record

simulate_app = typer.Typer(
    help="Replay a job trace on a fleet (virtual clock): `fifo` against the `reelfoundry` scheduler.",
    invoke_without_command=True,
)

_SUMMARY = (
    "utilization",
    "fleet_utilization",
    "p95_wait_s",
    "deadline_misses",
    "cost_per_video_usd",
    "idle_cost_usd",
    "mean_held_devices",
    "jobs_completed",
)


class Policy(StrEnum):
    """Placement policies the simulator runs."""

    fifo = "fifo"
    reelfoundry = "reelfoundry"


@simulate_app.callback()
@friendly
def simulate(
    ctx: typer.Context,
    fleet: Annotated[Path | None, typer.Option("--fleet", help="Fleet YAML (see examples/fleets/).")] = None,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Trace JSONL (make one with `simulate gen-trace`).")
    ] = None,
    policy: Annotated[
        Policy, typer.Option("--policy", help="fifo, or the reelfoundry scheduler.")
    ] = Policy.reelfoundry,
    models: Annotated[
        Path | None,
        typer.Option(
            "--models",
            help="Model cards (YAML `models: [card, ...]`) in place of the shipped portfolio file; "
            "the template and built-in cards are always there.",
        ),
    ] = None,
    static: Annotated[
        bool, typer.Option("--static", help="reelfoundry without autoscaling: the whole fleet held, as fifo.")
    ] = False,
    batch_wait: Annotated[
        float | None,
        typer.Option(
            "--batch-wait", min=0, help="Seconds a partial batch of batch-class jobs may wait (reelfoundry; 300)."
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write busy and held devices and queue length over time as PNG."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Utilisation (busy ÷ held, and ÷ whole fleet), queue wait p50/p95 per priority, deadline misses, cost per
    video, idle cost, held and busy device time."""
    if ctx.invoked_subcommand is not None:
        return
    from reelfoundry.scheduling import Timeline, load_fleet, load_profiles, load_trace, plot_timeline
    from reelfoundry.scheduling import simulate as run

    if fleet is None or trace is None:
        raise CLIError(
            "give --fleet FLEET.yaml and --trace TRACE.jsonl (make a trace with `reelfoundry simulate gen-trace`)"
        )
    for path in (fleet, trace, models):
        if path is not None and not path.is_file():
            raise CLIError(f"{str(path)!r} does not exist")
    if static and policy == Policy.fifo:
        raise CLIError("--static is for --policy reelfoundry: fifo always holds the whole fleet")
    profiles = load_profiles(models)
    timeline = Timeline() if plot is not None else None
    result = run(
        load_trace(trace, profiles),
        load_fleet(fleet),
        policy.value,
        profiles=profiles,
        timeline=timeline,
        autoscaling=False if static else None,
        batch_wait_s=batch_wait,
    )
    if plot is not None and timeline is not None:
        plot_timeline(timeline, plot, f"{policy.value} on {fleet.name}")
    if as_json:
        print_json(result)
        return
    record({k: result[k] for k in _SUMMARY if k in result}, f"{policy.value} on {fleet.name}, {trace.name}")


@simulate_app.command("gen-trace")
@friendly
def gen_trace(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the JSONL trace.")],
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=1_000_000, help="Jobs in the trace.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same trace).")] = 0,
    as_json: AsJson = False,
) -> None:
    """A trace with diurnal load, bursts, mixed models, sizes, tenants, priorities and deadlines."""
    from reelfoundry.scheduling import gen_trace as make
    from reelfoundry.scheduling import write_trace

    if not output.parent.resolve().is_dir():
        raise CLIError(f"directory {str(output.parent)!r} does not exist")
    write_trace(make(jobs, seed), output)
    emit({"output": str(output), "jobs": jobs, "seed": seed}, as_json, f"wrote {jobs} jobs to {output}")
