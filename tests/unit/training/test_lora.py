"""LoRA fine-tuning of the built-in model on a tiny config: round trip, pinning, refusals, cancellation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reelfoundry.errors import ConfigurationError, InvalidParameter, ModelIntegrityError
from reelfoundry.models.pipeline_builtin import BuiltinVideoPipeline, new_pipeline
from reelfoundry.training.data import BrandColour, brand_samples
from reelfoundry.training.lora import (
    ADAPTER_FILE,
    ADAPTER_JSON,
    LoraSettings,
    TrainedAdapter,
    fit_clip,
    load_adapter,
    train_lora,
)

TINY = {"hidden_dim": 32, "depth": 1, "heads": 2, "patch_t": 4, "patch_size": 16}
SETTINGS = LoraSettings(rank=4, steps=3, batch_size=2, warmup=1, lr=1e-2)
CORAL = BrandColour.from_hex("acme coral", "#FF6F61")
BASE_SHA = "ab" * 32


def tiny_base() -> BuiltinVideoPipeline:
    """Random weights everywhere (the zero-initialised output layers too, so outputs depend on the input)."""
    torch.manual_seed(0)
    pipe = new_pipeline(**TINY)
    with torch.no_grad():
        for p in pipe.transformer.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return pipe


def clips(count: int = 4) -> list[tuple[np.ndarray, str]]:
    return [(s.clip, s.caption) for s in brand_samples(CORAL, seed=3, count=count)]


def generate(pipe: BuiltinVideoPipeline, seed: int = 7) -> np.ndarray:
    out = pipe("an acme coral star moving up", num_inference_steps=2, generator=torch.Generator().manual_seed(seed))
    return np.asarray(out.frames)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedAdapter:
    result = train_lora(tiny_base(), clips(), tmp_path_factory.mktemp("lora") / "coral", SETTINGS, base_sha256=BASE_SHA)
    assert result is not None
    return result


def test_round_trip_save_pin_load_gives_the_same_output(trained: TrainedAdapter) -> None:
    fresh = tiny_base()
    base_frames = generate(fresh)
    load_adapter(fresh, trained.path, 1.0, trained.sha256, base_sha256=BASE_SHA)
    in_memory = tiny_base()
    in_memory.transformer = trained.transformer
    loaded = generate(fresh)
    assert np.array_equal(loaded, generate(in_memory))
    assert np.abs(loaded - base_frames).max() > 1e-4  # the adapter changes what the model draws
    # scale 0 is the base model again
    off = tiny_base()
    load_adapter(off, trained.path, 0.0, trained.sha256)
    assert np.allclose(generate(off), base_frames, atol=1e-6)


def test_files_record_and_format(trained: TrainedAdapter) -> None:
    from safetensors import safe_open

    directory = trained.path.parent
    assert sorted(p.name for p in directory.iterdir()) == sorted([ADAPTER_FILE, ADAPTER_JSON])
    record = json.loads((directory / ADAPTER_JSON).read_text())
    assert record["sha256"] == trained.sha256 and record["base_sha256"] == BASE_SHA and record["clips"] == 4
    assert record["settings"]["rank"] == 4 and record["settings"]["steps"] == 3
    with safe_open(str(trained.path), "pt") as f:
        keys = list(f.keys())
        metadata = f.metadata()
        assert f.get_tensor("transformer.blocks.0.cross.kv.lora_A.weight").shape == (4, 32)
    assert all(k.startswith("transformer.") and ".lora_" in k for k in keys)
    assert json.loads(metadata["lora_adapter_metadata"])["transformer.r"] == 4
    # the base is untouched: a pure function
    assert not any("lora" in name for name, _ in tiny_base().transformer.named_parameters())


def test_same_seed_same_adapter_file(trained: TrainedAdapter, tmp_path: Path) -> None:
    again = train_lora(tiny_base(), clips(), tmp_path / "again", SETTINGS, base_sha256=BASE_SHA)
    other = train_lora(tiny_base(), clips(), tmp_path / "other", LoraSettings(**{**SETTINGS.__dict__, "seed": 1}))
    assert again is not None and other is not None
    assert again.sha256 == trained.sha256 and other.sha256 != trained.sha256


def test_a_mismatching_sha256_is_refused(trained: TrainedAdapter) -> None:
    with pytest.raises(ModelIntegrityError, match="is pinned"):
        load_adapter(tiny_base(), trained.path, 1.0, "0" * 64)
    with pytest.raises(ConfigurationError, match="64 hex"):
        load_adapter(tiny_base(), trained.path, 1.0, "abc")


def test_an_adapter_for_another_base_is_refused(trained: TrainedAdapter) -> None:
    with pytest.raises(ModelIntegrityError, match="trained on base"):
        load_adapter(tiny_base(), trained.path, 1.0, trained.sha256, base_sha256="cd" * 32)


def test_pickles_are_refused_whatever_their_name(trained: TrainedAdapter, tmp_path: Path) -> None:
    import hashlib

    state = {"transformer.blocks.0.cross.kv.lora_A.weight": torch.zeros(4, 32)}
    for name in ("adapter.bin", "adapter.pt", "adapter.safetensors"):
        path = tmp_path / name
        torch.save(state, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()  # pinned correctly: the format is what is refused
        with pytest.raises(ModelIntegrityError, match="safetensors"):
            load_adapter(tiny_base(), path, 1.0, digest)


def test_a_run_stopped_by_the_callback_writes_nothing(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []

    def stop_after_two(step: int, total: int, loss: float) -> bool:
        seen.append((step, total))
        assert np.isfinite(loss)
        return step < 2

    out = tmp_path / "adapters" / "coral"
    assert train_lora(tiny_base(), clips(), out, SETTINGS, stop_after_two) is None
    assert seen == [(1, 3), (2, 3)]
    assert not out.exists() and not out.parent.exists()


def test_inputs_are_checked(tmp_path: Path) -> None:
    good = clips(1)
    with pytest.raises(InvalidParameter, match="shape"):
        train_lora(tiny_base(), [(good[0][0][:8], "short")], tmp_path / "a", SETTINGS)
    with pytest.raises(InvalidParameter, match="caption"):
        train_lora(tiny_base(), [(good[0][0], " ")], tmp_path / "a", SETTINGS)
    with pytest.raises(InvalidParameter, match="1 to"):
        train_lora(tiny_base(), [], tmp_path / "a", SETTINGS)
    (tmp_path / "exists").mkdir()
    with pytest.raises(InvalidParameter, match="already exists"):
        train_lora(tiny_base(), good, tmp_path / "exists", SETTINGS)
    with pytest.raises(InvalidParameter) as err:
        LoraSettings(rank=0)
    assert err.value.parameter == "rank"
    with pytest.raises(InvalidParameter, match="nomatch"):
        train_lora(tiny_base(), good, tmp_path / "b", LoraSettings(steps=1, target_modules=("nomatch",)))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_fit_clip_picks_frames_and_crops_the_centre() -> None:
    frames = np.zeros((31, 90, 120, 3), dtype=np.uint8)
    frames[:, :, 15:105] = 200  # the centre square is light, the side bands dark
    frames[-1] = 255
    fitted = fit_clip(frames)
    assert fitted.shape == (16, 64, 64, 3) and fitted.dtype == np.uint8
    assert (fitted[:-1] == 200).all() and (fitted[-1] == 255).all()
    with pytest.raises(InvalidParameter):
        fit_clip(frames.astype(np.float32))


def test_brand_clips_are_drawn_in_the_brand_colour_and_leave_the_palette_alone() -> None:
    from reelfoundry.training.data import COLOURS, sample

    before = dict(COLOURS)
    first, again = brand_samples(CORAL, seed=5, count=6), brand_samples(CORAL, seed=5, count=6)
    assert [s.caption for s in first] == [s.caption for s in again]
    assert all(np.array_equal(a.clip, b.clip) for a, b in zip(first, again, strict=True))
    for s in first:
        assert "acme coral" in s.caption and s.spec.colour == "acme coral" and s.spec.background in COLOURS
        solid = (s.clip == np.array(CORAL.rgb, dtype=np.uint8)).all(-1)
        assert solid.mean() > 0.01  # the object's inside is exactly #FF6F61
    assert before == COLOURS and "acme coral" not in COLOURS
    assert sample(1234, 0).clip.shape == (16, 64, 64, 3)  # the shipped data set still draws
    with pytest.raises(ValueError, match="new lowercase name"):
        BrandColour("red", (1, 2, 3))
    with pytest.raises(ValueError, match="#RRGGBB"):
        BrandColour.from_hex("acme coral", "FF6F6")
