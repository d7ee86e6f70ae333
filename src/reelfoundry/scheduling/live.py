"""The live side of scheduling: what the engine hands the pure core (:func:`~.policy.schedule`) each turn.

- :func:`node_slot_type`: this node's worker slot as the scheduler sees it: device class (from settings or
  detection), MIG partition, device memory, catalog price;
- :func:`node_fleet`: a :class:`~.fleet.Fleet` of this node's free slots, made without a fleet file;
- :func:`profile_for`: the :class:`~.profiles.ModelProfile` of the card a job runs with, also for cards the
  simulator has no profile for (vendor APIs, cards that state no speed, a device class the catalog lacks);
- :func:`batch_class`: what else must be equal for two jobs to share a batch, beyond the scheduler's own key
  (model, frames, size, steps): the very card, the guidance, having a negative prompt or not;
- :class:`FairShare`: each tenant's recent device-seconds, the ``usage`` fair share weighs tenants by.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from decimal import Decimal

from reelfoundry.clock import Clock
from reelfoundry.config import Settings
from reelfoundry.errors import InvalidParameter
from reelfoundry.finops.meter import Rates
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.scheduling.fleet import Fleet, Node, Slot, SlotType
from reelfoundry.scheduling.profiles import DEVICE_MEMORY_GIB, DEVICE_SPEED, DeviceSpeed, ModelProfile
from reelfoundry.schema import ModelCard
from reelfoundry.schema.model_card import API_DEVICE, DEVICE_CLASSES

#: Seconds a vendor API job is assumed to take when its card states no speed (the worker slot waits that long).
DEFAULT_API_S = 120.0
#: Seconds per step per million pixel-frames on an H100 assumed for a card that states no speed at all.
#: Only the order of jobs on one node depends on it (deadlines, fair share within one turn).
UNKNOWN_S_PER_STEP_MPF = 0.05
#: Fair share forgets: a tenant's device-seconds halve every this many seconds.
FAIR_SHARE_HALF_LIFE_S = 600.0


def device_class(device: str) -> str:
    """The card and catalog device class of a worker device (``H100-PCIe`` → ``H100``); unknown ones as given."""
    if device in DEVICE_CLASSES:
        return device
    for known in sorted(DEVICE_CLASSES, key=len, reverse=True):
        if device.startswith(known):
            return known
    return device


def _mig(partition: str) -> tuple[int, float]:
    slices, _, gib = partition.lower().partition("g.")
    return int(slices), float(gib.removesuffix("gb"))


def node_slot_type(settings: Settings, rates: Rates | None) -> SlotType:
    """One worker slot of this node: its device class, memory, share of the device and catalog price."""
    device = device_class(rates.device if rates is not None else settings.worker_device or "cpu")
    partition = settings.worker_partition
    if partition:
        slices, slice_gib = _mig(partition)
        share = slices / 7
    else:
        share = float(rates.device_share) if rates is not None else 1.0 / max(settings.worker_slots, 1)
    if settings.worker_device_memory_gib is not None:
        memory = settings.worker_device_memory_gib
    elif partition:
        memory = slice_gib
    elif device == "cpu" and settings.worker_memory_limit_mb > 0:
        memory = settings.worker_memory_limit_mb / 1024
    elif device in DEVICE_MEMORY_GIB:
        memory = DEVICE_MEMORY_GIB[device] * share
    else:  # a device the tables do not know: do not guess its memory away
        memory = float("inf")
    return SlotType(
        device=device,
        partition=partition,
        memory_gib=memory,
        share=share,
        provider=rates.provider if rates is not None else "local",
        pricing_model=rates.pricing_model if rates is not None else "on-demand",
        region=rates.region if rates is not None else "local",
        usd_per_device_hour=rates.usd_per_device_hour if rates is not None else Decimal(0),
    )


def node_fleet(slot_type: SlotType, free: int, node: str = "this-node") -> Fleet:
    """A fleet of ``free`` slots of one type: the part of this node the scheduler may place work on now."""
    slots = tuple(Slot(name=f"{node}-{i}", node=node, type=slot_type) for i in range(free))
    return Fleet(nodes=(Node(name=node, count=max(free, 1), type=slot_type, slices_per_device=1),), slots=slots)


def profile_for(card: ModelCard, device: str) -> ModelProfile:
    """The profile of ``card`` for a node of device class ``device``.

    Self-hosted cards: :meth:`ModelProfile.from_card` (with the simulator's fallback figures for the built-in
    and template models); a card that states no speed runs on its devices at an assumed speed. A vendor API
    card needs no device memory and runs one job at a time on any slot (the slot only waits). On a device
    class the tables do not know (``unknown-gpu``), a model runs as fast as on its fastest stated device.
    """
    if not card.self_hosted:
        api = card.speed.get(API_DEVICE)
        figure = (
            DeviceSpeed(api.s_per_step_mpf, api.overhead_s, api.source)
            if api is not None
            else DeviceSpeed(0.0, DEFAULT_API_S, "assumed")
        )
        return ModelProfile(
            model=card.id,
            weights_gib=0.0,
            act_gib_per_mpf=0.0,
            max_batch=1,
            batch_marginal=1.0,
            speeds={device: figure},
            source="vendor API (the slot only waits)",
        )
    from reelfoundry.scheduling.profiles import FALLBACK_PROFILES

    try:
        profile = ModelProfile.from_card(card, FALLBACK_PROFILES.get(card.id))
    except InvalidParameter:  # no speed stated anywhere: runs on its devices, speed unknown
        res = card.resources
        speeds = {
            d: DeviceSpeed(UNKNOWN_S_PER_STEP_MPF / DEVICE_SPEED[d], 0.0, "unknown (assumed)")
            for d in res.devices
            if d in DEVICE_SPEED
        }
        profile = ModelProfile(
            model=card.id,
            weights_gib=res.weights_gib,
            act_gib_per_mpf=res.activation_gib_per_mpf,
            max_batch=res.max_batch,
            batch_marginal=res.batch_marginal,
            speeds=speeds,
            source="card without speed",
        )
    if device not in DEVICE_CLASSES and not profile.runs_on(device) and profile.speeds:
        fastest = min(profile.speeds.values(), key=lambda s: s.s_per_step_mpf)
        profile = replace(profile, speeds={**profile.speeds, device: fastest})
    return profile


def batch_class(card: ModelCard, params: GenerationParams, job_id: str) -> str:
    """The scheduling ``model`` of a job: jobs batch only when it and their frames, size and steps are equal.

    It names the card (its exact content: two snapshots of an edited card do not share a backend), the
    guidance and whether there is a negative prompt (a pipeline's default one is not ours to guess). Jobs
    that never batch get a class of their own: image-to-video (an input image each), templates, jobs with
    inputs, vendor APIs.
    """
    if card.task != "text-to-video" or params.inputs or params.template is not None or not card.self_hosted:
        return f"{card.id}#{job_id}"
    digest = hashlib.sha256(card.model_dump_json().encode()).hexdigest()[:12]
    return f"{card.id}#{digest}#g={params.guidance_scale!r}#neg={params.negative_prompt is not None}"


class FairShare:
    """Each tenant's device-seconds, halving every ``half_life_s``: the ``usage`` fair share weighs tenants by.

    A running job counts at the scheduler's estimate until its worker reports what it really used; then the
    report counts instead. Kept by one engine in memory (a restart starts everyone equal).
    """

    def __init__(self, clock: Clock, half_life_s: float = FAIR_SHARE_HALF_LIFE_S) -> None:
        self._clock = clock
        self._half_life_s = half_life_s
        self._used: dict[str, float] = {}
        self._at = clock.monotonic()
        self._running: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _decay(self) -> None:
        now = self._clock.monotonic()
        factor = 0.5 ** (max(0.0, now - self._at) / self._half_life_s)
        self._at = now
        if factor < 1.0:
            self._used = {t: v * factor for t, v in self._used.items() if v * factor > 1e-6}

    def start(self, job_id: str, tenant: str, estimate_s: float) -> None:
        """A job of ``tenant`` started, expected to use ``estimate_s`` device-seconds."""
        with self._lock:
            self._running[job_id] = (tenant, max(0.0, estimate_s))

    def finish(self, job_id: str, seconds: float) -> None:
        """The job ended having used ``seconds`` device-seconds (its share, for a batch)."""
        with self._lock:
            entry = self._running.pop(job_id, None)
            if entry is None:
                return
            self._decay()
            self._used[entry[0]] = self._used.get(entry[0], 0.0) + max(0.0, seconds)

    def usage(self) -> dict[str, float]:
        """Tenant → device-seconds: recent ones (decayed) plus the estimates of jobs running now."""
        with self._lock:
            self._decay()
            out = dict(self._used)
            for tenant, estimate in self._running.values():
                out[tenant] = out.get(tenant, 0.0) + estimate
            return out
