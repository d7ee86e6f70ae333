"""The shipped built-in model: where its weights live, its model card, and how a trained run is exported.

``weights/builtin/`` (inside the package) holds the pipeline as ``save_pretrained``
writes it plus ``card.json``: the ModelCard fields, training facts (data, steps, wall
time), evaluation metrics and the sha256 of every weight file, checked on load.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from reelfoundry.media.probe import file_digest
from reelfoundry.schema import ModelCard, Quality, Resources, Speed


def _sha256(path: Path) -> str:
    return file_digest(path)[1]


WEIGHTS_DIR = Path(__file__).parent / "weights" / "builtin"
CARD_FILE = "card.json"
PIPELINE_CLASS = "reelfoundry.models.pipeline_builtin:BuiltinVideoPipeline"
#: card.json keys that describe how the weights were made (ModelCard.training).
TRAINING_FACTS = ("data", "steps", "wall_s", "final_loss", "train_config", "machine", "notes")


#: What it needs from a worker (measured 2026-12-07 on the CPU below: 0.64 GiB resident with the MiniLM encoder and
#: torch loaded, 0.8 GiB more for a batch of 16: 0.05 GiB a job, 0.8 per million pixel-frames). It runs on every
#: device class, and up to 16 compatible jobs run as one batch (one forward pass per step for all). On 2 CPU cores
#: a batch of 16 took 1.2× as long as 16 clips one after another (compute-bound; the card's range caps
#: batch_marginal at 1.0); on a GPU, which the tiny model leaves mostly idle, far less (not measured here).
RESOURCES = Resources(weights_gib=0.65, activation_gib_per_mpf=0.8, max_batch=16, batch_marginal=1.0)
#: Seconds per device class, where measured: 16×64×64 at 20 steps, guidance 4 above σ 0.6, is 1.55 s in the
#: pipeline (0.075 s a step; 1.61 s with the MP4 and poster), the least of five on a shared machine.
SPEED = {
    "cpu": Speed(
        s_per_step_mpf=1.15,
        overhead_s=0.1,
        source="measured 2026-12-07, Intel Xeon, 2 vCPU (shared), torch 2.13.0+cpu, float32",
    )
}


def builtin_card(weights_dir: Path = WEIGHTS_DIR) -> ModelCard | None:
    """The built-in model's card, or None when no trained weights are installed."""
    path = weights_dir / CARD_FILE
    if not path.is_file():
        return None
    facts = json.loads(path.read_text())
    return ModelCard(
        id="builtin",
        name="ReelFoundry built-in DiT",
        version=str(facts.get("version", "1")),
        backend="diffusers",
        description=(
            "A small diffusion transformer trained here on procedural clips: one coloured shape moving over a "
            "background. Runs on a laptop CPU in seconds."
        ),
        default_num_frames=16,
        default_fps=8,
        default_width=64,
        default_height=64,
        max_num_frames=16,
        max_width=64,
        max_height=64,
        frame_multiple=16,
        default_steps=int(facts.get("default_steps", 20)),
        default_guidance_scale=float(facts.get("default_guidance_scale", 4.0)),
        license="Apache-2.0",
        options={
            "path": str(weights_dir),
            "pipeline_class": PIPELINE_CLASS,
            "size_multiple": 64,
            "sha256": facts["sha256"],
            "call_kwargs": dict(facts.get("call_kwargs", {})),
        },
        training={k: facts[k] for k in TRAINING_FACTS if k in facts},
        metrics=facts.get("metrics", {}),
        quality=eval_quality(facts.get("metrics", {})),
        resources=RESOURCES,
        speed=SPEED,
    )


def eval_quality(metrics: dict[str, Any]) -> Quality | None:
    """The router's quality score from ``reelfoundry eval``: mean prompt adherence (colour, motion, shape) on the
    model's own domain, as the probe judged it; None before the model is evaluated."""
    adherence = metrics.get("adherence")
    if not isinstance(adherence, dict) or not adherence:
        return None
    score = sum(float(v) for v in adherence.values()) / len(adherence)
    when = metrics.get("date")
    return Quality(
        score=round(min(1.0, max(0.0, score)), 3),
        source=f"reelfoundry eval: mean prompt adherence ({', '.join(sorted(adherence))}) on procedural clips",
        measured_at=date.fromisoformat(when) if isinstance(when, str) else None,
    )


def record_metrics(metrics: dict[str, Any], weights_dir: Path = WEIGHTS_DIR) -> Path:
    """Write evaluation results into the card of the pipeline in ``weights_dir`` (weights untouched)."""
    path = weights_dir / CARD_FILE
    facts = json.loads(path.read_text())
    facts["metrics"] = metrics
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def export(pipe: Any, out: Path, facts: dict[str, Any], weights_dtype: str = "float16") -> Path:
    """Save a trained pipeline to ``out`` with a card.json holding ``facts`` and the weights' sha256.

    Weights are stored as ``weights_dtype`` (float16 halves the package; the backend loads
    them into float32 on CPU, bfloat16 on CUDA). ``pipe`` itself is left as it was.
    """
    import copy

    import torch

    out.mkdir(parents=True, exist_ok=True)
    stored = copy.copy(pipe)
    # nn.Module.to, not ModelMixin.to: the latter warns about fp32-kept modules this model does not have.
    transformer = torch.nn.Module.to(copy.deepcopy(pipe.transformer), getattr(torch, weights_dtype))
    stored.register_modules(transformer=transformer)
    stored.save_pretrained(str(out))
    hashes = {
        str(p.relative_to(out)): _sha256(p)
        for p in sorted(out.rglob("*"))
        if p.is_file()
        and p.name != CARD_FILE
        and p.suffix in (".safetensors", ".json")
        and p.name != "model_index.json"
    }
    hashes["model_index.json"] = _sha256(out / "model_index.json")
    card = {**facts, "weights_dtype": weights_dtype, "sha256": hashes}
    (out / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return out
