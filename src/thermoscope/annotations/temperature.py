"""Temperature statistics of a shape on a radiometric frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from thermoscope.annotations.shapes import Shape
from thermoscope.core.frame import ThermalFrame


@dataclass(frozen=True, slots=True)
class TemperatureStats:
    """Max / mean / min temperature in °C over ``pixels`` finite pixels (NaN when none)."""

    max_c: float
    mean_c: float
    min_c: float
    pixels: int


def shape_temperatures(frame: ThermalFrame, shape: Shape) -> TemperatureStats:
    """Statistics of the frame's °C over the pixels of ``shape.to_mask`` (NaN pixels left out)."""
    values = frame.celsius[shape.to_mask(frame.shape)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return TemperatureStats(math.nan, math.nan, math.nan, 0)
    return TemperatureStats(
        float(values.max()),
        float(values.astype(np.float64).mean()),
        float(values.min()),
        int(values.size),
    )
