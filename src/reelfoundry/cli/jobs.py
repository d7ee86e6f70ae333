"""``reelfoundry submit`` and ``reelfoundry jobs list|show|cancel``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import (
    AsJson,
    client,
    common_options,
    console,
    emit,
    print_json,
    progress,
    show_record,
    table,
)
from reelfoundry.cli.common import valid_id as _id
from reelfoundry.cli.generate import (
    FpsOpt,
    FramesOpt,
    GuidanceOpt,
    ModelOpt,
    NegativeOpt,
    SeedOpt,
    SizeOpt,
    StepsOpt,
    TemplateOpt,
    build_request,
)
from reelfoundry.schema import DataClass, JobState, Objective, Priority

jobs_app = typer.Typer(help="List, inspect and cancel jobs.", no_args_is_help=True)


@common_options()
def submit(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    model: ModelOpt = "auto",
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    size: SizeOpt = None,
    seed: SeedOpt = None,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    template: TemplateOpt = None,
    negative: NegativeOpt = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option("--input", help="Asset id of an uploaded input image (`assets upload`; repeatable)."),
    ] = None,
    project: Annotated[str | None, typer.Option("--project")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    objective: Annotated[
        Objective, typer.Option("--objective", help="How the router picks a model for --model auto.")
    ] = Objective.auto,
    min_quality: Annotated[
        float | None, typer.Option("--min-quality", min=0, max=1, help="Quality floor (0–1) of --objective auto.")
    ] = None,
    deadline: Annotated[
        float | None, typer.Option("--deadline", min=0.001, help="Seconds from now by which it should be done.")
    ] = None,
    max_cost: Annotated[
        str | None, typer.Option("--max-cost", help="Refuse models estimated above this many USD, e.g. 0.50.")
    ] = None,
    data_class: Annotated[DataClass, typer.Option("--data-class", help="How sensitive the prompt is.")] = (
        DataClass.internal
    ),
    priority: Annotated[Priority, typer.Option("--priority")] = Priority.interactive,
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress until the job ends.")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="With --wait: download the MP4 here.")] = None,
    as_json: AsJson = False,
) -> None:
    """Submit a job to a running server (the same generation options as `generate`)."""
    from reelfoundry.schema import Constraints, Labels

    request = build_request(
        prompt,
        model=model,
        frames=frames,
        fps=fps,
        size=size,
        seed=seed,
        steps=steps,
        guidance=guidance,
        template=template,
        negative=negative,
        inputs=[_id("asset", i) for i in inputs or []],
        labels=Labels(project=project, campaign=campaign),
        priority=priority,
        constraints=Constraints(
            objective=objective,
            min_quality=min_quality,
            deadline_s=deadline,
            max_cost_usd=_usd(max_cost) if max_cost is not None else None,
            data_class=data_class,
        ),
    )
    api = client()
    job = api.submit(request)
    if not as_json and model == "auto" and job.get("route"):
        console.print(f"[dim]model: {job['route']['reason']}[/dim]", highlight=False)
    if not wait:
        emit(job, as_json, f"queued job {job['id']}")
        return
    with progress() as bar:
        task = bar.add_task(f"job {job['id'][-8:]} queued", total=None)

        def show(ev: dict[str, Any]) -> None:
            kind = ev["type"]
            if kind == "job.progress":
                bar.update(
                    task,
                    description=f"job {job['id'][-8:]} running",
                    completed=ev["data"]["step"],
                    total=ev["data"]["total"],
                )
            elif kind in ("job.running", "job.requeued", "job.cancel_requested"):
                bar.update(task, description=f"job {job['id'][-8:]} {kind.split('.')[1]}")

        job = api.wait(job["id"], show)
    if output is not None and job["state"] == "succeeded":
        api.download(job["asset_id"], output)
    tail = f", asset {job['asset_id']}" if job.get("asset_id") else ""
    err = f": {job['error']['detail']}" if job.get("error") else ""
    emit(job, as_json, f"job {job['id']} {job['state']}{tail}{err}")
    if job["state"] != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("list")
@common_options()
def jobs_list(
    state: Annotated[JobState | None, typer.Option("--state", help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    as_json: AsJson = False,
) -> None:
    """The newest jobs."""
    params: dict[str, Any] = {"limit": limit, **({"state": state.value} if state else {})}
    page = client().json("GET", "/v1/jobs", params=params)
    if as_json:
        print_json(page["items"])
        return
    rows = [{**j, "prompt": j["request"]["prompt"][:40]} for j in page["items"]]
    table(rows, ["id", "state", "model", "progress", "asset_id", "prompt", "created_at"], "Jobs")


@jobs_app.command("show")
@common_options()
def jobs_show(job_id: str, as_json: AsJson = False) -> None:
    """One job, in full (--json: exactly as the API returns it)."""
    job = client().json("GET", f"/v1/jobs/{_id('job', job_id)}")
    if as_json:
        print_json(job)
        return
    route = job.pop("route", None)
    show_record(job, False, f"Job {job_id}")
    if route:
        show_route(route)


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise CLIError(f"--max-cost must be an amount in USD such as 0.50, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise CLIError(f"--max-cost must be 0 or more, got {text!r}")
    return value


def show_route(route: dict[str, Any]) -> None:
    """A RoutePlan: the choice and its reason, then every candidate with its estimates or the filter it failed."""
    rows = []
    for c in route.get("candidates", []):
        rows.append(
            {
                "model": c["model"] + (" ← chosen" if c["model"] == route["chosen"] else ""),
                "est. $": c.get("estimated_usd"),
                "est. s": None if c.get("estimated_s") is None else f"{c['estimated_s']:.0f}",
                "quality": f"{c.get('quality', 0):g}",
                "where": c.get("where"),
                "filtered by": None if not c.get("filtered_by") else f"{c['filtered_by']}: {c.get('detail')}",
            }
        )
    title = f"Route ({route['objective']}): {route['reason']}"
    if route.get("fallbacks"):
        title += f"; fallbacks {', '.join(route['fallbacks'])}"
    table(rows, ["model", "est. $", "est. s", "quality", "where", "filtered by"], title)


@jobs_app.command("cancel")
@common_options()
def jobs_cancel(job_id: str, as_json: AsJson = False) -> None:
    """Cancel a queued or running job."""
    job = client().json("POST", f"/v1/jobs/{_id('job', job_id)}/cancel")
    note = " (stops at the next step)" if job["state"] == "running" else ""
    emit(job, as_json, f"job {job_id} {job['state']}{note}")
