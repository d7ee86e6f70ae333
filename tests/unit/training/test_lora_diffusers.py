"""LoRA on diffusers pipelines: fine-tune the tiny LTX and Wan transformers, load the adapter through a card."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants as hub_constants
from tiny_pipelines import CARD_DEFAULTS, build_tiny_ltx, build_tiny_wan

from reelfoundry.errors import InvalidParameter, ModelIntegrityError
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.schema import ModelCard
from reelfoundry.training.lora import (
    DIFFUSERS_TARGETS,
    LoraSettings,
    load_adapter,
    lora_card,
    train_lora,
    train_pipeline_lora,
)

BUILDERS = {"ltx": build_tiny_ltx, "wan": build_tiny_wan}
SETTINGS = LoraSettings(rank=2, steps=2, batch_size=2, warmup=0, lr=5e-2, target_modules=DIFFUSERS_TARGETS)


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        yield


def _card(kind: str, path: Path) -> ModelCard:
    values = copy.deepcopy(CARD_DEFAULTS[kind])
    values["options"] |= {"path": str(path), "device": "cpu", "dtype": "float32"}
    return ModelCard(id=f"tiny-{kind}", name=kind, backend="diffusers", **values)


def _clips(kind: str) -> list[tuple[np.ndarray, str]]:
    card = CARD_DEFAULTS[kind]
    shape = (card["default_num_frames"], card["default_height"], card["default_width"], 3)
    rng = np.random.default_rng(0)
    return [(rng.integers(0, 256, shape, dtype=np.uint8), caption) for caption in ("a red cat", "a blue dog")]


def _params(kind: str) -> GenerationParams:
    card = CARD_DEFAULTS[kind]
    return GenerationParams(
        prompt="a red cat",
        num_frames=card["default_num_frames"],
        fps=8,
        width=card["default_width"],
        height=card["default_height"],
        seed=1,
        steps=2,
        guidance_scale=card["default_guidance_scale"],
    )


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_fine_tune_the_transformer_and_load_the_adapter_through_the_card(kind: str, tmp_path: Path) -> None:
    BUILDERS[kind](tmp_path / "pipe")
    base = _card(kind, tmp_path / "pipe")
    pipe = DiffusersBackend(base).pipeline()
    trained = train_pipeline_lora(pipe, _clips(kind), tmp_path / "adapter", SETTINGS, max_sequence_length=16)
    assert trained is not None and trained.record["pipeline"] == type(pipe).__name__
    assert not hasattr(pipe.transformer, "peft_config")  # the pipeline it learned from is untouched
    plain = np.asarray(DiffusersBackend(base).generate(_params(kind)).frames)
    tuned = lora_card(base, f"tiny-{kind}-lora", trained.path, trained.sha256, scale=4.0)
    backend = DiffusersBackend(tuned)
    with_lora = np.asarray(backend.generate(_params(kind)).frames)
    assert "lora" in backend.pipeline().get_active_adapters()  # loaded through diffusers' load_lora_weights
    assert with_lora.shape == plain.shape and not np.array_equal(with_lora, plain)
    assert np.array_equal(np.asarray(DiffusersBackend(tuned).generate(_params(kind)).frames), with_lora)
    with pytest.raises(ModelIntegrityError, match="is pinned"):
        load_adapter(DiffusersBackend(base).pipeline(), trained.path, 1.0, "f" * 64)


def test_a_stopped_pipeline_fine_tune_writes_nothing_and_odd_inputs_are_refused(tmp_path: Path) -> None:
    build_tiny_wan(tmp_path / "pipe")
    pipe = DiffusersBackend(_card("wan", tmp_path / "pipe")).pipeline()
    out = tmp_path / "adapter"
    stopped = train_pipeline_lora(pipe, _clips("wan"), out, SETTINGS, lambda *_: False, max_sequence_length=16)
    assert stopped is None and not out.exists()
    ragged = [_clips("wan")[0], (np.zeros((5, 32, 32, 3), dtype=np.uint8), "a dog")]
    with pytest.raises(InvalidParameter, match="clip 1"):
        train_pipeline_lora(pipe, ragged, out, SETTINGS)
    with pytest.raises(InvalidParameter, match="WanPipeline"):
        train_lora(pipe, _clips("wan"), out, SETTINGS)


def test_a_fine_tune_job_s_backend_call_trains_an_ltx_adapter_from_video_files(tmp_path: Path) -> None:
    """What a fine-tune job's worker calls (``Backend.finetune``): MP4 clips of any length and size are fitted to
    the card's default size and a frame count the VAE takes, and the adapter loads through a card."""
    from reelfoundry.media import encode_mp4
    from reelfoundry.portfolio.base import FinetuneSpec, TrainingClip

    build_tiny_ltx(tmp_path / "pipe")
    base = _card("ltx", tmp_path / "pipe")
    rng = np.random.default_rng(1)
    clips = []
    for i, caption in enumerate(("a red cat", "a blue dog")):
        path = tmp_path / f"clip{i}.mp4"
        encode_mp4(iter(rng.integers(0, 256, (12, 48, 80, 3), dtype=np.uint8)), 8, path)  # not the card's size
        clips.append(TrainingClip(path, caption))
    out = tmp_path / "out"
    out.mkdir()
    result = DiffusersBackend(base).finetune(clips, FinetuneSpec(name="t", rank=2, steps=2, lr=5e-2), out)
    assert sorted(p.name for p in out.iterdir()) == ["adapter.json", "adapter.safetensors"]
    tuned = lora_card(base, "tiny-ltx-job", result.adapter, str(result.info["sha256"]), scale=4.0)
    frames = np.asarray(DiffusersBackend(tuned).generate(_params("ltx")).frames)
    assert not np.array_equal(frames, np.asarray(DiffusersBackend(base).generate(_params("ltx")).frames))
