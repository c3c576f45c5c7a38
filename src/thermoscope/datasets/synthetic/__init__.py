"""Synthetic production line: radiometric frames and sequences of parts with known defects.

Three products, physically plausible rather than photographic:

- ``pcb``: a circuit board whose components heat up after power-on (first-order heating per
  component, heat spreading into the board); defects ``hot_spot`` and ``cold_joint``;
- ``battery``: a 2x6-cell module on a load test; defect ``hot_cell``;
- ``seal``: a heat-sealed tray cooling after the jaws open; defect ``seal_gap``.

Parts vary from one to the next, lie on the conveyor with a small shift and rotation, are seen
at the ambient temperature of their moment in the shift, and may suffer a slow process drift.
The camera turns true temperatures and emissivities into 16-bit counts through a FLIR-style
Planck calibration, with fixed-pattern non-uniformity and NETD noise, so every frame carries
counts, °C and parameters like a real camera's and can be written as FLIR SEQ/FFF. Every
defect comes with its ground truth (class, mask, frame range, part index and serial).
Everything is deterministic for a given ``rng``. ``difficulty="hard"`` makes a line on which a
threshold no longer separates good from bad: heat spreading through the part, shiny metal
reflecting warm surroundings, a noisier camera and subtle defects (a cold joint 1..2 °C off,
a hairline seal gap). ``save_run`` writes a run to a folder: one
recording per part, defect masks, and ``ground_truth.jsonl``.

Example:
    >>> import numpy as np
    >>> from thermoscope.datasets.synthetic import simulate_run
    >>> for part in simulate_run("pcb", parts=100, defect_rate=0.05, rng=np.random.default_rng(7)):
    ...     if part.is_defective:
    ...         print(part.serial, part.defects[0].kind, part.defects[0].where)
"""

from thermoscope.datasets.synthetic.camera import CALIBRATION, CameraModel, Sensor
from thermoscope.datasets.synthetic.files import GROUND_TRUTH, save_run
from thermoscope.datasets.synthetic.line import (
    DIFFICULTIES,
    PRODUCTS,
    VISIBLE_C,
    Ambient,
    Defect,
    Difficulty,
    Drift,
    Pose,
    ProductLine,
    SyntheticPart,
    product_layout,
    simulate_run,
)

__all__ = [
    "CALIBRATION",
    "DIFFICULTIES",
    "GROUND_TRUTH",
    "PRODUCTS",
    "VISIBLE_C",
    "Ambient",
    "CameraModel",
    "Defect",
    "Difficulty",
    "Drift",
    "Pose",
    "ProductLine",
    "Sensor",
    "SyntheticPart",
    "product_layout",
    "save_run",
    "simulate_run",
]
