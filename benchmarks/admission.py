"""Admission throughput: POST /v1/jobs with 50 concurrent clients, on SQLite and PostgreSQL.

Baseline, measured in the same run against the same server: GET /healthz (no
auth, no database), so the ratio shows what auth + validation + the job write cost.
The server runs with --worker-slots 0 so rendering does not compete for the CPU.

    python benchmarks/admission.py [--requests 2000] [--clients 50] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from _harness import describe, serve
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


async def _request_loop(host: str, port: int, raw: bytes, counter: list[int], latencies: list[float]) -> int:
    """One keep-alive connection sending ``raw`` until the shared counter runs out; returns errors."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while counter[0] > 0:
            counter[0] -= 1
            t0 = time.perf_counter()
            writer.write(raw)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if not status_line.split(b" ")[1].startswith(b"2"):
                errors += 1
    finally:
        writer.close()
    return errors


async def _load(url: str, key: str, method: str, path: str, total: int, clients: int) -> tuple[float, list[float], int]:
    """Drive ``clients`` keep-alive connections with a minimal HTTP/1.1 client (cheap on CPU,
    so the load generator steals as little as possible from the server on a 2-core machine)."""
    parsed = httpx.URL(url)
    body = json.dumps({"prompt": "Welcome, {name}", "model": "template", "priority": "batch"}).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {parsed.host}\r\nAuthorization: Bearer {key}\r\n"
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    raw = head.encode() + b"\r\n" + (body if method == "POST" else b"")
    latencies: list[float] = []
    counter = [total]
    start = time.perf_counter()
    errors = await asyncio.gather(
        *(_request_loop(parsed.host, parsed.port or 80, raw, counter, latencies) for _ in range(clients))
    )
    elapsed = time.perf_counter() - start
    return total / elapsed, latencies, sum(errors)


def run(name: str, data_dir: Path, total: int, clients: int, **settings: str) -> None:
    # One key submitting thousands a second is what per-key rate limits exist to stop: they are off here,
    # so this measures admission itself (benchmarks/rate_limits.py measures what counting costs).
    limits = {"rate_limit_submit": "", "rate_limit_read": ""}
    with serve(data_dir, worker_slots="0", **limits, **settings) as (url, key):
        asyncio.run(_load(url, key, "POST", "/v1/jobs", 200, clients))  # warm-up
        base_rate, base_lat, _ = asyncio.run(_load(url, key, "GET", "/healthz", total, clients))
        rate, lat, errors = asyncio.run(_load(url, key, "POST", "/v1/jobs", total, clients))
    print(f"[{name}] baseline GET /healthz : {base_rate:7.1f} req/s   {describe(base_lat)}")
    print(f"[{name}] POST /v1/jobs         : {rate:7.1f} jobs/s  {describe(lat)}  errors {errors}")
    print(f"[{name}] admission / baseline throughput ratio: {rate / base_rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", Path(tmp) / "sqlite", args.requests, args.clients)
        admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
        name = f"rf_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
            run("postgresql", Path(tmp) / "pg", args.requests, args.clients, database_url=url)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
