"""The template backend's input: a JSON spec of scenes and layers.

Positions and sizes are fractions of the frame (0–1), so one spec renders at
any resolution.  Text may hold ``{variables}`` filled from ``variables``.

A spec is small but the work it asks for is not: variables multiply text and
scenes multiply layers.  The bounds below (text after filling, variables, layers
in all) keep what one request can make a worker render proportionate to its size.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: Most characters of a text layer, before and after its {variables} are filled in.
MAX_TEXT_CHARS = 2000
#: Most variables a spec may define, and the longest name and value of each.
MAX_VARIABLES = 64
MAX_VARIABLE_NAME_CHARS = 64
MAX_VARIABLE_CHARS = 2000
#: Most scenes, layers in one scene, and layers in all scenes together.
MAX_SCENES = 100
MAX_SCENE_LAYERS = 64
MAX_LAYERS = 256

Fraction = Annotated[float, Field(ge=-1.0, le=2.0)]


def _check_colour(value: str) -> str:
    if not _HEX.match(value):
        raise ValueError(f"colour must be #rgb or #rrggbb, got {value!r}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Background(_Strict):
    """A solid colour, or a linear gradient from ``color`` to ``color_to``."""

    color: str = Field("#101820", description="Background colour, #rrggbb. Default #101820.")
    color_to: str | None = Field(
        None, description="If set, a linear gradient from `color` to this colour. Default none."
    )
    angle: float = Field(
        90.0, description="Gradient direction in degrees (0 = left→right, 90 = top→bottom). Default 90."
    )

    _c = field_validator("color")(_check_colour)

    @field_validator("color_to")
    @classmethod
    def _c_to(cls, value: str | None) -> str | None:
        return None if value is None else _check_colour(value)


class Timing(_Strict):
    """When a layer is on screen within its scene, and how it enters and leaves."""

    start_s: float = Field(0.0, ge=0, description="Seconds into the scene when the layer appears. Default 0.")
    end_s: float | None = Field(
        None, gt=0, description="Seconds into the scene when it disappears. Default: scene end."
    )
    fade_in_s: float = Field(0.0, ge=0, description="Fade-in length in seconds. Default 0.")
    fade_out_s: float = Field(0.0, ge=0, description="Fade-out length in seconds. Default 0.")


class TextLayer(Timing):
    """A line (or lines) of text; ``{name}`` is replaced from the spec's variables."""

    type: Literal["text"] = "text"
    text: str = Field(
        ...,
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description=f"Text; may contain {{variables}}. At most {MAX_TEXT_CHARS} characters, also once they are "
        "filled in.",
    )
    x: Fraction = Field(0.5, description="Horizontal centre, fraction of width. Default 0.5.")
    y: Fraction = Field(0.5, description="Vertical centre, fraction of height. Default 0.5.")
    size: float = Field(0.08, gt=0, le=1, description="Font size as a fraction of frame height. Default 0.08.")
    color: str = Field("#ffffff", description="Text colour. Default #ffffff.")
    motion: Literal["none", "slide_up", "slide_left", "zoom"] = Field(
        "none", description="Entrance motion over the fade-in (or 0.5 s). Default none."
    )

    _c = field_validator("color")(_check_colour)


class ShapeLayer(Timing):
    """A filled shape that may move from (x, y) to (to_x, to_y) and scale over its time."""

    type: Literal["shape"] = "shape"
    shape: Literal["rect", "circle", "triangle"] = Field("rect", description="Shape kind. Default rect.")
    color: str = Field("#e63946", description="Fill colour. Default #e63946.")
    x: Fraction = Field(0.5, description="Centre x at the start. Default 0.5.")
    y: Fraction = Field(0.5, description="Centre y at the start. Default 0.5.")
    w: float = Field(0.2, gt=0, le=3, description="Width, fraction of frame width. Default 0.2.")
    h: float = Field(0.2, gt=0, le=3, description="Height, fraction of frame height. Default 0.2.")
    to_x: Fraction | None = Field(None, description="Centre x at the end. Default: no motion.")
    to_y: Fraction | None = Field(None, description="Centre y at the end. Default: no motion.")
    scale_to: float = Field(1.0, gt=0, le=10, description="Scale factor reached at the end. Default 1.")

    _c = field_validator("color")(_check_colour)


