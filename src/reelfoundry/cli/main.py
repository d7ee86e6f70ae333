"""``reelfoundry``: generate locally, serve the platform, and drive it from the shell."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reelfoundry import __version__
from reelfoundry.cli.client import Client, CLIError, find_key
from reelfoundry.errors import ReelFoundryError
from reelfoundry.ids import is_id

app = typer.Typer(
    name="reelfoundry",
    help="ReelFoundry: self-hosted generative video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
jobs_app = typer.Typer(help="List, inspect and cancel jobs.", no_args_is_help=True)
assets_app = typer.Typer(help="List and download assets.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys (admin).", no_args_is_help=True)
models_app = typer.Typer(help="The model portfolio.", no_args_is_help=True)
schema_app = typer.Typer(help="The canonical JSON Schemas.", no_args_is_help=True)
train_app = typer.Typer(help="Train models.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate models with the standard test protocol.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
review_app = typer.Typer(help="The human review gate: approve or reject assets.", no_args_is_help=True)
tenant_app = typer.Typer(help="Your tenant's settings.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(assets_app, name="assets")
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(schema_app, name="schema")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(audit_app, name="audit")
app.add_typer(review_app, name="review")
app.add_typer(tenant_app, name="tenant")

console = Console(stderr=True, soft_wrap=True)
out = Console()
F = TypeVar("F", bound=Callable[..., Any])

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="REELFOUNDRY_DATA_DIR", help="Data directory.")]
Server = Annotated[str, typer.Option("--server", envvar="REELFOUNDRY_SERVER", help="Server URL.")]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", help="API key (default: $REELFOUNDRY_API_KEY or <data-dir>/admin.key).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DEFAULT_DIR = Path("./reelfoundry-data")
DEFAULT_SERVER = "http://127.0.0.1:8000"


def friendly(fn: F) -> F:
    """Turn expected errors into one line on stderr and exit code 2 (1 for server-side failures)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CLIError as exc:
            console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except ReelFoundryError as exc:
            console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(2 if exc.status < 500 else 1) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            console.print(f"[red]error:[/red] {where}: {first['msg']}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _client(server: str, data_dir: Path, api_key: str | None) -> Client:
    return Client(server, find_key(data_dir, api_key))


def _id(kind: str, value: str) -> str:
    """``value`` if it is a ReelFoundry id (so it is safe inside a URL path), else a CLIError."""
    if not is_id(value):
        raise CLIError(f"{value!r} is not a valid {kind} id (26 characters, like 01JD3K6Z0C8W4Q2M9V5T7RXYZA)")
    return value


def _print_json(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


def _table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


def _parse_size(size: str | None) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    w, sep, h = size.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise CLIError(f"--size must look like 640x360, got {size!r}")
    return int(w), int(h)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


@app.command()
@friendly
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the MP4.")] = Path("out.mp4"),
    model: Annotated[str, typer.Option("--model", help="Model id, or auto.")] = "auto",
    frames: Annotated[int | None, typer.Option("--frames", help="Number of frames.")] = None,
    fps: Annotated[int | None, typer.Option("--fps", help="Frames per second.")] = None,
    size: Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT, e.g. 640x360.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (diffusion models).")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", help="Guidance scale (diffusion models).")] = None,
    template: Annotated[Path | None, typer.Option("--template", help="Template spec JSON file.")] = None,
    inputs: Annotated[
        list[Path] | None, typer.Option("--input", help="Input image for template image layers (repeatable).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Generate a video on this machine, no server needed."""
    from reelfoundry.config import Settings
    from reelfoundry.execution.produce import produce
    from reelfoundry.governance.policy import ContentPolicy
    from reelfoundry.portfolio.registry import Portfolio, resolve_params
    from reelfoundry.provenance.credentials import configured_credentials
    from reelfoundry.provenance.manifest import signing_for
    from reelfoundry.schema import TemplateSpec, VideoRequest
    from reelfoundry.store.jobs import request_hash

    if output.suffix.lower() != ".mp4":
        raise CLIError(f"-o must name an .mp4 file, got {str(output)!r}")
    if not output.parent.resolve().is_dir():
        raise CLIError(f"directory {str(output.parent)!r} does not exist")
    spec = None
    if template is not None:
        try:
            spec = TemplateSpec.model_validate_json(template.read_text())
        except OSError as exc:
            raise CLIError(f"cannot read template {str(template)!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CLIError(f"template {str(template)!r} is not UTF-8 JSON") from None
    for path in inputs or []:
        if not path.is_file():
            raise CLIError(f"--input {str(path)!r} is not a file")
    width, height = _parse_size(size)
    request = VideoRequest(
        prompt=prompt,
        model=model,
        num_frames=frames,
        fps=fps,
        width=width,
        height=height,
        seed=seed,
        steps=steps,
        guidance_scale=guidance,
        template=spec,
    )
    settings = Settings()
    ContentPolicy.from_settings(settings).check(request)
    portfolio = Portfolio(settings.extra_models)
    card = portfolio.choose(request)
    params = resolve_params(card, request, tuple(p.resolve() for p in inputs or []))
    backend = portfolio.backend(card)
    backend.check_inputs(params)  # before the data dir's signing credentials are made: bad input leaves nothing
    # Signed like every output of the platform; `reelfoundry verify` in the same data dir trusts the signer.
    request_sha = request_hash(request.model_dump(mode="json"))
    signing = signing_for(configured_credentials(settings), card, None, request_sha)
    with _progress() as bar:
        task = bar.add_task(f"{card.id}", total=params.num_frames)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = produce(backend, params, output, step, signing)
        result.poster.unlink(missing_ok=True)
    info = {"output": str(output), "model": card.id, **result.media.__dict__}
    if as_json:
        _print_json(info)
    else:
        m = result.media
        console.print(
            f"[green]wrote[/green] {output} — {m.num_frames} frames, {m.width}×{m.height}, {m.fps:g} fps, "
            f"{m.duration_s:.2f} s, {m.bytes:,} bytes ({card.id})",
            highlight=False,
        )


@app.command()
@friendly
def serve(
    host: Annotated[str, typer.Option("--host", envvar="REELFOUNDRY_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="REELFOUNDRY_PORT")] = 8000,
    data_dir: DataDir = DEFAULT_DIR,
    workers: Annotated[int | None, typer.Option("--worker-slots", help="Jobs run at once (0 = API only).")] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Run the API, engine and webhook dispatcher on one machine."""
    import uvicorn

    from reelfoundry.api.app import create_app
    from reelfoundry.config import Settings
    from reelfoundry.platform import Platform

    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    if workers is not None:
        overrides["worker_slots"] = workers
    settings = Settings(**overrides)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    platform = Platform(settings)
    platform.start()  # before uvicorn, so a locked data dir or a bad database URL is one clear line
    console.print(
        f"ReelFoundry {__version__} on http://{host}:{port} — data in {data_dir.resolve()} "
        f"(admin key: {settings.admin_key_path}); review UI at http://{host}:{port}/ui/",
        highlight=False,
    )
    if settings.public_base_url is None:
        console.print(
            f"Delivery URLs point at {settings.delivery_base_url} (set REELFOUNDRY_PUBLIC_BASE_URL to the address "
            "your audience reaches).",
            highlight=False,
        )
    # The app's lifespan stops the platform when uvicorn shuts down.
    uvicorn.run(create_app(settings, platform), host=host, port=port, log_level=log_level, access_log=False)


@app.command()
@friendly
def submit(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    model: Annotated[str, typer.Option("--model")] = "auto",
    frames: Annotated[int | None, typer.Option("--frames")] = None,
    size: Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    project: Annotated[str | None, typer.Option("--project")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow progress until the job ends.")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="With --wait: download the MP4 here.")] = None,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Submit a job to a running server."""
    from reelfoundry.schema import Labels, VideoRequest

    width, height = _parse_size(size)
    request = VideoRequest(
        prompt=prompt,
        model=model,
        num_frames=frames,
        width=width,
        height=height,
        seed=seed,
        labels=Labels(project=project, campaign=campaign),
    )
    client = _client(server, data_dir, api_key)
    job = client.json("POST", "/v1/jobs", json=request.model_dump(mode="json", exclude_none=True))
    if not wait:
        _print_json(job) if as_json else console.print(f"queued job {job['id']}", highlight=False)
        return
    with _progress() as bar:
        task = bar.add_task(f"job {job['id'][-8:]} queued", total=None)
        for ev in client.events(job["id"]):
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
    job = client.json("GET", f"/v1/jobs/{job['id']}")
    if output is not None and job["state"] == "succeeded":
        client.download(f"/v1/assets/{job['asset_id']}/content", output)
    if as_json:
        _print_json(job)
    else:
        tail = f", asset {job['asset_id']}" if job.get("asset_id") else ""
        err = f": {job['error']['detail']}" if job.get("error") else ""
        console.print(f"job {job['id']} {job['state']}{tail}{err}", highlight=False)
    if job["state"] != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("list")
@friendly
def jobs_list(
    state: Annotated[str | None, typer.Option("--state")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """The newest jobs."""
    params: dict[str, Any] = {"limit": limit, **({"state": state} if state else {})}
    page = _client(server, data_dir, api_key).json("GET", "/v1/jobs", params=params)
    if as_json:
        _print_json(page["items"])
        return
    rows = [{**j, "prompt": j["request"]["prompt"][:40]} for j in page["items"]]
    _table(rows, ["id", "state", "model", "progress", "asset_id", "prompt", "created_at"], "Jobs")


@jobs_app.command("show")
@friendly
def jobs_show(
    job_id: str,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """One job, in full."""
    _print_json(_client(server, data_dir, api_key).json("GET", f"/v1/jobs/{_id('job', job_id)}"))


@jobs_app.command("cancel")
@friendly
def jobs_cancel(
    job_id: str,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Cancel a queued or running job."""
    job = _client(server, data_dir, api_key).json("POST", f"/v1/jobs/{_id('job', job_id)}/cancel")
    if as_json:
        _print_json(job)
    else:
        note = " (stops at the next step)" if job["state"] == "running" else ""
        console.print(f"job {job_id} {job['state']}{note}", highlight=False)


@assets_app.command("list")
@friendly
def assets_list(
    project: Annotated[str | None, typer.Option("--project")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="pending_review, approved, rejected or published.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """The newest assets."""
    _list_assets(server, data_dir, api_key, as_json, limit, project, campaign, state, "Assets")


def _list_assets(
    server: str,
    data_dir: Path,
    api_key: str | None,
    as_json: bool,
    limit: int,
    project: str | None,
    campaign: str | None,
    state: str | None,
    title: str,
) -> None:
    filters = {"project": project, "campaign": campaign, "review_state": state}
    params = {"limit": limit, **{k: v for k, v in filters.items() if v}}
    page = _client(server, data_dir, api_key).json("GET", "/v1/assets", params=params)
    if as_json:
        _print_json(page["items"])
        return
    columns = ["id", "review_state", "job_id", "width", "height", "num_frames", "bytes", "project", "campaign"]
    _table(page["items"], columns, title)


@assets_app.command("publish")
@friendly
def assets_publish(
    asset_id: str,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Publish an approved asset; prints a signed delivery URL (a fresh one each time)."""
    pub = _client(server, data_dir, api_key).json("POST", f"/v1/assets/{_id('asset', asset_id)}/publish")
    if as_json:
        _print_json(pub)
        return
    console.print(f"published asset {asset_id}; URL valid until {pub['expires_at']}:", highlight=False)
    out.print(pub["url"], highlight=False, soft_wrap=True)


def _review_command(decision: str, doc: str) -> Callable[..., None]:
    """``review approve`` and ``review reject``: the same command with another decision."""

    @friendly
    def command(
        asset_id: str,
        comment: Annotated[str, typer.Option("--comment", "-m", help="Why (kept with the asset).")] = "",
        server: Server = DEFAULT_SERVER,
        data_dir: DataDir = DEFAULT_DIR,
        api_key: ApiKey = None,
        as_json: AsJson = False,
    ) -> None:
        body = {"decision": decision, "comment": comment}
        path = f"/v1/assets/{_id('asset', asset_id)}/review"
        asset = _client(server, data_dir, api_key).json("POST", path, json=body)
        _print_json(asset) if as_json else console.print(f"asset {asset_id} {asset['review_state']}", highlight=False)

    command.__doc__ = doc
    return command


review_app.command("approve")(
    _review_command("approve", "Approve an asset pending review (reviewer or admin; not the key that made it).")
)
review_app.command("reject")(_review_command("reject", "Reject an asset pending review; it can never be published."))


@review_app.command("list")
@friendly
def review_list(
    project: Annotated[str | None, typer.Option("--project")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """The assets waiting for review, newest first (the web UI at /ui/ shows them with a player)."""
    _list_assets(server, data_dir, api_key, as_json, limit, project, campaign, "pending_review", "Pending review")


@tenant_app.command("show")
@friendly
def tenant_show(
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
) -> None:
    """Your tenant's settings, as JSON."""
    _print_json(_client(server, data_dir, api_key).json("GET", "/v1/tenant"))


@tenant_app.command("set")
@friendly
def tenant_set(
    allow_self_approval: Annotated[
        bool | None,
        typer.Option(
            "--allow-self-approval/--no-self-approval",
            help="Whether the key that submitted a job may approve its asset.",
        ),
    ] = None,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
) -> None:
    """Change your tenant's settings (admin); prints them."""
    body = {k: v for k, v in {"allow_self_approval": allow_self_approval}.items() if v is not None}
    if not body:
        raise CLIError("nothing to change: pass --allow-self-approval or --no-self-approval")
    _print_json(_client(server, data_dir, api_key).json("PATCH", "/v1/tenant", json=body))


@assets_app.command("download")
@friendly
def assets_download(
    asset_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the file.")],
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Download an asset's media."""
    if not output.parent.resolve().is_dir():
        raise CLIError(f"directory {str(output.parent)!r} does not exist")
    n = _client(server, data_dir, api_key).download(f"/v1/assets/{_id('asset', asset_id)}/content", output)
    if as_json:
        _print_json({"output": str(output), "bytes": n})
    else:
        console.print(f"wrote {output} ({n:,} bytes)", highlight=False)


@assets_app.command("upload")
@friendly
def assets_upload(
    path: Annotated[Path, typer.Argument(help="PNG, JPEG or WebP image.")],
    project: Annotated[str | None, typer.Option("--project")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Upload an image to use as a job input (template image layers)."""
    types = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
    media_type = types.get(path.suffix.lower())
    if media_type is None:
        raise CLIError(f"{str(path)!r}: expected a .png, .jpg or .webp file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    params = {k: v for k, v in {"project": project, "campaign": campaign}.items() if v}
    asset = _client(server, data_dir, api_key).json(
        "POST", "/v1/assets", content=data, params=params, headers={"Content-Type": media_type}
    )
    _print_json(asset) if as_json else console.print(f"uploaded asset {asset['id']}", highlight=False)


@keys_app.command("create")
@friendly
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Label for the key.")],
    role: Annotated[str, typer.Option("--role", help="admin, creator, reviewer, viewer or worker.")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="Tenant (operator admins only).")] = None,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Create a key; its secret is printed once."""
    body = {"name": name, "role": role, **({"tenant": tenant} if tenant else {})}
    key = _client(server, data_dir, api_key).json("POST", "/v1/keys", json=body)
    if as_json:
        _print_json(key)
    else:
        console.print(
            f"created {key['role']} key {key['id']} in tenant {key['tenant']}; secret (shown once):", highlight=False
        )
        out.print(key["secret"], highlight=False)


@keys_app.command("list")
@friendly
def keys_list(
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """The tenant's keys (never their secrets)."""
    page = _client(server, data_dir, api_key).json("GET", "/v1/keys", params={"limit": 200})
    if as_json:
        _print_json(page["items"])
    else:
        _table(page["items"], ["id", "name", "role", "tenant", "created_at", "revoked_at"], "API keys")


@keys_app.command("revoke")
@friendly
def keys_revoke(
    key_id: str,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Revoke a key."""
    key = _client(server, data_dir, api_key).json("DELETE", f"/v1/keys/{_id('key', key_id)}")
    _print_json(key) if as_json else console.print(f"revoked key {key_id}", highlight=False)


@models_app.command("list")
@friendly
def models_list(
    server: Annotated[
        str | None,
        typer.Option("--server", envvar="REELFOUNDRY_SERVER", help="Ask a server instead of the local portfolio."),
    ] = None,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Models this installation (or --server) can run."""
    if server:
        cards = _client(server, data_dir, api_key).json("GET", "/v1/models", params={"limit": 200})["items"]
    else:
        from reelfoundry.config import Settings
        from reelfoundry.portfolio.registry import Portfolio

        cards = [c.model_dump(mode="json") for c in Portfolio(Settings().extra_models).cards.values()]
    if as_json:
        _print_json(cards)
    else:
        _table(cards, ["id", "name", "backend", "task", "default_width", "default_height", "default_fps"], "Models")


@schema_app.command("export")
@friendly
def schema_export(
    directory: Annotated[Path, typer.Argument(help="Where to write <Name>.json files.")], as_json: AsJson = False
) -> None:
    """Write one JSON Schema file per canonical type."""
    from reelfoundry.schema import export_all

    try:
        paths = export_all(directory)
    except OSError as exc:
        raise CLIError(f"cannot write to {str(directory)!r}: {exc.strerror}") from None
    if as_json:
        _print_json([str(p) for p in paths])
    else:
        for p in paths:
            console.print(f"wrote {p}", highlight=False)


@train_app.command("builtin")
@friendly
def train_builtin(
    steps: Annotated[
        int, typer.Option("--steps", min=1, help="Optimiser steps in all (a resumed run counts on).")
    ] = 6000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=512)] = 24,
    out: Annotated[Path, typer.Option("--out", help="Run directory: checkpoint, log, loss curve, export.")] = Path(
        "runs/builtin"
    ),
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Train the built-in text-to-video model from scratch on this machine (resumes from --out)."""
    from reelfoundry.models.builtin import export
    from reelfoundry.training.builtin import TrainConfig, ema_pipeline, loss_curve, train

    cfg = TrainConfig(steps=steps, batch_size=batch_size, seed=seed)
    with Progress(
        TextColumn("[bold]train builtin"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=steps, info="")

        def report(p: Any) -> None:
            bar.update(task, completed=p.step, info=f"loss {p.loss:.4f}  {p.samples_per_s:.1f} clips/s")

        train(out, cfg, report)
    ckpt = out / "checkpoint.pt"
    loss_curve(ckpt, out / "loss.png")
    facts = _training_facts(ckpt)
    export(ema_pipeline(ckpt), out / "export", facts)
    console.print(
        f"[green]trained[/green] {facts['steps']} steps in {facts['wall_s'] / 3600:.2f} h; "
        f"pipeline in {out / 'export'}, loss curve {out / 'loss.png'}",
        highlight=False,
    )


def _training_facts(checkpoint: Path) -> dict[str, Any]:
    import torch

    from reelfoundry.hostinfo import describe

    state = torch.load(checkpoint, weights_only=False)
    return {
        "version": "1",
        "machine": describe(),
        "steps": state["step"],
        "wall_s": round(state["wall_s"], 1),
        "final_loss": float(sum(state["losses"][-200:]) / max(1, len(state["losses"][-200:]))),
        "train_config": state["config"],
        "data": "procedural: one shape of 8 colours x 4 shapes doing 6 motions over another colour, 16x64x64 at 8 fps, "
        "one start layout per motion jittered by a few pixels; 24 of 192 (colour, shape, motion) combinations held out",
        "default_steps": 20,
        "default_guidance_scale": 4.0,
        # Guidance only while σ ≥ 0.6 (the first 17 of 20 steps): below that it only overshoots the
        # object's colours into speckles (pipeline_builtin), and the unguided steps cost half.
        "call_kwargs": {"guidance_min_sigma": 0.6},
    }


@train_app.command("probe")
@friendly
def train_probe_cmd(
    steps: Annotated[int, typer.Option("--steps", min=1)] = 1500,
    out: Annotated[Path, typer.Option("--out", help="Where to write probe.safetensors and probe.json.")] = Path(
        "runs/probe"
    ),
    as_json: AsJson = False,
) -> None:
    """Train the attribute probe used by `eval builtin` (on procedural clips only)."""
    import json as _json

    from reelfoundry.evaluation.probe import accuracy, save_probe, train_probe

    out.mkdir(parents=True, exist_ok=True)
    with _progress() as bar:
        task = bar.add_task("train probe", total=steps)
        probe = train_probe(steps, progress=lambda step, loss: bar.update(task, completed=step))
    report = accuracy(probe)
    save_probe(probe, out / "probe.safetensors")
    (out / "probe.json").write_text(_json.dumps({"steps": steps, "heldout_accuracy": report.__dict__}, indent=2))
    _print_json(report.__dict__) if as_json else console.print(f"probe held-out accuracy: {report}", highlight=False)


@eval_app.command("builtin")
@friendly
def eval_builtin(
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Denoising steps (default: the card's).")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", min=0)] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N suite prompts.")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=64)] = 8,
    features: Annotated[
        Path | None, typer.Option("--features", help="TorchScript video feature extractor (e.g. I3D) for the FVD.")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Pipeline directory (default: the shipped one).")
    ] = None,
    record: Annotated[
        bool, typer.Option("--record", help="Write the results, with date and machine, into the model's card.json.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Run the standard test protocol on the built-in model: adherence, FVD-style distance, speed."""
    import time as _time

    import numpy as np
    import torch

    from reelfoundry.evaluation.probe import load_probe
    from reelfoundry.evaluation.protocol import TorchScriptFeatures, evaluate, suite
    from reelfoundry.models.builtin import WEIGHTS_DIR, builtin_card
    from reelfoundry.portfolio.backends.diffusers import DiffusersBackend

    started = _time.perf_counter()
    card = builtin_card(weights or WEIGHTS_DIR)
    if card is None:
        raise CLIError(f"no trained built-in model at {weights or WEIGHTS_DIR}: run `reelfoundry train builtin` first")
    probe_dir = Path(__file__).parents[1] / "evaluation" / "weights"
    probe = load_probe(probe_dir / "probe.safetensors")
    probe_accuracy = json.loads((probe_dir / "probe.json").read_text())["heldout_accuracy"]["all"]
    backend = DiffusersBackend(card)
    pipe = backend.pipeline()
    n_steps = steps or card.default_steps or 20
    g = guidance if guidance is not None else (card.default_guidance_scale or 4.0)

    def generate(prompts: list[str], seed: int) -> np.ndarray:
        out = pipe(
            prompts,
            num_inference_steps=n_steps,
            guidance_scale=g,
            generator=torch.Generator().manual_seed(seed),
            **backend.call_kwargs,  # the card's sampling options: evaluate what `generate` runs
        )
        return (np.asarray(out.frames) * 255).round().astype(np.uint8)

    generate(["a red circle moving left on a blue background"], 0)
    first = _time.perf_counter() - started
    prompts = suite()[:limit] if limit else suite()
    with _progress() as bar:
        task = bar.add_task("eval builtin", total=len(prompts))
        report = evaluate(
            generate,
            probe,
            probe_accuracy,
            prompts=prompts,
            batch=batch,
            steps=n_steps,
            guidance_scale=g,
            features=TorchScriptFeatures(features) if features else None,
            first_clip_seconds=first,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    if record:
        import datetime as _dt

        from reelfoundry.hostinfo import describe
        from reelfoundry.models.builtin import record_metrics

        stamp = {"date": _dt.date.today().isoformat(), "machine": describe()}
        record_metrics({**report.to_json(), **stamp}, weights or WEIGHTS_DIR)
    if as_json:
        _print_json(report.to_json())
    else:
        a = report.adherence
        console.print(
            f"held-out adherence: colour {a['colour']:.1%}, shape {a['shape']:.1%}, motion {a['motion']:.1%}; "
            f"FVD-style {report.fvd:.2f}; {report.seconds_per_clip:.2f} s/clip; probe accuracy "
            f"{report.probe_accuracy:.1%}",
            highlight=False,
        )


@app.command()
@friendly
def verify(
    file: Annotated[Path, typer.Argument(help="A media file with C2PA manifests (an MP4 from ReelFoundry).")],
    trust_anchor: Annotated[
        Path | None,
        typer.Option("--trust-anchor", help="PEM of the CA to trust (default: the data dir's development CA)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data dir whose development CA to trust (default: settings).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Check a file's C2PA provenance: the manifest chain, its actions and its validation state.

    Exit code 0 when the manifests are valid, 1 when they are not (or there are none).
    """
    from reelfoundry.config import Settings
    from reelfoundry.provenance.credentials import trust_anchor_path
    from reelfoundry.provenance.manifest import verify as verify_file

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    anchor = trust_anchor or trust_anchor_path(settings)
    if trust_anchor is not None and not trust_anchor.is_file():
        raise CLIError(f"no such trust anchor: {str(trust_anchor)!r}")
    report = verify_file(file, anchor.read_bytes() if anchor.is_file() else None)
    if as_json:
        _print_json(report.to_json())
    else:
        colour = "green" if report.valid else "red"
        who = report.claim_generator or "no manifest"
        console.print(f"[{colour}]{report.validation_state}[/{colour}]  {who}", highlight=False)
        for m in report.manifests:
            acts = ", ".join(str(a.get("action")) for a in m.actions) or "-"
            console.print(f"  {m.label}: {m.claim_generator}; actions {acts}", highlight=False)
        for f in report.failures:
            console.print(f"  [red]{f.get('code')}[/red]: {f.get('explanation', '')}", highlight=False)
    if not report.valid:
        raise typer.Exit(1)


@audit_app.command("verify")
@friendly
def audit_verify(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data dir of the server (default: settings).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Check that no audit-log entry was edited, inserted or deleted. Exit code 1 when one was."""
    from sqlalchemy.exc import SQLAlchemyError

    from reelfoundry.config import Settings
    from reelfoundry.store import Database, audit

    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    if settings.database_url is None and not (settings.data_dir / "reelfoundry.db").is_file():
        raise CLIError(f"no database in {str(settings.data_dir)!r}: start `reelfoundry serve` there first")
    db = Database(settings.resolved_database_url)
    try:
        audit.Sealer(db, 1.0).seal_now()  # entries written but not yet chained: chain them, then check all
        with db.read() as session:
            check = audit.verify(session)
    except SQLAlchemyError as exc:
        raise CLIError(f"cannot read the audit log: {str(exc).splitlines()[0]}") from None
    finally:
        db.dispose()
    if as_json:
        _print_json(
            {
                "ok": check.ok,
                "entries": check.entries,
                "head": check.head,
                "pending": check.pending,
                "problems": check.problems,
            }
        )
    elif check.ok:
        console.print(f"[green]intact[/green]: {check.entries} entries, head {check.head}", highlight=False)
    else:
        for problem in check.problems:
            console.print(f"[red]{problem}[/red]", highlight=False)
    if not check.ok:
        raise typer.Exit(1)


@app.command()
@friendly
def usage(
    by: Annotated[
        str | None, typer.Option("--by", help="Comma-separated: tenant, project, campaign, model, device, day.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start date (YYYY-MM-DD) or datetime.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End date (inclusive) or datetime.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Draw spend per day by the first group as a PNG.")
    ] = None,
    server: Server = DEFAULT_SERVER,
    data_dir: DataDir = DEFAULT_DIR,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """What jobs cost, in money, energy and carbon, with cost per video. Reads the server, or the data dir
    directly when no server answers there."""
    from reelfoundry.finops import usage as report

    keys = report.parse_by(by)
    if chart is not None and not chart.parent.resolve().is_dir():
        raise CLIError(f"directory {str(chart.parent)!r} does not exist")
    params = {k: v for k, v in {"by": by, "from": start, "to": end}.items() if v}
    span = report.parse_when("from", start, end=False), report.parse_when("to", end, end=True)
    rows = _usage_rows(server, data_dir, api_key, params, keys, *span)
    if chart is not None:
        first = keys[0] if keys else "model"
        daily_keys = [first, "day"] if first != "day" else ["day"]
        daily = _usage_rows(server, data_dir, api_key, {**params, "by": ",".join(daily_keys)}, daily_keys, *span)
        from reelfoundry.finops.chart import spend_chart

        spend_chart(daily, first, chart)
        console.print(f"wrote {chart}", highlight=False)
    if as_json:
        _print_json(rows)
    elif as_csv:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif chart is None or rows:
        figures = ["total_usd", "energy_kwh", "co2e_kg", "cost_per_video_usd", "cost_per_approved_video_usd"]
        from decimal import Decimal

        from reelfoundry.finops.meter import significant

        def short(value: Any) -> str | None:  # exact figures are in --json and --csv
            return None if value is None else significant(Decimal(str(value)), 4)

        shown = [{**r, **{k: short(r.get(k)) for k in figures}} for r in rows]
        _table(shown, [*keys, "jobs", "video_seconds", *figures], "Usage (--json for exact figures)")


def _usage_rows(
    server: str,
    data_dir: Path,
    api_key: str | None,
    params: dict[str, str],
    keys: list[str],
    start: Any,
    end: Any,
) -> list[dict[str, Any]]:
    """Rows from the server, or from the data dir's database when no server answers."""
    try:
        client = _client(server, data_dir, api_key)
        return list(client.json("GET", "/v1/usage", params=params)["rows"])
    except CLIError as exc:
        if "cannot reach" not in exc.detail:
            raise
    from reelfoundry.config import Settings
    from reelfoundry.finops import usage as report
    from reelfoundry.store import Database

    settings = Settings(data_dir=data_dir)
    if settings.database_url is None and not (data_dir / "reelfoundry.db").is_file():
        raise CLIError(f"no server at {server} and no database in {str(data_dir)!r}", 1)
    console.print(f"[dim]no server at {server}; reading {settings.data_dir} directly[/dim]", highlight=False)
    db = Database(settings.resolved_database_url)
    try:
        with db.read() as session:
            return report.to_json(report.report(session, tenant_id=None, by=keys, start=start, end=end))
    finally:
        db.dispose()


@app.command()
@friendly
def prices(
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="gpu, cpu, egress, storage, power, pue, carbon, onprem or video_api."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The price catalog the meter uses: every row with its source and date."""
    from reelfoundry.finops.catalog import Catalog, load_catalog

    if kind is not None and kind not in Catalog.SECTIONS:
        raise CLIError(f"--kind must be one of {', '.join(Catalog.SECTIONS)}, got {kind!r}")
    catalog = load_catalog()
    rows = catalog.rows(kind)
    if as_json:
        _print_json({"version": catalog.version, "currency": catalog.currency, "rows": rows})
        return
    for section in [kind] if kind else Catalog.SECTIONS:
        part = [r for r in rows if r["kind"] == section]
        value = next(
            k
            for k in (
                "usd_per_device_hour",
                "usd_per_gb",
                "usd_per_gb_month",
                "watts",
                "value",
                "g_co2e_per_kwh",
                "usd_per_second",
            )
            if k in part[0]
        )
        keys = [k for k in ("provider", "device", "pricing_model", "region", "tier", "item", "model") if k in part[0]]
        _table(part, [*keys, value, "as_of"], f"{section} (catalog {catalog.version}; sources: --json)")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app(prog_name="reelfoundry")
    sys.exit(0)
