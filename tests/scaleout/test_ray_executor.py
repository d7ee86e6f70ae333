"""The Ray executor on a real local cluster: a head (127.0.0.2) and two worker nodes with different custom
resources and rates (127.0.0.3: ``device_cpu``, ``node_a``, priced as a local CPU; 127.0.0.4: ``device_L40S``,
``node_b``, priced as a CoreWeave L40S; both offer ``device_shared``), and a real S3 store (SeaweedFS).

Units land on the node their resources name; inputs come from and outputs go to the object store, not the driver's
disk; each attempt carries the rates of its node; progress and cancellation come back, and ``poll`` wakes on a
wake fd while tasks run; a worker node killed mid-job ends the job with a retryable error, and through an
in-process engine (SQLite, the S3 store) such a job is re-queued and succeeds exactly once on the other node,
priced at that node's rates. Every process of the cluster is one this test started (found by its own
--temp-dir) and is killed by pid at the end; never ``ray stop``. A node a test killed is started again before
the next test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from faulty_backend import CARD as FAULTY_CARD  # noqa: E402
from seaweed import BUCKET, SeaweedFS  # noqa: E402
from tcpproxy import FaultyProxy  # noqa: E402

from reelfoundry.assets import keys  # noqa: E402
from reelfoundry.assets.objectstore import StorageUnavailable  # noqa: E402
from reelfoundry.assets.stores import make_store  # noqa: E402
from reelfoundry.config import Settings  # noqa: E402
from reelfoundry.errors import InvalidParameter  # noqa: E402
from reelfoundry.execution.engine import Engine  # noqa: E402
from reelfoundry.execution.messages import (  # noqa: E402
    Finished,
    OutputKeys,
    Progress,
    WorkBatch,
    WorkItem,
    WorkUnit,
)
from reelfoundry.execution.ray_executor import RayExecutor, device_resource  # noqa: E402
from reelfoundry.finops.catalog import load_catalog  # noqa: E402
from reelfoundry.finops.rates import worker_rates  # noqa: E402
from reelfoundry.portfolio.base import GenerationParams  # noqa: E402
from reelfoundry.portfolio.registry import Portfolio  # noqa: E402
from reelfoundry.provenance.credentials import dev_credentials  # noqa: E402
from reelfoundry.schema import ModelCard, VideoRequest  # noqa: E402
from reelfoundry.store import Database  # noqa: E402
from reelfoundry.store import jobs as jobstore  # noqa: E402
from reelfoundry.store import keys as keystore  # noqa: E402
from reelfoundry.store.tables import AssetRow, CostRecordRow, EventRow, JobRow, PendingObjectRow  # noqa: E402

pytestmark = [pytest.mark.scaleout, pytest.mark.slow, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CARD = ModelCard.model_validate(FAULTY_CARD)
#: ray_inputs_backend.py (beside this file, on the nodes' PYTHONPATH): renders only if its inputs arrived intact.
INPUTS_CARD = ModelCard.model_validate(
    {**FAULTY_CARD, "id": "inputs-check", "backend": "ray_inputs_backend:InputsBackend"}
)
HEAD, NODE_A, NODE_B = "127.0.0.2", "127.0.0.3", "127.0.0.4"
SMALL = ["--num-cpus=1", "--memory=400000000", "--object-store-memory=80000000"]
#: Each worker node's resources and the environment its `ray start` gets (so its tasks price themselves as that).
NODES: dict[str, tuple[dict[str, float], dict[str, str]]] = {
    NODE_A: ({"device_cpu": 1, "node_a": 1, "device_shared": 1}, {"REELFOUNDRY_WORKER_DEVICE": "cpu"}),
    NODE_B: (
        {"device_L40S": 1, "node_b": 1, "device_shared": 1},
        {"REELFOUNDRY_WORKER_DEVICE": "L40S", "REELFOUNDRY_WORKER_PROVIDER": "coreweave"},
    ),
}


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


def _alive(ip: str) -> set[str]:
    """The ids of the nodes on ``ip`` the cluster counts as alive."""
    return {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["NodeManagerAddress"] == ip}


class Cluster:
    def __init__(self, temp_dir: str, env: dict[str, str], port: int) -> None:
        self.temp_dir, self.env, self.port = temp_dir, env, port
        #: Worker nodes killed by a test, started again before the next one.
        self.killed: set[str] = set()

    def start(self, *ips: str, head: bool = False) -> None:
        """``ray start`` each node, one after the other (together they time out on a 2-core machine)."""
        for ip in ips:
            args = ["ray", "start", f"--node-ip-address={ip}", f"--temp-dir={self.temp_dir}", *SMALL]
            args += (
                ["--head", f"--port={self.port}", "--include-dashboard=false"]
                if head
                else [f"--address={HEAD}:{self.port}"]
            )
            resources, env = NODES.get(ip, ({}, {}))
            if resources:
                args.append(f"--resources={json.dumps(resources)}")
            if ip == NODE_B:  # it says it has one GPU (Ray takes the count as given): GPU tasks can land only here
                args.append("--num-gpus=1")
            done = subprocess.run(args, env={**self.env, **env}, capture_output=True, text=True, timeout=90)
            assert done.returncode == 0, f"ray start on {ip} failed: {done.stderr[-2000:]}"

    def kill_node(self, ip: str) -> None:
        self.killed.add(ip)
        _kill(_ours(self.temp_dir, ip))

    def revive(self) -> None:
        """Start the killed nodes again and wait until each has joined (as a new node)."""
        before = {ip: _alive(ip) for ip in self.killed}
        self.start(*sorted(self.killed))
        deadline = time.monotonic() + 60
        for ip, known in before.items():
            while not _alive(ip) - known:
                assert time.monotonic() < deadline, f"node {ip} did not join again"
                time.sleep(0.2)
        self.killed.clear()


@pytest.fixture(scope="module")
def ray_cluster(seaweedfs: SeaweedFS) -> Iterator[Cluster]:
    """The cluster; its nodes inherit this process's environment (the S3 store's credentials included), less
    any REELFOUNDRY_ setting: each worker node gets its own (NODES)."""
    if shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    temp_dir = tempfile.mkdtemp(prefix="rf-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    token = secrets.token_hex(32)
    path = [str(ROOT / "src"), str(ROOT / "tests" / "support"), str(ROOT / "tests" / "scaleout")]
    pythonpath = os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")])
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFOUNDRY_")}
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "PYTHONPATH": pythonpath})
    c = Cluster(temp_dir, env, _free_port())
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    try:
        c.start(HEAD, head=True)
        c.start(NODE_A, NODE_B)
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


@pytest.fixture
def cluster(ray_cluster: Cluster) -> Cluster:
    """The cluster with both worker nodes up (one an earlier test killed is started again)."""
    ray_cluster.revive()
    return ray_cluster


@pytest.fixture
def s3_settings(seaweedfs: SeaweedFS, s3_prefix: str, tmp_path: Path) -> Settings:
    """Storage settings naming the SeaweedFS bucket, under this test's own prefix."""
    return Settings(
        data_dir=tmp_path / "engine", storage_url=f"s3://{BUCKET}/{s3_prefix}", s3_endpoint_url=seaweedfs.endpoint
    )


