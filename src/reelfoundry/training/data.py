"""The procedural data set: captioned clips of one shape in motion, fully determined by (seed, index).

A clip is 16 frames of 64×64 RGB at 8 fps: one object of a colour and a shape doing one
motion over a background of another colour. Captions vary wording (synonyms, word order,
"over a blue backdrop") so the model learns what the words mean, not one sentence pattern.
Some (colour, shape, motion) combinations never appear in training (``HELD_OUT``); the
evaluation asks for them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

FRAMES, SIZE, FPS = 16, 64, 8

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 38, 38),
    "green": (34, 170, 68),
    "blue": (37, 78, 220),
    "yellow": (245, 215, 30),
    "purple": (135, 50, 190),
    "orange": (247, 135, 20),
    "white": (245, 245, 245),
    "black": (18, 18, 18),
}
SHAPES = ("circle", "square", "triangle", "star")
MOTIONS = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking")

COLOUR_WORDS = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "emerald"),
    "blue": ("blue", "azure", "cobalt"),
    "yellow": ("yellow", "golden"),
    "purple": ("purple", "violet"),
    "orange": ("orange", "tangerine"),
    "white": ("white", "snow-white"),
    "black": ("black", "jet-black"),
}
SHAPE_WORDS = {
    "circle": ("circle", "disc", "round dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "three-sided shape"),
    "star": ("star", "five-pointed star"),
}
MOTION_WORDS = {
    "moving left": ("moving left", "moving to the left", "sliding left", "drifting leftward"),
    "moving right": ("moving right", "moving to the right", "sliding right", "drifting rightward"),
    "moving up": ("moving up", "rising", "moving upward", "floating up"),
    "moving down": ("moving down", "falling", "sinking", "moving downward"),
    "growing": ("growing", "getting bigger", "expanding", "growing larger"),
    "shrinking": ("shrinking", "getting smaller", "contracting", "growing smaller"),
}
BACKGROUND_WORDS = ("on a {b} background", "over a {b} backdrop", "against a {b} background", "in front of a {b} wall")
TEMPLATES = (
    "a {c} {s} {m} {bg}",
    "{bg_cap}, a {c} {s} {m}",
    "the {c} {s} is {m} {bg}",
    "a {s}, {c}, {m} {bg}",
)


def _held_out(colour: str, shape: str, motion: str) -> bool:
    c, s, m = list(COLOURS).index(colour), SHAPES.index(shape), MOTIONS.index(motion)
    return (c + 2 * s + 3 * m) % 8 == 0


#: Combinations never shown in training (24 of 192; every single value still appears in training).
HELD_OUT = frozenset(t for t in itertools.product(COLOURS, SHAPES, MOTIONS) if _held_out(*t))
ALL_COMBOS = tuple(itertools.product(COLOURS, SHAPES, MOTIONS))
TRAIN_COMBOS = tuple(t for t in ALL_COMBOS if t not in HELD_OUT)


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines one clip."""

    colour: str
    shape: str
    motion: str
    background: str
    size: float  # object size in pixels (its bounding-box side) at the start
    x: float  # centre at the start, pixels
    y: float
    travel: float  # pixels moved over the clip (translations) or scale change (growing/shrinking)


@dataclass(frozen=True)
class Sample:
    """A clip, its caption and its labels."""

    clip: np.ndarray  # (FRAMES, SIZE, SIZE, 3) uint8
    caption: str
    spec: ClipSpec


def canonical_caption(colour: str, shape: str, motion: str, background: str) -> str:
    """The plain caption: "a red circle moving left on a blue background"."""
    return _articles(f"a {colour} {shape} {motion} on a {background} background")


#: Where each motion starts (centre x, y) and the start size; every clip jitters these by a few pixels.
#: One canonical layout per motion keeps the world small enough to learn in about three CPU-hours:
#: with centres spread over the whole frame, the model spent its budget learning colours and drew
#: the object as scattered specks (it could not yet decide *where* the one object goes).
LAYOUT: dict[str, tuple[float, float, float]] = {
    "moving left": (46.0, 32.0, 18.0),
    "moving right": (18.0, 32.0, 18.0),
    "moving up": (32.0, 46.0, 18.0),
    "moving down": (32.0, 18.0, 18.0),
    "growing": (32.0, 32.0, 14.0),
    "shrinking": (32.0, 32.0, 33.0),
}
JITTER = 3.0  # pixels, uniform ± around the layout's centre
TRAVEL = 28.0  # pixels moved by the translations over the clip


def random_spec(rng: np.random.Generator, combo: tuple[str, str, str] | None = None) -> ClipSpec:
    """A random clip spec; ``combo`` fixes (colour, shape, motion)."""
    colour, shape, motion = combo or TRAIN_COMBOS[rng.integers(len(TRAIN_COMBOS))]
    background = str(rng.choice([c for c in COLOURS if c != colour]))
    x, y, size = LAYOUT[motion]
    x, y = x + float(rng.uniform(-JITTER, JITTER)), y + float(rng.uniform(-JITTER, JITTER))
    size *= float(rng.uniform(0.92, 1.08))
    travel = TRAVEL * float(rng.uniform(0.92, 1.08))
    return ClipSpec(colour, shape, motion, background, size, x, y, travel)


