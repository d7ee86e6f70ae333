"""Admission throughput with 1, 2 and 4 API processes (``serve --role api --workers N``) on PostgreSQL.

Each N gets a fresh database and its own server; against the same server, in the same run, the baseline
GET /healthz (no auth, no database) and then POST /v1/jobs with ``--clients`` keep-alive connections (the
minimal HTTP client of ``benchmarks/admission.py``). No engine runs (an API role has none), rate limits are off.

    python benchmarks/admission_scaleout.py [--requests 2000] [--clients 50] [--processes 1 2 4] [--pg URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _harness import describe, free_port, wait_ready
from admission import _load
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def measure(data_dir: Path, database_url: str, processes: int, total: int, clients: int) -> tuple[float, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFOUNDRY_")}
    env.update(REELFOUNDRY_DATABASE_URL=database_url, REELFOUNDRY_RATE_LIMIT_SUBMIT="", REELFOUNDRY_RATE_LIMIT_READ="")
    cmd = [sys.executable, "-m", "reelfoundry", "serve", "--role", "api", "--workers", str(processes)]
    cmd += ["--port", str(port), "--data-dir", str(data_dir), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        time.sleep(1.0 * processes)  # every process up (uvicorn answers as soon as the first one is)
        key = (data_dir / "admin.key").read_text().strip()
        asyncio.run(_load(url, key, "POST", "/v1/jobs", 200, clients))  # warm-up, reaches every process
        base_rate, base_lat, _ = asyncio.run(_load(url, key, "GET", "/healthz", total, clients))
        rate, lat, errors = asyncio.run(_load(url, key, "POST", "/v1/jobs", total, clients))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    print(f"[{processes} API processes] baseline GET /healthz : {base_rate:7.1f} req/s   {describe(base_lat)}")
    print(f"[{processes} API processes] POST /v1/jobs         : {rate:7.1f} jobs/s  {describe(lat)}  errors {errors}")
    return base_rate, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"CPU cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.1f}")
    results = {}
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.processes:
            name = f"rf_bench_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
                results[n] = measure(Path(tmp) / f"api{n}", url, n, args.requests, args.clients)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    one = results[args.processes[0]][1]
    for n, (base, rate) in results.items():
        print(
            f"{n} processes: {rate:7.1f} jobs/s = {rate / one:.2f}x of {args.processes[0]}; /healthz {base:7.1f} req/s"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
