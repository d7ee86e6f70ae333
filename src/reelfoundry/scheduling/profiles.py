"""Model profiles: how much device memory and time a model needs, per device class.

The ModelCard does not carry these figures yet, so the scheduler keeps its own small table.
Every number below is an ASSUMPTION for simulation, not a measurement; replace it with
measured figures (``reelfoundry bench``) when they exist.

Runtime of a batch of ``n`` compatible jobs on a device of relative speed ``v``::

    work     = steps × frames × width × height / 1e6           (step-megapixel-frames)
    runtime  = overhead_s + work × s_per_step_mpf / v × (1 + (n - 1) × batch_marginal)

Memory of a batch::

    memory   = weights_gib + n × act_gib_per_mpf × frames × width × height / 1e6
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Relative dense bf16 throughput against an H100 (vendor datasheet TFLOPS: H100 SXM 989, B200 ~2250,
#: A100 312, L40S 362; H200 has H100 compute with faster memory, +10 % assumed). A CPU node is
#: assumed 250× slower than an H100 for diffusion models. ASSUMPTIONS.
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
class ModelProfile:
    """What one model needs from a device: memory by batch size, time by device class, max batch."""

    model: str
    #: Weights, text encoder and VAE resident on the device, GiB.
    weights_gib: float
    #: Activation memory per job per million pixel-frames, GiB.
    act_gib_per_mpf: float
    #: Seconds per denoising step per million pixel-frames on an H100 at batch 1.
    s_per_step_mpf: float
    #: Fixed seconds per run (load latents, decode, encode the video).
    overhead_s: float
    #: Largest batch the model accepts.
    max_batch: int
    #: Extra time each further job in a batch adds, as a fraction of a single job's time.
    batch_marginal: float = 0.35
    #: Relative speed per device class; the devices it can run on. Defaults to :data:`DEVICE_SPEED`.
    speed: dict[str, float] = field(default_factory=lambda: dict(DEVICE_SPEED))

    def memory_gib(self, batch: int, num_frames: int, width: int, height: int) -> float:
        """Device memory a batch of ``batch`` jobs of this size takes."""
        return self.weights_gib + batch * self.act_gib_per_mpf * num_frames * width * height / 1e6

    def runtime_s(self, batch: int, num_frames: int, width: int, height: int, steps: int, device: str) -> float:
        """Seconds a batch takes on a whole device of class ``device`` (KeyError if it cannot run there)."""
        work = max(1, steps) * num_frames * width * height / 1e6
        single = work * self.s_per_step_mpf / self.speed[device]
        return self.overhead_s + single * (1 + (batch - 1) * self.batch_marginal)


#: Profiles of the shipped models and three illustrative diffusers-class models. ASSUMPTIONS:
#: - builtin: the tiny 64×64×16 model trained in-repo; ~1 s per job on a CPU core set, trivially small.
#: - template: the PIL/ffmpeg template renderer is CPU-bound: same speed on every device (a GPU buys
#:   nothing), one job at a time (``steps`` is ignored: one "step" per frame).
#: - ltx-video (2B DiT + T5-XXL): ~40 s for 121×768×512 at 40 steps on an H100, ~20 GiB resident.
#: - wan-1.3b (1.3B DiT + umT5-XXL): ~90 s for 81×832×480 at 50 steps on an H100, ~14 GiB resident.
#: - hunyuan-video (13B DiT): ~200 s for 129×960×544 at 30 steps on an H100, ~40 GiB resident plus
#:   ~0.5 GiB per Mpf of activations, so only 80 GiB-class devices fit it.
PROFILES: dict[str, ModelProfile] = {
    "builtin": ModelProfile(
        model="builtin",
        weights_gib=0.2,
        act_gib_per_mpf=0.5,
        s_per_step_mpf=0.004,
        overhead_s=0.5,
        max_batch=16,
        batch_marginal=0.1,
    ),
    "template": ModelProfile(
        model="template",
        weights_gib=0.3,
        act_gib_per_mpf=0.02,
        s_per_step_mpf=0.15,
        overhead_s=1.0,
        max_batch=1,
        batch_marginal=1.0,
        speed={device: 1.0 for device in DEVICE_SPEED},
    ),
    "ltx-video": ModelProfile(
        model="ltx-video",
        weights_gib=20.0,
        act_gib_per_mpf=0.25,
        s_per_step_mpf=0.02,
        overhead_s=3.0,
        max_batch=4,
    ),
    "wan-1.3b": ModelProfile(
        model="wan-1.3b",
        weights_gib=14.0,
        act_gib_per_mpf=0.15,
        s_per_step_mpf=0.055,
        overhead_s=4.0,
        max_batch=4,
    ),
    "hunyuan-video": ModelProfile(
        model="hunyuan-video",
        weights_gib=40.0,
        act_gib_per_mpf=0.5,
        s_per_step_mpf=0.1,
        overhead_s=8.0,
        max_batch=2,
        batch_marginal=0.5,
        speed={k: v for k, v in DEVICE_SPEED.items() if k != "cpu"},
    ),
}
