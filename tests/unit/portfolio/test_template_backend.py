"""The template backend renders tiny real clips on the CPU: deterministic, complete and cancellable."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pydantic import ValidationError

from reelfoundry.errors import GenerationCancelled, InvalidParameter
from reelfoundry.portfolio.backends import template
from reelfoundry.portfolio.backends.template import TEMPLATE_CARD, TemplateBackend, title_card_spec
from reelfoundry.portfolio.base import GenerationOutput, GenerationParams
from reelfoundry.schema import TemplateSpec, VideoRequest

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


# --- Bounds: what a spec may make the renderer do -------------------------------------------------------------

#: The request that peaked a worker at 1.43 GB: 1,000 "W" at full height, 1080p.
HUGE_TEXT = {"scenes": [{"layers": [{"type": "text", "text": "W" * 1000, "size": 1.0}]}]}
#: The most a spec may ask for: 256 layers (4 scenes of 64) of 2,000 full-height characters each, made with a
#: variable, zooming in (the motion that shows the most of a block).
WORST_ALLOWED = {
    "variables": {"v": "W"},
    "scenes": [
        {
            "duration_s": 0.05,
            "layers": [{"type": "text", "text": "{v}" * 666 + "WW", "size": 1.0, "motion": "zoom"}] * 64,
        }
    ]
    * 4,
}


def _record_scenes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every scene the backend prepares, in order (the list fills as frames are rendered)."""
    prepared: list[Any] = []
    real = template._prepare_scene

    def recording(*args: Any, **kwargs: Any) -> Any:
        scene = real(*args, **kwargs)
        prepared.append(scene)
        return scene

    monkeypatch.setattr(template, "_prepare_scene", recording)
    return prepared


@pytest.mark.parametrize("motion", ["none", "slide_up", "slide_left", "zoom"])
def test_text_is_held_no_larger_than_the_part_that_can_be_seen(
    backend: TemplateBackend, monkeypatch: pytest.MonkeyPatch, motion: str
) -> None:
    width, height = 320, 180
    layer = {"type": "text", "text": "W" * 1000, "size": 1.0, "motion": motion, "color": "#ff0000"}
    scenes = [{"background": {"color": "#000000"}, "layers": [layer]}]
    prepared = _record_scenes(monkeypatch)

    frames = _frames(backend.generate(_params(num_frames=8, width=width, height=height, template=_spec(scenes))))

    # What the motion can bring into view: the frame, 8 % more along a slide, 1 / 0.6 of it while zooming in.
    reach_x = 1 / 0.6 if motion == "zoom" else 1.08 if motion == "slide_left" else 1.0
    reach_y = 1 / 0.6 if motion == "zoom" else 1.08 if motion == "slide_up" else 1.0
    (sprite,) = prepared[0].sprites
    assert sprite.mask.width <= width * reach_x + 10
    assert sprite.mask.height <= height * reach_y + 10
    assert frames[-1][..., 0].max() > 200  # and the part that shows is drawn


@pytest.mark.parametrize("window", [(0, 0, 10_000, 10_000), (0, 60, 10_000, 150), (30, 100, 90, 115), (5, 1, 9, 2)])
def test_a_window_of_text_is_the_same_pixels_as_the_whole(window: tuple[int, int, int, int]) -> None:
    font = template._font(0.2, 180)
    text = "Hello {x}\nii WW AV\nW\n\nthe last, longest line of all".replace("{x}", "wide world")
    block = template._text_block(text, font)
    left, top, right, bottom = block.bbox
    # Pillow's own drawing of the whole block, as the renderer drew text before it held windows.
    whole = Image.new("L", (right - left, bottom - top))
    ImageDraw.Draw(whole).multiline_text(
        (-left, -top), text, fill=255, font=font, spacing=round(font.size * 0.25), align="center"
    )
    x0, y0, x1, y1 = (min(v, limit) for v, limit in zip(window, (*whole.size, *whole.size), strict=True))

    held = template._text_mask(block, (x0, y0, x1, y1))

    assert np.array_equal(np.asarray(held), np.asarray(whole.crop((x0, y0, x1, y1))))


_PEAK_MEMORY = """
import json, resource, sys
# A cap, so that a renderer that does try to allocate gigabytes fails at once instead of taking the machine's memory.
resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))
from reelfoundry.portfolio.backends.template import TemplateBackend
from reelfoundry.portfolio.base import GenerationParams
from reelfoundry.schema import TemplateSpec
spec = TemplateSpec.model_validate(json.loads(sys.stdin.read()))
params = GenerationParams(prompt="x", num_frames=5, fps=24, width=1920, height=1080, seed=1, template=spec)
backend = TemplateBackend()
backend.check_inputs(params)
for _ in backend.generate(params).frames:
    pass
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent (a big pytest process).
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(int(hwm.split()[1]) // 1024)
"""


