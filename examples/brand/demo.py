"""The brand demo's Python half: "acme coral" clips → LoRA fine-tune → a portfolio card named acme-coral.

Until the finetune job and the collections API exist (issue 17's plumbing), this stands in for
upload → approve → collect → ``POST /v1/finetunes``: it draws the approved clips itself, calls the
same :func:`train_lora` the job will call, and registers the model by writing a models file that
``REELFOUNDRY_MODELS_FILE`` names. Nothing is downloaded; the adapter is made here, not shipped.

    python examples/brand/demo.py OUT_DIR [--clips 96] [--steps 120] [--rank 8] [--lr 2e-3] [--batch-size 6]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from reelfoundry.models.builtin import builtin_card
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend
from reelfoundry.training.data import BrandColour, brand_samples
from reelfoundry.training.lora import LoraSettings, lora_card, train_lora

BRAND = BrandColour.from_hex("acme coral", "#FF6F61")
MODEL_ID = "acme-coral"
#: the defaults, which benchmarks/brand_lora.py found meet the bar
SETTINGS = LoraSettings()
CLIPS = 96


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--clips", type=int, default=CLIPS)
    parser.add_argument("--steps", type=int, default=SETTINGS.steps)
    parser.add_argument("--rank", type=int, default=SETTINGS.rank)
    parser.add_argument("--lr", type=float, default=SETTINGS.lr)
    parser.add_argument("--batch-size", type=int, default=SETTINGS.batch_size)
    args = parser.parse_args()
    base = builtin_card()
    if base is None:
        raise SystemExit("the built-in model's weights are not installed")
    adapter_dir = args.out / MODEL_ID
    if adapter_dir.exists():
        raise SystemExit(f"{adapter_dir} exists already: remove it or choose another output directory")

    # 1. The brand's clips (stand-in for the approved, training-allowed clips of a collection)
    samples = brand_samples(BRAND, seed=17, count=args.clips)
    print(f"{len(samples)} clips in {BRAND.name} {BRAND.rgb}, e.g. {samples[0].caption!r}")

    # 2. Fine-tune (timed), with progress
    settings = LoraSettings(rank=args.rank, steps=args.steps, lr=args.lr, batch_size=args.batch_size)
    pipe = DiffusersBackend(base).pipeline()
    started = time.perf_counter()

    def progress(step: int, total: int, loss: float) -> bool:
        if step % 10 == 0 or step == total:
            print(f"  step {step}/{total}  loss {loss:.4f}  {time.perf_counter() - started:.0f} s", flush=True)
        return True

    base_sha = base.options["sha256"]["transformer/diffusion_pytorch_model.safetensors"]
    print(f"fine-tuning on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    trained = train_lora(pipe, [(s.clip, s.caption) for s in samples], adapter_dir, settings, progress, base_sha)
    assert trained is not None
    print(f"fine-tuned in {time.perf_counter() - started:.0f} s (load average {os.getloadavg()[0]:.2f})")

    # 3. Register: a models file with the base's card plus the adapter, pinned by its sha256
    card = lora_card(base, MODEL_ID, trained.path, trained.sha256, name="Built-in DiT + acme coral LoRA")
    models = args.out / "models.json"
    models.write_text(json.dumps({"models": [card.model_dump(mode="json", exclude_none=True)]}, indent=2) + "\n")
    print(f"adapter {trained.path} sha256 {trained.sha256}\nmodels file {models}")


if __name__ == "__main__":
    main()