def _item(tmp_path: Path, job_id: str, prompt: str, card: ModelCard = CARD, **kw: Any) -> WorkItem:
    inputs = kw.pop("inputs", ())
    params = GenerationParams(prompt=prompt, num_frames=8, fps=8, width=64, height=64, seed=1, inputs=inputs)
    return WorkItem(job_id=job_id, attempt=1, card=card, params=params, out_dir=tmp_path, **kw)


def _pin(unit: WorkUnit) -> dict[str, float]:
    """Each test job names its node in its id: ``a-…`` on node A, ``b-…`` on node B (device L40S); a batch goes
    where its first job says."""
    job_id = unit.items[0].job_id if isinstance(unit, WorkBatch) else unit.job_id
    return {"node_a": 1} if job_id.startswith("a-") else {"device_L40S": 1}


def _pins(by_job: dict[str, dict[str, float]]) -> Callable[[WorkUnit], dict[str, float]]:
    return lambda unit: by_job[unit.job_id]  # type: ignore[union-attr]


def _until(executor: RayExecutor, done: object, limit: float = 90.0) -> list[object]:
    seen: list[object] = []
    deadline = time.monotonic() + limit
    while not done(seen):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out; saw {seen}"
        seen.extend(executor.poll(0.5))
    return seen


def _finished(executor: RayExecutor, n: int, limit: float = 90.0) -> dict[str, Finished]:
    seen = _until(executor, lambda s: sum(isinstance(o, Finished) for o in s) == n, limit)
    return {o.job_id: o for o in seen if isinstance(o, Finished)}


