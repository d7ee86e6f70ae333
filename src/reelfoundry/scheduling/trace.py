"""Job traces: the JSONL format, its validation, and a synthetic generator.

One job a line::

    {"t": 12.5, "tenant": "acme", "model": "ltx-video", "priority": "interactive",
     "num_frames": 121, "width": 768, "height": 512, "steps": 40, "deadline_s": 300}

``t`` is seconds from the start of the trace; ``deadline_s`` (optional) is relative to ``t``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reelfoundry.errors import InvalidParameter
from reelfoundry.scheduling.profiles import ModelProfile, default_profiles
from reelfoundry.scheduling.queue import CLASSES, Job

_INT_FIELDS = ("num_frames", "width", "height", "steps")
_REQUIRED = ("t", "tenant", "model", "priority", *_INT_FIELDS)


def job_from_record(
    record: Mapping[str, Any],
    job_id: int,
    where: str = "trace",
    profiles: Mapping[str, ModelProfile] | None = None,
) -> Job:
    """One job from a trace record; InvalidParameter naming ``where`` and the field otherwise.

    ``profiles``: the models a job may name (default: the shipped portfolio's cards).
    """
    profiles = default_profiles() if profiles is None else profiles
    if not isinstance(record, Mapping):
        raise InvalidParameter("trace", f"{where}: a job must be a JSON object")
    for key in _REQUIRED:
        if key not in record:
            raise InvalidParameter(key, f"{where}: field {key!r} is missing")
    t = record["t"]
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise InvalidParameter("t", f"{where}: field 't' must be seconds >= 0, got {t!r}")
    for key in ("tenant", "model"):
        if not isinstance(record[key], str) or not record[key]:
            raise InvalidParameter(key, f"{where}: field {key!r} must be a non-empty string")
    if record["model"] not in profiles:
        raise InvalidParameter(
            "model",
            f"{where}: field 'model': no model card for {record['model']!r} (a self-hosted card of the portfolio "
            f"or of --models); known: {', '.join(sorted(profiles))}",
        )
    if record["priority"] not in CLASSES:
        raise InvalidParameter(
            "priority", f"{where}: field 'priority' must be one of {', '.join(CLASSES)}, got {record['priority']!r}"
        )
    for key in _INT_FIELDS:
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidParameter(key, f"{where}: field {key!r} must be a positive integer, got {value!r}")
    deadline_s = record.get("deadline_s")
    if deadline_s is not None and (
        isinstance(deadline_s, bool) or not isinstance(deadline_s, int | float) or not deadline_s > 0
    ):
        raise InvalidParameter("deadline_s", f"{where}: field 'deadline_s' must be seconds > 0, got {deadline_s!r}")
    return Job(
        id=job_id,
        t=float(t),
        tenant=record["tenant"],
        model=record["model"],
        priority=record["priority"],
        num_frames=record["num_frames"],
        width=record["width"],
        height=record["height"],
        steps=record["steps"],
        deadline=None if deadline_s is None else float(t) + float(deadline_s),
    )


def jobs_from_records(
    records: Iterable[Mapping[str, Any]], source: str = "trace", profiles: Mapping[str, ModelProfile] | None = None
) -> list[Job]:
    """Jobs from trace records (e.g. :func:`gen_trace`'s), sorted by arrival; ids are record order."""
    profiles = default_profiles() if profiles is None else profiles
    jobs = [job_from_record(r, i, f"{source}: record {i + 1}", profiles) for i, r in enumerate(records)]
    return sorted(jobs, key=lambda j: (j.t, j.id))


def parse_trace(text: str, source: str = "trace", profiles: Mapping[str, ModelProfile] | None = None) -> list[Job]:
    """Jobs from JSONL text (blank lines skipped); errors name ``source``, the line and the field."""
    profiles = default_profiles() if profiles is None else profiles
    jobs: list[Job] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}: line {n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidParameter("trace", f"{where}: not valid JSON: {exc.msg}") from None
        jobs.append(job_from_record(record, len(jobs), where, profiles))
    return sorted(jobs, key=lambda j: (j.t, j.id))


def load_trace(path: str | Path, profiles: Mapping[str, ModelProfile] | None = None) -> list[Job]:
    """Jobs from a JSONL trace file (``profiles``: the models a job may name; default the shipped cards)."""
    p = Path(path)
    return parse_trace(p.read_text(encoding="utf-8"), str(p), profiles)


def write_trace(records: Iterable[Mapping[str, Any]], path: str | Path) -> None:
    """Write trace records as JSONL."""
    with Path(path).open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(dict(r), separators=(",", ":")) + "\n")


#: Request shapes per model: (num_frames, width, height, steps), with weights. A few presets each, as
#: real clients mostly send a UI's defaults — which is what makes batching possible.
_SHAPES: dict[str, list[tuple[tuple[int, int, int, int], float]]] = {
    "builtin": [((16, 64, 64, 20), 1.0)],
    "template": [((120, 640, 360, 1), 0.7), ((240, 1280, 720, 1), 0.3)],
    "ltx-video": [((121, 768, 512, 40), 0.6), ((65, 768, 512, 30), 0.25), ((161, 1216, 704, 40), 0.15)],
    "wan-1.3b": [((81, 832, 480, 50), 0.7), ((33, 832, 480, 30), 0.3)],
    "hunyuan-video": [((129, 960, 544, 30), 0.6), ((61, 960, 544, 30), 0.4)],
}
_MODEL_MIX = {"builtin": 0.15, "template": 0.15, "ltx-video": 0.35, "wan-1.3b": 0.25, "hunyuan-video": 0.10}
_TENANTS = {"acme": 0.35, "globex": 0.25, "initech": 0.2, "umbrella": 0.12, "hooli": 0.08}


def gen_trace(
    jobs: int,
    seed: int,
    *,
    day_s: float | None = None,
    burst_share: float = 0.2,
    interactive_share: float = 0.3,
) -> list[dict[str, Any]]:
    """A synthetic trace of ``jobs`` jobs, deterministic for ``seed``, sorted by ``t``.

    Arrivals follow a diurnal curve over one (compressed) day of ``day_s`` seconds (default
    ``9 × jobs``: about 400 jobs an hour, so a 2000-job trace spans ~5 h) — low at night, peaking
    in the afternoon — plus ``burst_share`` of the jobs in a few bursts, each from one tenant
    flooding the queue with batch work. Models, sizes, tenants and priorities are mixed;
    interactive jobs carry a deadline of a few minutes, a third of batch jobs one of 1–4 hours.
    """
    if jobs < 0:
        raise InvalidParameter("jobs", f"jobs must be >= 0, got {jobs}")
    rng = random.Random(seed)
    span = float(day_s if day_s is not None else 9.0 * max(jobs, 1))
    n_burst = int(jobs * burst_share)
    bursts = [(rng.uniform(0.1, 0.9) * span, rng.choice(list(_TENANTS))) for _ in range(max(1, n_burst // 100))]

    def diurnal_t() -> float:
        while True:  # thinning: rate ∝ 1 + 0.8·sin, peak at 15:00 of the compressed day
            t = rng.uniform(0, span)
            if rng.random() * 1.8 <= 1 + 0.8 * math.sin(2 * math.pi * (t / span - 0.375)):
                return t

    records: list[dict[str, Any]] = []
    models, model_w = list(_MODEL_MIX), list(_MODEL_MIX.values())
    tenants, tenant_w = list(_TENANTS), list(_TENANTS.values())
    for i in range(jobs):
        in_burst = i < n_burst
        if in_burst:
            centre, tenant = bursts[i % len(bursts)]
            t = min(span, max(0.0, rng.gauss(centre, span / 200)))
            priority = "batch"
        else:
            t = diurnal_t()
            tenant = rng.choices(tenants, tenant_w)[0]
            priority = "interactive" if rng.random() < interactive_share else "batch"
        model = rng.choices(models, model_w)[0]
        shapes = _SHAPES[model]
        frames, width, height, steps = rng.choices([s for s, _ in shapes], [w for _, w in shapes])[0]
        record: dict[str, Any] = {
            "t": round(t, 3),
            "tenant": tenant,
            "model": model,
            "priority": priority,
            "num_frames": frames,
            "width": width,
            "height": height,
            "steps": steps,
        }
        if priority == "interactive":
            record["deadline_s"] = rng.choice([180, 300, 600])
        elif rng.random() < 1 / 3:
            record["deadline_s"] = rng.choice([3600, 7200, 14400])
        records.append(record)
    records.sort(key=lambda r: r["t"])
    return records
