"""The ``hard`` sealed tray: an uneven jaw, heat spreading into the film, hairline seal gaps.

Same tray, seam and region geometry as ``seal`` (so its recipe applies), but:

- **Heat spreading.** The seam's heat spreads into the lid film on both sides (a Gaussian of
  1.5 px at scale 1: the film is thin and uniform, so diffusion is isotropic there), so the
  seam's edges are soft and a narrow gap is partly filled in by its hot surroundings.
- **More variation.** The jaw heater's profile along the seam is twice as uneven (6 % rms), jaw
  temperature and dwell vary ±3 % each, the chilled product ±15 %, and its surface is patchy
  (condensation, the product's shape under the film: 0.8 °C rms, different on every tray).
- **Subtle defects.** ``seal_gap``: either a hairline channel across the seam, 0.8..2 px wide
  (0.4..1 mm), where the film did not fuse (it keeps 20..60 % of the seam's heat), or a weakly
  fused stretch of 8..30 px that keeps 75..90 % of it; both with smooth edges.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from thermoscope.core import Box
from thermoscope.datasets.synthetic.model import (
    DefectSpec,
    Source,
    UnitMap,
    blur,
    box_mask,
    grid,
    smooth_noise,
)
from thermoscope.datasets.synthetic.seal import (
    PRODUCT_OFFSET_C,
    SEAM_EXCESS_C,
    SEAM_TAU_S,
    SIDES,
    Seal,
)

#: Spreading of the seam's heat into the film (Gaussian standard deviation, px at scale 1).
FILM_SPREAD_PX = 1.5


class HardSeal(Seal):
    """The ``seal`` product at the ``hard`` difficulty (see the module's docstring)."""

    name: ClassVar[str] = "seal"

    def build(self, rng: np.random.Generator) -> None:
        """The ``seal`` layout; a more uneven jaw whose heat spreads into the film."""
        super().build(rng)
        s = self.scale
        uneven = 1.0 + smooth_noise(self.shape, sigma_px=10.0 * s, rms=0.05, rng=rng)
        self._seam = UnitMap.of(blur(self._seam.values * uneven, FILM_SPREAD_PX * s))

    def nominal(self, rng: np.random.Generator) -> list[Source]:
        """Seam ±3 % (jaw) ±3 % (dwell), product 8 °C ±15 % below ambient with patchy surface."""
        excess = SEAM_EXCESS_C * rng.normal(1.0, 0.03) * rng.normal(1.0, 0.03)
        offset = PRODUCT_OFFSET_C * rng.normal(1.0, 0.15)
        patches = smooth_noise(self.shape, sigma_px=6.0 * self.scale, rms=1.0, rng=rng)
        surface = UnitMap.of(patches * self._product.values)
        return [
            Source("seam", self._seam, excess, SEAM_TAU_S, "cool"),
            Source("product", self._product, offset),
            Source("surface", surface, 0.8),
        ]

    def defect(
        self, kind: str, sources: list[Source], rng: np.random.Generator, where: str | None
    ) -> DefectSpec:
        """A hairline channel across the seam, or a weakly fused stretch along it."""
        self.check_kind(kind)
        if where is None:
            where = str(rng.choice(SIDES))
        elif where not in SIDES:
            raise ValueError(f"no seam side {where!r}; sides are {', '.join(SIDES)}")
        s = self.scale
        side = self.regions[where]
        assert isinstance(side, Box)
        xx, yy = grid(self.shape)
        horizontal = where in ("seam_top", "seam_bottom")
        along = xx if horizontal else yy
        low, high = (
            (28 * s, 132 * s) if horizontal else (side.y + 2 * s, side.y + side.height - 2 * s)
        )
        if rng.random() < 0.6:  # hairline channel: a Gaussian cross-section across the seam
            width = rng.uniform(0.8, 2.0) * s
            centre = rng.uniform(low + 2 * width, high - 2 * width)
            profile = np.exp(-0.5 * ((along - np.float32(centre)) / np.float32(width / 2)) ** 2)
            kept = rng.uniform(0.2, 0.6)
        else:  # weakly fused stretch, soft ends
            length = rng.uniform(8.0, 30.0) * s
            start = rng.uniform(low, high - length)
            window = ((along >= start) & (along < start + length)).astype(np.float32)
            profile = blur(window, 1.5 * s)
            kept = rng.uniform(0.75, 0.9)
        margin = 3 * s
        grown = Box(
            side.x - margin, side.y - margin, side.width + 2 * margin, side.height + 2 * margin
        )
        seam = sources[0]
        window = blur(profile.astype(np.float32) * box_mask(self.shape, grown), 0.5 * s)
        gap = Source(
            kind,
            UnitMap.of(seam.unit.values * window),
            -(1.0 - kept) * seam.amplitude_c,
            SEAM_TAU_S,
            "cool",
        )
        return DefectSpec(kind, where, (gap,))
