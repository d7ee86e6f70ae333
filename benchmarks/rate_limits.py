"""What per-key rate limiting costs a request: counters off, in memory, and in Redis.

Baseline, measured in the same run: the same server build with rate limits off. Each mode runs its own
server (--worker-slots 0) and answers GET /v1/jobs?limit=1 (authenticated, one indexed read) for 50
concurrent clients; limits are set high enough that nothing is refused, so the ratio is the counting
alone (a moving-window hit plus its window stats per request).

    python benchmarks/rate_limits.py [--requests 3000] [--clients 50] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from _harness import describe, serve
from admission import _load


def measure(data_dir: Path, total: int, clients: int, **settings: str) -> tuple[float, list[float]]:
    with serve(data_dir, worker_slots="0", **settings) as (url, key):
        asyncio.run(_load(url, key, "GET", "/v1/jobs?limit=1", 200, clients))  # warm-up
        rate, latencies, errors = asyncio.run(_load(url, key, "GET", "/v1/jobs?limit=1", total, clients))
    if errors:
        raise SystemExit(f"{errors} requests failed (were limits too low?)")
    return rate, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    high = "1000000/minute"
    modes = {
        "off": {"rate_limit_submit": "", "rate_limit_read": ""},
        "memory": {"rate_limit_submit": high, "rate_limit_read": high},
        "redis": {"rate_limit_submit": high, "rate_limit_read": high, "rate_limit_storage_url": args.redis},
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings in modes.items():
            results[name] = measure(Path(tmp) / name, args.requests, args.clients, **settings)
            print(f"[{name:6}] GET /v1/jobs?limit=1: {results[name][0]:7.1f} req/s  {describe(results[name][1])}")
    base = results["off"][0]
    for name in ("memory", "redis"):
        print(f"rate limits in {name} / off throughput ratio: {results[name][0] / base:.2f}")


if __name__ == "__main__":
    main()
