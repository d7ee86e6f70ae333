"""The template backend renders tiny real clips on the CPU: deterministic, complete and cancellable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reelfoundry.errors import GenerationCancelled, InvalidParameter
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD, TemplateBackend, title_card_spec
from reelfoundry.portfolio.base import GenerationOutput, GenerationParams
from reelfoundry.schema import TemplateSpec

WIDTH, HEIGHT, FPS = 64, 36, 12


def _frames(output: GenerationOutput) -> np.ndarray:
    """All frames of a (lazy) output as one array."""
    return np.stack(list(output.frames))


def _params(**overrides: Any) -> GenerationParams:
    values: dict[str, Any] = {
        "prompt": "A lighthouse at dawn",
        "num_frames": 12,
        "fps": FPS,
        "width": WIDTH,
        "height": HEIGHT,
        "seed": 1,
    }
    return GenerationParams(**(values | overrides))


def _spec(scenes: list[dict[str, Any]], **variables: str) -> TemplateSpec:
    return TemplateSpec.model_validate({"variables": variables, "scenes": scenes})


def _solid_png(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (40, 30), colour).save(path)
    return path


@pytest.fixture
def backend() -> TemplateBackend:
    return TemplateBackend(TEMPLATE_CARD)


def test_same_params_give_identical_frames(backend: TemplateBackend) -> None:
    first = _frames(backend.generate(_params()))
    again = _frames(backend.generate(_params()))
    other_seed = _frames(backend.generate(_params(seed=2)))

    assert first.shape == (12, HEIGHT, WIDTH, 3)
    assert first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_seed)


def test_prompt_only_title_card_is_animated(backend: TemplateBackend) -> None:
    frames = _frames(backend.generate(_params(num_frames=24, width=160, height=90)))

    assert len(np.unique(frames[12].reshape(-1, 3), axis=0)) > 50
    assert not np.array_equal(frames[3], frames[12])
    assert not np.array_equal(frames[12], frames[23])


def test_long_prompt_title_is_cut_with_an_ellipsis() -> None:
    spec = title_card_spec("lorem ipsum " * 400, seed=1, width=WIDTH, height=HEIGHT, duration_s=1.0)

    assert spec.variables["prompt"].endswith("…")


def test_spec_with_gradient_text_shape_and_image(backend: TemplateBackend, tmp_path: Path) -> None:
    green = _solid_png(tmp_path / "green.png", (0, 255, 0))
    scenes = [
        {
            "duration_s": 1.0,
            "background": {"color": "#000000", "color_to": "#ffffff", "angle": 0},
            "layers": [
                {"type": "text", "text": "Hi {client_name}", "y": 0.2, "size": 0.2},
                {"type": "shape", "shape": "rect", "color": "#ff0000", "x": 0.2, "to_x": 0.8, "y": 0.8, "h": 0.2},
            ],
        },
        {"duration_s": 0.5, "layers": [{"type": "image", "input": 0, "zoom_to": 1.5, "pan_to": [0.8, 0.2]}]},
    ]
    params = _params(num_frames=18, template=_spec(scenes, client_name="Ada"), inputs=(green,))

    frames = _frames(backend.generate(params))
    renamed = _frames(backend.generate(replace(params, template=_spec(scenes, client_name="Zed"))))

    middle_row = frames[0, HEIGHT // 2, :, 0].astype(int)
    assert middle_row[0] < 10 and middle_row[-1] > 245 and np.all(np.diff(middle_row) >= 0)
    red_columns = [
        np.nonzero((f[HEIGHT * 7 // 10 :, :, 0] > 200) & (f[HEIGHT * 7 // 10 :, :, 1] < 60))[1] for f in frames
    ]
    assert red_columns[0].mean() < WIDTH * 0.3 < WIDTH * 0.7 < red_columns[11].mean()
    assert not np.array_equal(frames[0, : HEIGHT // 2], renamed[0, : HEIGHT // 2])
    image_frame = frames[15].astype(int)
    assert image_frame[..., 1].min() > 240 and image_frame[..., [0, 2]].max() < 15


@pytest.mark.parametrize(("shape", "area"), [("rect", 0.25), ("circle", np.pi / 16), ("triangle", 0.125)])
def test_shapes_cover_their_geometric_area(backend: TemplateBackend, shape: str, area: float) -> None:
    scenes = [
        {
            "background": {"color": "#000000"},
            "layers": [{"type": "shape", "shape": shape, "color": "#fff", "w": 0.5, "h": 0.5}],
        }
    ]
    frame = _frames(backend.generate(_params(num_frames=1, width=64, height=64, template=_spec(scenes))))[0]

    assert frame[..., 0].mean() / 255 == pytest.approx(area, abs=0.01)


def test_transparent_image_shows_the_background_through(backend: TemplateBackend, tmp_path: Path) -> None:
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (40, 30), (255, 255, 255, 0)).save(clear)
    scenes = [{"background": {"color": "#0000ff"}, "layers": [{"type": "image", "input": 0}]}]

    frame = _frames(backend.generate(_params(num_frames=1, template=_spec(scenes), inputs=(clear,))))[0]

    assert np.all(frame == (0, 0, 255))


def test_time_past_the_spec_holds_the_last_frame(backend: TemplateBackend) -> None:
    scenes = [{"duration_s": 0.5, "layers": [{"type": "shape", "x": 0.1, "to_x": 0.9}]}]

    output = backend.generate(_params(num_frames=10, template=_spec(scenes)))
    frames = _frames(output)

    inside = int(0.5 * FPS)
    assert not np.array_equal(frames[inside - 2], frames[inside - 1])
    assert all(np.array_equal(frame, frames[inside - 1]) for frame in frames[inside:])
    assert output.info["held_frames"] == 10 - inside


def test_callback_runs_once_per_frame(backend: TemplateBackend) -> None:
    calls: list[tuple[int, int]] = []

    _frames(backend.generate(_params(num_frames=5), lambda done, total: calls.append((done, total))))

    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_cancelling_callback_stops_the_render(backend: TemplateBackend) -> None:
    calls: list[int] = []

    def cancel_at_three(done: int, total: int) -> None:
        calls.append(done)
        if done == 3:
            raise GenerationCancelled("job cancelled")

    with pytest.raises(GenerationCancelled):
        _frames(backend.generate(_params(num_frames=12), cancel_at_three))

    assert calls == [1, 2, 3]


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"num_frames": TEMPLATE_CARD.max_num_frames + 1}, "num_frames"),
        ({"width": TEMPLATE_CARD.max_width + 2}, "width"),
        ({"width": 65}, "width"),
        ({"height": 8}, "height"),
        ({"fps": 0}, "fps"),
        ({"template": _spec([{"layers": [{"type": "image", "input": 1}]}])}, "template"),
    ],
    ids=["too-many-frames", "too-wide", "odd-width", "too-short", "no-fps", "image-index"],
)
def test_check_inputs_names_the_field(backend: TemplateBackend, overrides: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        backend.check_inputs(_params(**overrides))

    assert caught.value.parameter == parameter


def test_check_inputs_refuses_an_unreadable_image(backend: TemplateBackend, tmp_path: Path) -> None:
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_text("not a picture")

    with pytest.raises(InvalidParameter) as caught:
        backend.check_inputs(_params(inputs=(not_an_image,)))

    assert caught.value.parameter == "inputs"
