"""Model profiles: how much device memory and time a model needs, per device class — read from model cards.

A :class:`ModelProfile` is made from a :class:`~reelfoundry.schema.ModelCard` (:meth:`ModelProfile.from_card`):
``resources`` gives memory, devices and batching, ``speed`` the seconds per denoising step per million
pixel-frames and the fixed overhead on each device class. :func:`default_profiles` reads the cards the
platform ships: the template renderer's, the built-in model's and those of ``portfolio/models.yaml``;
:func:`load_profiles` reads a models file (``reelfoundry simulate --models FILE``) in place of the shipped
one. The figures in the shipped cards are ASSUMPTIONS unless their ``source`` says measured.

Runtime of a batch of ``n`` compatible jobs on a whole device of class ``d``::

    work     = steps × frames × width × height / 1e6           (step-megapixel-frames)
    runtime  = overhead_s[d] + work × s_per_step_mpf[d] × (1 + (n - 1) × batch_marginal)

Memory of a batch::

    memory   = weights_gib + n × activation_gib_per_mpf × frames × width × height / 1e6
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from reelfoundry.errors import InvalidParameter
from reelfoundry.portfolio.config import SHIPPED_MODELS_FILE, load_located, parse_located

if TYPE_CHECKING:
    from reelfoundry.schema import ModelCard

#: Relative dense bf16 throughput against an H100 (vendor datasheet TFLOPS: H100 SXM 989, B200 ~2250,
#: A100 312, L40S 362; H200 has H100 compute with faster memory, +10 % assumed). A CPU node is
#: assumed 250× slower than an H100 for diffusion models. ASSUMPTIONS, used only to derive a figure a
#: card does not state (a device it lists without a speed) and for the built-in model's fallback.
DEVICE_SPEED: dict[str, float] = {
    "cpu": 0.004,
    "L40S": 0.37,
    "A100-40GB": 0.32,
    "A100-80GB": 0.32,
    "H100": 1.0,
    "H200": 1.1,
    "B200": 2.2,
}

#: Usable device memory in GiB (a CPU "device" is the host RAM a worker may take: 64 GiB assumed).
DEVICE_MEMORY_GIB: dict[str, float] = {
    "cpu": 64.0,
    "L40S": 48.0,
    "A100-40GB": 40.0,
    "A100-80GB": 80.0,
    "H100": 80.0,
    "H200": 141.0,
    "B200": 180.0,
}


@dataclass(frozen=True)
class DeviceSpeed:
    """One model's time on one whole device class at batch 1, and where the figure came from."""

    s_per_step_mpf: float
    overhead_s: float
    source: str = "assumed"


@dataclass(frozen=True)
class ModelProfile:
    """What one model needs from a device: memory by batch size, time by device class, max batch."""

    model: str
    #: Weights, text encoder and VAE resident on the device, GiB.
    weights_gib: float
    #: Activation memory per job per million pixel-frames, GiB.
    act_gib_per_mpf: float
    #: Largest batch the model accepts.
    max_batch: int
    #: Extra time each further job in a batch adds, as a fraction of a single job's time.
    batch_marginal: float
    #: Device class → its figures; the model runs on exactly these classes.
    speeds: Mapping[str, DeviceSpeed] = field(default_factory=dict)
    #: Where the profile came from: "card", or which figures fell back to the scheduler's own.
    source: str = "card"

    @property
    def speed(self) -> dict[str, float]:
        """Relative speed per device class it runs on (against its H100 figure, else its fastest device)."""
        if not self.speeds:
            return {}
        ref = self.speeds["H100"] if "H100" in self.speeds else min(self.speeds.values(), key=_rate)
        return {
            d: (ref.s_per_step_mpf / s.s_per_step_mpf if s.s_per_step_mpf > 0 else 1.0) for d, s in self.speeds.items()
        }

    def runs_on(self, device: str) -> bool:
        """Whether the model can run on device class ``device``."""
        return device in self.speeds

    def overhead_s(self, device: str) -> float:
        """Fixed seconds per run on ``device`` (KeyError if it cannot run there)."""
        return self.speeds[device].overhead_s

    def memory_gib(self, batch: int, num_frames: int, width: int, height: int) -> float:
        """Device memory a batch of ``batch`` jobs of this size takes."""
        return self.weights_gib + batch * self.act_gib_per_mpf * num_frames * width * height / 1e6

    def runtime_s(self, batch: int, num_frames: int, width: int, height: int, steps: int, device: str) -> float:
        """Seconds a batch takes on a whole device of class ``device`` (KeyError if it cannot run there)."""
        figures = self.speeds[device]
        work = max(1, steps) * num_frames * width * height / 1e6
        return figures.overhead_s + work * figures.s_per_step_mpf * (1 + (batch - 1) * self.batch_marginal)

    @classmethod
    def from_card(cls, card: ModelCard, fallback: ModelProfile | None = None) -> ModelProfile:
        """The profile a card states: memory, devices and batching from ``resources``, time from ``speed``.

        ``fallback`` supplies what the card leaves unstated: its resources when the card sets none, its
        speeds when the card states no speed. A device the card lists under ``resources.devices`` without a
        speed figure gets one derived from a stated device by :data:`DEVICE_SPEED` (an assumption, so
        marked in the figure's ``source``). InvalidParameter naming the field when there is nothing to go on.
        """
        if not card.self_hosted:
            raise InvalidParameter(
                "hosting", f"model card {card.id!r}: field 'hosting': a vendor API model runs on no fleet"
            )
        notes: list[str] = []
        stated = "resources" in card.model_fields_set
        if stated or fallback is None:
            res = card.resources
            weights, act, devices = res.weights_gib, res.activation_gib_per_mpf, list(res.devices)
            max_batch, marginal = res.max_batch, res.batch_marginal
        else:
            weights, act, devices = fallback.weights_gib, fallback.act_gib_per_mpf, list(fallback.speeds)
            max_batch, marginal = fallback.max_batch, fallback.batch_marginal
            notes.append("resources")
        given = {
            d: DeviceSpeed(s.s_per_step_mpf, s.overhead_s, s.source) for d, s in card.speed.items() if d in DEVICE_SPEED
        }
        if not given and fallback is not None:
            given = dict(fallback.speeds)
            notes.append("speed")
        if not given:
            raise InvalidParameter(
                "speed",
                f"model card {card.id!r}: field 'speed': no figure for any device class; the scheduler needs one",
            )
        speeds: dict[str, DeviceSpeed] = {}
        base_device = "H100" if "H100" in given else next(iter(given))
        base = given[base_device]
        for device in devices:
            if device in given:
                speeds[device] = given[device]
            elif device in DEVICE_SPEED:
                ratio = DEVICE_SPEED[base_device] / DEVICE_SPEED[device]
                speeds[device] = DeviceSpeed(
                    base.s_per_step_mpf * ratio,
                    base.overhead_s,
                    f"derived from the {base_device} figure by relative throughput (assumed)",
                )
        if not speeds:
            raise InvalidParameter(
                "resources.devices",
                f"model card {card.id!r}: field 'resources.devices': none of {devices} has a speed figure",
            )
        source = "card" if not notes else f"card; scheduler fallback for {' and '.join(notes)}"
        return cls(card.id, weights, act, max_batch, marginal, speeds, source)


