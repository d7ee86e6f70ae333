"""``reelfoundry train builtin|probe`` and ``reelfoundry eval builtin|model``: train and evaluate models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, console, friendly
from reelfoundry.cli.common import print_json as _print_json
from reelfoundry.cli.common import progress as _progress
from reelfoundry.cli.evaluate import eval_model

train_app = typer.Typer(help="Train models.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate models with the standard test protocol.", no_args_is_help=True)
eval_app.command("model")(eval_model)


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
