"""``reelfoundry generate``: render a video on this machine; and the generation options ``submit`` shares."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, common_options, console, parse_size, print_json, progress, state

if TYPE_CHECKING:
    from reelfoundry.schema import VideoRequest

ModelOpt = Annotated[str, typer.Option("--model", help="Model id, or auto.")]
FramesOpt = Annotated[int | None, typer.Option("--frames", help="Number of frames.")]
FpsOpt = Annotated[int | None, typer.Option("--fps", help="Frames per second.")]
SizeOpt = Annotated[str | None, typer.Option("--size", help="WIDTHxHEIGHT, e.g. 640x360.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed.")]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="Denoising steps (diffusion models).")]
GuidanceOpt = Annotated[float | None, typer.Option("--guidance", help="Guidance scale (diffusion models).")]
TemplateOpt = Annotated[Path | None, typer.Option("--template", help="Template spec JSON file.")]
NegativeOpt = Annotated[str | None, typer.Option("--negative", help="What the video must not show.")]


def user_data_dir() -> Path:
    """The per-user data directory ``generate`` uses by default (platformdirs' user data dir)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("reelfoundry", appauthor=False))


def build_request(
    prompt: str,
    *,
    model: str,
    frames: int | None,
    fps: int | None,
    size: str | None,
    seed: int | None,
    steps: int | None,
    guidance: float | None,
    template: Path | None,
    negative: str | None,
    **extra: Any,
) -> VideoRequest:
    """A VideoRequest from the generation options (a ValidationError or CLIError for bad input)."""
    from reelfoundry.schema import TemplateSpec, VideoRequest

    spec = None
    if template is not None:
        try:
            spec = TemplateSpec.model_validate_json(template.read_text())
        except OSError as exc:
            raise CLIError(f"cannot read template {str(template)!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CLIError(f"template {str(template)!r} is not UTF-8 JSON") from None
    width, height = parse_size(size)
    return VideoRequest(
        prompt=prompt,
        negative_prompt=negative,
        model=model,
        num_frames=frames,
        fps=fps,
        width=width,
        height=height,
        seed=seed,
        steps=steps,
        guidance_scale=guidance,
        template=spec,
        **extra,
    )


def _with_stored_models(portfolio: Any, settings: Any) -> None:
    """Models a server on this data dir registered (fine-tunes, cards added over the API) join the portfolio: the
    data dir's database is read when it has one (nothing is created)."""
    from reelfoundry.store import Database

    if settings.database_url is None and not (settings.data_dir / "reelfoundry.db").is_file():
        return
    db = Database(settings.resolved_database_url)
    try:
        portfolio.refresh(db, force=True)
    finally:
        db.dispose()


def _with_adapter(card: Any, settings: Any) -> Any:
    """A fine-tuned model's card with its adapter copied from the data dir's store into its cache."""
    from reelfoundry.assets import adapters
    from reelfoundry.assets.stores import make_store

    localised, adapter = adapters.localise(card, settings.data_dir / "adapters")
    if adapter.files:
        error = adapters.fetch(make_store(settings), adapter, card.id)
        if error is not None:
            raise CLIError(f"model {card.id}: {error.detail}")
    return localised


@common_options("data_dir")
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the MP4.")] = Path("out.mp4"),
    model: ModelOpt = "auto",
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    size: SizeOpt = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    steps: StepsOpt = None,
    guidance: GuidanceOpt = None,
    template: TemplateOpt = None,
    negative: NegativeOpt = None,
    inputs: Annotated[
        list[Path] | None, typer.Option("--input", help="Input image for template image layers (repeatable).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Generate a video on this machine, no server needed (data dir: your user data directory)."""
    if output.suffix.lower() != ".mp4":
        raise CLIError(f"-o must name an .mp4 file, got {str(output)!r}")
    if not output.parent.resolve().is_dir():
        raise CLIError(f"directory {str(output.parent)!r} does not exist")
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
    )
    for path in inputs or []:
        if not path.is_file():
            raise CLIError(f"--input {str(path)!r} is not a file")
    # Bad options fail above in a blink; the machinery (models, encoder, signing) is imported from here on.
    from reelfoundry.config import Settings
    from reelfoundry.execution.produce import produce
    from reelfoundry.finops.catalog import load_catalog
    from reelfoundry.governance.policy import ContentPolicy
    from reelfoundry.portfolio.registry import Portfolio
    from reelfoundry.provenance.credentials import configured_credentials
    from reelfoundry.provenance.manifest import signing_for
    from reelfoundry.routing import plan
    from reelfoundry.routing.state import local_state, work_params
    from reelfoundry.store.jobs import request_hash

    env_dir = os.environ.get("REELFOUNDRY_DATA_DIR")
    data_dir = state().data_dir or (Path(env_dir) if env_dir else None) or user_data_dir()
    settings = Settings(data_dir=data_dir)
    ContentPolicy.from_settings(settings).check(request)
    if request.seed is None:
        request = request.model_copy(update={"seed": secrets.randbelow(2**32)})
    portfolio = Portfolio.from_settings(settings)
    _with_stored_models(portfolio, settings)
    route = plan(request, portfolio.cards, local_state(settings, load_catalog()))
    card = _with_adapter(portfolio.card(route.chosen), settings)
    resolved = route.candidate(card.id).params
    assert resolved is not None
    params = work_params(request, resolved, tuple(p.resolve() for p in inputs or []))
    backend = portfolio.backend(card)
    backend.check_inputs(params)  # before the data dir's signing credentials are made: bad input leaves nothing
    console.print(f"[dim]data dir (signing credentials): {data_dir}[/dim]", highlight=False)
    if request.model == "auto":
        console.print(f"[dim]model: {route.reason}[/dim]", highlight=False)
    # Signed like every output of the platform; `reelfoundry verify` trusts the signer of this data dir.
    request_sha = request_hash(request.model_dump(mode="json"))
    signing = signing_for(configured_credentials(settings), card, None, request_sha)
    with progress() as bar:
        task = bar.add_task(f"{card.id}", total=params.num_frames)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = produce(backend, params, output, step, signing)
        result.poster.unlink(missing_ok=True)
    info = {"output": str(output), "model": card.id, "route": route.reason, **result.media.__dict__}
    if as_json:
        print_json(info)
    else:
        m = result.media
        console.print(
            f"[green]wrote[/green] {output} — {m.num_frames} frames, {m.width}×{m.height}, {m.fps:g} fps, "
            f"{m.duration_s:.2f} s, {m.bytes:,} bytes ({card.id})",
            highlight=False,
        )
