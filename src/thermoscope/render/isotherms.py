"""Isotherms: temperature bands painted in one solid colour over a thermogram."""

from __future__ import annotations

import math
from dataclasses import dataclass

from thermoscope.render.errors import RenderError
from thermoscope.render.palettes import RGB, checked_rgb


@dataclass(frozen=True, slots=True)
class Isotherm:
    """Pixels with a temperature in [``lo_c``, ``hi_c``] °C, painted ``color``.

    ``Isotherm(60.0)`` marks everything at or above 60 °C; ``Isotherm(-math.inf, 0.0, ...)``
    marks everything at or below 0 °C.

    Attributes:
        lo_c: lower bound in °C, inclusive (may be ``-inf``).
        hi_c: upper bound in °C, inclusive (may be ``inf``).
        color: sRGB colour, each channel 0..255.
    """

    lo_c: float
    hi_c: float = math.inf
    color: RGB = (0, 255, 0)

    def __post_init__(self) -> None:
        if math.isnan(self.lo_c) or math.isnan(self.hi_c) or self.lo_c > self.hi_c:
            raise RenderError(f"isotherm needs lo_c <= hi_c (°C), got [{self.lo_c}, {self.hi_c}]")
        object.__setattr__(self, "color", checked_rgb(self.color, "isotherm colour"))
