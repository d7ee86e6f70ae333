"""Soak: template jobs through two API processes, two schedulers and two workers on PostgreSQL + SeaweedFS, with faults.

The cluster, all real ``reelfoundry serve`` processes on this machine:

* ``--role api --workers 2``: two API processes on one port (admission only);
* two ``--role scheduler`` nodes, ``REELFOUNDRY_WORKER_SLOTS=1`` each: one is elected and runs its slot, the
  other stands by (its slot idle) until it takes over;
* two ``--role worker`` nodes, one slot each (they claim jobs as an ``all`` node's engine does);
* state in a fresh PostgreSQL database (dropped at the end), media in a SeaweedFS bucket the script starts
  (``tests/support/seaweed.py``), reached as ``REELFOUNDRY_STORAGE_URL=s3://bucket/prefix``.

Jobs are small template renders (6 frames at 160x90) so the machinery, not rendering, is what is measured.
Faults, each once, triggered by how many jobs are final: at 20 % a worker node is SIGKILLed (its process group:
the engine and the worker processes it spawned); at 40 % the leading scheduler (found through /readyz) is
SIGKILLed; at 60 % SeaweedFS is stopped for 10 s and started again on the same directory and ports. The killed
nodes are not restarted. Then it waits (bounded) until every job is final and checks, in the database and the
bucket: jobs lost (submitted, but missing or not final), jobs failed (by error type), assets and cost records
duplicated (more than one per job), half-written objects (objects under the prefix that no asset row names, and
``.part``/``.tmp`` files or leftover media in the nodes' data dirs), and throughput.

    python benchmarks/soak.py [--jobs 1000] [--clients 4] [--no-faults] [--pg URL]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _harness import free_port, wait_ready
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
from seaweed import BUCKET, SeaweedFS

FINAL = ("succeeded", "failed", "cancelled")


class Node:
    """One ``serve`` process in a session (and process group) of its own, so a kill takes its workers too."""

    def __init__(self, name: str, data_dir: Path, env: dict[str, str], args: list[str]) -> None:
        self.name, self.data_dir, self.port = name, data_dir, free_port()
        cmd = [sys.executable, "-m", "reelfoundry", "serve", *args, "--port", str(self.port)]
        cmd += ["--data-dir", str(data_dir), "--log-level", "warning"]
        self.log = (data_dir.parent / f"{name}.log").open("ab")
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def role_check(self) -> str:
        try:
            return str(httpx.get(f"{self.url}/readyz", timeout=3).json()["checks"].get("scheduler", ""))
        except (httpx.HTTPError, ValueError, KeyError):
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this script made for it
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def final_count(engine: Engine) -> int:
    with engine.connect() as conn:
        sql = "SELECT count(*) FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled')"
        return int(conn.execute(text(sql)).scalar())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--wait-s", type=float, default=1800.0, help="longest wait for every job to be final")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"CPU cores: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.1f}")
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    dbname = f"rf_soak_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    nodes: list[Node] = []
    weed: SeaweedFS | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            weed = SeaweedFS(tmp / "weed").start()
            prefix = f"soak-{uuid.uuid4().hex[:8]}"
            db_url = make_url(args.pg).set(database=dbname).render_as_string(hide_password=False)
            env = {k: v for k, v in os.environ.items() if not k.startswith("REELFOUNDRY_")}
            env.update(
                REELFOUNDRY_DATABASE_URL=db_url,
                REELFOUNDRY_STORAGE_URL=f"s3://{BUCKET}/{prefix}",
                REELFOUNDRY_S3_ENDPOINT_URL=weed.endpoint,
                REELFOUNDRY_S3_TIMEOUT_S="3",
                REELFOUNDRY_RATE_LIMIT_SUBMIT="",
                REELFOUNDRY_RATE_LIMIT_READ="",
                REELFOUNDRY_LEASE_S="10",
                REELFOUNDRY_SCHEDULER_LEASE_S="3",
                REELFOUNDRY_POLL_INTERVAL_S="0.1",
                AWS_ACCESS_KEY_ID=weed.access_key,
                AWS_SECRET_ACCESS_KEY=weed.secret_key,
                AWS_DEFAULT_REGION="us-east-1",
            )
            api = Node("api", tmp / "api", env, ["--role", "api", "--workers", "2", "--worker-slots", "0"])
            nodes.append(api)
            wait_ready(api.url, 120)
            key = (tmp / "api" / "admin.key").read_text().strip()
            slot_env = {**env, "REELFOUNDRY_WORKER_SLOTS": "1"}
            for name, role in (("sched1", "scheduler"), ("sched2", "scheduler"), ("w1", "worker"), ("w2", "worker")):
                nodes.append(Node(name, tmp / name, slot_env, ["--role", role]))
            for n in nodes[1:]:
                wait_ready(n.url, 120)
            schedulers, workers = nodes[1:3], nodes[3:5]

            db = create_engine(db_url)
            submitted: list[str] = []
            rejected: Counter[str] = Counter()
            lock = threading.Lock()

            def submit(i: int) -> None:
                body = {"prompt": f"Soak {i}", "model": "template", "num_frames": 6, "width": 160, "height": 90}
                with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
                    for j in range(i, args.jobs, args.clients):
                        body["prompt"] = f"Soak {j}"
                        try:
                            r = c.post("/v1/jobs", json=body)
                        except httpx.HTTPError as exc:
                            with lock:
                                rejected[type(exc).__name__] += 1
                            continue
                        with lock:
                            if r.status_code == 201:
                                submitted.append(r.json()["id"])
                            else:
                                rejected[f"HTTP {r.status_code}: {r.text[:120]}"] += 1

            faults: list[str] = []
            killed_scheduler: list[Node] = []

            def inject() -> None:
                plan = [(0.2, "worker"), (0.4, "scheduler"), (0.6, "storage")]
                for frac, what in plan:
                    while final_count(db) < frac * args.jobs:
                        if time.monotonic() - t0 > args.wait_s:
                            return
                        time.sleep(0.2)
                    at = time.monotonic() - t0
                    if what == "worker":
                        workers[0].kill()
                        faults.append(f"{at:6.1f} s: SIGKILL worker node w1 (pid group {workers[0].proc.pid})")
                    elif what == "scheduler":
                        leader = next((s for s in schedulers if s.role_check() == "leader"), None)
                        if leader is None:
                            faults.append(f"{at:6.1f} s: no leader found to kill")
                            continue
                        leader.kill()
                        killed_scheduler.append(leader)
                        other = next(s for s in schedulers if s is not leader)
                        t_kill = time.monotonic()
                        while other.role_check() != "leader" and time.monotonic() - t_kill < 60:
                            time.sleep(0.1)
                        faults.append(
                            f"{at:6.1f} s: SIGKILL leading scheduler {leader.name}; {other.name} "
                            f"{'leads' if other.role_check() == 'leader' else 'did NOT lead'} "
                            f"after {time.monotonic() - t_kill:.1f} s"
                        )
                    else:
                        assert weed is not None
                        weed.stop()
                        time.sleep(10)
                        t_up = time.monotonic()
                        weed.start()
                        faults.append(
                            f"{at:6.1f} s: SeaweedFS stopped 10 s, back (S3 answering) {time.monotonic() - t_up:.1f} s"
                            " after restart"
                        )

            t0 = time.monotonic()
            injector = threading.Thread(target=inject, daemon=True)
            if not args.no_faults:
                injector.start()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(submit, range(args.clients)))
            t_submitted = time.monotonic() - t0
            print(f"submitted {len(submitted)} jobs in {t_submitted:.1f} s; rejected {dict(rejected) or 0}")
            last = -1
            while time.monotonic() - t0 < args.wait_s:
                done = final_count(db)
                if done >= len(submitted) and (args.no_faults or not injector.is_alive()):
                    break
                if done != last and int(time.monotonic() - t0) % 10 == 0:
                    print(f"  {time.monotonic() - t0:6.1f} s: {done}/{len(submitted)} final", flush=True)
                    last = done
                time.sleep(0.5)
            elapsed = time.monotonic() - t0
            if injector.is_alive():
                injector.join(timeout=60)

            with db.connect() as conn:
                rows = conn.execute(
                    text("SELECT id, state, error_type, error_detail, attempts, max_attempts FROM jobs")
                ).all()
                assets = conn.execute(text("SELECT job_id, storage_key, poster_key FROM assets")).all()
                costs = conn.execute(text("SELECT job_id, count(*) FROM cost_records GROUP BY job_id")).all()
                requeues = conn.execute(
                    text("SELECT job_id, data::text FROM events WHERE type = 'job.requeued' ORDER BY id")
                ).all()
            by_id = {r.id: r for r in rows}
            lost = [i for i in submitted if i not in by_id or by_id[i].state not in FINAL]
            states = Counter(by_id[i].state for i in submitted if i in by_id)
            failed = Counter(by_id[i].error_type for i in submitted if i in by_id and by_id[i].state == "failed")
            retried = sum(1 for i in submitted if i in by_id and by_id[i].attempts > 1)
            per_job = Counter(a.job_id for a in assets if a.job_id)
            dup_assets = {j: n for j, n in per_job.items() if n > 1}
            dup_costs = {j: n for j, n in costs if n > 1}
            succeeded_without_asset = [
                i for i in submitted if i in by_id and by_id[i].state == "succeeded" and not per_job[i]
            ]
            s3 = weed.client()

            def orphan_objects() -> tuple[list[str], list[str], int]:
                """Keys under the prefix, those no asset row names, and the objects still pending a sweep."""
                with db.connect() as conn:
                    named = conn.execute(text("SELECT storage_key, poster_key FROM assets")).all()
                    waiting = int(conn.execute(text("SELECT count(*) FROM pending_objects")).scalar_one())
                referenced = {k for a in named for k in (a.storage_key, a.poster_key) if k}
                keys: list[str] = []
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
                    keys += [o["Key"] for o in page.get("Contents", [])]
                return keys, [k for k in keys if k[len(prefix) + 1 :] not in referenced], waiting

            keys, orphans, waiting = orphan_objects()

            def leftover_files() -> list[str]:
                found = []
                for n in nodes:
                    for p in n.data_dir.rglob("*"):
                        parts = p.relative_to(n.data_dir).parts
                        if p.is_file() and (p.suffix in (".part", ".tmp") or "media" in parts):
                            found.append(str(p.relative_to(tmp)))
                return found

            leftovers_before = leftover_files()
            if not args.no_faults:
                # The killed nodes start again on their data dirs: each clears its work dir and marks what its
                # dead attempts left pending as abandoned, which the leader's orphan sweep (every 5 s) deletes.
                dead_nodes = [(workers[0], "worker"), *((n, "scheduler") for n in killed_scheduler)]
                for dead, role in dead_nodes:
                    dead.stop()
                    nodes.append(Node(f"{dead.name}-restarted", dead.data_dir, slot_env, ["--role", role]))
                    wait_ready(nodes[-1].url, 120)
                t_sweep = time.monotonic()
                while any(orphan_objects()[1:]) and time.monotonic() - t_sweep < 30:
                    time.sleep(1)
            leftovers = leftover_files()
            keys_after, orphans_after, waiting_after = orphan_objects()
            with db.connect() as conn:
                pending_rows = conn.execute(
                    text("SELECT key, job_id, attempt, node, created_at, abandoned_at, tries FROM pending_objects")
                ).all()
            failed_rows = [by_id[i] for i in submitted if i in by_id and by_id[i].state == "failed"]

            ok = sum(1 for i in submitted if by_id.get(i) is not None and by_id[i].state == "succeeded")
            print()
            print(f"faults: {'none (--no-faults)' if args.no_faults else ''}")
            for f in faults:
                print(f"  {f}")
            print(f"{'jobs submitted':<44}{len(submitted):>8}")
            print(f"{'jobs final by state':<44}{dict(states)!s:>8}")
            print(f"{'jobs LOST (missing or not final)':<44}{len(lost):>8}")
            print(f"{'jobs failed, by error type':<44}{str(dict(failed)) if failed else 0:>8}")
            print(f"{'jobs that took more than one attempt':<44}{retried:>8}")
            print(f"{'jobs with more than one asset':<44}{len(dup_assets):>8}")
            print(f"{'jobs with more than one cost record':<44}{len(dup_costs):>8}")
            print(f"{'succeeded jobs without an asset':<44}{len(succeeded_without_asset):>8}")
            print(f"{'objects under the prefix':<44}{len(keys):>8}")
            print(f"{'half-written/orphan objects (no asset row)':<44}{len(orphans):>8}")
            print(f"{'  of which pending (recorded, to be swept)':<44}{waiting:>8}")
            print(f"{'.part/.tmp/media files in node data dirs':<44}{len(leftovers_before):>8}")
            if not args.no_faults:
                print(f"{'after the killed nodes restarted + sweep:':<44}")
                print(f"{'  objects under the prefix':<44}{len(keys_after):>8}")
                print(f"{'  orphan objects (no asset row)':<44}{len(orphans_after):>8}")
                print(f"{'  pending objects left':<44}{waiting_after:>8}")
                print(f"{'  .part/.tmp/media files in node data dirs':<44}{len(leftovers):>8}")
            print(f"{'wall time, first submit to all final (s)':<44}{elapsed:>8.1f}")
            print(f"{'throughput (succeeded jobs/s)':<44}{ok / elapsed:>8.2f}")
            print(f"{'job.requeued events':<44}{len(requeues):>8}")
            for r in requeues[:10]:
                print(f"  requeued: {r.job_id} {r.data}")
            for r in failed_rows[:10]:
                print(f"  failed: {r.id} attempts {r.attempts}/{r.max_attempts} {r.error_type}: {r.error_detail}")
            for r in pending_rows[:10]:
                print(f"  pending: {r.key} job {r.job_id} attempt {r.attempt} node {r.node} abandoned {r.abandoned_at}")
            for what, items in (("lost", lost[:10]), ("orphan", orphans[:10]), ("leftover", leftovers_before[:10])):
                for item in items:
                    print(f"  {what}: {item} {by_id.get(item, '')}")
            print(f"load average after: {os.getloadavg()[0]:.1f}")
            db.dispose()
            for n in reversed(nodes):
                n.stop()
            nodes.clear()
    finally:
        for n in reversed(nodes):
            n.stop()
        if weed is not None:
            weed.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
