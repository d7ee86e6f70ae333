"""The template backend: deterministic motion graphics from a TemplateSpec, with numpy and PIL only.

Everything static (backgrounds, text, input images) is prepared once per scene, when
the scene's first frame is rendered; each frame is a copy of its scene's background
with the layers pasted on through alpha masks. Without a template the prompt becomes
a title card, built as a TemplateSpec and rendered by the same code.

Memory follows the frame size, not the spec: one scene is held at a time, and text is
rasterised only where it can ever be on screen (a block of large text can be thousands
of frames tall, and a spec of a few kilobytes would otherwise ask for gigabytes).
"""

from __future__ import annotations

import abc
import colorsys
import hashlib
import itertools
import math
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from reelfoundry.errors import ConfigurationError, InvalidParameter
from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback
from reelfoundry.schema import ModelCard, Quality, Resources, Speed, TemplateSpec
from reelfoundry.schema.model_card import DEVICE_CLASSES
from reelfoundry.schema.template import Background, ImageLayer, Scene, ShapeLayer, TextLayer, Timing, fill

MAX_FPS = 60
#: Input pixels all image layers together may draw on (each decodes its input and may keep a resized copy).
MAX_IMAGE_LAYER_PIXELS = 100_000_000
MIN_SIDE = 16

TEMPLATE_CARD = ModelCard(
    id="template",
    name="Template renderer",
    backend="template",
    description=(
        "Deterministic motion graphics on the CPU: scenes of gradient backgrounds, text with {variables}, "
        "moving shapes and Ken Burns input images, for personalised video. Without a template it renders "
        f"an animated title card of the prompt. Up to {MAX_FPS} fps."
    ),
    default_num_frames=120,
    default_fps=24,
    default_width=640,
    default_height=360,
    max_num_frames=2880,
    max_width=1920,
    max_height=1080,
    max_fps=MAX_FPS,
    task="template",
    license="Apache-2.0",
    resources=Resources(weights_gib=0.0, activation_gib_per_mpf=0.02, max_batch=1),
    # CPU-bound: the same on every device class. ~0.01 s a frame at 640×360 (0.23 Mpx) plus ~1 s to set up and
    # encode, measured on the 2-core CPU machine (benchmarks/RESULTS.md, template renderer).
    speed={
        device: Speed(s_per_step_mpf=0.043, overhead_s=1.0, source="measured 2026-11, 2-core CPU (template bench)")
        for device in DEVICE_CLASSES
    },
    quality=Quality(
        score=0.2,
        source="assumed: exact for template specs, but a free prompt becomes only a title card of its text",
    ),
)

_TEXT_WIDTH = 0.9
# The title card wraps narrower than the renderer, so the renderer's re-wrap keeps its lines.
_TITLE_WIDTH = 0.8
_TITLE_HEIGHT = 0.6
_ENTRANCE_S = 0.5
_SLIDE = 0.08
_ZOOM_FROM = 0.6
# Block pixels held beyond what a zoom can show, so that resampling next to the held window's edge reads the
# neighbours it would read in the whole block (bilinear reaches 1 / _ZOOM_FROM pixels each way when shrinking).
_ZOOM_MARGIN = 4
_TITLE_MAX_S = 600.0
_TITLE_MAX_SIZE = 0.11
_TITLE_MIN_SIZE = 0.035
_TITLE_SHRINK = 0.88
_TITLE_MAX_CHARS = 1000

Rgb = tuple[int, int, int]


