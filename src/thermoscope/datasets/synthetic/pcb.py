"""A printed circuit board inspected after power-on, with hot-spot and cold-solder-joint defects.

Each component is a heat source with its own steady rise over ambient and time constant
(first-order heating), warmest over the die and spreading into the board; the board as a whole
warms slowly. Bare copper fiducials (emissivity 0.3) read colder than they are, as they do on a
real board. Defects:

- ``hot_spot``: a component dissipating 1.4..2 times its power (at least 8..20 °C more over its
  footprint) or a local short (a small spot +12..30 °C somewhere on a component);
- ``cold_joint``: a poorly soldered component gets a fraction (15..55 %) of its power and stays
  cooler than its siblings.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import numpy as np

from thermoscope.core import Box
from thermoscope.datasets.synthetic.model import (
    DefectSpec,
    Product,
    Source,
    UnitMap,
    box_mask,
    gaussian_map,
    package_map,
)


class Component(NamedTuple):
    """A component: footprint (160x120 units), steady rise over ambient (°C), τ (s), emissivity."""

    name: str
    x: float
    y: float
    width: float
    height: float
    rise_c: float
    tau_s: float
    emissivity: float = 0.95


COMPONENTS = (
    Component("U1", 26, 24, 28, 24, 36.0, 6.0),  # processor
    Component("U2", 72, 24, 16, 14, 20.0, 4.0),  # voltage regulator
    Component("Q1", 110, 24, 12, 12, 28.0, 3.0),  # half-bridge MOSFET, high side
    Component("Q2", 110, 70, 12, 12, 28.0, 3.0),  # half-bridge MOSFET, low side
    Component("L1", 72, 64, 16, 16, 16.0, 8.0, 0.93),  # ferrite power inductor
    Component("R7", 30, 76, 10, 6, 14.0, 2.0),  # shunt resistor
    Component("C3", 50, 82, 10, 10, 3.0, 12.0),  # electrolytic capacitor (stays cool)
)
#: Components that draw enough power for a cold joint to show (the capacitor barely warms).
POWERED = tuple(c.name for c in COMPONENTS if c.rise_c >= 10.0)


class Pcb(Product):
    """The ``pcb`` product: a 128x92 px board (at scale 1) on a conveyor, 7 components."""

    name: ClassVar[str] = "pcb"
    serial_prefix: ClassVar[str] = "PCB"
    defect_kinds: ClassVar[tuple[str, ...]] = ("hot_spot", "cold_joint")
    cycle_s: ClassVar[float] = 20.0
    fps: ClassVar[float] = 1.0
    frames: ClassVar[int] = 20

    def build(self, rng: np.random.Generator) -> None:
        """Board, components, fiducials and bare ``conveyor`` (ambient)."""
        shape, s = self.shape, self.scale
        board = self.box(16, 14, 128, 92)
        self.regions["board"] = board
        self.emissivity[box_mask(shape, board)] = 0.92  # solder mask
        self._maps: dict[str, UnitMap] = {}
        for c in COMPONENTS:
            box = self.box(c.x, c.y, c.width, c.height)
            self.regions[c.name] = box
            self.emissivity[box_mask(shape, box)] = c.emissivity
            self._maps[c.name] = UnitMap.of(
                package_map(shape, box, dome=0.15, spread_px=2.5 * s, spread_share=0.85)
            )
        self._maps["board"] = UnitMap.of(
            package_map(shape, board, dome=0.3, spread_px=1.0, spread_share=0.5)
        )
        for name, x, y in (("FID1", 20, 18), ("FID2", 137, 99)):
            fiducial = self.box(x, y, 3, 3)
            self.regions[name] = fiducial
            self.emissivity[box_mask(shape, fiducial)] = 0.3  # bare copper
        self.regions["conveyor"] = self.box(2, 10, 8, 100)
        self.drift_targets = tuple(c.name for c in COMPONENTS)

    def nominal(self, rng: np.random.Generator) -> list[Source]:
        """Components at their rise ±4 % (tolerances), all ±2 % (supply voltage), board +3 °C."""
        supply = rng.normal(1.0, 0.02)
        sources = [
            Source(
                c.name,
                self._maps[c.name],
                c.rise_c * supply * rng.normal(1.0, 0.04),
                c.tau_s,
                "heat",
            )
            for c in COMPONENTS
        ]
        sources.append(Source("board", self._maps["board"], 3.0 * supply, 15.0, "heat"))
        return sources

    def defect(
        self, kind: str, sources: list[Source], rng: np.random.Generator, where: str | None
    ) -> DefectSpec:
        """A hot spot (overheating component or local short) or a cold solder joint."""
        self.check_kind(kind)
        choices = tuple(c.name for c in COMPONENTS) if kind == "hot_spot" else POWERED
        if where is None:
            where = str(rng.choice(choices))
        elif where not in choices:
            raise ValueError(f"no {kind} on {where!r}; choose from {', '.join(choices)}")
        own = next(src for src in sources if src.name == where)
        if kind == "cold_joint":
            kept = rng.uniform(0.15, 0.55)
            extra = Source(kind, own.unit, -(1.0 - kept) * own.amplitude_c, own.tau_s, "heat")
            return DefectSpec(kind, where, (extra,))
        if rng.random() < 0.5:  # the whole component dissipates 1.4..2 times its power
            rise = max(rng.uniform(0.4, 1.0) * own.amplitude_c, rng.uniform(8.0, 20.0))
            extra = Source(kind, own.unit, rise, own.tau_s, "heat")
            return DefectSpec(kind, where, (extra,))
        box = self.regions[where]
        assert isinstance(box, Box)
        x = rng.uniform(box.x + 1, box.x + box.width - 1)
        y = rng.uniform(box.y + 1, box.y + box.height - 1)
        spot = UnitMap.of(gaussian_map(self.shape, x, y, rng.uniform(1.0, 1.8) * self.scale))
        return DefectSpec(kind, where, (Source(kind, spot, rng.uniform(12.0, 30.0), 1.5, "heat"),))

    def drift(self, target: str, delta_c: float) -> Source:
        """Component ``target`` runs ``delta_c`` °C hotter (e.g. a heat sink losing contact)."""
        self.check_target(target)
        c = next(c for c in COMPONENTS if c.name == target)
        t_end = float(self.times()[-1])
        amplitude = delta_c / (1.0 - math.exp(-t_end / c.tau_s))
        return Source(f"drift:{target}", self._maps[target], amplitude, c.tau_s, "heat")
