"""Onboarding: the checks a model card passes before it becomes routable (candidate → approved).

Three groups, every check with a one-line finding:

security
    ``weights``   every file of the card's weight directory (``options.path``) is pinned in ``options.sha256`` with
                  the digest it has, and none is a pickle (by name: .bin .pt .pth .ckpt .pkl .pickle .joblib .npy
                  .npz, or by its first bytes: a pickle opcode stream or a torch zip); the weights must be a local
                  directory (a Hub id downloads at run time). A card without weights (template) passes; the
                  card's own ``card.json`` and a ``README.md`` at the top are not weights. When this check fails
                  nothing of the model is run: loading a pickle runs its code.
    ``hosting``   hosting, backend and data classes agree: a vendor backend runs only on its own vendor's
                  hosting, a self-hosted backend never on a vendor's; a vendor takes public and internal data only.
    ``network``   generation made no network connection, name look-up or program start: the suite ran in a child
                  process with those refused (:mod:`reelfoundry.evaluation.netguard`). A vendor API model is
                  exempt (it runs on the network by design; its hosting check stands instead).
canonical format
    ``generation``        every suite prompt produced a clip.
    ``canonical_format``  each output is an MP4 with H.264 video at the frames, size and fps asked for.
    ``same_seed``         the first prompt run again with the same seed gives the same clip (decoded frames within
                          a mean absolute difference of 1/255: encoder rounding, not another clip).
quality and performance (the NRES suite against the ``onboarding_*`` settings)
    ``fidelity``, ``nres``, ``seconds_per_clip``, ``cost_per_clip``.

The report passes only when every check does.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from reelfoundry.config import Settings
from reelfoundry.errors import ReelFoundryError
from reelfoundry.evaluation.nres import SUITE_VERSION, NresRun, SuiteName, evaluate_model
from reelfoundry.media.probe import file_digest, probe
from reelfoundry.schema import ModelCard
from reelfoundry.schema.model_card import SELF_HOSTED_ONLY
from reelfoundry.store.models import card_digest

#: File names that hold pickles (or formats that may).
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz"})
#: Files at the top of a weight directory that are about the weights, not weights.
NOT_WEIGHTS = frozenset({"card.json", "README.md"})
#: Backends that run on a vendor's API, by the vendor they belong to.
VENDOR_BACKENDS = {"replicate": "replicate", "fal": "fal"}
#: Most files a weight directory may hold (each is hashed).
MAX_WEIGHT_FILES = 10_000
#: The same-seed check's tolerance: mean absolute difference of decoded frames, in 0–255 units.
SAME_SEED_TOLERANCE = 1.0
Group = Literal["security", "format", "quality"]


@dataclass
class Check:
    """One check's outcome."""

    name: str
    group: Group
    passed: bool
    detail: str


