"""A batch as one unit of work: one generation, then each job its own video, manifest and share of the device."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from faulty_backend import CARD as FAULTY_CARD

from reelfoundry.errors import BackendError, InvalidParameter
from reelfoundry.execution.executor import LocalExecutor
from reelfoundry.execution.messages import Finished, Progress, WorkBatch, WorkItem
from reelfoundry.execution.worker import CANCEL, run_batch
from reelfoundry.finops.energy import EnergySpec
from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback
from reelfoundry.provenance.credentials import SigningCredentials, dev_credentials
from reelfoundry.provenance.manifest import GENERATION_LABEL, signing_for, verify
from reelfoundry.schema import ModelCard

CARD = ModelCard.model_validate({**FAULTY_CARD, "id": "batchy"})
STEPS = 3


class Batchy(Backend):
    """Generates a batch in one call (recorded), grey frames as light as the seed; a prompt 'bad' is refused."""

    name = "batchy"

    def __init__(
        self, card: ModelCard, fail: Exception | None = None, on_step: Callable[[int], None] | None = None
    ) -> None:
        super().__init__(card)
        self.calls: list[list[int]] = []
        self.steps_run = 0
        self.fail = fail
        self.on_step = on_step

    def check_inputs(self, params: GenerationParams) -> None:
        if params.prompt == "bad":
            raise InvalidParameter("prompt", "this backend refuses 'bad'")

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        return self.generate_batch([params], callback)[0]

    def generate_batch(
        self, params_list: Sequence[GenerationParams], callback: StepCallback | None = None
    ) -> list[GenerationOutput]:
        self.calls.append([p.seed for p in params_list])
        for step in range(1, STEPS + 1):
            if self.fail is not None and step == 2:
                raise self.fail
            self.steps_run += 1
            if self.on_step is not None:
                self.on_step(step)
            if callback is not None:
                callback(step, STEPS)
        return [
            GenerationOutput(frames=np.full((8, 64, 64, 3), 20 * p.seed, np.uint8), fps=8, num_frames=8)
            for p in params_list
        ]


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> SigningCredentials:
    return dev_credentials(tmp_path_factory.mktemp("keys"))


def _batch(tmp_path: Path, credentials: SigningCredentials, prompts: Sequence[str] = ("a", "b", "c")) -> WorkBatch:
    items = []
    for i, prompt in enumerate(prompts):
        job_id = f"job{i}"
        params = GenerationParams(prompt=prompt, num_frames=8, fps=8, width=64, height=64, seed=i + 1)
        items.append(
            WorkItem(
                job_id=job_id,
                attempt=1,
                card=CARD,
                params=params,
                out_dir=tmp_path,
                signing=signing_for(credentials, CARD, job_id, "0" * 64),
                energy=EnergySpec("cpu", 1.0, 100.0, rapl_root=tmp_path / "no-rapl"),
            )
        )
    return WorkBatch(tuple(items))


def _drain(conn: object) -> list[object]:
    out = []
    while conn.poll():  # type: ignore[attr-defined]
        out.append(conn.recv())  # type: ignore[attr-defined]
    return out


def test_one_generation_then_each_job_its_own_video_manifest_and_equal_share(
    tmp_path: Path, credentials: SigningCredentials
) -> None:
    ours, theirs = mp.Pipe()
    backend = Batchy(CARD)
    batch = _batch(tmp_path, credentials)
    reports, retire = run_batch(theirs, batch, {CARD.id: backend})
    sent = _drain(ours)

    assert backend.calls == [[1, 2, 3]] and not retire
    # Progress per job, per step of the batch.
    progress = [(m.job_id, m.step) for m in sent if isinstance(m, Progress)]
    assert sorted(progress) == sorted((f"job{i}", s) for i in range(3) for s in range(1, STEPS + 1))
    assert [r.job_id for r in reports] == ["job0", "job1", "job2"]
    videos = [r.video_path for r in reports]
    assert all(r.media is not None for r in reports) and len(set(videos)) == 3
    for i, report in enumerate(reports):
        assert report.video_path is not None and report.poster_path is not None and report.poster_path.exists()
        manifest = verify(report.video_path).manifests[0].assertions[GENERATION_LABEL]
        assert manifest["job_id"] == f"job{i}"  # its own manifest, signed for its own job
    shares = {r.seconds for r in reports}
    energies = {r.energy_j for r in reports}
    # The batch's device time and energy in three equal parts.
    assert len(shares) == 1 and shares.pop() > 0 and len(energies) == 1 and reports[0].energy_method == "model"


def test_cancelling_one_job_drops_only_its_output_and_it_leaves_with_its_share(
    tmp_path: Path, credentials: SigningCredentials
) -> None:
    ours, theirs = mp.Pipe()

    def cancel_one(step: int) -> None:
        if step == 1:
            ours.send((CANCEL, "job1"))

    backend = Batchy(CARD, on_step=cancel_one)
    reports, _ = run_batch(theirs, _batch(tmp_path, credentials), {CARD.id: backend})
    sent = _drain(ours)

    early = [m for m in sent if isinstance(m, Finished)]
    assert [(m.job_id, m.cancelled) for m in early] == [("job1", True)]
    assert backend.calls == [[1, 2, 3]] and backend.steps_run == STEPS  # cancelled mid-batch; the rest went on
    assert [(r.job_id, r.media is not None) for r in reports] == [("job0", True), ("job2", True)]
    assert not list(tmp_path.glob("job1-*"))  # its output was discarded
    assert all(early[0].seconds < r.seconds for r in reports)
    assert all(m.job_id != "job1" for m in sent if isinstance(m, Progress) and m.step > 1)


def test_cancelling_every_job_stops_the_batch_at_a_step_boundary(
    tmp_path: Path, credentials: SigningCredentials
) -> None:
    ours, theirs = mp.Pipe()

    def cancel_all(step: int) -> None:
        if step == 1:
            for i in range(3):
                ours.send((CANCEL, f"job{i}"))

    backend = Batchy(CARD, on_step=cancel_all)
    reports, _ = run_batch(theirs, _batch(tmp_path, credentials), {CARD.id: backend})
    early = [m for m in _drain(ours) if isinstance(m, Finished)]

    assert backend.steps_run == 1 and reports == []  # stopped at the first step boundary
    assert sorted((m.job_id, m.cancelled) for m in early) == [(f"job{i}", True) for i in range(3)]
    assert not list(tmp_path.glob("job*.mp4"))


def test_a_refused_job_fails_alone_and_a_backend_error_fails_the_whole_batch(
    tmp_path: Path, credentials: SigningCredentials
) -> None:
    ours, theirs = mp.Pipe()
    backend = Batchy(CARD)
    reports, _ = run_batch(theirs, _batch(tmp_path, credentials, ("a", "bad", "c")), {CARD.id: backend})
    early = [m for m in _drain(ours) if isinstance(m, Finished)]
    assert [(m.job_id, m.error_type) for m in early] == [("job1", InvalidParameter.problem_type())]
    assert backend.calls == [[1, 3]] and all(r.media is not None for r in reports)

    broken = Batchy(CARD, fail=RuntimeError("bad weights"))
    reports, retire = run_batch(theirs, _batch(tmp_path / "x", credentials), {CARD.id: broken})
    assert not retire and len(reports) == 3
    assert {(r.error_type, r.error_detail) for r in reports} == {
        (BackendError.problem_type(), "backend 'faulty_backend:FaultyBackend' raised RuntimeError: bad weights")
    }


def test_a_worker_crash_fails_every_job_of_its_batch(tmp_path: Path) -> None:
    card = ModelCard.model_validate(FAULTY_CARD)
    items = tuple(
        WorkItem(
            job_id=f"crash{i}",
            attempt=1,
            card=card,
            params=GenerationParams(prompt=prompt, num_frames=8, fps=8, width=64, height=64, seed=1),
            out_dir=tmp_path,
        )
        for i, prompt in enumerate(["fine", "crash:3", "fine"])
    )
    pool = LocalExecutor(1, timeout_s=60, cancel_grace_s=2)
    try:
        pool.execute([WorkBatch(items)])
        assert pool.free_slots() == 0 and sorted(pool.running()) == ["crash0", "crash1", "crash2"]
        ended: dict[str, Finished] = {}
        while len(ended) < 3:
            for out in pool.poll(0.2):
                if isinstance(out, Finished):
                    ended[out.job_id] = out
        assert {o.error_detail for o in ended.values()} == {
            "worker process crashed (exit code 3) while running the backend"
        }
        assert len({o.seconds for o in ended.values()}) == 1  # the batch's time, split
        assert pool.free_slots() == 1 and pool.running() == []
    finally:
        pool.shutdown()
