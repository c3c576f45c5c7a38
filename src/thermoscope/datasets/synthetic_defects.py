"""Synthetic hot and cold spots rendered onto real frames: a diffusing heat source, in °C.

A defect that dissipates (a shorted cell, a bad joint) or absorbs heat is modelled as an
instantaneous point source in a thin plate after heat has diffused for a while: the temperature
rise is the heat-equation kernel

    dT(x, y) = A * exp(-(u^2 / (2 sx^2) + v^2 / (2 sy^2)))

with ``sx^2 = 2 a t`` the spread of a plate of diffusivity ``a`` after time ``t`` (in pixels),
``sy = sx / elongation`` (heat spreads further along a cell string, trace or seal than across
it), ``(u, v)`` the position rotated by ``angle`` around the source, and ``A`` the peak rise
(negative for a cold spot). The spot is added to the temperatures (so the frame's own texture,
noise and gradients stay under it), never pasted, and its sub-pixel centre is random. Pixels
that were NaN stay NaN.

For 8-bit picture datasets the same model works in intensity units (the amplitude is then in
grey levels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from thermoscope.core import ThermalFrame
from thermoscope.datasets.versions import DatasetError

#: Share of the peak that bounds a spot's box and mask.
EDGE_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class SpotSettings:
    """Ranges the spots are drawn from (uniformly).

    Attributes:
        amplitude: peak temperature rise range in °C (intensity units on 8-bit pictures), > 0.
        sigma_px: diffusion spread ``sqrt(2 a t)`` range in pixels, > 0.
        elongation: ratio of the along-axis to the across-axis spread, >= 1.
        count: (fewest, most) spots per frame, >= 1.
        cold_share: probability that a spot is cold (a negative amplitude), [0, 1].
        margin: share of each side kept free of spot centres, [0, 0.5).
    """

    amplitude: tuple[float, float] = (1.0, 8.0)
    sigma_px: tuple[float, float] = (0.8, 3.0)
    elongation: tuple[float, float] = (1.0, 2.5)
    count: tuple[int, int] = (1, 2)
    cold_share: float = 0.0
    margin: float = 0.1

    def __post_init__(self) -> None:
        ranges = {"amplitude": 0.0, "sigma_px": 0.0, "elongation": 1.0}
        for name, least in ranges.items():
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and least <= lo <= hi) or hi <= 0:
                raise DatasetError(
                    f"spot settings: {name} must be a range >= {least}, got {(lo, hi)}"
                )
        if not 1 <= self.count[0] <= self.count[1]:
            raise DatasetError(f"spot settings: count must be a range >= 1, got {self.count}")
        if not 0.0 <= self.cold_share <= 1.0:
            raise DatasetError(
                f"spot settings: cold_share must be in [0, 1], got {self.cold_share}"
            )
        if not 0.0 <= self.margin < 0.5:
            raise DatasetError(f"spot settings: margin must be in [0, 0.5), got {self.margin}")


class Spot(NamedTuple):
    """One rendered spot: centre (px, origin top-left), peak rise (°C; negative: cold),
    spreads (px), axis angle (degrees counter-clockwise) and box ``(x0, y0, x1, y1)`` where the
    rise exceeds ``EDGE_SHARE`` of the peak (clipped to the frame)."""

    x: float
    y: float
    amplitude: float
    sigma_x: float
    sigma_y: float
    angle_deg: float
    box: tuple[int, int, int, int]


class Rendered(NamedTuple):
    """A frame with spots: the new temperatures (float32), the spots, and the mask of pixels
    where any spot's rise exceeds ``EDGE_SHARE`` of its peak."""

    frame: NDArray[np.float32]
    spots: tuple[Spot, ...]
    mask: NDArray[np.bool_]


def spot_field(
    shape: tuple[int, int],
    *,
    x: float,
    y: float,
    amplitude: float,
    sigma_x: float,
    sigma_y: float,
    angle_deg: float = 0.0,
) -> NDArray[np.float64]:
    """The temperature rise (H, W) of one diffused point source (see the module docstring)."""
    if sigma_x <= 0 or sigma_y <= 0:
        raise DatasetError(f"spot: spreads must be > 0 px, got {sigma_x}, {sigma_y}")
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dx, dy = cols + 0.5 - x, rows + 0.5 - y
    theta = math.radians(angle_deg)
    u = dx * math.cos(theta) - dy * math.sin(theta)
    v = dx * math.sin(theta) + dy * math.cos(theta)
    rise: NDArray[np.float64] = amplitude * np.exp(
        -(u**2 / (2 * sigma_x**2) + v**2 / (2 * sigma_y**2))
    )
    return rise


def render_spots(
    celsius: NDArray[np.floating], rng: np.random.Generator, settings: SpotSettings | None = None
) -> Rendered:
    """``celsius`` (H, W) with random diffused spots added; the input is not modified.

    Raises:
        DatasetError: the array is not 2-D.
    """
    s = settings or SpotSettings()
    base = np.asarray(celsius, dtype=np.float64)
    if base.ndim != 2:
        raise DatasetError(f"spots: frame must be 2-D (H, W), got shape {base.shape}")
    h, w = base.shape
    out = base.copy()
    mask = np.zeros((h, w), dtype=bool)
    spots: list[Spot] = []
    for _ in range(int(rng.integers(s.count[0], s.count[1] + 1))):
        x = float(rng.uniform(s.margin * w, (1 - s.margin) * w))
        y = float(rng.uniform(s.margin * h, (1 - s.margin) * h))
        amplitude = float(rng.uniform(*s.amplitude))
        if rng.random() < s.cold_share:
            amplitude = -amplitude
        sigma_x = float(rng.uniform(*s.sigma_px))
        sigma_y = sigma_x / float(rng.uniform(*s.elongation))
        angle = float(rng.uniform(0.0, 180.0))
        rise = spot_field(
            (h, w), x=x, y=y, amplitude=amplitude, sigma_x=sigma_x, sigma_y=sigma_y, angle_deg=angle
        )
        out += rise
        inside = np.abs(rise) >= EDGE_SHARE * abs(amplitude)
        mask |= inside
        ys, xs = np.nonzero(inside)
        box = (
            (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            if xs.size
            else (int(x), int(y), int(x) + 1, int(y) + 1)
        )
        spots.append(Spot(x, y, amplitude, sigma_x, sigma_y, angle, box))
    return Rendered(out.astype(np.float32), tuple(spots), mask)


def with_spots(
    frame: ThermalFrame, rng: np.random.Generator, settings: SpotSettings | None = None
) -> tuple[ThermalFrame, Rendered]:
    """A ``ThermalFrame`` with spots rendered onto its °C (raw counts dropped: they would no
    longer match the temperatures), and what was rendered."""
    rendered = render_spots(frame.celsius, rng, settings)
    return replace(frame, celsius=rendered.frame, raw=None), rendered
