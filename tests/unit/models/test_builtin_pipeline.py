"""The built-in pipeline: save/load round trip, checksums, and running through the diffusers backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reelfoundry.errors import GenerationCancelled, InvalidParameter
from reelfoundry.models.builtin import builtin_card, export
from reelfoundry.models.pipeline_builtin import BuiltinVideoPipeline, new_pipeline
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend, ModelIntegrityError
from reelfoundry.portfolio.base import GenerationParams

TINY = {"hidden_dim": 32, "depth": 1, "heads": 2, "patch_t": 4, "patch_size": 16}


def tiny_pipeline(seed: int = 0) -> BuiltinVideoPipeline:
    """Random weights everywhere (the zero-initialised output layers too, so outputs depend on the input)."""
    torch.manual_seed(seed)
    pipe = new_pipeline(**TINY)
    with torch.no_grad():
        for p in pipe.transformer.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return pipe


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("builtin") / "weights"
    export(
        tiny_pipeline(),
        out,
        {
            "version": "test",
            "default_steps": 2,
            "default_guidance_scale": 3.0,
            "call_kwargs": {"guidance_min_sigma": 0.9},
        },
    )
    return out


def _params(**kw: object) -> GenerationParams:
    base = {
        "prompt": "a red circle moving left on a blue background",
        "num_frames": 16,
        "fps": 8,
        "width": 64,
        "height": 64,
        "seed": 3,
        "steps": 2,
        "guidance_scale": 3.0,
    }
    return GenerationParams(**{**base, **kw})  # type: ignore[arg-type]


def test_save_load_round_trip_is_bit_identical(tmp_path: Path) -> None:
    pipe = tiny_pipeline()
    pipe.save_pretrained(tmp_path)
    again = BuiltinVideoPipeline.from_pretrained(tmp_path)
    kw = {"num_inference_steps": 3, "guidance_scale": 2.0}
    a = pipe("a blue star growing", generator=torch.Generator().manual_seed(5), **kw).frames
    b = again("a blue star growing", generator=torch.Generator().manual_seed(5), **kw).frames
    c = again("a blue star growing", generator=torch.Generator().manual_seed(6), **kw).frames
    assert a.shape == (1, 16, 64, 64, 3) and np.array_equal(a, b) and not np.array_equal(a, c)


def test_guidance_applies_only_above_its_minimum_noise_level() -> None:
    pipe = tiny_pipeline()
    batches: list[int] = []
    pipe.transformer.register_forward_hook(lambda module, args, output: batches.append(args[0].shape[0]))

    def run(**kw: object) -> np.ndarray:
        seed = torch.Generator().manual_seed(1)
        return pipe(["a red circle", "a blue star"], num_inference_steps=4, generator=seed, **kw).frames

    unguided = run(guidance_scale=1.0)
    assert batches == [2] * 4
    batches.clear()
    guided_throughout = run(guidance_scale=3.0)
    assert batches == [4] * 4
    batches.clear()
    # The scheduler's σ for 4 steps (shift 8) are ~1, 0.96, 0.89, 0.73: two steps guided, two not.
    guided_early = run(guidance_scale=3.0, guidance_min_sigma=0.9)
    assert batches == [4, 4, 2, 2]
    assert not np.array_equal(guided_early, guided_throughout) and not np.array_equal(guided_early, unguided)
    batches.clear()
    assert np.allclose(run(guidance_scale=3.0, guidance_min_sigma=1.01), unguided, atol=1e-5)  # batch-size float noise


def test_card_and_backend_generate(exported: Path) -> None:
    card = builtin_card(exported)
    assert card is not None and card.backend == "diffusers" and card.default_steps == 2
    assert "transformer/diffusion_pytorch_model.safetensors" in card.options["sha256"]
    backend = DiffusersBackend(card)
    assert backend.call_kwargs == {"guidance_min_sigma": 0.9}  # the card's sampling options reach every call
    steps: list[int] = []
    out = backend.generate(_params(), lambda done, total: steps.append(done))
    frames = np.asarray(out.frames)
    assert frames.shape == (16, 64, 64, 3) and frames.dtype == np.uint8 and steps == [1, 2]


def test_export_stores_float16_and_loads_float32(tmp_path: Path) -> None:
    from safetensors import safe_open

    pipe = tiny_pipeline()
    export(pipe, tmp_path, {"version": "test"})
    with safe_open(str(tmp_path / "transformer" / "diffusion_pytorch_model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}  # noqa: SIM118 (safe_open is not iterable)
    assert pipe.transformer.dtype == torch.float32  # the caller's pipeline is untouched
    card = builtin_card(tmp_path)
    assert card is not None
    loaded = DiffusersBackend(card).pipeline()
    assert loaded.transformer.dtype == torch.float32


def test_cancel_mid_denoising(exported: Path) -> None:
    card = builtin_card(exported)
    assert card is not None

    def cancel(done: int, total: int) -> None:
        raise GenerationCancelled("stop")

    with pytest.raises(GenerationCancelled):
        DiffusersBackend(card).generate(_params(steps=5), cancel)


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [({"num_frames": 10}, "num_frames"), ({"steps": 0}, "steps"), ({"width": 0}, "width"), ({"height": 128}, "height")],
)
def test_bad_parameters_name_the_field(exported: Path, overrides: dict[str, object], parameter: str) -> None:
    card = builtin_card(exported)
    assert card is not None
    with pytest.raises(InvalidParameter) as err:
        DiffusersBackend(card).check_inputs(_params(**overrides))
    assert err.value.parameter == parameter


def test_checksum_mismatch_is_refused(exported: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "weights"
    shutil.copytree(exported, copy)
    weights = copy / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    card = builtin_card(copy)
    assert card is not None
    with pytest.raises(ModelIntegrityError, match=r"diffusion_pytorch_model\.safetensors"):
        DiffusersBackend(card).generate(_params())


def test_card_carries_training_facts_and_recorded_metrics(exported: Path, tmp_path: Path) -> None:
    import shutil

    from reelfoundry.models.builtin import record_metrics

    copy = tmp_path / "weights"
    shutil.copytree(exported, copy)
    (copy / "card.json").write_text(
        (copy / "card.json").read_text().replace('"version"', '"steps": 7, "wall_s": 1.5, "version"', 1)
    )
    record_metrics({"adherence": {"colour": 0.5}, "date": "2026-11-25"}, copy)
    card = builtin_card(copy)
    assert card is not None
    assert card.training == {"steps": 7, "wall_s": 1.5}
    assert card.metrics == {"adherence": {"colour": 0.5}, "date": "2026-11-25"}
    # Recording metrics leaves the weights and their checksums alone: the model still loads.
    assert card.options["sha256"] == builtin_card(exported).options["sha256"]  # type: ignore[union-attr]
    DiffusersBackend(card).generate(_params())


def test_lora_adapter_through_diffusers_peft_api(tmp_path: Path) -> None:
    """diffusers' PEFT machinery applies: add a LoRA, save it alone, load it into a fresh copy."""
    pytest.importorskip("peft")
    from peft import LoraConfig

    def run(p: BuiltinVideoPipeline) -> np.ndarray:
        gen = torch.Generator().manual_seed(1)
        return p("a blue star growing", num_inference_steps=2, guidance_scale=2.0, generator=gen).frames

    pipe = tiny_pipeline()
    before = run(pipe)
    pipe.transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["q", "kv", "out"]), "style")
    assert np.array_equal(run(pipe), before)  # LoRA B starts at zero: no change until trained
    with torch.no_grad():
        for name, p in pipe.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    tuned = run(pipe)
    assert not np.array_equal(tuned, before)
    pipe.transformer.save_lora_adapter(tmp_path / "lora", adapter_name="style")
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()

    fresh = tiny_pipeline()
    fresh.transformer.load_lora_adapter(
        tmp_path / "lora", prefix=None, adapter_name="style", weight_name="pytorch_lora_weights.safetensors"
    )
    np.testing.assert_allclose(run(fresh), tuned, atol=1e-6)
