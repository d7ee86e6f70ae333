"""The diffusers backend runs tiny real LTX and Wan pipelines on the CPU: shapes, seeds, steps, cancel, checks."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from huggingface_hub import constants as hub_constants
from PIL import Image
from tiny_pipelines import CARD_DEFAULTS, build_tiny_ltx, build_tiny_wan

from reelfoundry.errors import ConfigurationError, GenerationCancelled, InvalidParameter
from reelfoundry.portfolio.backends.diffusers import DiffusersBackend, ModelIntegrityError, frames_to_uint8
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.portfolio.registry import backend_class
from reelfoundry.schema import ModelCard

# Registered under this import path until registry.py names the backend "diffusers".
BACKEND = "reelfoundry.portfolio.backends.diffusers:DiffusersBackend"
KINDS = ("ltx", "wan")


@pytest.fixture(scope="module", autouse=True)
def _offline() -> Iterator[None]:
    """No test here may reach the Hub, whatever the caller's environment says."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        # huggingface_hub reads the variable once, at import; its HTTP layer checks this constant on every request.
        mp.setattr(hub_constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture(scope="module")
def pipeline_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both tiny pipelines, saved once for the module."""
    root = tmp_path_factory.mktemp("pipelines")
    build_tiny_ltx(root / "ltx")
    build_tiny_wan(root / "wan")
    return {"ltx": root / "ltx", "wan": root / "wan"}


def _card(kind: str, location: Path | str, task: str = "text-to-video", **options: Any) -> ModelCard:
    values = copy.deepcopy(CARD_DEFAULTS[kind])
    # ``options`` may override the path too.
    values["options"] |= {"path": str(location), **options}
    return ModelCard(id=f"tiny-{kind}", name=f"Tiny {kind}", backend=BACKEND, task=task, **values)


def _backend(card: ModelCard) -> DiffusersBackend:
    backend = backend_class(card.backend)(card)
    assert isinstance(backend, DiffusersBackend)
    return backend


@pytest.fixture(scope="module")
def backends(pipeline_dirs: dict[str, Path]) -> dict[str, DiffusersBackend]:
    """One backend per pipeline for the module, so each loads its weights once (as a worker's would)."""
    return {kind: _backend(_card(kind, pipeline_dirs[kind])) for kind in KINDS}


def _params(kind: str, **overrides: Any) -> GenerationParams:
    card = CARD_DEFAULTS[kind]
    values: dict[str, Any] = {
        "prompt": "a cat dance at dawn",
        "negative_prompt": "",
        "num_frames": card["default_num_frames"],
        "fps": card["default_fps"],
        "width": card["default_width"],
        "height": card["default_height"],
        "seed": 0,
        "steps": card["default_steps"],
        "guidance_scale": card["default_guidance_scale"],
    }
    return GenerationParams(**(values | overrides))


def _frames(backend: DiffusersBackend, params: GenerationParams) -> np.ndarray:
    frames = backend.generate(params).frames
    assert isinstance(frames, np.ndarray)
    return frames


@pytest.mark.parametrize("kind", KINDS)
def test_frames_are_uint8_and_follow_the_seed(backends: dict[str, DiffusersBackend], kind: str) -> None:
    backend = backends[kind]
    output = backend.generate(_params(kind, num_frames=9, width=32, height=32))
    again = _frames(backend, _params(kind, num_frames=9, width=32, height=32))
    other_seed = _frames(backend, _params(kind, num_frames=9, width=32, height=32, seed=1))

    assert isinstance(output.frames, np.ndarray)
    assert output.frames.shape == (9, 32, 32, 3) and output.frames.dtype == np.uint8
    assert output.num_frames == 9 and output.fps == CARD_DEFAULTS[kind]["default_fps"]
    assert output.info["steps"] == 2
    assert np.array_equal(output.frames, again)
    assert not np.array_equal(output.frames, other_seed)


@pytest.mark.parametrize("kind", KINDS)
def test_pipeline_loads_once_per_backend(backends: dict[str, DiffusersBackend], kind: str) -> None:
    backend = backends[kind]
    loaded = backend.pipeline()
    backend.generate(_params(kind, steps=1))
    assert backend.pipeline() is loaded


@pytest.mark.parametrize("kind", KINDS)
def test_callback_fires_once_per_step(backends: dict[str, DiffusersBackend], kind: str) -> None:
    calls: list[tuple[int, int]] = []
    backends[kind].generate(_params(kind, steps=3), lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_at_the_first_step_stops_the_run(
    backends: dict[str, DiffusersBackend], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = backends[kind]
    pipe = backend.pipeline()
    forwards: list[int] = []
    decodes: list[int] = []
    hook = pipe.transformer.register_forward_hook(lambda *_: forwards.append(1))
    decode = pipe.vae.decode
    monkeypatch.setattr(pipe.vae, "decode", lambda *a, **k: decodes.append(1) or decode(*a, **k))

    def cancel(done: int, total: int) -> None:
        raise GenerationCancelled(f"cancelled at step {done}/{total}")

    with pytest.raises(GenerationCancelled, match="at step 1/4"):
        backend.generate(_params(kind, steps=4), cancel)
    cancelled = len(forwards)
    assert decodes == []

    # A one-step run afterwards shows the pipeline is still usable for the worker's next job, and what one step costs.
    forwards.clear()
    assert backend.generate(_params(kind, steps=1)).num_frames == CARD_DEFAULTS[kind]["default_num_frames"]
    hook.remove()
    assert decodes == [1]
    assert 0 < cancelled == len(forwards)


@pytest.mark.parametrize(
    ("kind", "overrides", "field"),
    [
        ("ltx", {"num_frames": 10}, "num_frames"),
        ("wan", {"num_frames": 10}, "num_frames"),
        ("ltx", {"num_frames": 25}, "num_frames"),
        ("ltx", {"steps": 0}, "steps"),
        ("ltx", {"guidance_scale": -1.0}, "guidance_scale"),
        ("ltx", {"width": 0}, "width"),
        ("ltx", {"width": -8}, "width"),
        ("ltx", {"width": 48}, "width"),
        ("wan", {"height": 40}, "height"),
        ("wan", {"height": 128}, "height"),
    ],
)
def test_check_inputs_names_the_field(kind: str, overrides: dict[str, Any], field: str) -> None:
    # Construction is cheap: a path that does not exist is only noticed when generate() loads it.
    backend = _backend(_card(kind, "/nonexistent/pipeline"))
    with pytest.raises(InvalidParameter) as caught:
        backend.check_inputs(_params(kind, **overrides))
    assert caught.value.parameter == field


def test_size_multiple_defaults_to_8() -> None:
    card = _card("ltx", "/nonexistent/pipeline")
    del card.options["size_multiple"]
    backend = _backend(card)
    backend.check_inputs(_params("ltx", width=40))
    with pytest.raises(InvalidParameter) as caught:
        backend.check_inputs(_params("ltx", width=36))
    assert caught.value.parameter == "width" and "multiple of 8" in caught.value.detail


def test_image_to_video_needs_an_image(tmp_path: Path) -> None:
    backend = _backend(_card("ltx", "/nonexistent/pipeline", task="image-to-video"))
    with pytest.raises(InvalidParameter) as caught:
        backend.check_inputs(_params("ltx"))
    assert caught.value.parameter == "inputs"
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    with pytest.raises(InvalidParameter) as caught:
        backend.check_inputs(_params("ltx", inputs=(not_an_image,)))
    assert caught.value.parameter == "inputs"
    image = tmp_path / "first.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(image)
    backend.check_inputs(_params("ltx", inputs=(image,)))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wrong_sha256_is_refused_before_loading(
    pipeline_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import diffusers

    weights = "transformer/diffusion_pytorch_model.safetensors"
    pins = {"model_index.json": _digest(pipeline_dirs["ltx"] / "model_index.json"), weights: "0" * 64}

    def must_not_load(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("loaded a pipeline whose files failed the check")

    monkeypatch.setattr(diffusers.DiffusionPipeline, "from_pretrained", classmethod(must_not_load))
    backend = _backend(_card("ltx", pipeline_dirs["ltx"], sha256=pins))
    with pytest.raises(ModelIntegrityError) as caught:
        backend.generate(_params("ltx"))
    assert caught.value.file == weights and weights in caught.value.detail
    assert caught.value.status == 500 and caught.value.type.endswith("/model-integrity")

    missing = _backend(_card("ltx", pipeline_dirs["ltx"], sha256={"vae/missing.safetensors": "0" * 64}))
    with pytest.raises(ModelIntegrityError, match="missing"):
        missing.generate(_params("ltx"))


def test_right_sha256_loads(pipeline_dirs: dict[str, Path]) -> None:
    directory = pipeline_dirs["wan"]
    files = ["model_index.json", "transformer/diffusion_pytorch_model.safetensors", "vae/config.json"]
    backend = _backend(_card("wan", directory, sha256={f: _digest(directory / f).upper() for f in files}))
    assert backend.generate(_params("wan", steps=1)).num_frames == 9


def test_missing_directory_is_a_configuration_error() -> None:
    backend = _backend(_card("ltx", "/nonexistent/pipeline"))
    with pytest.raises(ConfigurationError, match="no pipeline directory"):
        backend.generate(_params("ltx"))


def test_uncached_hub_id_fails_offline_without_downloading() -> None:
    backend = _backend(_card("ltx", "reelfoundry-tests/no-such-pipeline"))
    with pytest.raises(ConfigurationError, match="no-such-pipeline"):
        backend.generate(_params("ltx"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": ""}, "'path'"),
        ({"colour": "red"}, "unknown diffusers options"),
        ({"call_kwargs": {"num_frames": 9}}, "may not set"),
        ({"dtype": "float64"}, "dtype"),
        ({"enable_vae_tiling": "yes"}, "true or false"),
        ({"size_multiple": 0}, "size_multiple"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _backend(_card("ltx", "/nonexistent/pipeline", **options))


def test_frames_to_uint8_takes_arrays_and_pil_lists() -> None:
    batch = np.linspace(0, 1, 2 * 3 * 4 * 5 * 3, dtype=np.float32).reshape(2, 3, 4, 5, 3)
    frames = frames_to_uint8(batch)
    assert frames.shape == (3, 4, 5, 3) and frames.dtype == np.uint8
    assert frames[0, 0, 0, 0] == 0 and frames_to_uint8(np.ones((1, 2, 2, 3)))[0, 0, 0, 0] == 255
    pil = [[Image.new("RGBA", (5, 4), (10, 20, 30, 40)) for _ in range(3)]]
    assert frames_to_uint8(pil)[2, 3, 4].tolist() == [10, 20, 30]
    with pytest.raises(ConfigurationError):
        frames_to_uint8(np.zeros((3, 4, 5)))
