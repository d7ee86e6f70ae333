"""The Ray executor on a real local cluster: a head (127.0.0.2) and two worker nodes with different custom
resources (127.0.0.3: ``device_cpu``, ``node_a``; 127.0.0.4: ``device_L40S``, ``node_b``).

Units land on the node their resources name; progress and cancellation come back; a worker node killed mid-job
ends the job with a retryable error (the engine then re-queues it). Every process of the cluster is one this
test started (found by its own --temp-dir) and is killed by pid at the end; never ``ray stop``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from faulty_backend import CARD as FAULTY_CARD  # noqa: E402

from reelfoundry.execution.messages import Finished, Progress, WorkItem  # noqa: E402
from reelfoundry.execution.ray_executor import RayExecutor  # noqa: E402
from reelfoundry.portfolio.base import GenerationParams  # noqa: E402
from reelfoundry.schema import ModelCard  # noqa: E402

pytestmark = [pytest.mark.scaleout, pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CARD = ModelCard.model_validate(FAULTY_CARD)
HEAD, NODE_A, NODE_B = "127.0.0.2", "127.0.0.3", "127.0.0.4"
SMALL = ["--num-cpus=1", "--memory=400000000", "--object-store-memory=80000000"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HEAD, 0))
        return int(s.getsockname()[1])


def _ours(temp_dir: str, ip: str | None = None) -> list[psutil.Process]:
    """The processes of the cluster in ``temp_dir`` (of one node's ip if given), with all their descendants."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if temp_dir in cmd and (ip is None or ip in cmd):
            found[proc.pid] = proc
            try:
                for child in proc.children(recursive=True):
                    found[child.pid] = child
            except psutil.Error:
                pass
    found.pop(os.getpid(), None)
    return list(found.values())


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)


def _reload_auth() -> None:
    """Make this process (the driver) read RAY_AUTH_MODE and RAY_AUTH_TOKEN again: Ray caches both on first use."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


class Cluster:
    def __init__(self, temp_dir: str, env: dict[str, str], port: int) -> None:
        self.temp_dir, self.env, self.port = temp_dir, env, port

    def start(self, ip: str, resources: dict[str, float] | None, head: bool = False) -> None:
        args = ["ray", "start", f"--node-ip-address={ip}", f"--temp-dir={self.temp_dir}", *SMALL]
        args += (
            ["--head", f"--port={self.port}", "--include-dashboard=false"]
            if head
            else [f"--address={HEAD}:{self.port}"]
        )
        if resources:
            args.append(f"--resources={json.dumps(resources)}")
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, f"ray start on {ip} failed: {done.stderr[-2000:]}"

    def kill_node(self, ip: str) -> None:
        _kill(_ours(self.temp_dir, ip))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    temp_dir = tempfile.mkdtemp(prefix="rf-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    token = secrets.token_hex(32)
    pythonpath = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests" / "support"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "PYTHONPATH": pythonpath}
    c = Cluster(temp_dir, env, _free_port())
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    try:
        c.start(HEAD, None, head=True)
        c.start(NODE_A, {"device_cpu": 1, "node_a": 1})
        c.start(NODE_B, {"device_L40S": 1, "node_b": 1})
        os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
        _reload_auth()
        ray.init(address=f"{HEAD}:{c.port}", _node_ip_address=HEAD, log_to_driver=False)
        deadline = time.monotonic() + 60
        while sum(1 for n in ray.nodes() if n["Alive"]) < 3:
            assert time.monotonic() < deadline, "the three nodes did not join"
            time.sleep(0.5)
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _kill(_ours(temp_dir))
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reload_auth()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _item(tmp_path: Path, job_id: str, prompt: str) -> WorkItem:
    params = GenerationParams(prompt=prompt, num_frames=8, fps=8, width=64, height=64, seed=1)
    return WorkItem(job_id=job_id, attempt=1, card=CARD, params=params, out_dir=tmp_path)


def _pin(unit: object) -> dict[str, float]:
    """Each test job names its node in its id: ``a-…`` on node A, ``b-…`` on node B (device L40S)."""
    job_id = unit.job_id  # type: ignore[attr-defined]
    return {"node_a": 1} if job_id.startswith("a-") else {"device_L40S": 1}


def _until(executor: RayExecutor, done: object, limit: float = 90.0) -> list[object]:
    seen: list[object] = []
    deadline = time.monotonic() + limit
    while not done(seen):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out; saw {seen}"
        seen.extend(executor.poll(0.5))
    return seen


def test_units_land_on_the_node_their_resources_name_and_their_files_come_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    executor = RayExecutor(slots=2, timeout_s=120, resources=_pin)
    try:
        executor.execute([_item(tmp_path, "a-1", "grey"), _item(tmp_path, "b-1", "grey")])
        assert executor.free_slots() == 0
        seen = _until(executor, lambda s: sum(isinstance(o, Finished) for o in s) == 2)
        finished = {o.job_id: o for o in seen if isinstance(o, Finished)}
        for job_id in ("a-1", "b-1"):
            f = finished[job_id]
            assert f.error_type is None and f.media is not None, f
            assert f.video_path is not None and f.video_path.parent == tmp_path and f.video_path.stat().st_size > 0
        assert any(isinstance(o, Progress) and o.job_id == "a-1" for o in seen)
        assert executor.placements["a-1"][1] == NODE_A
        assert executor.placements["b-1"][1] == NODE_B
        assert executor.running() == [] and executor.free_slots() == 2
    finally:
        executor.shutdown()


def test_a_cancel_reaches_the_task_at_a_step_boundary(cluster: Cluster, tmp_path: Path) -> None:
    executor = RayExecutor(slots=1, timeout_s=120, resources=_pin)
    try:
        executor.execute([_item(tmp_path, "a-2", "slow:30")])
        _until(executor, lambda s: any(isinstance(o, Progress) for o in s))
        executor.cancel("a-2")
        seen = _until(executor, lambda s: any(isinstance(o, Finished) for o in s), limit=30)
        (f,) = [o for o in seen if isinstance(o, Finished)]
        assert f.cancelled and f.media is None
    finally:
        executor.shutdown()


def test_a_worker_node_killed_mid_job_ends_it_with_a_retryable_error(cluster: Cluster, tmp_path: Path) -> None:
    executor = RayExecutor(slots=1, timeout_s=200, resources=_pin)
    try:
        executor.execute([_item(tmp_path, "b-2", "slow:60")])
        _until(executor, lambda s: any(isinstance(o, Progress) for o in s))
        cluster.kill_node(NODE_B)
        seen = _until(executor, lambda s: any(isinstance(o, Finished) for o in s), limit=120)
        (f,) = [o for o in seen if isinstance(o, Finished)]
        assert f.media is None and not f.cancelled
        assert f.error_type is not None and f.retryable, f
        assert executor.running() == [] and executor.free_slots() == 1
    finally:
        executor.shutdown()