def test_units_land_on_the_node_their_resources_name_and_their_files_come_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    # No store settings: the engine copies inputs into its work dir (here a disk the nodes share) and the task
    # reads them there, whatever their keys.
    staged = tmp_path / "a-3-1.input0.png"
    staged.write_bytes(b"staged by the engine")
    expect = f"{staged.name}={hashlib.sha256(staged.read_bytes()).hexdigest()}"
    with_input = _item(tmp_path, "a-3", expect, INPUTS_CARD, inputs=(staged,), input_keys=("t1/in.png",))
    executor = RayExecutor(slots=3, timeout_s=120, resources=_pin)
    try:
        assert not executor.reads_store  # outputs come back to the driver
        executor.execute([_item(tmp_path, "a-1", "grey"), _item(tmp_path, "b-1", "grey"), with_input])
        assert executor.free_slots() == 0
        seen = _until(executor, lambda s: sum(isinstance(o, Finished) for o in s) == 3)
        finished = {o.job_id: o for o in seen if isinstance(o, Finished)}
        for job_id in ("a-1", "b-1", "a-3"):
            f = finished[job_id]
            assert f.error_type is None and f.media is not None, f
            assert f.video_path is not None and f.video_path.parent == tmp_path and f.video_path.stat().st_size > 0
            assert f.stored is None
        assert any(isinstance(o, Progress) and o.job_id == "a-1" for o in seen)
        assert executor.placements["a-1"][1] == NODE_A
        assert executor.placements["b-1"][1] == NODE_B
        assert executor.running() == [] and executor.free_slots() == 3
    finally:
        executor.shutdown()


def test_a_task_reads_its_inputs_from_the_store_and_puts_its_outputs_there(
    cluster: Cluster, s3_settings: Settings, tmp_path: Path
) -> None:
    store = make_store(s3_settings)
    inputs = {keys.upload("t1", "in1", "image/png"): os.urandom(3000), keys.upload("t1", "in2", "image/jpeg"): b"j"}
    for key, data in inputs.items():
        store.put_bytes(key, data)
    # The engine's own paths for the inputs: they do not exist on any node; only their names count.
    engine_paths = (Path("/nonexistent/work/j1-1.input0.png"), Path("/nonexistent/work/j1-1.input1.jpg"))
    expect = " ".join(
        f"{p.name}={hashlib.sha256(d).hexdigest()}" for p, d in zip(engine_paths, inputs.values(), strict=True)
    )
    out = OutputKeys("as1", keys.video("t1", "as1"), keys.poster("t1", "as1"))
    gone = OutputKeys("as2", keys.video("t1", "as2"), keys.poster("t1", "as2"))
    engine_dir = tmp_path / "work"
    engine_dir.mkdir()
    ok = _item(engine_dir, "a-in", expect, INPUTS_CARD, inputs=engine_paths, input_keys=tuple(inputs), output_keys=out)
    missing = _item(
        engine_dir,
        "b-in",
        expect,
        INPUTS_CARD,
        inputs=engine_paths[:1],
        input_keys=("t1/nothing.png",),
        output_keys=gone,
    )
    # A batch: each job's output under its own keys.
    batch_keys = {
        f"a-batch{i}": OutputKeys(f"as-b{i}", keys.video("t1", f"as-b{i}"), keys.poster("t1", f"as-b{i}"))
        for i in (1, 2)
    }
    batch = WorkBatch(tuple(_item(engine_dir, job_id, "grey", output_keys=k) for job_id, k in batch_keys.items()))
    executor = RayExecutor(slots=3, timeout_s=120, resources=_pin, store_settings=s3_settings)
    try:
        assert executor.reads_store
        executor.execute([ok, missing, batch])
        finished = _finished(executor, 4)
    finally:
        executor.shutdown()
    for job_id, k in batch_keys.items():
        b = finished[job_id]
        assert b.error_type is None and b.media is not None and b.stored == (k.video, k.poster), b
        info = store.stat(k.video)
        assert info is not None and info.size == b.media.bytes
    f = finished["a-in"]
    assert f.error_type is None and f.media is not None, f
    assert f.stored == (out.video, out.poster) and f.video_path is None and f.poster_path is None
    video = store.read_bytes(out.video)
    assert len(video) == f.media.bytes and hashlib.sha256(video).hexdigest() == f.media.sha256
    assert store.read_bytes(out.poster)[:3] == b"\xff\xd8\xff"  # a JPEG
    assert executor.placements["a-in"][1] == NODE_A
    # An input the store does not have fails its job for good, before the backend runs; nothing is stored.
    g = finished["b-in"]
    assert g.error_type == InvalidParameter.problem_type() and not g.retryable and g.stored is None, g
    assert g.error_detail == "inputs[0] is missing from storage"
    assert store.stat(gone.video) is None and store.stat(gone.poster) is None
    assert list(engine_dir.iterdir()) == []  # nothing came through the driver's disk


