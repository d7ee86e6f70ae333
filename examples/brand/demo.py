"""The brand demo's Python half, through the platform's API: "acme coral" clips are uploaded as brand material,
described, approved by a reviewer and collected; ``POST /v1/finetunes`` trains a LoRA of the built-in model on the
collection and registers the model ``acme-coral``.

    python examples/brand/demo.py --server URL --api-key KEY [--clips 96] [--steps 120] [--rank 8] [--lr 2e-3]

(``run.sh`` starts a server on the data dir and calls this.) The clips are drawn here, deterministically
(``training.data.brand_samples``): they stand for a brand's own footage. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from reelfoundry.client import Client
from reelfoundry.media import encode_mp4
from reelfoundry.training.data import BrandColour, brand_samples

BRAND = BrandColour.from_hex("acme coral", "#FF6F61")
MODEL_ID = "acme-coral"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--clips", type=int, default=96)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.api_key}"}
    with Client(args.server, api_key=args.api_key) as admin, httpx.Client(base_url=args.server, timeout=60) as http:
        # 1. Upload the brand's clips (MP4), described with what they show
        samples = brand_samples(BRAND, seed=17, count=args.clips)
        uploaded = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, sample in enumerate(samples):
                path = Path(tmp) / f"clip{i}.mp4"
                encode_mp4(iter(sample.clip), 8, path)
                r = http.post(
                    "/v1/assets",
                    content=path.read_bytes(),
                    headers={**headers, "Content-Type": "video/mp4"},
                    params={"campaign": "acme-brand"},
                )
                r.raise_for_status()
                asset_id = r.json()["id"]
                admin.assets.update(asset_id, description=sample.caption, brand="acme", tags=["acme", "brand"])
                uploaded.append(asset_id)
        print(f"uploaded {len(uploaded)} clips in {BRAND.name} {BRAND.rgb}, e.g. {samples[0].caption!r}")

        # 2. A reviewer approves them (the uploader may not approve its own), and they go into a collection
        reviewer = admin.keys.create(f"brand-reviewer-{int(time.time())}", "reviewer").secret
        with Client(args.server, api_key=reviewer) as review:
            for asset_id in uploaded:
                review.assets.review(asset_id, "approve", "acme brand footage")
        collection = admin.collections.create(f"acme-brand-{int(time.time())}", "approved acme coral footage")
        admin.collections.add(collection.id, uploaded)
        print(f"approved and collected in {collection.name} ({collection.id})")

        # 3. Fine-tune (the job's progress as it runs)
        finetune = admin.finetunes.create(
            MODEL_ID, collection.id, base="builtin", rank=args.rank, steps=args.steps, lr=args.lr
        )
        started, last = time.perf_counter(), -1
        while (job := admin.jobs.get(finetune.job_id or "")).state not in ("succeeded", "failed", "cancelled"):
            step = int(job.progress * args.steps)
            if step // 10 != last // 10:
                print(f"  fine-tune step {step}/{args.steps}  {time.perf_counter() - started:.0f} s", flush=True)
                last = step
            time.sleep(2)
        done = admin.finetunes.get(finetune.id)
        print(f"fine-tune {done.state} in {time.perf_counter() - started:.0f} s; adapter sha256 {done.adapter_sha256}")
        if done.state != "succeeded":
            raise SystemExit(f"the fine-tune ended {done.state}: {done.error}")
        print(f"model {MODEL_ID} registered (trained on {len(done.assets_used)} approved clips)")


if __name__ == "__main__":
    main()