def random_caption(
    spec: ClipSpec, rng: np.random.Generator, colour_words: Mapping[str, tuple[str, ...]] = COLOUR_WORDS
) -> str:
    """A caption for ``spec`` in one of many wordings (``colour_words``: the words for each colour)."""
    c = str(rng.choice(colour_words[spec.colour]))
    s = str(rng.choice(SHAPE_WORDS[spec.shape]))
    m = str(rng.choice(MOTION_WORDS[spec.motion]))
    b = str(rng.choice(colour_words[spec.background]))
    bg = str(rng.choice(BACKGROUND_WORDS)).format(b=b)
    template = str(rng.choice(TEMPLATES))
    return _articles(template.format(c=c, s=s, m=m, bg=bg, bg_cap=bg[0].upper() + bg[1:]))


def _articles(text: str) -> str:
    """'a orange' → 'an orange'."""
    return re.sub(r"\b([Aa]) (?=[aeiou])", r"\1n ", text)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    points = []
    for k in range(10):  # star: alternate outer and inner radius
        a = -math.pi / 2 + k * math.pi / 5
        rr = r if k % 2 == 0 else r * 0.45
        points.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return points


def render_clip(spec: ClipSpec, colours: Mapping[str, tuple[int, int, int]] = COLOURS) -> np.ndarray:
    """The 16 frames of a spec, drawn at 4× and downsampled for smooth edges; ``colours`` names its RGB values."""
    scale = 4
    frames = np.empty((FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    fill = colours[spec.colour]
    for t in range(FRAMES):
        p = t / (FRAMES - 1)
        x, y, size = spec.x, spec.y, spec.size
        if spec.motion == "moving left":
            x -= spec.travel * p
        elif spec.motion == "moving right":
            x += spec.travel * p
        elif spec.motion == "moving up":
            y -= spec.travel * p
        elif spec.motion == "moving down":
            y += spec.travel * p
        elif spec.motion == "growing":
            size *= 1 + 1.2 * p
        elif spec.motion == "shrinking":
            size *= 1 - 0.6 * p
        img = Image.new("RGB", (SIZE * scale, SIZE * scale), colours[spec.background])
        draw = ImageDraw.Draw(img)
        cx, cy, r = x * scale, y * scale, size * scale / 2
        if spec.shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            draw.polygon(_polygon(spec.shape, cx, cy, r * (1.15 if spec.shape != "square" else 1)), fill=fill)
        frames[t] = np.asarray(img.resize((SIZE, SIZE), Image.Resampling.BOX))
    return frames


def sample(seed: int, index: int, *, combos: tuple[tuple[str, str, str], ...] | None = None) -> Sample:
    """Sample ``index`` of the data set ``seed``: the same pair always gives the same clip and caption."""
    rng = np.random.default_rng([seed, index])
    combo = combos[rng.integers(len(combos))] if combos else None
    spec = random_spec(rng, combo)
    return Sample(render_clip(spec), random_caption(spec, rng), spec)


def stream(seed: int, start: int = 0) -> Iterator[Sample]:
    """Training samples from ``start`` on, endlessly (only training combinations)."""
    for index in itertools.count(start):
        yield sample(seed, index)


def heldout_samples(seed: int, count: int) -> list[Sample]:
    """Clips of held-out combinations only (for the probe's and the model's evaluation)."""
    combos = tuple(sorted(HELD_OUT))
    return [sample(seed, i, combos=combos) for i in range(count)]


@dataclass(frozen=True)
class BrandColour:
    """A colour outside the shipped palette (a brand's), e.g. ``BrandColour("acme coral", (255, 111, 97))``.

    Its clips are drawn like any other (every shape and motion, over a shipped colour's background) but
    never join ``COLOURS``: the base model's data set and evaluation stay as they were.
    """

    name: str
    rgb: tuple[int, int, int]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z -]{0,38}[a-z]", self.name) or self.name in COLOURS:
            raise ValueError(f"a brand colour needs a new lowercase name of 2-40 letters, got {self.name!r}")
        if len(self.rgb) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in self.rgb):
            raise ValueError(f"rgb must be three integers 0-255, got {self.rgb!r}")

    @classmethod
    def from_hex(cls, name: str, value: str) -> BrandColour:
        """From ``"#FF6F61"``."""
        if not re.fullmatch(r"#?[0-9a-fA-F]{6}", value):
            raise ValueError(f"a colour is #RRGGBB, got {value!r}")
        digits = value.lstrip("#")
        r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
        return cls(name, (r, g, b))


def brand_samples(brand: BrandColour, seed: int, count: int) -> list[Sample]:
    """``count`` clips of objects in ``brand``'s colour, captioned with its name; a pure function of its arguments."""
    colours = {**COLOURS, brand.name: brand.rgb}
    words = {**COLOUR_WORDS, brand.name: (brand.name,)}
    samples = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        combo = (brand.name, SHAPES[rng.integers(len(SHAPES))], MOTIONS[rng.integers(len(MOTIONS))])
        x, y, size = LAYOUT[combo[2]]
        background = str(rng.choice(list(COLOURS)))
        spec = ClipSpec(
            *combo,
            background,
            size * float(rng.uniform(0.92, 1.08)),
            x + float(rng.uniform(-JITTER, JITTER)),
            y + float(rng.uniform(-JITTER, JITTER)),
            TRAVEL * float(rng.uniform(0.92, 1.08)),
        )
        samples.append(Sample(render_clip(spec, colours), random_caption(spec, rng, words), spec))
    return samples
