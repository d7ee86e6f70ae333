"""Batched generation: each clip of a batch is the clip its seed makes alone, and only compatible jobs share a call."""

from __future__ import annotations

import copy
import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from reelfoundry.models.builtin import export
from reelfoundry.models.pipeline_builtin import BuiltinVideoPipeline, new_pipeline
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend, batch_key, takes_lists
from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback
from reelfoundry.schema import ModelCard

TINY = {"hidden_dim": 32, "depth": 1, "heads": 2, "patch_t": 4, "patch_size": 16}
#: Float frames in [0, 1]: a batched matmul may sum in another order than a single one, nothing more.
FLOAT_TOL = 1e-5
PROMPTS = ["a red circle moving left", "a blue star growing on a green background", "a square"]


def tiny_pipeline(seed: int = 0) -> BuiltinVideoPipeline:
    """Random weights everywhere (the zero-initialised output layers too, so outputs depend on the input)."""
    torch.manual_seed(seed)
    pipe = new_pipeline(**TINY)
    with torch.no_grad():
        for p in pipe.transformer.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return pipe


def _alone(pipe: BuiltinVideoPipeline, prompt: str, seed: int, **kw: object) -> np.ndarray:
    frames = pipe(prompt, generator=torch.Generator().manual_seed(seed), **kw).frames
    return np.asarray(frames[0])


@pytest.mark.parametrize(
    "kw",
    [
        {"guidance_scale": 1.0},
        {"guidance_scale": 3.0},
        {"guidance_scale": 3.0, "guidance_min_sigma": 0.9},  # guided early steps, unguided late ones
    ],
    ids=["unguided", "guided", "guided-above-sigma"],
)
def test_pipeline_batch_with_one_generator_per_prompt_equals_each_clip_alone(kw: dict[str, object]) -> None:
    pipe = tiny_pipeline()
    seeds = [3, 11, 3]
    negatives = ["", "blurry", "red"]
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    batch = pipe(PROMPTS, negative_prompt=negatives, generator=generators, num_inference_steps=3, **kw).frames
    assert batch.shape == (3, 16, 64, 64, 3)
    for i, (prompt, seed, negative) in enumerate(zip(PROMPTS, seeds, negatives, strict=True)):
        alone = _alone(pipe, prompt, seed, negative_prompt=negative, num_inference_steps=3, **kw)
        np.testing.assert_allclose(batch[i], alone, atol=FLOAT_TOL, rtol=0)
    # The clips differ from one another: the comparison above could fail.
    assert np.abs(batch[0] - batch[1]).max() > 0.05


def test_negative_prompts_are_per_clip_under_guidance() -> None:
    pipe = tiny_pipeline()
    generators = [torch.Generator().manual_seed(5) for _ in range(2)]
    negatives = ["", "a red circle moving"]
    both = pipe(["a red circle"] * 2, negative_prompt=negatives, generator=generators, num_inference_steps=2).frames
    assert np.abs(both[0] - both[1]).max() > 1e-3
    with pytest.raises(ValueError, match="generators"):
        pipe(["a", "b"], generator=[torch.Generator()], num_inference_steps=1)
    with pytest.raises(ValueError, match="negative prompts"):
        pipe(["a", "b"], negative_prompt=["x"], num_inference_steps=1)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> DiffusersBackend:
    out = tmp_path_factory.mktemp("builtin") / "weights"
    export(tiny_pipeline(), out, {"version": "test", "call_kwargs": {"guidance_min_sigma": 0.9}})
    card = ModelCard(
        id="tiny",
        name="tiny",
        backend="diffusers",
        default_num_frames=16,
        default_fps=8,
        default_width=64,
        default_height=64,
        max_num_frames=16,
        max_width=64,
        max_height=64,
        options={
            "path": str(out),
            "pipeline_class": "reelfoundry.models.pipeline_builtin:BuiltinVideoPipeline",
            "size_multiple": 64,
            "call_kwargs": {"guidance_min_sigma": 0.9},
        },
    )
    return DiffusersBackend(card)


def _params(seed: int, prompt: str = PROMPTS[0], **kw: object) -> GenerationParams:
    base = {"prompt": prompt, "num_frames": 16, "fps": 8, "width": 64, "height": 64, "seed": seed, "steps": 2}
    return GenerationParams(**{**base, "guidance_scale": 3.0, **kw})  # type: ignore[arg-type]


def _forward_batches(backend: DiffusersBackend) -> list[int]:
    """Batch size of every transformer forward pass from now on."""
    sizes: list[int] = []
    backend.pipeline().transformer.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    return sizes