def test_an_output_that_cannot_be_stored_leaves_nothing_and_is_retryable(
    cluster: Cluster, s3_settings: Settings, seaweedfs: SeaweedFS, tmp_path: Path
) -> None:
    store = make_store(s3_settings)
    # Node A: the poster's put fails after the video's went through (a key the store refuses).
    half = OutputKeys("as3", keys.video("t1", "as3"), "t1/not a key.jpg")
    # Node B: the store is down (every connection reset).
    proxy = FaultyProxy(int(seaweedfs.endpoint.rsplit(":", 1)[1]))
    proxy.refuse()
    down = s3_settings.model_copy(update={"s3_endpoint_url": proxy.endpoint, "s3_timeout_s": 2.0})
    lost = OutputKeys("as4", keys.video("t1", "as4"), keys.poster("t1", "as4"))
    executors = [
        RayExecutor(slots=1, timeout_s=120, resources=_pin, store_settings=s3_settings),
        RayExecutor(slots=1, timeout_s=120, resources=_pin, store_settings=down),
    ]
    try:
        executors[0].execute([_item(tmp_path, "a-half", "grey", output_keys=half)])
        executors[1].execute([_item(tmp_path, "b-down", "grey", output_keys=lost)])
        finished = _finished(executors[0], 1) | _finished(executors[1], 1)
    finally:
        for executor in executors:
            executor.shutdown()
        proxy.close()
    for job_id in ("a-half", "b-down"):
        f = finished[job_id]
        assert f.error_type == StorageUnavailable.problem_type() and f.retryable, f
        assert f.error_detail is not None and f.error_detail.startswith("the output could not be stored: "), f
        assert f.media is None and f.stored is None and f.video_path is None
    assert store.stat(half.video) is None  # the video that was put is deleted again
    assert store.stat(lost.video) is None
    assert list(tmp_path.iterdir()) == []


def test_each_attempt_carries_the_rates_of_its_node_at_the_share_it_asked_for(cluster: Cluster, tmp_path: Path) -> None:
    pins = {"a-rate": {"device_cpu": 0.25}, "b-rate": {"device_L40S": 0.5}, "b-whole": {"node_b": 1}}
    executor = RayExecutor(slots=3, timeout_s=120, resources=_pins(pins))
    try:
        executor.execute([_item(tmp_path, job_id, "grey") for job_id in pins])
        finished = _finished(executor, 3)
    finally:
        executor.shutdown()
    a, b, whole = finished["a-rate"].rates, finished["b-rate"].rates, finished["b-whole"].rates
    assert a is not None and b is not None and whole is not None, finished
    assert (a["device"], a["provider"], a["device_share"]) == ("cpu", "local", "0.250000000")
    assert (b["device"], b["provider"], b["device_share"]) == ("L40S", "coreweave", "0.500000000")
    assert b["usd_per_device_hour"] == "2.2500" and b["tdp_w"] == "350"
    # No device resource asked for: the node's own share (one slot: the whole device).
    assert (whole["device"], whole["device_share"]) == ("L40S", "1.000000000")
    assert executor.placements["a-rate"][1] == NODE_A and executor.placements["b-rate"][1] == NODE_B