class ImageLayer(Timing):
    """An input image that pans and zooms (Ken Burns) across its time on screen."""

    type: Literal["image"] = "image"
    input: int = Field(0, ge=0, description="Index into the request's `inputs` (asset ids). Default 0.")
    zoom_from: float = Field(1.0, ge=1, le=8, description="Zoom at the start (1 = image fills the frame). Default 1.")
    zoom_to: float = Field(1.2, ge=1, le=8, description="Zoom at the end. Default 1.2.")
    pan_from: tuple[float, float] = Field(
        (0.5, 0.5), description="Focus point (x, y) at the start, fractions. Default centre."
    )
    pan_to: tuple[float, float] = Field((0.5, 0.5), description="Focus point at the end. Default centre.")


Layer = Annotated[TextLayer | ShapeLayer | ImageLayer, Field(discriminator="type")]


class Scene(_Strict):
    """A stretch of the video with one background and a stack of layers (first drawn first)."""

    duration_s: float = Field(3.0, gt=0, le=600, description="Scene length in seconds. Default 3.")
    background: Background = Field(default_factory=Background, description="Default: solid #101820.")
    layers: list[Layer] = Field(
        default_factory=list,
        max_length=MAX_SCENE_LAYERS,
        description=f"Layers, bottom first; at most {MAX_LAYERS} in all scenes together. Default none.",
    )
    fade_in_s: float = Field(0.0, ge=0, description="Fade from black at the start. Default 0.")
    fade_out_s: float = Field(0.0, ge=0, description="Fade to black at the end. Default 0.")


def filled_length(text: str, variables: dict[str, str]) -> int:
    """Length of ``text`` once its ``{variables}`` are filled in, found without building it."""
    return len(text) + sum(len(variables.get(m[1], m[0])) - len(m[0]) for m in VARIABLE.finditer(text))


def fill(text: str, variables: dict[str, str]) -> str:
    """``text`` with every ``{name}`` replaced by its value (values are inserted as they are, not filled again)."""
    return VARIABLE.sub(lambda m: variables[m[1]], text)


VariableName = Annotated[str, Field(max_length=MAX_VARIABLE_NAME_CHARS)]
VariableValue = Annotated[str, Field(max_length=MAX_VARIABLE_CHARS)]


class TemplateSpec(_Strict):
    """A motion-graphics template: scenes played one after another."""

    variables: dict[VariableName, VariableValue] = Field(
        default_factory=dict,
        max_length=MAX_VARIABLES,
        description=f"Values for {{name}} placeholders in text layers: at most {MAX_VARIABLES}, each at most "
        f"{MAX_VARIABLE_CHARS} characters. Default none.",
    )
    scenes: list[Scene] = Field(..., min_length=1, max_length=MAX_SCENES, description="At least one scene.")

    @model_validator(mode="after")
    def _check(self) -> TemplateSpec:
        problem = self.problem()
        if problem is not None:
            raise ValueError(problem)
        return self

    def problem(self) -> str | None:
        """What makes this spec unrenderable or too big to render (naming the field), or None.

        The model validator runs it, and the renderer again: a spec built or changed in code skips validation.
        """
        layers = sum(len(scene.layers) for scene in self.scenes)
        if layers > MAX_LAYERS:
            return f"scenes hold {layers} layers in all; at most {MAX_LAYERS}"
        for i, scene in enumerate(self.scenes):
            for j, layer in enumerate(scene.layers):
                if not isinstance(layer, TextLayer):
                    continue
                for name in VARIABLE.findall(layer.text):
                    if name not in self.variables:
                        return f"scenes[{i}].layers[{j}].text uses {{{name}}} but variables has no {name!r}"
                # Variables multiply text ("{a}{a}{a}…"): the renderer's work follows the filled-in length.
                length = filled_length(layer.text, self.variables)
                if length > MAX_TEXT_CHARS:
                    return (
                        f"scenes[{i}].layers[{j}].text is {length:,} characters after {{variables}} are filled in; "
                        f"at most {MAX_TEXT_CHARS}"
                    )
        return None

    @property
    def duration_s(self) -> float:
        """Total length of all scenes."""
        return sum(scene.duration_s for scene in self.scenes)
