"""Colour palettes for thermograms: a few control points each, expanded to 256-entry RGB tables.

The control points are thermoscope's own. They follow the conventions thermographers know
(iron, rainbow, white-hot ...), so images look familiar, without copying any vendor's table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from thermoscope.render.errors import RenderError

#: An sRGB colour, each channel 0..255.
RGB = tuple[int, int, int]
#: A control point: position on the palette (0 = coldest, 1 = hottest) and its colour.
Stop = tuple[float, RGB]

#: Entries in every lookup table: one per 8-bit colour index.
LUT_SIZE = 256


def checked_rgb(color: Sequence[int], what: str) -> RGB:
    """``color`` as an RGB tuple of Python ints, or ``RenderError`` naming ``what``."""
    values = tuple(color)
    if len(values) != 3 or not all(isinstance(c, Integral) and 0 <= c <= 255 for c in values):
        raise RenderError(f"{what} must be three integers 0..255 (RGB), got {color!r}")
    return int(values[0]), int(values[1]), int(values[2])


@dataclass(frozen=True, slots=True)
class Palette:
    """A false-colour palette.

    Attributes:
        name: identifier used by ``render(palette=...)``.
        description: one line for users.
        stops: control points, positions strictly increasing from 0.0 to 1.0; colours in between
            are interpolated linearly in sRGB.
        nan_color: colour for pixels without a temperature, far from every palette colour
            (neutral grey for the colour palettes, muted magenta for the grey ones).
        lut: the (256, 3) uint8 RGB lookup table, index 0 = coldest; read-only.
    """

    name: str
    description: str
    stops: tuple[Stop, ...]
    nan_color: RGB = (128, 128, 128)
    lut: NDArray[np.uint8] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positions = np.array([p for p, _ in self.stops], dtype=np.float64)
        if (
            len(self.stops) < 2
            or positions[0] != 0.0
            or positions[-1] != 1.0
            or not np.all(np.diff(positions) > 0)
        ):
            raise RenderError(f"palette {self.name!r}: stops must rise strictly from 0.0 to 1.0")
        colors = np.array(
            [checked_rgb(c, f"palette {self.name!r} colour") for _, c in self.stops],
            dtype=np.float64,
        )
        x = np.linspace(0.0, 1.0, LUT_SIZE)
        lut = np.stack([np.interp(x, positions, colors[:, ch]) for ch in range(3)], axis=1)
        table = np.rint(lut).astype(np.uint8)
        table.setflags(write=False)
        object.__setattr__(self, "lut", table)


def _ramp(start: RGB, end: RGB) -> tuple[Stop, ...]:
    return ((0.0, start), (1.0, end))


_BLACK: RGB = (0, 0, 0)
_WHITE: RGB = (255, 255, 255)
#: NaN colour for the grey palettes, where a neutral grey would pass for a temperature.
_GREY_NAN: RGB = (190, 70, 190)

_ALL = (
    Palette(
        "iron",
        "black, deep blue and purple through red and orange to yellow and white",
        (
            (0.00, _BLACK),
            (0.10, (20, 0, 75)),
            (0.25, (95, 0, 150)),
            (0.40, (170, 20, 130)),
            (0.55, (220, 60, 40)),
            (0.70, (245, 130, 0)),
            (0.85, (255, 200, 30)),
            (0.95, (255, 240, 140)),
            (1.00, _WHITE),
        ),
    ),
    Palette(
        "rainbow",
        "dark blue, cyan, green, yellow, orange and red, ending in white",
        (
            (0.00, (10, 0, 40)),
            (0.12, (0, 0, 200)),
            (0.28, (0, 170, 230)),
            (0.42, (0, 200, 80)),
            (0.55, (120, 220, 0)),
            (0.66, (250, 240, 0)),
            (0.78, (255, 140, 0)),
            (0.90, (230, 20, 0)),
            (1.00, _WHITE),
        ),
    ),
    Palette(
        "rainbow-hc",
        "high-contrast rainbow: many narrow hue bands alternating in brightness",
        (
            (0.00, _BLACK),
            (0.07, (60, 0, 120)),
            (0.14, (0, 0, 255)),
            (0.21, (0, 120, 255)),
            (0.28, (0, 230, 255)),
            (0.35, (0, 140, 60)),
            (0.42, (0, 255, 0)),
            (0.50, (180, 255, 0)),
            (0.57, (255, 255, 0)),
            (0.64, (255, 170, 0)),
            (0.71, (255, 60, 0)),
            (0.78, (180, 0, 0)),
            (0.85, (255, 0, 160)),
            (0.92, (255, 140, 230)),
            (1.00, _WHITE),
        ),
    ),
    Palette("white-hot", "black (cold) to white (hot)", _ramp(_BLACK, _WHITE), _GREY_NAN),
    Palette("black-hot", "white (cold) to black (hot)", _ramp(_WHITE, _BLACK), _GREY_NAN),
    Palette(
        "lava",
        "black and dark violet through crimson and red to orange and yellow",
        (
            (0.00, _BLACK),
            (0.18, (30, 15, 60)),
            (0.35, (110, 10, 40)),
            (0.52, (200, 20, 10)),
            (0.68, (240, 90, 0)),
            (0.82, (255, 160, 0)),
            (0.93, (255, 225, 50)),
            (1.00, (255, 255, 190)),
        ),
    ),
    Palette(
        "arctic",
        "navy and blues for most of the range, a sand-gold hot end fading to white",
        (
            (0.00, (0, 0, 30)),
            (0.20, (10, 30, 110)),
            (0.40, (20, 80, 180)),
            (0.55, (50, 140, 225)),
            (0.68, (120, 190, 240)),
            (0.80, (215, 195, 150)),
            (0.90, (250, 205, 60)),
            (1.00, (255, 250, 225)),
        ),
    ),
    Palette(
        "grey", "linear greyscale, black (cold) to white (hot)", _ramp(_BLACK, _WHITE), _GREY_NAN
    ),
)

#: Every palette by name, in the order users see them.
PALETTES: Mapping[str, Palette] = MappingProxyType({p.name: p for p in _ALL})


def get_palette(name: str) -> Palette:
    """The palette called ``name``.

    Raises:
        RenderError: no such palette; the message lists the valid names.
    """
    try:
        return PALETTES[name]
    except KeyError:
        valid = ", ".join(PALETTES)
        raise RenderError(f"unknown palette {name!r}; valid palettes: {valid}") from None


def palette_lut(name: str) -> NDArray[np.uint8]:
    """The read-only (256, 3) uint8 RGB lookup table of palette ``name`` (index 0 = coldest).

    Raises:
        RenderError: no such palette; the message lists the valid names.
    """
    return get_palette(name).lut