def _rgb(colour: str) -> Rgb:
    digits = colour[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _font(size: float, height: int) -> ImageFont.FreeTypeFont:
    # Pillow's bundled FreeType font: identical on every machine, nothing to install or download.
    font = ImageFont.load_default(size=max(1, round(size * height)))
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise ConfigurationError("the template backend needs Pillow built with FreeType for scalable text")
    return font


def _scaled_lut(alpha: float) -> list[int]:
    level = round(alpha * 255)
    return [(v * level + 127) // 255 for v in range(256)]


def _lerp(a: float, b: float, p: float) -> float:
    return a + (b - a) * p


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _fade(t: float, start: float, end: float, fade_in: float, fade_out: float) -> float:
    """Opacity at ``t`` of something shown over [start, end) with linear fades."""
    alpha = 1.0
    if fade_in > 0:
        alpha = min(alpha, (t - start) / fade_in)
    if fade_out > 0:
        alpha = min(alpha, (end - t) / fade_out)
    return _clamp(alpha, 0.0, 1.0)


def _break_word(word: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """``word`` cut into pieces no wider than ``max_width`` pixels (but at least one character), each cut as
    late as possible."""
    pieces = []
    while len(word) > 1:
        # Prefix widths grow with length, so the longest prefix that fits is found by bisection. The range is
        # first bracketed by doubling, so each cut measures about as much text as it keeps: measuring the whole
        # rest for every piece made a 2,000-character word take seconds.
        reach = 1
        while reach < len(word) and font.getlength(word[:reach]) <= max_width:
            reach *= 2
        if reach >= len(word) and font.getlength(word) <= max_width:
            break
        cut = max(
            1,
            bisect_right(
                range(1, len(word)),
                max_width,
                lo=reach // 2,
                hi=min(reach, len(word) - 1),
                key=lambda n: font.getlength(word[:n]),
            ),
        )
        pieces.append(word[:cut])
        word = word[cut:]
    pieces.append(word)
    return pieces


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels; words wider than that are broken between characters."""
    lines = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            for piece in _break_word(word, font, max_width):
                candidate = f"{line} {piece}" if line else piece
                if line and font.getlength(candidate) > max_width:
                    lines.append(line)
                    line = piece
                else:
                    line = candidate
        lines.append(line)
    return lines


def _spacing(font: ImageFont.FreeTypeFont) -> int:
    return round(font.size * 0.25)


def _text_bbox(text: str, font: ImageFont.FreeTypeFont) -> tuple[int, int, int, int]:
    """Ink box of centred multi-line text drawn at (0, 0); measured line by line, nothing is rasterised."""
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, spacing=_spacing(font), align="center")
    return math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)


@dataclass(frozen=True)
class _TextBlock:
    """Centred multi-line text, measured: its ink box and where each line goes, nothing rasterised yet."""

    font: ImageFont.FreeTypeFont
    lines: list[str]
    #: Ink box of the text drawn at (0, 0); the block's pixels are this box's (at least 1×1).
    bbox: tuple[int, int, int, int]
    #: Where each line is drawn, from where the block is: right by half its shortfall from the widest line
    #: (centring), down by the lines above it.
    offsets: list[tuple[float, float]]

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of the block in pixels."""
        left, top, right, bottom = self.bbox
        return max(1, right - left), max(1, bottom - top)


def _text_block(text: str, font: ImageFont.FreeTypeFont) -> _TextBlock:
    """Measure ``text`` laid out as Pillow's ``multiline_text(align="center")`` lays it out."""
    lines = text.split("\n")
    # Pillow's layout: lines one "A"-height plus spacing apart, each shifted right by half its shortfall from the
    # widest line. Repeated here so that each line can be drawn on its own (see _text_mask).
    step = font.getbbox("A", "L")[3] + _spacing(font)
    widths = [font.getlength(line, "L") for line in lines]
    widest = max(widths)
    offsets, top = [], 0.0
    for width in widths:
        offsets.append(((widest - width) / 2.0, top))
        top += step
    return _TextBlock(font, lines, _text_bbox(text, font), offsets)


def _text_mask(block: _TextBlock, window: tuple[int, int, int, int]) -> Image.Image:
    """White-on-black coverage of the block's pixels inside ``window`` (x0, y0, x1, y1, in block pixels).

    Only lines that reach the window are drawn, each as ``multiline_text`` would draw it; coordinates differ from
    a whole-block drawing by whole pixels only, so the pixels are the same as that drawing's, cropped.
    """
    x0, y0, x1, y1 = window
    left, top = block.bbox[:2]
    mask = Image.new("L", (max(1, x1 - x0), max(1, y1 - y0)))
    draw = ImageDraw.Draw(mask)
    origin_x, origin_y = -left - x0, -top - y0
    for line, (dx, dy) in zip(block.lines, block.offsets, strict=True):
        x, y = origin_x + dx, origin_y + dy
        ink_left, ink_top, ink_right, ink_bottom = block.font.getbbox(line, "L")
        # Most lines of a block taller than the frame are off screen: measuring them is cheap, drawing them not.
        if x + ink_right <= 0 or x + ink_left >= mask.width or y + ink_bottom <= 0 or y + ink_top >= mask.height:
            continue
        draw.text((x, y), line, fill=255, font=block.font)
    return mask


def _visible(extent: int, centre: float, frame: int, shift: float, zoom: bool) -> tuple[int, int]:
    """The pixels [start, stop) of a text block's ``extent`` along one axis that can ever land in ``frame``.

    The block is centred at ``centre``, plus up to ``shift`` while it slides in, or scaled up from _ZOOM_FROM
    while it zooms in. An empty range (start >= stop) means the block is never on screen.
    """
    if zoom:
        # At scale s block pixel u lands near centre + (u - extent / 2) * s: its reach is widest at one end of
        # [_ZOOM_FROM, 1]. The margin covers rounding and what resampling reads around each pixel.
        starts = [extent / 2 - centre / s for s in (_ZOOM_FROM, 1.0)]
        stops = [extent / 2 + (frame - centre) / s for s in (_ZOOM_FROM, 1.0)]
        start, stop = math.floor(min(starts)) - _ZOOM_MARGIN, math.ceil(max(stops)) + _ZOOM_MARGIN
    else:
        # Pasted at round(centre + d - extent / 2) for d in [0, shift]; pixel u shows where that plus u is in frame.
        start, stop = -round(centre + shift - extent / 2), frame - round(centre - extent / 2)
    return max(0, start), min(extent, stop)


def _background(background: Background, width: int, height: int) -> Image.Image:
    """A solid frame, or a linear gradient whose ends touch the frame's far corners."""
    start = np.array(_rgb(background.color), dtype=np.float32)
    if background.color_to is None:
        return Image.new("RGB", (width, height), _rgb(background.color))
    end = np.array(_rgb(background.color_to), dtype=np.float32)
    dx, dy = math.cos(math.radians(background.angle)), math.sin(math.radians(background.angle))
    xs = np.arange(width, dtype=np.float32) + 0.5 - width / 2
    ys = np.arange(height, dtype=np.float32) + 0.5 - height / 2
    position = (dx * xs[None, :] + dy * ys[:, None]) / (abs(dx) * width + abs(dy) * height) + 0.5
    pixels = start + (end - start) * np.clip(position, 0.0, 1.0)[..., None]
    return Image.fromarray(np.round(pixels).astype(np.uint8), "RGB")


@contextmanager
def _reading_input(path: Path, index: int) -> Iterator[None]:
    """Turn any failure to read input ``index`` as an image into InvalidParameter("inputs")."""
    try:
        yield
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidParameter("inputs", f"inputs[{index}] ({path.name}) is not a readable image: {exc}") from exc


def _check_image(path: Path, index: int) -> int:
    """Check an input's header and structure without decoding its pixels (cheap enough for admission);
    its pixel count."""
    with _reading_input(path, index), Image.open(path) as opened:
        opened.verify()
        return int(opened.width * opened.height)


def _load_image(path: Path, index: int) -> Image.Image:
    """Decode an input as RGB (RGBA if it has transparency), turned upright per its EXIF orientation."""
    with _reading_input(path, index), Image.open(path) as opened:
        upright = ImageOps.exif_transpose(opened)
        return upright.convert("RGBA" if upright.has_transparency_data else "RGB")


class _Sprite(abc.ABC):
    """A layer with its static work done; per frame only placement and opacity remain."""

    def __init__(self, timing: Timing, scene_duration: float) -> None:
        self.timing = timing
        self.start = timing.start_s
        self.end = scene_duration if timing.end_s is None else min(timing.end_s, scene_duration)

    def draw(self, frame: Image.Image, t: float) -> None:
        """Composite the layer onto ``frame`` as it is at scene time ``t``."""
        if not self.start <= t < self.end:
            return
        alpha = _fade(t, self.start, self.end, self.timing.fade_in_s, self.timing.fade_out_s)
        if alpha > 0:
            self._draw(frame, t - self.start, (t - self.start) / (self.end - self.start), alpha)

    @abc.abstractmethod
    def _draw(self, frame: Image.Image, elapsed: float, progress: float, alpha: float) -> None:
        """Paste at ``elapsed`` seconds since the layer appeared (``progress`` 0–1 of its time on screen)."""


class _TextSprite(_Sprite):
    """Text rasterised once, but only the window of it that its motion can ever bring on screen."""

    def __init__(self, layer: TextLayer, scene_duration: float, variables: dict[str, str], size: tuple[int, int]):
        super().__init__(layer, scene_duration)
        width, height = size
        font = _font(layer.size, height)
        block = _text_block("\n".join(_wrap(fill(layer.text, variables), font, _TEXT_WIDTH * width)), font)
        self.colour = _rgb(layer.color)
        self.centre = (layer.x * width, layer.y * height)
        self.motion = layer.motion
        self.entrance = layer.fade_in_s or _ENTRANCE_S
        self.slide = (_SLIDE * width, _SLIDE * height)
        #: Width and height of the whole text block; placement is computed for it.
        self.block = block.size
        zoom = self.motion == "zoom"
        x0, x1 = _visible(self.block[0], self.centre[0], width, self.slide[0] * (self.motion == "slide_left"), zoom)
        y0, y1 = _visible(self.block[1], self.centre[1], height, self.slide[1] * (self.motion == "slide_up"), zoom)
        self.hidden = x0 >= x1 or y0 >= y1
        #: The part of the block held in ``mask``, in block pixels (x0, y0, x1, y1): all of it when it fits.
        self.window = (x0, y0, x1, y1)
        self.mask = Image.new("L", (1, 1)) if self.hidden else _text_mask(block, self.window)

    def _draw(self, frame: Image.Image, elapsed: float, progress: float, alpha: float) -> None:
        if self.hidden:
            return
        eased = 1 - (1 - min(1.0, elapsed / self.entrance)) ** 3
        (x, y), rest = self.centre, 1 - eased
        if self.motion == "slide_up":
            y += rest * self.slide[1]
        elif self.motion == "slide_left":
            x += rest * self.slide[0]
        if self.motion == "zoom" and rest > 0:
            mask, left, top = self._zoomed(x, y, _lerp(_ZOOM_FROM, 1.0, eased), frame.size)
            if mask is None:
                return
        else:
            mask = self.mask
            left = round(x - self.block[0] / 2) + self.window[0]
            top = round(y - self.block[1] / 2) + self.window[1]
        if alpha < 1:
            mask = mask.point(_scaled_lut(alpha))
        frame.paste(self.colour, (left, top, left + mask.width, top + mask.height), mask)

    def _zoomed(
        self, x: float, y: float, scale: float, frame_size: tuple[int, int]
    ) -> tuple[Image.Image | None, int, int]:
        """The block scaled by ``scale`` and centred at (x, y): its on-screen part (None if none) and where it goes."""
        width, height = self.block
        zoomed = (max(1, round(width * scale)), max(1, round(height * scale)))
        left, top = round(x - zoomed[0] / 2), round(y - zoomed[1] / 2)
        if self.mask.size == self.block:
            # The whole block is held: scale all of it.
            return self.mask.resize(zoomed, Image.Resampling.BILINEAR), left, top
        # Only a window is held: scale just the part that lands on screen. The box maps that part back to block
        # pixels (less the window's offset), so each output pixel samples where it would in the whole block (Pillow
        # takes the box in single precision: a few edge pixels may differ by one level).
        u0, u1 = max(0, -left), min(zoomed[0], frame_size[0] - left)
        v0, v1 = max(0, -top), min(zoomed[1], frame_size[1] - top)
        if u0 >= u1 or v0 >= v1:
            return None, 0, 0
        sx, sy = width / zoomed[0], height / zoomed[1]
        wx, wy = self.window[:2]
        box = (
            _clamp(u0 * sx - wx, 0.0, self.mask.width),
            _clamp(v0 * sy - wy, 0.0, self.mask.height),
            _clamp(u1 * sx - wx, 0.0, self.mask.width),
            _clamp(v1 * sy - wy, 0.0, self.mask.height),
        )
        return self.mask.resize((u1 - u0, v1 - v0), Image.Resampling.BILINEAR, box=box), left + u0, top + v0


class _ShapeSprite(_Sprite):
    def __init__(self, layer: ShapeLayer, scene_duration: float, size: tuple[int, int]) -> None:
        super().__init__(layer, scene_duration)
        width, height = size
        self.layer = layer
        self.colour = _rgb(layer.color)
        self.start_xy = (layer.x * width, layer.y * height)
        to_x = layer.x if layer.to_x is None else layer.to_x
        to_y = layer.y if layer.to_y is None else layer.to_y
        self.end_xy = (to_x * width, to_y * height)
        self.half = (layer.w * width / 2, layer.h * height / 2)

    def _draw(self, frame: Image.Image, elapsed: float, progress: float, alpha: float) -> None:
        scale = _lerp(1.0, self.layer.scale_to, progress)
        cx, cy = _lerp(self.start_xy[0], self.end_xy[0], progress), _lerp(self.start_xy[1], self.end_xy[1], progress)
        hw, hh = self.half[0] * scale, self.half[1] * scale
        x0, x1 = max(0, math.floor(cx - hw)), min(frame.width, math.ceil(cx + hw))
        y0, y1 = max(0, math.floor(cy - hh)), min(frame.height, math.ceil(cy + hh))
        if x0 >= x1 or y0 >= y1:
            return
        # Pixel centres, so edges get fractional coverage (anti-aliasing) rather than stairs.
        xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx
        ys = np.arange(y0, y1, dtype=np.float32) + 0.5 - cy
        if self.layer.shape == "rect":
            cover = np.clip(hh + 0.5 - np.abs(ys), 0, 1)[:, None] * np.clip(hw + 0.5 - np.abs(xs), 0, 1)[None, :]
        elif self.layer.shape == "circle":
            u, v = xs / hw, ys / hh
            radial = u[None, :] ** 2 + v[:, None] ** 2
            # First-order distance to the ellipse edge in pixels: f / |grad f| with f = radial - 1.
            slope = 2 * np.sqrt((u / hw)[None, :] ** 2 + (v / hh)[:, None] ** 2) + 1e-6
            cover = np.clip(0.5 - (radial - 1) / slope, 0, 1)
        else:
            # Apex at the top centre, base along the bottom: distance to the nearest violated edge.
            norm = math.hypot(2 * hh, hw)
            right = (2 * hh * xs[None, :] - (hw * ys + hw * hh)[:, None]) / norm
            left = (-2 * hh * xs[None, :] - (hw * ys + hw * hh)[:, None]) / norm
            base = (ys - hh)[:, None]
            cover = np.clip(0.5 - np.maximum(np.maximum(right, left), base), 0, 1)
        mask = Image.fromarray((cover * (alpha * 255) + 0.5).astype(np.uint8), "L")
        frame.paste(self.colour, (x0, y0, x1, y1), mask)


class _ImageSprite(_Sprite):
    def __init__(self, layer: ImageLayer, scene_duration: float, source: Image.Image, size: tuple[int, int]) -> None:
        super().__init__(layer, scene_duration)
        self.layer = layer
        self.size = size
        # Shrink once so the deepest zoom samples about one source pixel per output pixel; per frame
        # resampling then never reduces by more than zoom_to/zoom_from.
        shrink = max(size[0] / source.width, size[1] / source.height) * max(layer.zoom_from, layer.zoom_to)
        if shrink < 1:
            source = source.resize(
                (max(1, round(source.width * shrink)), max(1, round(source.height * shrink))), Image.Resampling.LANCZOS
            )
        self.source = source
        self.cover = max(size[0] / source.width, size[1] / source.height)

    def _draw(self, frame: Image.Image, elapsed: float, progress: float, alpha: float) -> None:
        layer, source = self.layer, self.source
        zoom = _lerp(layer.zoom_from, layer.zoom_to, progress)
        view_w, view_h = self.size[0] / (self.cover * zoom), self.size[1] / (self.cover * zoom)
        # Keep the view inside the image: the focus point moves, the frame never shows past an edge.
        cx = _clamp(
            _lerp(layer.pan_from[0], layer.pan_to[0], progress) * source.width, view_w / 2, source.width - view_w / 2
        )
        cy = _clamp(
            _lerp(layer.pan_from[1], layer.pan_to[1], progress) * source.height, view_h / 2, source.height - view_h / 2
        )
        # Clamped again because cover-fit arithmetic can overshoot an edge by a rounding error.
        box = (
            max(0.0, cx - view_w / 2),
            max(0.0, cy - view_h / 2),
            min(float(source.width), cx + view_w / 2),
            min(float(source.height), cy + view_h / 2),
        )
        view = source.resize(self.size, Image.Resampling.BILINEAR, box=box)
        if view.mode == "RGBA":
            mask = view.getchannel("A")
            frame.paste(view.convert("RGB"), (0, 0), mask if alpha >= 1 else mask.point(_scaled_lut(alpha)))
        elif alpha >= 1:
            frame.paste(view, (0, 0))
        else:
            frame.paste(view, (0, 0), Image.new("L", self.size, round(alpha * 255)))


@dataclass
class _PreparedScene:
    """A scene's pre-rendered background and ready-to-paste layers."""

    scene: Scene
    background: Image.Image
    sprites: list[_Sprite]

    def render(self, t: float) -> Image.Image:
        """The scene's frame at scene time ``t``."""
        frame = self.background.copy()
        for sprite in self.sprites:
            sprite.draw(frame, t)
        level = _fade(t, 0.0, self.scene.duration_s, self.scene.fade_in_s, self.scene.fade_out_s)
        return frame if level >= 1 else frame.point(_scaled_lut(level) * 3)


def _prepare_scene(
    scene: Scene,
    variables: dict[str, str],
    size: tuple[int, int],
    inputs: tuple[Path, ...],
    images: dict[int, Image.Image],
) -> _PreparedScene:
    """Render a scene's static parts once; ``images`` caches decoded inputs across scenes."""
    sprites: list[_Sprite] = []
    for layer in scene.layers:
        if isinstance(layer, TextLayer):
            sprites.append(_TextSprite(layer, scene.duration_s, variables, size))
        elif isinstance(layer, ShapeLayer):
            sprites.append(_ShapeSprite(layer, scene.duration_s, size))
        else:
            if layer.input not in images:
                images[layer.input] = _load_image(inputs[layer.input], layer.input)
            sprites.append(_ImageSprite(layer, scene.duration_s, images[layer.input], size))
    return _PreparedScene(scene, _background(scene.background, *size), sprites)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def _fit_title(prompt: str, width: int, height: int) -> tuple[str, float]:
    """The prompt wrapped at the largest size whose block fits the title area; cut with an ellipsis at the floor."""
    # More text than this cannot be read on a title card at any size we allow; cutting first keeps fitting cheap.
    if len(prompt) > _TITLE_MAX_CHARS:
        prompt = prompt[:_TITLE_MAX_CHARS].rstrip() + "…"
    size = _TITLE_MAX_SIZE

    def fits(lines: list[str], font: ImageFont.FreeTypeFont) -> bool:
        _, top, _, bottom = _text_bbox("\n".join(lines), font)
        return bottom - top <= _TITLE_HEIGHT * height

    while True:
        font = _font(size, height)
        lines = _wrap(prompt, font, _TITLE_WIDTH * width)
        if fits(lines, font):
            return "\n".join(lines), size
        if size * _TITLE_SHRINK < _TITLE_MIN_SIZE:
            break
        size *= _TITLE_SHRINK
    keep = max(1, bisect_right(range(1, len(lines) + 1), False, key=lambda n: not fits(lines[:n], font)))
    lines = lines[:keep]
    last = lines[-1].removesuffix("…")
    while last and font.getlength(last + "…") > _TITLE_WIDTH * width:
        last = last[:-1]
    lines[-1] = last.rstrip() + "…"
    return "\n".join(lines), size


def title_card_spec(prompt: str, seed: int, width: int, height: int, duration_s: float) -> TemplateSpec:
    """An animated title card of ``prompt``; palette and drift follow from seed and prompt, so it is reproducible."""
    digest = hashlib.sha256(f"{seed}\x00{prompt}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    hue = digest[8] / 256
    hue_to = (hue + 0.08 + 0.25 * digest[9] / 255) % 1.0
    duration = min(duration_s, _TITLE_MAX_S)
    text, size = _fit_title(prompt, width, height)
    short_side = min(width, height)
    shapes = []
    for k in range(2):
        diameter = rng.uniform(0.35, 0.65) * short_side
        x, y = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)
        shapes.append(
            ShapeLayer(
                shape="circle",
                # Low contrast against the gradient keeps the decoration soft and the text legible.
                color=_hex(colorsys.hsv_to_rgb((hue + 0.1 * k) % 1.0, 0.45, 0.36)),
                x=x,
                y=y,
                w=diameter / width,
                h=diameter / height,
                to_x=x + rng.uniform(-0.12, 0.12),
                to_y=y + rng.uniform(-0.12, 0.12),
                scale_to=rng.uniform(1.05, 1.3),
                fade_in_s=min(1.0, duration / 4),
            )
        )
    title = TextLayer(text="{prompt}", size=size, motion="slide_up", fade_in_s=min(0.8, duration / 4))
    scene = Scene(
        duration_s=duration,
        background=Background(
            color=_hex(colorsys.hsv_to_rgb(hue, 0.65, 0.42)),
            color_to=_hex(colorsys.hsv_to_rgb(hue_to, 0.7, 0.16)),
            angle=45 + 90 * digest[10] / 255,
        ),
        layers=[*shapes, title],
        fade_out_s=min(0.75, duration / 5),
    )
    return TemplateSpec(variables={"prompt": text}, scenes=[scene])


class TemplateBackend(Backend):
    """Motion graphics for personalised video: a TemplateSpec, or the prompt as a title card, to frames."""

    name = "template"

    def __init__(self, card: ModelCard = TEMPLATE_CARD) -> None:
        super().__init__(card)

    def check_inputs(self, params: GenerationParams) -> None:
        """Refuse sizes, rates and inputs outside the card's limits, naming the field."""
        card = self.card
        if not 1 <= params.num_frames <= card.max_num_frames:
            raise InvalidParameter(
                "num_frames", f"num_frames must be between 1 and {card.max_num_frames}, got {params.num_frames}"
            )
        for field, value, most in (("width", params.width, card.max_width), ("height", params.height, card.max_height)):
            if not MIN_SIDE <= value <= most:
                raise InvalidParameter(field, f"{field} must be between {MIN_SIDE} and {most}, got {value}")
            if value % 2:
                raise InvalidParameter(field, f"{field} must be even (H.264 yuv420p), got {value}")
        if not 1 <= params.fps <= MAX_FPS:
            raise InvalidParameter("fps", f"fps must be between 1 and {MAX_FPS}, got {params.fps}")
        if params.template is not None:
            # The spec validated when it was parsed, but one built or changed in code did not: check its bounds here.
            problem = params.template.problem()
            if problem is not None:
                raise InvalidParameter("template", problem)
            for i, scene in enumerate(params.template.scenes):
                for j, layer in enumerate(scene.layers):
                    if isinstance(layer, ImageLayer) and layer.input >= len(params.inputs):
                        raise InvalidParameter(
                            "template",
                            f"scenes[{i}].layers[{j}].input is {layer.input} "
                            f"but the request has {len(params.inputs)} input(s)",
                        )
        pixels = [_check_image(path, index) for index, path in enumerate(params.inputs)]
        if params.template is not None:
            # Each image layer decodes its input and may keep a resized copy: bound the pixels they draw on.
            drawn = sum(
                pixels[layer.input]
                for scene in params.template.scenes
                for layer in scene.layers
                if isinstance(layer, ImageLayer)
            )
            if drawn > MAX_IMAGE_LAYER_PIXELS:
                raise InvalidParameter(
                    "template",
                    f"the image layers draw on {drawn:,} input pixels in all; at most {MAX_IMAGE_LAYER_PIXELS:,} "
                    "(use fewer image layers or smaller inputs)",
                )

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        """Render ``params.num_frames`` frames; ``callback(done, total)`` after each one."""
        # 1. Check inputs
        self.check_inputs(params)

        # 2. Build the spec
        spec = params.template
        if spec is None:
            spec = title_card_spec(
                params.prompt, params.seed, params.width, params.height, params.num_frames / params.fps
            )

        # 3. Plan the scenes: their static layers are prepared when each is reached (step 4), one held at a
        #    time, so memory does not grow with the number of scenes.
        size = (params.width, params.height)
        images: dict[int, Image.Image] = {}
        starts = [0.0, *itertools.accumulate(scene.duration_s for scene in spec.scenes)][:-1]

        # 4. Render frames, lazily: the encoder pulls them one at a time, so a long
        #    1080p clip never sits in memory whole.
        total = params.num_frames
        # Frame i shows time i / fps; the frames at or past the spec's end repeat the last one inside it.
        inside = min(total, max(1, math.ceil(round(spec.duration_s * params.fps, 6))))

        def render() -> Iterator[np.ndarray]:
            last = np.empty(0, dtype=np.uint8)
            current: tuple[int, _PreparedScene] | None = None
            for i in range(total):
                if i < inside:
                    t = i / params.fps
                    k = bisect_right(starts, t) - 1
                    if current is None or current[0] != k:
                        current = None  # let go of the previous scene before the next one is prepared
                        current = k, _prepare_scene(spec.scenes[k], spec.variables, size, params.inputs, images)
                    last = np.asarray(current[1].render(t - starts[k]))
                if callback is not None:
                    callback(i + 1, total)
                yield last

        # 5. Output
        return GenerationOutput(
            frames=render(),
            fps=params.fps,
            num_frames=total,
            info={"scenes": len(spec.scenes), "title_card": params.template is None, "held_frames": total - inside},
        )