@dataclass
class OnboardingReport:
    """What ``reelfoundry models onboard`` writes (JSON, and as HTML)."""

    model: str
    model_version: str
    card_sha256: str
    suite: str
    suite_version: str
    date: str
    passed: bool
    checks: list[Check]
    nres: dict[str, Any] | None = None
    #: Posters (JPEG bytes as base64) of the first clips, for the HTML report.
    posters: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As a JSON-ready dict (without the posters)."""
        data = asdict(self)
        data.pop("posters")
        return data

    @property
    def failed(self) -> list[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.passed]


def onboard(
    card: ModelCard,
    settings: Settings,
    *,
    suite: SuiteName | None = None,
    features: Path | None = None,
    now: datetime | None = None,
) -> OnboardingReport:
    """Run every check on ``card`` on this machine (see the module)."""
    suite = suite or settings.onboarding_suite
    when = now or datetime.now(UTC)
    checks = [check_weights(card), check_hosting(card)]
    run: NresRun | None = None
    posters: list[str] = []
    if not checks[0].passed:
        checks.append(Check("network", "security", False, "not run: the weights check failed"))
        checks.append(Check("generation", "format", False, "not run: the weights check failed"))
    else:
        with tempfile.TemporaryDirectory(prefix="onboard-") as scratch:
            try:
                run = evaluate_model(
                    card, settings, suite, features=features, repeat_first=True, work_dir=Path(scratch), now=when
                )
            except ReelFoundryError as exc:  # the backend cannot even be made from the card
                checks.append(Check("network", "security", False, "not run: the model could not be set up"))
                checks.append(Check("generation", "format", False, f"the model could not be set up: {exc.detail}"))
            else:
                checks.append(check_network(card, run))
                checks += check_format(run)
                posters = _posters(run)
        if run is not None:
            checks += check_quality(run, settings)
    return OnboardingReport(
        model=card.id,
        model_version=card.version,
        card_sha256=card_digest(card),
        suite=suite,
        suite_version=SUITE_VERSION,
        date=when.date().isoformat(),
        passed=all(c.passed for c in checks),
        checks=checks,
        nres=run.result.to_json() if run is not None else None,
        posters=posters,
    )


def check_weights(card: ModelCard) -> Check:
    """Every weight file pinned with its digest, none a pickle, all local (see the module)."""
    path = card.options.get("path")
    if card.vendor is not None:
        return Check("weights", "security", True, f"runs on the {card.vendor} API: no weights on this platform")
    if path is None:
        return Check("weights", "security", True, "the card names no weight files (options.path)")
    if not isinstance(path, str):
        return Check("weights", "security", False, "options.path must be a directory path")
    root = Path(path).expanduser()
    if not root.is_dir():
        return Check(
            "weights", "security", False, f"{path[:200]!r} is not a local directory: weights are pinned files here"
        )
    pins = card.options.get("sha256") or {}
    if not isinstance(pins, dict):
        return Check("weights", "security", False, "options.sha256 must map file paths to hex digests")
    files = sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
    if len(files) > MAX_WEIGHT_FILES:
        return Check("weights", "security", False, f"{len(files)} files under {root}: at most {MAX_WEIGHT_FILES}")
    problems = []
    for file in files:
        relative = file.relative_to(root).as_posix()
        if relative in NOT_WEIGHTS:
            continue
        if file.is_symlink() and not file.resolve().is_relative_to(root.resolve()):
            problems.append(f"{relative} links outside the weight directory")
            continue
        if file.suffix.lower() in PICKLE_SUFFIXES or _looks_pickled(file):
            problems.append(f"{relative} is a pickle (code runs when it loads): convert it to safetensors")
            continue
        pinned = pins.get(relative)
        if pinned is None:
            problems.append(f"{relative} is not pinned in options.sha256")
        elif file_digest(file)[1] != str(pinned).lower():
            problems.append(f"{relative} does not match its pinned sha256")
    missing = sorted(set(pins) - {f.relative_to(root).as_posix() for f in files})
    problems += [f"{m} is pinned but missing" for m in missing[:5]]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return Check("weights", "security", False, "; ".join(problems[:3]) + more)
    weights = [f for f in files if f.suffix == ".safetensors"]
    return Check(
        "weights", "security", True, f"{len(pins)} files pinned and matching; {len(weights)} safetensors weight files"
    )


def _looks_pickled(path: Path) -> bool:
    """A pickle opcode stream (PROTO 2–5) or a zip (torch.save's format) by the first bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head == b"PK\x03\x04"


def check_hosting(card: ModelCard) -> Check:
    """Hosting, backend and data classes agree."""
    vendor_of_backend = VENDOR_BACKENDS.get(card.backend)
    if card.vendor is None and vendor_of_backend is not None:
        detail = f"backend {card.backend} runs on {vendor_of_backend}'s API: hosting says self-hosted"
        return Check("hosting", "security", False, detail)
    if card.vendor is not None:
        if vendor_of_backend != card.vendor:
            return Check(
                "hosting", "security", False, f"hosting names {card.vendor}, but backend {card.backend} is not its API"
            )
        leaking = sorted(c.value for c in SELF_HOSTED_ONLY & set(card.data_classes))
        if leaking:
            return Check("hosting", "security", False, f"a vendor API may not take {leaking} data")
        classes = ", ".join(c.value for c in card.data_classes)
        return Check("hosting", "security", True, f"{card.vendor} API in {card.hosting.region}; takes {classes}")  # type: ignore[union-attr]
    classes = ", ".join(c.value for c in card.data_classes) or "no"
    return Check("hosting", "security", True, f"self-hosted; takes {classes} data")


def check_network(card: ModelCard, run: NresRun) -> Check:
    """No refused network attempt during the suite (a vendor model is exempt)."""
    if card.vendor is not None:
        return Check("network", "security", True, "exempt: a vendor API runs on the network (hosting is checked)")
    attempts = run.run.network_attempts
    if attempts:
        shown = "; ".join(attempts[:3]) + (f" (and {len(attempts) - 3} more)" if len(attempts) > 3 else "")
        return Check("network", "security", False, f"generation tried the network: {shown}")
    if run.run.error and not run.run.clips:
        return Check("network", "security", False, f"not established: the run failed first ({run.run.error})")
    return Check("network", "security", True, "no connection, look-up or program start with sockets refused")


def check_format(run: NresRun) -> list[Check]:
    """Generation, canonical format and same seed, from the clips the suite wrote."""
    clips = run.run.clips
    failures = [f"clip {c.index}: {c.error}" for c in clips if c.error] + ([run.run.error] if run.run.error else [])
    made = [c for c in clips if c.video is not None]
    generation = Check(
        "generation",
        "format",
        not failures and len(made) == len(run.params),
        f"{len(made)} of {len(run.params)} clips made" + (f"; {failures[0]}" if failures else ""),
    )
    wrong = []
    for clip in made:
        assert clip.video is not None
        asked = run.params[clip.index]
        try:
            media = probe(clip.video)
        except (ValueError, ReelFoundryError) as exc:
            wrong.append(f"clip {clip.index}: {exc}")
            continue
        got = (media.media_type, media.codec, media.num_frames, media.width, media.height)
        want = ("video/mp4", "h264", asked.num_frames, asked.width, asked.height)
        if got != want or abs(media.fps - asked.fps) > 0.01:
            wrong.append(
                f"clip {clip.index}: {media.media_type} {media.codec} {media.num_frames} frames "
                f"{media.width}×{media.height} at {media.fps:g} fps; asked for video/mp4 h264 {asked.num_frames} "
                f"frames {asked.width}×{asked.height} at {asked.fps} fps"
            )
    fmt = Check(
        "canonical_format",
        "format",
        bool(made) and not wrong,
        wrong[0] + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "")
        if wrong
        else (f"{len(made)} clips: MP4, H.264, frames, size and fps as asked" if made else "no clip to check"),
    )
    return [generation, fmt, _same_seed(run)]