def test_a_gpu_class_asks_ray_for_its_gpu_share_so_it_lands_where_a_gpu_is(cluster: Cluster, tmp_path: Path) -> None:
    # Both nodes offer device_shared; only node B has a GPU. Without num_gpus the task could land on A, and on B
    # Ray would hide the GPU from it (CUDA_VISIBLE_DEVICES="").
    executor = RayExecutor(slots=2, timeout_s=120, resources={"device_shared": 0.5}, num_gpus=0.5)
    try:
        executor.execute([_item(tmp_path, "gpu-1", "grey"), _item(tmp_path, "gpu-2", "grey")])
        finished = _finished(executor, 2)
    finally:
        executor.shutdown()
    assert all(f.media is not None for f in finished.values()), finished
    assert {executor.placements[j][1] for j in finished} == {NODE_B}


def test_poll_returns_on_a_wake_fd_while_a_task_runs(cluster: Cluster, tmp_path: Path) -> None:
    executor = RayExecutor(slots=1, timeout_s=120, resources=_pin)
    r, w = os.pipe()
    try:
        executor.execute([_item(tmp_path, "a-wake", "slow:16")])
        _until(executor, lambda s: any(isinstance(o, Progress) for o in s))
        # Without a wake, poll waits out its timeout while the task runs.
        started = time.monotonic()
        executor.poll(1.0, (r,))
        assert time.monotonic() - started >= 1.0 and executor.running() == ["a-wake"]
        os.write(w, b"x")
        started = time.monotonic()
        executor.poll(60, (r,))
        assert time.monotonic() - started < 10, "poll did not return on the wake fd"  # not 60 s
        assert executor.running() == ["a-wake"]
        assert select.select([r], [], [], 0)[0] == [r]  # left for the engine to drain
        executor.cancel("a-wake")
        f = _finished(executor, 1, limit=30)["a-wake"]
        assert f.cancelled
    finally:
        executor.shutdown()
        os.close(r)
        os.close(w)


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
        assert executor.placements["b-2"][1] == NODE_B  # known while it runs (the task said where it started)
        cluster.kill_node(NODE_B)
        seen = _until(executor, lambda s: any(isinstance(o, Finished) for o in s), limit=120)
        (f,) = [o for o in seen if isinstance(o, Finished)]
        assert f.media is None and not f.cancelled
        assert f.error_type is not None and f.retryable, f
        assert f.rates is not None and f.rates["device"] == "L40S"  # priced at the rates of the node it was lost on
        assert executor.running() == [] and executor.free_slots() == 1
    finally:
        executor.shutdown()