def test_backend_batch_runs_one_pass_per_step_and_each_clip_equals_its_own(backend: DiffusersBackend) -> None:
    params = [_params(7, PROMPTS[0]), _params(8, PROMPTS[1], negative_prompt="noise"), _params(7, PROMPTS[2])]
    params[0] = replace(params[0], negative_prompt="")
    params[2] = replace(params[2], negative_prompt="grey")
    alone = [backend.generate(p).frames for p in params]
    sizes = _forward_batches(backend)
    steps: list[tuple[int, int]] = []
    batched = backend.generate_batch(params, lambda done, total: steps.append((done, total)))
    # One forward pass per step for all three, not three passes: 6 rows while guided (σ ≥ 0.9), then 3.
    assert sizes == [6, 3] and steps == [(1, 2), (2, 2)]
    for out, single, p in zip(batched, alone, params, strict=True):
        assert isinstance(out.frames, np.ndarray) and isinstance(single, np.ndarray)
        assert out.fps == p.fps and out.info["batch"] == 3
        # uint8 frames: float rounding may move a value across a rounding boundary, by one level at most.
        assert isinstance(out.frames, np.ndarray) and isinstance(single, np.ndarray)
        assert np.abs(out.frames.astype(int) - single.astype(int)).max() <= 1
    first, second = (np.asarray(o.frames, dtype=int) for o in batched[:2])
    assert np.abs(first - second).max() > 10


def test_backend_never_batches_incompatible_params(backend: DiffusersBackend) -> None:
    params = [
        _params(1),
        _params(2, steps=3),  # other steps
        _params(3),
        _params(4, guidance_scale=5.0),  # other guidance
        _params(5, negative_prompt="x"),  # a negative prompt where the others have none
    ]
    assert len({batch_key(p) for p in params}) == 4
    alone = [backend.generate(p).frames for p in params]
    sizes = _forward_batches(backend)
    # Groups in order of first appearance: seeds 1+3, then 2 (3 steps), 4 (guidance 5), 5 (negative prompt).
    for group in ([params[0], params[2]], [params[1]], [params[3]], [params[4]]):
        backend.generate_batch(group)
    expected, sizes[:] = list(sizes), []
    batched = backend.generate_batch(params)
    assert sizes == expected and max(sizes) == 4  # only seeds 1 and 3 shared passes (2 rows each while guided)
    for out, single in zip(batched, alone, strict=True):
        assert isinstance(out.frames, np.ndarray) and isinstance(single, np.ndarray)
        assert np.abs(out.frames.astype(int) - single.astype(int)).max() <= 1


class _OneByOne(Backend):
    name = "one-by-one"

    def __init__(self, card: ModelCard) -> None:
        super().__init__(card)
        self.calls: list[int] = []

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        self.calls.append(params.seed)
        for step in (1, 2):
            if callback is not None:
                callback(step, 2)
        return GenerationOutput(frames=np.full((1, 8, 8, 3), params.seed, np.uint8), fps=8, num_frames=1)


def test_default_generate_batch_runs_jobs_one_by_one_with_batch_progress(backend: DiffusersBackend) -> None:
    one = _OneByOne(backend.card)
    steps: list[tuple[int, int]] = []
    outs = one.generate_batch([_params(1), _params(2), _params(3)], lambda d, t: steps.append((d, t)))
    assert one.calls == [1, 2, 3] and [int(np.asarray(o.frames)[0, 0, 0, 0]) for o in outs] == [1, 2, 3]
    assert steps == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


def test_only_pipelines_taking_prompt_and_generator_lists_are_batched(backend: DiffusersBackend) -> None:
    class NoLists:
        def __call__(self, prompt: str, generator: torch.Generator | None = None) -> None: ...

    assert takes_lists(backend.pipeline()) and not takes_lists(NoLists())


@pytest.mark.parametrize("kind", ["ltx", "wan"])
def test_diffusers_pipelines_batch_with_prompt_and_generator_lists(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LTX-Video and Wan (tiny random weights) as the backend runs them: one call for the batch, clips per seed."""
    from tiny_pipelines import CARD_DEFAULTS, build_tiny_ltx, build_tiny_wan

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (build_tiny_ltx if kind == "ltx" else build_tiny_wan)(tmp_path / kind)
    values = copy.deepcopy(CARD_DEFAULTS[kind])
    values["options"] |= {"path": str(tmp_path / kind)}
    backend = DiffusersBackend(ModelCard(id=f"tiny-{kind}", name=kind, backend="diffusers", **values))
    base = {
        "num_frames": values["default_num_frames"],
        "fps": 8,
        "width": values["default_width"],
        "height": values["default_height"],
        "steps": 2,
        "guidance_scale": values["default_guidance_scale"],
        "negative_prompt": "",
    }
    params = [GenerationParams(prompt=p, seed=s, **base) for p, s in (("a cat", 1), ("a dog at dawn", 2))]
    alone = [np.asarray(backend.generate(p).frames, dtype=int) for p in params]
    calls: list[object] = []
    call = type(backend.pipeline()).__call__

    @functools.wraps(call)  # the signature stays the pipeline's (the backend reads it)
    def counted(self: object, *args: object, **kw: object) -> object:
        calls.append(kw["prompt"])
        return call(self, *args, **kw)

    monkeypatch.setattr(type(backend.pipeline()), "__call__", counted)
    batched = [np.asarray(o.frames, dtype=int) for o in backend.generate_batch(params)]
    assert calls == [["a cat", "a dog at dawn"]]  # one pipeline call for both
    for b, a in zip(batched, alone, strict=True):
        assert np.abs(b - a).max() <= 1
    assert np.abs(batched[0] - batched[1]).max() > 10