def _same_seed(run: NresRun) -> Check:
    first = next((c for c in run.run.clips if c.index == 0), None)
    again = run.run.repeat
    if first is None or first.video is None or again is None or again.video is None:
        return Check("same_seed", "format", False, "not established: the first clip was not made twice")
    try:
        diff = mean_abs_difference(first.video, again.video)
    except (ValueError, av.FFmpegError) as exc:
        return Check("same_seed", "format", False, f"not established: {exc}")
    if diff is None:
        return Check("same_seed", "format", False, "the same seed gave clips of different sizes or lengths")
    return Check(
        "same_seed",
        "format",
        diff <= SAME_SEED_TOLERANCE,
        f"mean absolute difference {diff:.3f} of 255 between two runs of seed {run.params[0].seed} "
        f"(at most {SAME_SEED_TOLERANCE:g})",
    )


def mean_abs_difference(a: Path, b: Path) -> float | None:
    """Mean absolute difference of two videos' decoded frames (0–255), read in step at full size, one frame of each
    in memory at a time; None when their sizes or frame counts differ."""
    total, count = 0.0, 0
    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        frames_a, frames_b = ca.decode(video=0), cb.decode(video=0)
        for fa, fb in itertools.zip_longest(frames_a, frames_b):
            if fa is None or fb is None or (fa.width, fa.height) != (fb.width, fb.height):
                return None
            x, y = fa.to_ndarray(format="rgb24").astype(np.int16), fb.to_ndarray(format="rgb24").astype(np.int16)
            total += float(np.abs(x - y).mean())
            count += 1
    if count == 0:
        raise ValueError(f"{a.name} has no decodable frame")
    return total / count


def check_quality(run: NresRun, settings: Settings) -> list[Check]:
    """The NRES results against the onboarding thresholds in settings."""
    r = run.result
    seconds = r.seconds_per_clip
    cost = Decimal(r.cost_per_clip_usd) if r.cost_per_clip_usd is not None else None
    return [
        Check(
            "fidelity",
            "quality",
            r.clips >= 2 and r.fidelity >= settings.onboarding_min_fidelity,
            f"{r.fidelity:.4f} (FD {r.frechet_distance}); at least {settings.onboarding_min_fidelity:g}",
        ),
        Check(
            "nres",
            "quality",
            r.clips >= 2 and r.nres >= settings.onboarding_min_nres,
            f"{r.nres:.4f}; at least {settings.onboarding_min_nres:g}",
        ),
        Check(
            "seconds_per_clip",
            "quality",
            seconds is not None and seconds <= settings.onboarding_max_seconds_per_clip,
            f"{seconds} s warm ({r.cold_seconds_per_clip} s cold); "
            f"at most {settings.onboarding_max_seconds_per_clip:g}",
        ),
        Check(
            "cost_per_clip",
            "quality",
            cost is not None and cost <= settings.onboarding_max_usd_per_clip,
            f"${r.cost_per_clip_usd} at {r.rates.get('provider')}/{r.rates.get('device')} rates; "
            f"at most ${settings.onboarding_max_usd_per_clip}",
        ),
    ]


def _posters(run: NresRun, count: int = 4) -> list[str]:
    import base64

    posters = []
    for clip in run.run.clips[:count]:
        poster = clip.video.with_suffix(".jpg") if clip.video is not None else None
        if poster is not None and poster.is_file() and poster.stat().st_size <= 1_000_000:
            posters.append(base64.b64encode(poster.read_bytes()).decode())
    return posters


def report_json(report: OnboardingReport) -> str:
    """The report as JSON text."""
    return json.dumps(report.to_json(), indent=2, sort_keys=False)
