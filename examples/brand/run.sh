#!/usr/bin/env bash
# Brand demo, end to end on a CPU: "acme coral" (#FF6F61) clips uploaded as brand material, approved, collected,
# a LoRA fine-tune of the built-in model on the collection (POST /v1/finetunes), the model acme-coral registered,
# then one clip generated with it, offline, on the same data dir.
#
#   bash examples/brand/run.sh            (data dir: $REELFOUNDRY_DATA_DIR, default ./reelfoundry-data)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export REELFOUNDRY_DATA_DIR="${REELFOUNDRY_DATA_DIR:-./reelfoundry-data}"
mkdir -p "$REELFOUNDRY_DATA_DIR"
port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$REELFOUNDRY_DATA_DIR/brand-demo-server.log"

# 1. A server on the data dir (its evaluation of the new model runs in the background; not needed here).
REELFOUNDRY_FINETUNE_EVALUATE=false reelfoundry serve --port "$port" --data-dir "$REELFOUNDRY_DATA_DIR" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
    kill -0 "$server" 2>/dev/null || { echo "the server did not start; see $log" >&2; exit 1; }
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
key="$(cat "$REELFOUNDRY_DATA_DIR/admin.key")"

# 2. Upload, describe, approve, collect, fine-tune, register.
time python "$here/demo.py" --server "http://127.0.0.1:$port" --api-key "$key" "$@"
kill "$server"; wait "$server" 2>/dev/null || true; trap - EXIT

# 3. The new model, offline, on the same data dir.
reelfoundry generate "an acme coral star moving up on a black background" --model acme-coral --seed 3 \
    -o "$REELFOUNDRY_DATA_DIR/acme-coral.mp4"
echo "measure it: python benchmarks/brand_lora.py --adapter $REELFOUNDRY_DATA_DIR/adapters/<sha256>"
