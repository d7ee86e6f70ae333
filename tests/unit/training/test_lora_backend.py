"""A card's ``options.lora`` through the diffusers backend running the built-in pipeline: pinned adapters only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reelfoundry.errors import ConfigurationError, GenerationCancelled, ModelIntegrityError
from reelfoundry.models.builtin import builtin_card, export
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend
from reelfoundry.portfolio.base import FinetuneSpec, GenerationParams, TrainingClip
from reelfoundry.schema import ModelCard
from reelfoundry.training.data import BrandColour, brand_samples
from reelfoundry.training.lora import LoraSettings, TrainedAdapter, lora_card, train_lora

TINY = {"hidden_dim": 32, "depth": 1, "heads": 2, "patch_t": 4, "patch_size": 16}
TRANSFORMER = "transformer/diffusion_pytorch_model.safetensors"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> ModelCard:
    from reelfoundry.models.pipeline_builtin import new_pipeline

    torch.manual_seed(0)
    pipe = new_pipeline(**TINY)
    with torch.no_grad():
        for p in pipe.transformer.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    out = export(pipe, tmp_path_factory.mktemp("builtin") / "weights", {"version": "t", "default_steps": 2})
    card = builtin_card(out)
    assert card is not None
    return card


@pytest.fixture(scope="module")
def adapter(base: ModelCard, tmp_path_factory: pytest.TempPathFactory) -> TrainedAdapter:
    pipe = DiffusersBackend(base).pipeline()
    coral = BrandColour.from_hex("acme coral", "#FF6F61")
    clips = [(s.clip, s.caption) for s in brand_samples(coral, seed=0, count=3)]
    settings = LoraSettings(rank=4, steps=2, batch_size=2, warmup=1, lr=1e-2)
    out = tmp_path_factory.mktemp("adapters") / "coral"
    trained = train_lora(pipe, clips, out, settings, base_sha256=base.options["sha256"][TRANSFORMER])
    assert trained is not None
    return trained


def _params() -> GenerationParams:
    return GenerationParams(
        prompt="an acme coral star", num_frames=16, fps=8, width=64, height=64, seed=4, steps=2, guidance_scale=3.0
    )


def test_a_card_with_a_pinned_adapter_draws_what_the_adapter_draws(base: ModelCard, adapter: TrainedAdapter) -> None:
    tuned = lora_card(base, "acme-coral", adapter.path, adapter.sha256)
    assert tuned.id == "acme-coral" and tuned.options["lora"] == {
        "path": str(adapter.path),
        "scale": 1.0,
        "sha256": adapter.sha256,
    }
    assert "lora" not in base.options  # the base card is untouched
    plain = np.asarray(DiffusersBackend(base).generate(_params()).frames)
    with_lora = np.asarray(DiffusersBackend(tuned).generate(_params()).frames)
    again = np.asarray(DiffusersBackend(tuned).generate(_params()).frames)
    assert np.array_equal(with_lora, again) and not np.array_equal(with_lora, plain)
    half = lora_card(base, "half", adapter.path, adapter.sha256, scale=0.5)
    assert not np.array_equal(np.asarray(DiffusersBackend(half).generate(_params()).frames), with_lora)


def test_a_changed_adapter_file_is_refused_at_load(base: ModelCard, adapter: TrainedAdapter, tmp_path: Path) -> None:
    copy = tmp_path / "adapter.safetensors"
    raw = bytearray(adapter.path.read_bytes())
    raw[-1] ^= 1
    copy.write_bytes(bytes(raw))
    backend = DiffusersBackend(lora_card(base, "x", copy, adapter.sha256))
    with pytest.raises(ModelIntegrityError, match="is pinned"):
        backend.generate(_params())


def test_an_adapter_of_another_base_is_refused(base: ModelCard, tmp_path: Path) -> None:
    pipe = DiffusersBackend(base).pipeline()
    clips = [(s.clip, s.caption) for s in brand_samples(BrandColour("teal", (0, 128, 128)), seed=0, count=1)]
    settings = LoraSettings(rank=2, steps=1, batch_size=1, warmup=0)
    other = train_lora(pipe, clips, tmp_path / "other", settings, base_sha256="cd" * 32)
    assert other is not None
    backend = DiffusersBackend(lora_card(base, "x", other.path, other.sha256))
    with pytest.raises(ModelIntegrityError, match="trained on base"):
        backend.pipeline()


@pytest.mark.parametrize(
    ("lora", "message"),
    [
        ("adapter.safetensors", "path, scale, sha256"),
        ({"path": "adapter.bin", "sha256": "a" * 64}, ".safetensors"),
        ({"path": "a.safetensors", "sha256": "a" * 64, "scale": 9}, "scale"),
        ({"path": "a.safetensors", "sha256": "a" * 64, "scale": True}, "scale"),
        ({"path": "a.safetensors", "sha256": "xyz"}, "sha256"),
        ({"path": "a.safetensors"}, "sha256"),
        ({"path": "a.safetensors", "sha256": "a" * 64, "alpha": 1}, "path, scale, sha256"),
    ],
)
def test_bad_lora_options_are_refused_when_the_card_loads(base: ModelCard, lora: object, message: str) -> None:
    card = base.model_copy(update={"options": {**base.options, "lora": lora}})
    with pytest.raises(ConfigurationError, match=message):
        DiffusersBackend(card)


def _mp4_clips(tmp_path: Path, count: int) -> list[TrainingClip]:
    from reelfoundry.media import encode_mp4

    coral = BrandColour.from_hex("acme coral", "#FF6F61")
    clips = []
    for i, sample in enumerate(brand_samples(coral, seed=1, count=count)):
        path = tmp_path / f"clip{i}.mp4"
        encode_mp4(iter(sample.clip), 8, path)
        clips.append(TrainingClip(path, sample.caption))
    return clips


def test_the_backend_fine_tunes_from_video_files_and_a_cancel_leaves_nothing(base: ModelCard, tmp_path: Path) -> None:
    backend = DiffusersBackend(base)
    clips = _mp4_clips(tmp_path, 2)
    spec = FinetuneSpec(name="acme", rank=4, steps=2, lr=1e-2, seed=3)
    steps: list[tuple[int, int]] = []
    out = tmp_path / "out"
    out.mkdir()
    result = backend.finetune(clips, spec, out, lambda done, total: steps.append((done, total)))
    assert steps == [(1, 2), (2, 2)]
    assert sorted(p.name for p in out.iterdir()) == ["adapter.json", "adapter.safetensors"]
    assert result.adapter == out / "adapter.safetensors" and result.files == (out / "adapter.json",)
    # The card the engine registers (storage keys beside the local path, an owner tenant) loads and generates.
    sha = result.info["sha256"]
    tuned = lora_card(base, "acme", result.adapter, sha)
    lora = {**tuned.options["lora"], "key": "t/f.adapter-adapter.safetensors", "files": {}}
    tuned = tuned.model_copy(update={"options": {**tuned.options, "lora": lora, "tenant": "T"}})
    frames = DiffusersBackend(tuned).generate(_params()).frames
    assert np.asarray(frames).shape == (16, 64, 64, 3)

    def cancel(done: int, total: int) -> None:
        raise GenerationCancelled("stop")

    stopped = tmp_path / "stopped"
    stopped.mkdir()
    with pytest.raises(GenerationCancelled):
        backend.finetune(clips, spec, stopped, cancel)
    assert list(stopped.iterdir()) == []
