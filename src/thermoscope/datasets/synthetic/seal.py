"""A heat-sealed tray seen right after the sealing jaws open, with a seal-gap defect.

The 12 px seam band around the tray is hot from the jaws and cools exponentially (τ 3 s), about
40 °C over ambient when inspected 2 s after sealing; the jaws' own heater profile makes it a few
per cent uneven along its length (a fixed pattern of the machine) and cooler at the corners.
The chilled product under the lid film reads about 8 °C below ambient. Defect:

- ``seal_gap``: a 6..24 px stretch of one side where the film did not fuse (a wrinkle, product
  in the seam): the jaws barely heated it, so it keeps only 0..35 % of the seam's excess.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from thermoscope.core import Box
from thermoscope.datasets.synthetic.model import (
    DefectSpec,
    Product,
    Source,
    UnitMap,
    blur,
    box_mask,
    grid,
    package_map,
    smooth_noise,
)

SIDES = ("seam_top", "seam_bottom", "seam_left", "seam_right")
#: Seam excess over ambient right after the jaws open (°C) and its cooling time constant (s).
SEAM_EXCESS_C = 78.0
SEAM_TAU_S = 3.0
#: Chilled product below ambient (°C).
PRODUCT_OFFSET_C = -8.0


class Seal(Product):
    """The ``seal`` product: a 128x92 px tray (at scale 1) with a 12 px seal seam."""

    name: ClassVar[str] = "seal"
    serial_prefix: ClassVar[str] = "SEAL"
    defect_kinds: ClassVar[tuple[str, ...]] = ("seal_gap",)
    cycle_s: ClassVar[float] = 1.5
    fps: ClassVar[float] = 10.0
    frames: ClassVar[int] = 16
    start_s: ClassVar[float] = 0.5

    def build(self, rng: np.random.Generator) -> None:
        """Tray, seam sides, product and bare ``conveyor`` (ambient); the jaw profile."""
        shape, s = self.shape, self.scale
        tray = self.box(16, 14, 128, 92)
        self.regions["tray"] = tray
        self.regions["seam_top"] = self.box(16, 14, 128, 12)
        self.regions["seam_bottom"] = self.box(16, 94, 128, 12)
        self.regions["seam_left"] = self.box(16, 26, 12, 68)
        self.regions["seam_right"] = self.box(132, 26, 12, 68)
        product = self.box(30, 28, 100, 64)
        self.regions["product"] = product
        self.regions["conveyor"] = self.box(2, 10, 8, 100)
        self.emissivity[box_mask(shape, tray)] = 0.93  # PET lid film

        inner = self.box(28, 26, 104, 68)
        ring = box_mask(shape, tray) & ~box_mask(shape, inner)
        xx, yy = grid(shape)
        # jaw corners run cooler: distance to the nearest corner of the tray, in seam widths
        corner = np.full(shape, np.inf, dtype=np.float32)
        for cx in (tray.x, tray.x + tray.width):
            for cy in (tray.y, tray.y + tray.height):
                corner = np.minimum(corner, np.hypot(xx - cx, yy - cy) / np.float32(12 * s))
        profile = (
            1.0
            + smooth_noise(shape, sigma_px=12.0 * s, rms=0.03, rng=rng)
            - np.float32(0.06) * np.exp(-corner)
        )
        self._seam = UnitMap.of(blur(np.where(ring, profile, 0.0), 0.7 * s))
        self._product = UnitMap.of(
            package_map(shape, product, dome=0.0, spread_px=1.0 * s, spread_share=0.5)
        )
        self.drift_targets = ("seal",)

    def nominal(self, rng: np.random.Generator) -> list[Source]:
        """Seam at the jaw temperature ±2 % (and dwell ±2 %), product 8 ± 0.8 °C below ambient."""
        excess = SEAM_EXCESS_C * rng.normal(1.0, 0.02) * rng.normal(1.0, 0.02)
        offset = PRODUCT_OFFSET_C * rng.normal(1.0, 0.1)
        return [
            Source("seam", self._seam, excess, SEAM_TAU_S, "cool"),
            Source("product", self._product, offset),
        ]

    def defect(
        self, kind: str, sources: list[Source], rng: np.random.Generator, where: str | None
    ) -> DefectSpec:
        """A stretch of one seam side, across the whole seam width, stays cool."""
        self.check_kind(kind)
        if where is None:
            where = str(rng.choice(SIDES))
        elif where not in SIDES:
            raise ValueError(f"no seam side {where!r}; sides are {', '.join(SIDES)}")
        s = self.scale
        side = self.regions[where]
        assert isinstance(side, Box)
        length = rng.uniform(6.0, 24.0) * s
        xx, yy = grid(self.shape)
        if where in ("seam_top", "seam_bottom"):
            start = rng.uniform(28 * s, 132 * s - length)
            along = xx
        else:
            start = rng.uniform(side.y + 2 * s, side.y + side.height - 2 * s - length)
            along = yy
        window = ((along >= start) & (along < start + length)).astype(np.float32)
        margin = 2 * s  # the seam's soft outer edges belong to the gap too
        grown = Box(
            side.x - margin, side.y - margin, side.width + 2 * margin, side.height + 2 * margin
        )
        window = blur(window, 0.8 * s) * box_mask(self.shape, grown)
        seam = sources[0]
        kept = rng.uniform(0.0, 0.35)
        gap = Source(
            kind,
            UnitMap.of(seam.unit.values * window),
            -(1.0 - kept) * seam.amplitude_c,
            SEAM_TAU_S,
            "cool",
        )
        return DefectSpec(kind, where, (gap,))

    def drift(self, target: str, delta_c: float) -> Source:
        """``seal``: the seam ``delta_c`` °C warmer at inspection (negative: a failing heater)."""
        self.check_target(target)
        amplitude = delta_c / math.exp(-float(self.times()[-1]) / SEAM_TAU_S)
        return Source(f"drift:{target}", self._seam, amplitude, SEAM_TAU_S, "cool")
