"""A synthetic motor line whose bearing defects show in heat and vibration together.

Each part is an electric motor on a test stand, run up and seen by two thermal views (the
drive end and the fan end, 160x120 px each) while an accelerometer on the housing records 1 s
of vibration at 4,096 Hz. Every view shows the motor body, the bearing housing of its end,
the bare stand (the ambient) and a reference emitter: a blackbody patch held at
:data:`EMITTER_C`. What each kind of part looks like:

- ``ok``: body 18 ± 1 °C over ambient, bearing housing 4 ± 0.7 °C over the body; vibration is
  the shaft's 1x and 2x lines (shaft 28..31 Hz) over a 0.02 g white noise floor.
- ``bearing_wear`` (the defect, on one end): that bearing housing runs 10..16 °C hotter, and
  the outer race's defect frequency (:data:`BPFO_ORDER` x shaft speed, 100..111 Hz) and its
  second harmonic ring at 0.05..0.15 g.
- ``hot_load`` (a confounder, not a defect): the motor runs under a heavy load, the whole body
  and both housings 7..11 °C hotter; vibration normal.
- ``loose_mount`` (a confounder, not a defect): a loose foot rattles: shaft harmonics up to
  the 6th and a broadband floor ten times higher, which also raises the bearing band; heat
  normal.

So a rule on heat alone flags hot-load motors, a rule on vibration alone flags loose mounts,
and only the two together single out worn bearings. The capture can go wrong too: a
``misframed`` part sits 20..40 px off its place (often cut off by the frame edge), and a
camera may drift: every pixel, the reference emitter included, reads ``camera_offset_c``
high (a run's offset grows by ``drift_c_per_part``). Everything is deterministic for a given
``rng``; the ground truth travels with each part (:class:`MotorPart`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from thermoscope.core.frame import FrameMetadata, ThermalFrame
from thermoscope.core.part_record import CaptureConditions, PartRecord, SensorSeries, View

MotorKind = Literal["ok", "bearing_wear", "hot_load", "loose_mount"]
KINDS: tuple[MotorKind, ...] = ("ok", "bearing_wear", "hot_load", "loose_mount")
VIEWS = ("drive_end", "fan_end")
WIDTH, HEIGHT = 160, 120
#: The reference emitter's true temperature, °C, and its box (x, y, width, height), px.
EMITTER_C = 30.0
EMITTER_BOX = (140, 6, 12, 12)
#: Body centre (x, y) and half sizes, px; the bearing housing's centre and radius, px.
BODY_CENTER = (80.0, 62.0)
BODY_HALF = (50.0, 24.0)
BEARING_CENTER = (42.0, 62.0)
BEARING_RADIUS = 10.0
#: Vibration: sample rate (Hz), length (samples), outer-race defect order (x shaft speed).
SAMPLE_RATE_HZ = 4096.0
SAMPLES = 4096
BPFO_ORDER = 3.58
#: Camera noise (NETD), °C.
NETD_C = 0.05


@dataclass(frozen=True, slots=True)
class MotorPart:
    """One simulated motor and its ground truth.

    Attributes:
        record: the part record (views ``drive_end`` and ``fan_end``, sensor ``vib`` in g).
        kind: what the part is (``bearing_wear`` is the only defect).
        worn_end: the view whose bearing is worn (``None`` unless ``bearing_wear``).
        misframed: the part was placed off its spot (the capture should be retaken).
        camera_offset_c: how far the camera reads high at this part, °C.
    """

    record: PartRecord
    kind: MotorKind
    worn_end: str | None
    misframed: bool
    camera_offset_c: float

    @property
    def is_defective(self) -> bool:
        """Whether the part is bad (a worn bearing)."""
        return self.kind == "bearing_wear"


def _ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.asarray(((xx + 0.5 - cx) / ax) ** 2 + ((yy + 0.5 - cy) / ay) ** 2 <= 1.0)


def _frame(
    rng: np.random.Generator,
    ambient_c: float,
    body_c: float,
    bearing_c: float,
    shift: tuple[float, float],
    offset_c: float,
    source: str,
    time_s: float,
) -> ThermalFrame:
    """One view: stand at ambient, motor body, bearing housing, emitter; camera offset, noise."""
    dx, dy = shift
    image = np.full((HEIGHT, WIDTH), ambient_c, dtype=np.float64)
    body = _ellipse(BODY_CENTER[0] + dx, BODY_CENTER[1] + dy, *BODY_HALF)
    image[body] = body_c
    bearing = _ellipse(
        BEARING_CENTER[0] + dx, BEARING_CENTER[1] + dy, BEARING_RADIUS, BEARING_RADIUS
    )
    image[bearing] = bearing_c
    x, y, w, h = EMITTER_BOX
    image[y : y + h, x : x + w] = EMITTER_C
    image += offset_c + rng.normal(0.0, NETD_C, image.shape)
    meta = FrameMetadata(source=source, format="synthetic", timestamp_s=time_s)
    return ThermalFrame(image.astype(np.float32), metadata=meta)


def _vibration(rng: np.random.Generator, kind: MotorKind, start_s: float) -> SensorSeries:
    """1 s of housing acceleration, g."""
    t = np.arange(SAMPLES) / SAMPLE_RATE_HZ
    shaft = rng.uniform(28.0, 31.0)
    phase = rng.uniform(0.0, 2 * math.pi, 8)
    signal = 0.2 * np.sin(2 * math.pi * shaft * t + phase[0])
    signal += 0.05 * np.sin(2 * math.pi * 2 * shaft * t + phase[1])
    floor = 0.02
    if kind == "bearing_wear":
        amp = rng.uniform(0.05, 0.15)
        bpfo = BPFO_ORDER * shaft
        signal += amp * np.sin(2 * math.pi * bpfo * t + phase[2])
        signal += 0.5 * amp * np.sin(2 * math.pi * 2 * bpfo * t + phase[3])
    elif kind == "loose_mount":
        for order in range(3, 7):
            signal += rng.uniform(0.04, 0.1) * np.sin(
                2 * math.pi * order * shaft * t + phase[order + 1]
            )
        floor = 0.2
    signal += rng.normal(0.0, floor, SAMPLES)
    return SensorSeries("vib", signal, SAMPLE_RATE_HZ, "g", start_s, "vibration")


def motor_part(
    rng: np.random.Generator,
    index: int,
    kind: MotorKind,
    *,
    worn_end: str | None = None,
    misframed: bool = False,
    camera_offset_c: float = 0.0,
    cycle_s: float = 10.0,
) -> MotorPart:
    """One motor of the given kind (``worn_end``: which bearing, for ``bearing_wear``)."""
    if kind == "bearing_wear" and worn_end is None:
        worn_end = VIEWS[int(rng.integers(2))]
    ambient = rng.uniform(22.0, 26.0)
    body = ambient + rng.normal(18.0, 1.0)
    if kind == "hot_load":
        body += rng.uniform(7.0, 11.0)
    time_s = index * cycle_s
    shift = (0.0, 0.0)
    if misframed:
        angle = rng.uniform(0.0, 2 * math.pi)
        size = rng.uniform(20.0, 40.0)
        shift = (size * math.cos(angle), size * math.sin(angle))
    serial = f"MOT-{index:06d}"
    views = []
    for name in VIEWS:
        bearing = body + rng.normal(4.0, 0.7)
        if kind == "bearing_wear" and name == worn_end:
            bearing += rng.uniform(10.0, 16.0)
        frame = _frame(
            rng, ambient, body, bearing, shift, camera_offset_c, f"{serial}/{name}", time_s
        )
        views.append(View(name, (frame,), camera=f"cam-{name}"))
    vib = _vibration(rng, kind, time_s - 0.5)
    record = PartRecord(
        serial,
        tuple(views),
        (vib,),
        CaptureConditions(temperature_c=ambient, relative_humidity_pct=rng.uniform(30, 60)),
        time_s,
    )
    return MotorPart(
        record, kind, worn_end if kind == "bearing_wear" else None, misframed, camera_offset_c
    )


def motor_run(
    parts: int,
    *,
    rng: np.random.Generator,
    shares: tuple[float, float, float, float] = (0.7, 0.1, 0.1, 0.1),
    misframe_rate: float = 0.0,
    drift_c_per_part: float = 0.0,
) -> Iterator[MotorPart]:
    """A run of motors.

    Args:
        parts: how many.
        rng: the only source of randomness.
        shares: the probabilities of ``ok``, ``bearing_wear``, ``hot_load``, ``loose_mount``.
        misframe_rate: probability that a part is placed off its spot.
        drift_c_per_part: the camera's offset grows by this much per part, °C (0: no drift).
    """
    p = np.asarray(shares, dtype=np.float64)
    if p.shape != (4,) or bool((p < 0).any()) or not math.isclose(float(p.sum()), 1.0):
        raise ValueError(f"shares must be 4 probabilities adding up to 1, got {shares}")
    if not 0.0 <= misframe_rate <= 1.0:
        raise ValueError(f"misframe_rate must be in [0, 1], got {misframe_rate}")
    for i in range(parts):
        kind = KINDS[int(rng.choice(4, p=p))]
        misframed = bool(rng.random() < misframe_rate)
        yield motor_part(rng, i, kind, misframed=misframed, camera_offset_c=drift_c_per_part * i)
