"""A battery module of 2x6 prismatic cells on a 60 s load test, with a hot-cell defect.

Each cell warms by Joule heating (first-order, τ 200 s, so nearly linear over the test), about
9 °C after 60 s; cells differ by their internal resistance (±2 %), the module's test current
varies (±3 %, heat goes with its square), and the coolant plate, fed from the left, leaves the
right-hand cells up to 7 % warmer. Nickel busbars across the cell terminals warm by their own
resistance but, at emissivity 0.3, read colder than they are. Defect:

- ``hot_cell``: a cell with a raised internal resistance (or a soft internal short) heats
  35..100 % more than it should.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from thermoscope.datasets.synthetic.model import (
    DefectSpec,
    Product,
    Source,
    UnitMap,
    box_mask,
    package_map,
)

ROWS = ("A", "B")
COLUMNS = 6
#: Steady rise of a cell over ambient at the test current (°C) and its time constant (s).
CELL_RISE_C = 35.0
CELL_TAU_S = 200.0
#: Busbar steady rise (°C) and time constant (s).
BUSBAR_RISE_C = 6.0
BUSBAR_TAU_S = 40.0


class Battery(Product):
    """The ``battery`` product: a module of cells ``A1..A6`` (top row) and ``B1..B6``."""

    name: ClassVar[str] = "battery"
    serial_prefix: ClassVar[str] = "BAT"
    defect_kinds: ClassVar[tuple[str, ...]] = ("hot_cell",)
    cycle_s: ClassVar[float] = 30.0
    fps: ClassVar[float] = 0.5
    frames: ClassVar[int] = 31

    def build(self, rng: np.random.Generator) -> None:
        """Housing, cells, busbars and bare ``conveyor`` (ambient)."""
        shape, s = self.shape, self.scale
        housing = self.box(10, 12, 140, 96)
        self.regions["module"] = housing
        self.emissivity[box_mask(shape, housing)] = 0.92  # plastic frame
        self._maps: dict[str, UnitMap] = {}
        self.cells: list[str] = []
        for r, row in enumerate(ROWS):
            for col in range(COLUMNS):
                name = f"{row}{col + 1}"
                box = self.box(17 + 22 * col, 18 + 44 * r, 18, 38)
                self.cells.append(name)
                self.regions[name] = box
                self.emissivity[box_mask(shape, box)] = 0.95  # cell wrap
                self._maps[name] = UnitMap.of(
                    package_map(shape, box, dome=0.25, spread_px=1.5 * s, spread_share=0.5)
                )
        busbars = np.zeros(shape, dtype=np.float32)
        for row, y in zip(ROWS, (19, 95), strict=True):
            bar = self.box(17, y, 128, 4)
            self.regions[f"busbar_{row}"] = bar
            self.emissivity[box_mask(shape, bar)] = 0.3  # nickel
            busbars = np.maximum(
                busbars, package_map(shape, bar, dome=0.0, spread_px=1.0 * s, spread_share=0.5)
            )
        self._maps["busbar"] = UnitMap.of(busbars)
        self.regions["conveyor"] = self.box(10, 1, 140, 5)
        self.drift_targets = ("cooling", "busbar")

    def nominal(self, rng: np.random.Generator) -> list[Source]:
        """Cells with resistance spread, the test current's spread and the coolant gradient."""
        current = rng.normal(1.0, 0.03)
        sources = []
        for name in self.cells:
            column = int(name[1:]) - 1
            coolant = 1.0 + 0.028 * (column - 2.5)
            rise = CELL_RISE_C * current**2 * coolant * rng.normal(1.0, 0.02)
            sources.append(Source(name, self._maps[name], rise, CELL_TAU_S, "heat"))
        sources.append(
            Source("busbar", self._maps["busbar"], BUSBAR_RISE_C * current**2, BUSBAR_TAU_S, "heat")
        )
        return sources

    def defect(
        self, kind: str, sources: list[Source], rng: np.random.Generator, where: str | None
    ) -> DefectSpec:
        """One cell heats 35..100 % more than it should."""
        self.check_kind(kind)
        if where is None:
            where = str(rng.choice(self.cells))
        elif where not in self.cells:
            raise ValueError(f"no cell {where!r}; cells are {', '.join(self.cells)}")
        own = next(src for src in sources if src.name == where)
        excess = rng.uniform(0.35, 1.0) * own.amplitude_c
        return DefectSpec(kind, where, (Source(kind, own.unit, excess, own.tau_s, "heat"),))

    def drift(self, target: str, delta_c: float) -> Source:
        """``cooling``: every cell ``delta_c`` °C warmer (a failing coolant pump);
        ``busbar``: the busbars warmer (weld electrodes wearing, welds of rising resistance)."""
        self.check_target(target)
        t_end = float(self.times()[-1])
        if target == "busbar":
            amplitude = delta_c / (1.0 - math.exp(-t_end / BUSBAR_TAU_S))
            return Source(f"drift:{target}", self._maps["busbar"], amplitude, BUSBAR_TAU_S, "heat")
        cells = UnitMap.of(np.maximum.reduce([self._maps[name].values for name in self.cells]))
        amplitude = delta_c / (1.0 - math.exp(-t_end / CELL_TAU_S))
        return Source(f"drift:{target}", cells, amplitude, CELL_TAU_S, "heat")