def test_through_the_engine_a_job_whose_node_dies_mid_run_is_retried_on_the_other_and_finishes_once(
    cluster: Cluster, s3_settings: Settings, tmp_path: Path
) -> None:
    """An in-process engine (SQLite) with the Ray executor and the S3 store; the job may run on either worker node
    (both offer ``device_shared``). The node running it is killed mid-job: the job is re-queued, runs again on the
    other node and succeeds once, priced at that node's rates (not the engine's: aws)."""
    settings = s3_settings.model_copy(
        update={"worker_slots": 1, "worker_provider": "aws", "worker_device": "cpu", "batching": False}
    )
    settings.data_dir.mkdir(parents=True)
    db = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    db.migrate()
    store = make_store(settings)
    executor = RayExecutor(
        slots=1, timeout_s=120, resources={device_resource("shared"): 1}, store_settings=settings, cancel_grace_s=5
    )
    engine = Engine(
        settings,
        db,
        Portfolio([CARD]),
        store,
        executor,
        "engine-0",
        dev_credentials(tmp_path / "ca"),
        worker_rates(settings, load_catalog()),
    )
    request = VideoRequest(prompt="slow:6", model=CARD.id, num_frames=8, width=64, height=64, fps=8, seed=1)
    with db.write() as session:
        tenant = keystore.get_or_create_tenant(session, "ray-e2e")
        job_id = jobstore.create_job(
            session,
            tenant_id=tenant.id,
            request=request,
            model=CARD.id,
            max_attempts=2,
            body_hash=jobstore.request_hash(request.model_dump(mode="json")),
        ).id

    def job() -> JobRow:
        with db.read() as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            return row

    def wait(what: str, done: Callable[[], bool], limit: float = 90) -> None:
        deadline = time.monotonic() + limit
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}; job {job().state}"
            time.sleep(0.1)

    engine.start()
    try:
        engine.wake()
        wait("the first attempt to run", lambda: job_id in executor.placements and job().progress > 0)
        first = executor.placements[job_id][1]
        cluster.kill_node(first)
        wait("the job to end", lambda: job().state in ("succeeded", "failed", "cancelled"), limit=120)
    finally:
        engine.stop()
    row = job()
    assert row.state == "succeeded" and row.attempts == 2, (row.state, row.error_type, row.error_detail)
    survivor = executor.placements[job_id][1]
    assert survivor != first and survivor in (NODE_A, NODE_B)
    with db.read() as session:
        assets = list(session.scalars(sa.select(AssetRow).where(AssetRow.job_id == job_id)))
        costs = list(session.scalars(sa.select(CostRecordRow).where(CostRecordRow.job_id == job_id)))
        events = [
            e.type for e in session.scalars(sa.select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.id))
        ]
        requeued = [
            e.data
            for e in session.scalars(
                sa.select(EventRow).where(EventRow.job_id == job_id, EventRow.type == "job.requeued")
            )
        ]
        pending = list(session.scalars(sa.select(PendingObjectRow).where(PendingObjectRow.job_id == job_id)))
    assert len(assets) == 1 and len(costs) == 1
    (asset,) = assets
    info = store.stat(asset.storage_key)
    assert info is not None and info.size == asset.bytes
    assert asset.poster_key is not None and store.stat(asset.poster_key) is not None
    assert events.count("job.requeued") == 1 and events.index("job.requeued") < events.index("job.succeeded"), events
    assert requeued[0]["attempt"] == 1 and "Ray task was lost" in requeued[0]["error"]["detail"], requeued
    # The second attempt's keys became the asset's; the lost attempt's were deleted but stay pending until the
    # grace has passed (a task cut off from the cluster might still put them), and no object exists under them.
    assert {(p.attempt, p.abandoned_at) for p in pending} == {(1, None)}
    assert all(store.stat(p.key) is None for p in pending)
    (cost,) = costs
    device, provider = {NODE_A: ("cpu", "local"), NODE_B: ("L40S", "coreweave")}[survivor]
    assert (cost.device, cost.provider, cost.node) == (device, provider, "engine-0")
    assert cost.device_share == 1


def test_serve_with_the_ray_executor_runs_jobs_on_the_cluster_and_serves_them_from_s3(
    cluster: Cluster, seaweedfs: SeaweedFS, s3_prefix: str, tmp_path: Path
) -> None:
    """``reelfoundry serve`` as a user runs it: REELFOUNDRY_EXECUTOR=ray with the cluster at RAY_ADDRESS, media in
    S3. Its worker device is an L40S (CoreWeave), which only node B offers: the job runs there (the task puts the
    output into the bucket itself), its cost record carries node B's rates, and the API serves the video from S3."""
    from server import Server, server_env, wait_state

    env = server_env(
        executor="ray",
        storage_url=f"s3://{BUCKET}/{s3_prefix}",
        s3_endpoint_url=seaweedfs.endpoint,
        worker_device="L40S",
        worker_provider="coreweave",
        worker_slots=1,
    )
    token = cluster.env["RAY_AUTH_TOKEN"]
    env.update(RAY_ADDRESS=f"{HEAD}:{cluster.port}", RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    srv = Server(tmp_path / "data", env).start(timeout=120)
    try:
        with srv.client() as c:
            r = c.post("/v1/jobs", json={"prompt": "On the cluster", "model": "template", "num_frames": 8})
            assert r.status_code == 201, r.text
            job = wait_state(c, r.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=120)
            assert job["state"] == "succeeded", job
            assert (job["cost"]["device"], job["cost"]["provider"]) == ("L40S", "coreweave"), job["cost"]
            content = c.get(f"/v1/assets/{job['asset_id']}/content")
            assert content.status_code == 200 and content.content[4:8] == b"ftyp"
    finally:
        srv.stop()
    s3 = seaweedfs.client()
    keys_in_s3 = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=s3_prefix + "/").get("Contents", [])]
    video = next(k for k in keys_in_s3 if k.endswith(f"{job['asset_id']}.mp4"))
    assert s3.get_object(Bucket=BUCKET, Key=video)["Body"].read() == content.content
    assert not (srv.data_dir / "work").exists() or not any((srv.data_dir / "work").iterdir())