@pytest.mark.parametrize("spec", [HUGE_TEXT, WORST_ALLOWED], ids=["huge-text", "worst-allowed"])
def test_the_biggest_specs_are_accepted_and_render_at_1080p_in_little_memory(spec: dict[str, Any]) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _PEAK_MEMORY], input=json.dumps(spec), capture_output=True, text=True, check=False
    )

    assert child.returncode == 0, child.stderr[-2000:]
    peak_mib = int(child.stdout.split()[-1])
    assert peak_mib < 400, f"peak resident memory {peak_mib} MiB"


def test_variables_cannot_multiply_text_past_the_limit() -> None:
    scenes = [{"layers": [{"type": "shape"}, {"type": "text", "text": "Hi {name} " + "{name}" * 11}]}]

    with pytest.raises(ValidationError) as caught:
        _spec(scenes, name="x" * 450)

    assert "scenes[0].layers[1].text is 5,404 characters after {variables} are filled in; at most 2000" in str(
        caught.value
    )
    _spec(scenes, name="x" * 150)  # 1,804 characters: fine


@pytest.mark.parametrize(
    "variables",
    [{f"v{i}": "x" for i in range(65)}, {"v": "x" * 2001}, {"v" * 65: "x"}],
    ids=["too-many", "too-long", "name-too-long"],
)
def test_variables_are_bounded(variables: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as caught:
        TemplateSpec.model_validate({"variables": variables, "scenes": [{}]})

    assert caught.value.errors()[0]["loc"][0] == "variables"


def test_layers_in_all_scenes_are_bounded() -> None:
    scene = {"layers": [{"type": "shape"}] * 64}

    with pytest.raises(ValidationError, match="scenes hold 320 layers in all; at most 256"):
        _spec([scene] * 5)
    _spec([scene] * 4)


def test_a_request_over_the_bounds_names_the_template() -> None:
    body = {"prompt": "x", "template": {"scenes": [{"layers": [{"type": "shape"}] * 64}] * 5}}

    with pytest.raises(ValidationError) as caught:
        VideoRequest.model_validate(body)

    assert caught.value.errors()[0]["loc"] == ("template",)


def test_check_inputs_refuses_a_spec_changed_after_validation(backend: TemplateBackend) -> None:
    spec = _spec([{"layers": [{"type": "text", "text": "{a}" * 100}]}], a="x")
    spec.variables["a"] = "x" * 2000  # a spec built or edited in code is not validated again

    with pytest.raises(InvalidParameter) as caught:
        backend.check_inputs(_params(template=spec))

    assert caught.value.parameter == "template"
    assert "scenes[0].layers[0].text is 200,000 characters" in caught.value.detail


def test_scenes_are_prepared_when_reached_and_let_go_after(
    backend: TemplateBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenes = [{"duration_s": 0.25, "layers": [{"type": "text", "text": f"scene {k}"}]} for k in range(3)]
    prepared = _record_scenes(monkeypatch)

    frames = iter(backend.generate(_params(num_frames=9, template=_spec(scenes))).frames)
    assert prepared == []  # nothing before the first frame is asked for

    seen = []
    for _ in range(9):  # 3 frames a scene at 12 fps
        next(frames)
        seen.append(len(prepared))
    assert seen == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    first = weakref.ref(prepared[0])
    prepared.clear()
    gc.collect()
    assert first() is None  # the renderer kept no hold on a scene it has left


def test_image_layers_are_bounded_by_the_input_pixels_they_draw_on(tmp_path: Path, backend: TemplateBackend) -> None:
    """Each image layer decodes its input and may keep a resized copy: 64 layers of one 50 MP upload would
    hold gigabytes. The sum of input pixels over image layers is capped."""
    big = tmp_path / "big.png"
    Image.new("RGB", (5000, 10_000), (10, 20, 30)).save(big)  # 50 MP
    layers = [{"type": "image", "input": 0, "zoom_to": 4.0} for _ in range(3)]
    params = _params(template=_spec([{"duration_s": 1, "layers": layers}]), inputs=(big,))
    with pytest.raises(InvalidParameter) as refused:
        backend.check_inputs(params)
    assert refused.value.parameter == "template"
    assert "150,000,000 input pixels" in refused.value.detail
    backend.check_inputs(replace(params, template=_spec([{"duration_s": 1, "layers": layers[:2]}])))
