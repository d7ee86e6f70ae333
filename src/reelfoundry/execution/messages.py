"""Plain dataclasses the engine, executor and worker hand each other."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelfoundry.finops.energy import EnergySpec
from reelfoundry.finops.meter import VendorCharge
from reelfoundry.media import MediaInfo
from reelfoundry.portfolio.base import FinetuneOutput, FinetuneSpec, GenerationParams
from reelfoundry.provenance.manifest import Signing
from reelfoundry.schema import ModelCard


@dataclass(frozen=True)
class OutputKeys:
    """The asset an attempt's output becomes and the storage keys of its video and poster."""

    asset_id: str
    video: str
    poster: str


@dataclass(frozen=True)
class FinetuneWork:
    """A fine-tune attempt: the fine-tune's id, the adapter's name and hyperparameters, and one caption (and asset
    id) per training clip in ``WorkItem.params.inputs``."""

    finetune_id: str
    spec: FinetuneSpec
    captions: tuple[str, ...]
    asset_ids: tuple[str, ...]


@dataclass(frozen=True)
class WorkItem:
    """One attempt of one job, ready to run."""

    job_id: str
    attempt: int
    card: ModelCard
    params: GenerationParams
    #: Directory where the worker writes the video and poster.
    out_dir: Path
    #: How to sign the video (C2PA); None leaves it unsigned.
    signing: Signing | None = None
    #: How to measure (or model) the attempt's energy; None measures nothing.
    energy: EnergySpec | None = None
    #: The storage keys of ``params.inputs``, in order. An executor whose workers read the object store
    #: themselves (``Executor.reads_store``) copies each to a file named like its ``params.inputs`` path on the
    #: node the attempt runs on; others get ``params.inputs`` already copied by the engine and ignore these.
    input_keys: tuple[str, ...] = ()
    #: Where this attempt's video and poster go in the object store (chosen at the claim, when the engine
    #: records them as pending so that an attempt that dies after writing them leaves nothing behind for good).
    output_keys: OutputKeys | None = None
    #: Set for a fine-tune job: train an adapter of ``card`` on ``params.inputs`` (local copies of the training
    #: clips, in order) with these captions, instead of generating.
    finetune: FinetuneWork | None = None


@dataclass(frozen=True)
class Progress:
    """A step finished inside the backend."""

    job_id: str
    attempt: int
    step: int
    total: int


@dataclass(frozen=True)
class Finished:
    """An attempt ended. Exactly one of (media, error_type) is set unless cancelled."""

    job_id: str
    attempt: int
    media: MediaInfo | None = None
    video_path: Path | None = None
    poster_path: Path | None = None
    cancelled: bool = False
    error_type: str | None = None
    error_detail: str | None = None
    #: Seconds the attempt held its device (model load, generation, encoding, signing).
    seconds: float = 0.0
    #: Energy of the attempt's share of the device, and how it was found (nvml, rapl, model).
    energy_j: float = 0.0
    energy_method: str = "none"
    #: Set when the attempt ran on a vendor's API: whose, where, and what it charged (0 unless it delivered).
    vendor: VendorCharge | None = None
    #: The attempt was lost with its worker (a Ray node that died): the job may be re-queued, attempts permitting.
    retryable: bool = False
    #: The worker put the output into the object store itself (``Executor.reads_store``): the keys of the video
    #: and of the poster (None: no poster), those of the item's ``output_keys``; ``video_path`` is then None.
    stored: tuple[str, str | None] | None = None
    #: The rates of the node the attempt ran on (``Rates.to_json()``), when the executor priced it there;
    #: None: the engine's own rates apply.
    rates: dict[str, Any] | None = None
    #: A fine-tune's result: the adapter file and the files beside it (in the attempt's out dir), and its facts.
    artifact: FinetuneOutput | None = None


WorkerOutput = Progress | Finished


@dataclass(frozen=True)
class WorkBatch:
    """Attempts of compatible jobs (one card; the same frames, size, steps and guidance) run together on one
    worker slot: one forward pass per step for all of them. Each job still gets its own video, manifest,
    progress and ``Finished`` (with its share of the batch's device time and energy)."""

    items: tuple[WorkItem, ...]

    @property
    def job_ids(self) -> list[str]:
        """The jobs of the batch, in order."""
        return [item.job_id for item in self.items]


#: What the executor hands one worker slot: one attempt, or a batch of them.
WorkUnit = WorkItem | WorkBatch
