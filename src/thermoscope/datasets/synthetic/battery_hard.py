"""The ``hard`` battery module: heat shared through busbars and housing, shiny welds, subtle cells.

Same module, cells and region geometry as ``battery`` (so its recipe applies), but:

- **Heat spreading.** Each cell's rise is the steady-state conduction solution (``heat``) on a
  conductance map: aluminium cans, nickel busbars that tie the cells together, a plastic frame
  and air gaps between the cells that barely conduct. A warm cell warms its neighbours a little.
- **Materials.** Laser welds on the busbars (emissivity 0.15) are shinier still than the nickel
  (0.3): they read mostly what they reflect.
- **More variation.** Cell resistance ±3 %, test current ±3 %, and a coolant plate whose
  left-to-right gradient (2.8 ± 1 % per column) and top-to-bottom imbalance (±1.5 %) change
  from module to module.
- **Subtle defects.** ``hot_cell``: either a cell with a slightly raised internal resistance
  (heats 18..40 % more: 1.5..3.6 °C at the end of the test) or a soft internal short, a small
  heat source inside a cell (2..6 °C apparent at its peak) spreading through the can.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from thermoscope.core import Box
from thermoscope.datasets.synthetic.battery import (
    BUSBAR_RISE_C,
    BUSBAR_TAU_S,
    CELL_RISE_C,
    CELL_TAU_S,
    COLUMNS,
    ROWS,
    Battery,
)
from thermoscope.datasets.synthetic.heat import unit_maps, upsample
from thermoscope.datasets.synthetic.model import (
    DefectSpec,
    FloatMap,
    Source,
    UnitMap,
    apparent_peak,
    box_mask,
    gaussian_map,
)

#: Relative in-plane conductances (per pixel at scale 1) and losses.
K_CELL, K_BUSBAR, K_FRAME, K_OFF_MODULE = 8.0, 60.0, 0.3, 0.05
H_MODULE, H_OFF_MODULE = 0.05, 3.0
#: Laser welds where the busbars meet the cell terminals.
WELD_EMISSIVITY = 0.15


def _box(x: float, y: float, width: float, height: float, scale: int) -> Box:
    return Box(round(x * scale), round(y * scale), round(width * scale), round(height * scale))


@functools.lru_cache(maxsize=1)
def _thermal() -> tuple[FloatMap, FloatMap, FloatMap]:
    """Conductance, loss and the cell unit maps (12, H, W) at scale 1 (read-only, cached)."""
    scale = 1
    shape = (120, 160)
    module = box_mask(shape, _box(10, 12, 140, 96, scale))
    conductance = np.where(module, K_FRAME, K_OFF_MODULE).astype(np.float32)
    heat = np.zeros((len(ROWS) * COLUMNS, *shape), dtype=np.float32)
    for r in range(len(ROWS)):
        for col in range(COLUMNS):
            cell = box_mask(shape, _box(17 + 22 * col, 18 + 44 * r, 18, 38, scale))
            conductance[cell] = K_CELL
            heat[r * COLUMNS + col][cell] = 1.0
    for y in (19, 95):
        conductance[box_mask(shape, _box(17, y, 128, 4, scale))] = K_BUSBAR
    loss = np.where(module, H_MODULE, H_OFF_MODULE).astype(np.float32)
    maps = unit_maps(conductance, loss, heat)
    for array in (conductance, loss, maps):
        array.setflags(write=False)
    return conductance, loss, maps


class HardBattery(Battery):
    """The ``battery`` product at the ``hard`` difficulty (see the module's docstring)."""

    name: ClassVar[str] = "battery"

    def build(self, rng: np.random.Generator) -> None:
        """The ``battery`` layout, then welds and the conduction unit maps."""
        super().build(rng)
        s = self.scale
        self._conductance, self._loss, maps = _thermal()
        for name, values in zip(self.cells, upsample(maps, s), strict=True):
            self._maps[name] = UnitMap.of(values)
        for col in range(COLUMNS):
            for y in (19, 95):
                for dx in (4.0, 12.0):
                    weld = _box(17 + 22 * col + dx, y + 1.0, 2.0, 2.0, s)
                    self.emissivity[box_mask(self.shape, weld)] = WELD_EMISSIVITY

    def nominal(self, rng: np.random.Generator) -> list[Source]:
        """Cells with resistance spread ±3 %, current ±3 %, a coolant plate that varies."""
        current = rng.normal(1.0, 0.03)
        slope = rng.normal(0.028, 0.01)
        tilt = rng.normal(0.0, 0.015)
        sources = []
        for name in self.cells:
            column = int(name[1:]) - 1
            coolant = (1.0 + slope * (column - 2.5)) * (1.0 + (tilt if name[0] == "A" else -tilt))
            rise = CELL_RISE_C * current**2 * coolant * rng.normal(1.0, 0.03)
            sources.append(Source(name, self._maps[name], rise, CELL_TAU_S, "heat"))
        sources.append(
            Source("busbar", self._maps["busbar"], BUSBAR_RISE_C * current**2, BUSBAR_TAU_S, "heat")
        )
        return sources

    def defect(
        self, kind: str, sources: list[Source], rng: np.random.Generator, where: str | None
    ) -> DefectSpec:
        """A cell heating 18..40 % more, or a soft internal short (a small 2..6 °C spot)."""
        self.check_kind(kind)
        if where is None:
            where = str(rng.choice(self.cells))
        elif where not in self.cells:
            raise ValueError(f"no cell {where!r}; cells are {', '.join(self.cells)}")
        own = next(src for src in sources if src.name == where)
        if rng.random() < 0.5:
            excess = rng.uniform(0.18, 0.4) * own.amplitude_c
            return DefectSpec(kind, where, (Source(kind, own.unit, excess, own.tau_s, "heat"),))
        box = self.regions[where]
        assert isinstance(box, Box)
        x = rng.uniform(box.x + 3 * self.scale, box.x + box.width - 3 * self.scale)
        y = rng.uniform(box.y + 6 * self.scale, box.y + box.height - 6 * self.scale)
        s = self.scale
        heat = gaussian_map(self._conductance.shape, x / s, y / s, rng.uniform(1.0, 2.0))
        spot = UnitMap.of(upsample(unit_maps(self._conductance, self._loss, heat), s))
        tau_s = 30.0
        peak = apparent_peak(spot, self.emissivity, t_s=float(self.times()[-1]), tau_s=tau_s)
        amplitude = rng.uniform(2.0, 6.0) / peak
        return DefectSpec(kind, where, (Source(kind, spot, amplitude, tau_s, "heat"),))