def _rate(s: DeviceSpeed) -> float:
    return s.s_per_step_mpf


def _scaled(h100_s_per_step_mpf: float, overhead_s: float, source: str) -> dict[str, DeviceSpeed]:
    return {d: DeviceSpeed(h100_s_per_step_mpf / v, overhead_s, source) for d, v in DEVICE_SPEED.items()}


#: The scheduler's own figures for the two models the platform always has, used where their cards state
#: none. ASSUMPTIONS:
#: - builtin: the tiny 64×64×16 model trained in-repo; ~1.8 s per job on a CPU worker (RESULTS measured
#:   1.35–1.4 s per clip in batches of 8 on 2 cores), trivially small; H100 figure scaled by DEVICE_SPEED.
#: - template: the PIL/ffmpeg renderer is CPU-bound: the same speed on every device (a GPU buys nothing),
#:   one job at a time (``steps`` is ignored: one "step" per frame).
FALLBACK_PROFILES: dict[str, ModelProfile] = {
    "builtin": ModelProfile(
        "builtin", 0.2, 0.5, 16, 0.1, _scaled(0.004, 0.5, "assumed (scheduler fallback)"), "scheduler fallback"
    ),
    "template": ModelProfile(
        "template",
        0.3,
        0.02,
        1,
        1.0,
        {d: DeviceSpeed(0.15, 1.0, "assumed (scheduler fallback)") for d in DEVICE_SPEED},
        "scheduler fallback",
    ),
}


def profiles_from_cards(cards: Iterable[tuple[ModelCard, str]]) -> dict[str, ModelProfile]:
    """Profiles of self-hosted cards (vendor API cards are skipped: they need no fleet).

    ``cards``: (card, where) pairs; an error names ``where`` (a file and line) and the field.
    A card whose id has a :data:`FALLBACK_PROFILES` entry takes from it what the card leaves unstated.
    """
    out: dict[str, ModelProfile] = {}
    for card, where in cards:
        if not card.self_hosted:
            continue
        try:
            out[card.id] = ModelProfile.from_card(card, FALLBACK_PROFILES.get(card.id))
        except InvalidParameter as exc:
            raise InvalidParameter(exc.parameter, f"{where}: {exc.detail}") from None
    return out


#: The models file loader is the portfolio's (one format, one set of checks): cards with where each is.
parse_models = parse_located
load_models = load_located


def _always_cards() -> list[tuple[ModelCard, str]]:
    """The template renderer's card and the built-in model's (a fallback-only card when no weights are installed)."""
    from reelfoundry.models.builtin import builtin_card
    from reelfoundry.portfolio.backends.template import TEMPLATE_CARD

    cards: list[tuple[ModelCard, str]] = [(TEMPLATE_CARD, "template card")]
    builtin = builtin_card()
    if builtin is not None:
        cards.append((builtin, "built-in model card"))
    return cards


def load_profiles(models_file: str | Path | None = None) -> dict[str, ModelProfile]:
    """Profiles of the template and built-in cards plus the cards of ``models_file`` (default: the shipped one).

    As on the server, a models file replaces the shipped one; a card in it with the id ``template`` or
    ``builtin`` replaces that card. Without installed weights the built-in model keeps its fallback profile.
    """
    cards = _always_cards()
    extra = load_models(models_file if models_file is not None else SHIPPED_MODELS_FILE)
    ids = {card.id for card, _ in extra}
    profiles = profiles_from_cards([c for c in cards if c[0].id not in ids] + extra)
    if "builtin" not in profiles:
        profiles["builtin"] = FALLBACK_PROFILES["builtin"]
    return profiles


@functools.cache
def default_profiles() -> Mapping[str, ModelProfile]:
    """The shipped portfolio's profiles (read once; read-only)."""
    return MappingProxyType(load_profiles())


def __getattr__(name: str) -> Any:
    # PROFILES stays importable as before; it is read from the cards on first use.
    if name == "PROFILES":
        return default_profiles()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
