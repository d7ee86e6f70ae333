#!/usr/bin/env bash
# Brand demo, end to end on a CPU: "acme coral" (#FF6F61) clips → LoRA fine-tune → model acme-coral →
# measured against the base model → one clip generated with it.
#
# STUB until the collections and finetune APIs land: demo.py draws the clips and calls the fine-tune
# function directly instead of upload → approve → collect → POST /v1/finetunes, and registers the model
# through a models file (REELFOUNDRY_MODELS_FILE) instead of the portfolio API.
#
#   bash examples/brand/run.sh [OUT_DIR]        (default: ./brand-demo)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-brand-demo}"
mkdir -p "$out"
time python "$here/demo.py" "$out"
python "$here/../../benchmarks/brand_lora.py" --adapter "$out/acme-coral"
REELFOUNDRY_MODELS_FILE="$out/models.json" reelfoundry generate \
  "an acme coral star moving up on a black background" --model acme-coral --seed 3 -o "$out/acme-coral.mp4"
