"""The ``hard`` circuit board: heat spreading through board and traces, shiny joints, subtle
defects.

Same board, components and region geometry as ``pcb`` (so its recipe applies), but:

- **Heat spreading.** Each component's rise is the steady-state conduction solution (``heat``)
  on a conductance map: FR4 with its inner copper planes, copper traces that carry heat ~30x
  better (they show as warm lines leaving the hot parts), component packages, and a conveyor
  that holds everything off the board at ambient. Heat reaches the neighbours.
- **Materials.** Solder joints (emissivity 0.25) and gold-plated test pads (0.08) are shiny: they
  read mostly what they reflect (``ProductLine`` gives a hard line warm surroundings that change
  from part to part), copper fiducials 0.3, solder mask 0.92, packages as ``pcb``.
- **More variation.** Component tolerances ±6 %, supply ±3 %, airflow over the board ±4 %, the
  board's own warm-up ±30 %.
- **Subtle defects.** ``cold_joint``: one solder joint of a powered component conducts poorly, so
  the joint and the trace behind it run 1..2 °C cooler than on a good board (apparent, at
  inspection), a smooth dip that spreads along the copper; ``hot_spot``: a small local short
  (a heat input of 0.8..1.5 px) on a component or a trace, diffusing through the board, 3..12 °C
  hotter at its peak (apparent, at inspection).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import cv2
import numpy as np

from thermoscope.core import Box
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
from thermoscope.datasets.synthetic.pcb import COMPONENTS, POWERED, Pcb

#: Copper traces: (x0, y0, x1, y1, width), 160x120 units, drawn as straight segments.
TRACES = (
    (56.0, 28.0, 70.0, 28.0, 1.0),  # U1 -> U2 (enable, feedback)
    (56.0, 44.0, 66.0, 44.0, 1.0),
    (66.0, 44.0, 70.0, 35.0, 1.0),
    (90.0, 28.0, 108.0, 28.0, 2.0),  # U2 -> Q1 gate driver supply
    (116.0, 38.0, 116.0, 68.0, 4.0),  # half-bridge switch node, Q1 -> Q2
    (124.0, 28.0, 143.0, 28.0, 3.0),  # Q1 -> DC bus connector
    (124.0, 78.0, 143.0, 78.0, 3.0),  # Q2 -> ground connector
    (108.0, 74.0, 90.0, 72.0, 3.0),  # switch node -> L1
    (70.0, 78.0, 62.0, 86.0, 1.0),  # L1 -> C3 (output sense)
    (35.0, 50.0, 35.0, 74.0, 1.0),  # U1 -> R7 (current sense)
    (24.0, 30.0, 17.0, 30.0, 1.0),  # U1 -> edge connector
    (24.0, 36.0, 17.0, 36.0, 1.0),
    (24.0, 42.0, 17.0, 42.0, 1.0),
)
#: Gold-plated test pads (x, y), 2x2 units each, on the traces.
TEST_PADS = ((62.0, 27.0), (99.0, 27.0), (115.0, 52.0), (34.0, 61.0))
#: Relative in-plane conductances (per pixel at scale 1) and loss to the air.
K_BOARD, K_COPPER, K_PACKAGE, K_OFF_BOARD = 1.0, 40.0, 25.0, 0.05
H_PART, H_OFF_BOARD = 0.06, 3.0
#: Emissivities of the shiny parts: solder joints, gold test pads.
SOLDER_EMISSIVITY, GOLD_EMISSIVITY = 0.25, 0.08


def joints(scale: int) -> dict[str, list[Box]]:
    """Solder joints per component: 2x2-unit boxes just outside its left and right ends
    (three per side on the processor, one on the capacitor, two elsewhere)."""
    out: dict[str, list[Box]] = {}
    for c in COMPONENTS:
        per_side = 3 if c.name == "U1" else 1 if c.name == "C3" else 2
        boxes = []
        for x in (c.x - 2.0, c.x + c.width):
            for j in range(per_side):
                y = c.y + c.height * (j + 0.5) / per_side - 1.0
                boxes.append(_box(x, y, 2.0, 2.0, scale))
        out[c.name] = boxes
    return out


def _box(x: float, y: float, width: float, height: float, scale: int) -> Box:
    return Box(round(x * scale), round(y * scale), round(width * scale), round(height * scale))


def _copper(shape: tuple[int, int], scale: int) -> np.ndarray:
    """Bool (H, W): traces, joints and test pads."""
    canvas = np.zeros(shape, dtype=np.uint8)
    for x0, y0, x1, y1, width in TRACES:
        start = (round(x0 * scale), round(y0 * scale))
        end = (round(x1 * scale), round(y1 * scale))
        cv2.line(canvas, start, end, 1, thickness=max(1, round(width * scale)))
    copper = canvas.astype(bool)
    for boxes in joints(scale).values():
        for box in boxes:
            copper |= box_mask(shape, box)
    for x, y in TEST_PADS:
        copper |= box_mask(shape, _box(x, y, 2.0, 2.0, scale))
    return copper


@functools.lru_cache(maxsize=1)
def _thermal() -> tuple[FloatMap, FloatMap, FloatMap]:
    """Conductance, loss and the component unit maps (N, H, W) of the board at scale 1.

    Cached: the board is the same on every line; the arrays are read-only.
    """
    scale = 1
    shape = (120, 160)
    board = box_mask(shape, _box(16, 14, 128, 92, scale))
    conductance = np.where(board, K_BOARD, K_OFF_BOARD).astype(np.float32)
    heat = np.zeros((len(COMPONENTS), *shape), dtype=np.float32)
    for n, c in enumerate(COMPONENTS):
        footprint = box_mask(shape, _box(c.x, c.y, c.width, c.height, scale))
        conductance[footprint] = K_PACKAGE
        heat[n][footprint] = 1.0
    conductance[_copper(shape, scale)] = K_COPPER
    loss = np.where(board, H_PART, H_OFF_BOARD).astype(np.float32)
    maps = unit_maps(conductance, loss, heat)
    for array in (conductance, loss, maps):
        array.setflags(write=False)
    return conductance, loss, maps


def _calibrated_rises(maps: FloatMap) -> list[float]:
    """Each component's own steady rise (°C) such that, with the heat its neighbours conduct
    over, a good board's hottest point on every component reads the datasheet rise
    (``Component.rise_c``), as on the ``normal`` board: a 7x7 linear system."""
    peaks = [np.unravel_index(int(np.argmax(m)), m.shape) for m in maps]
    coupling = np.array([[float(m[peak]) for m in maps] for peak in peaks])
    target = np.array([c.rise_c for c in COMPONENTS])
    return [float(r) for r in np.linalg.solve(coupling, target)]


class HardPcb(Pcb):
    """The ``pcb`` product at the ``hard`` difficulty (see the module's docstring)."""

    name: ClassVar[str] = "pcb"

    def build(self, rng: np.random.Generator) -> None:
        """The ``pcb`` layout, then copper, joints and the conduction unit maps."""
        super().build(rng)
        shape, s = self.shape, self.scale
        self._conductance, self._loss, maps = _thermal()
        for c, values in zip(COMPONENTS, upsample(maps, s), strict=True):
            self._maps[c.name] = UnitMap.of(values)
        self._rises = _calibrated_rises(maps)
        copper = _copper(shape, s)
        board = self.regions["board"]
        assert isinstance(board, Box)
        self.emissivity[copper & box_mask(shape, board)] = 0.92  # traces under solder mask
        self.joints = joints(s)
        for boxes in self.joints.values():
            for box in boxes:
                self.emissivity[box_mask(shape, box)] = SOLDER_EMISSIVITY
        for x, y in TEST_PADS:
            self.emissivity[box_mask(shape, _box(x, y, 2.0, 2.0, s))] = GOLD_EMISSIVITY
        self._traces = np.argwhere(copper & ~self._footprints())

    def _footprints(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=bool)
        for c in COMPONENTS:
            box = self.regions[c.name]
            assert isinstance(box, Box)
            out |= box_mask(self.shape, box)
        return out

    def nominal(self, rng: np.random.Generator) -> list[Source]:
        """Components at their rise ±5 %, supply ±3 %, airflow ±3 %, board warm-up 3 °C ±30 %."""
        supply = rng.normal(1.0, 0.03)
        airflow = rng.normal(1.0, 0.03)
        sources = [
            Source(
                c.name,
                self._maps[c.name],
                rise * supply * airflow * rng.normal(1.0, 0.05),
                c.tau_s,
                "heat",
            )
            for c, rise in zip(COMPONENTS, self._rises, strict=True)
        ]
        board = 3.0 * supply * max(rng.normal(1.0, 0.3), 0.2)
        sources.append(Source("board", self._maps["board"], board, 15.0, "heat"))
        return sources

    def defect(
        self, kind: str, sources: list[Source], rng: np.random.Generator, where: str | None
    ) -> DefectSpec:
        """A cold solder joint (1..2 °C cooler) or a small local short (3..12 °C hotter)."""
        self.check_kind(kind)
        choices = tuple(c.name for c in COMPONENTS) if kind == "hot_spot" else POWERED
        if where is None:
            where = str(rng.choice(choices))
        elif where not in choices:
            raise ValueError(f"no {kind} on {where!r}; choose from {', '.join(choices)}")
        own = next(c for c in COMPONENTS if c.name == where)
        if kind == "cold_joint":
            joint = self.joints[where][int(rng.integers(len(self.joints[where])))]
            x, y = joint.x + joint.width / 2, joint.y + joint.height / 2
            dip = self._diffused(x, y, 1.2 * self.scale)
            amplitude = -rng.uniform(1.0, 2.0) / self._seen_peak(dip, own.tau_s)
            return DefectSpec(kind, where, (Source(kind, dip, amplitude, own.tau_s, "heat"),))
        if rng.random() < 0.7:  # on the component's package
            box = self.regions[where]
            assert isinstance(box, Box)
            x = rng.uniform(box.x + 1, box.x + box.width - 1)
            y = rng.uniform(box.y + 1, box.y + box.height - 1)
        else:  # on a trace near it: a short between traces, a cracked via
            centre = np.array([own.y + own.height / 2, own.x + own.width / 2]) * self.scale
            distance = np.hypot(*(self._traces - centre).T)
            near = np.flatnonzero(distance <= np.sort(distance)[min(40, len(distance) - 1)])
            y, x = self._traces[int(rng.choice(near))] + 0.5
        spot = self._diffused(x, y, rng.uniform(0.8, 1.5) * self.scale)
        amplitude = rng.uniform(3.0, 12.0) / self._seen_peak(spot, 1.5)
        return DefectSpec(kind, where, (Source(kind, spot, amplitude, 1.5, "heat"),))

    def _diffused(self, x: float, y: float, sigma_px: float) -> UnitMap:
        """Unit map (peak 1) of a small heat input at ``(x, y)`` spreading through the board
        (frame pixels; solved at scale 1)."""
        s = self.scale
        heat = gaussian_map(self._conductance.shape, x / s, y / s, sigma_px / s)
        return UnitMap.of(upsample(unit_maps(self._conductance, self._loss, heat), s))

    def _seen_peak(self, unit: UnitMap, tau_s: float) -> float:
        """Largest apparent change at inspection per °C of amplitude (emissivity, heating)."""
        t_end = float(self.times()[-1])
        return apparent_peak(unit, self.emissivity, t_s=t_end, tau_s=tau_s)
