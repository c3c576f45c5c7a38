"""Synthetic radiometric scenes: a PCB whose components heat up after power-on.

Physically plausible, not photographic: each component follows a first-order heating curve
T(t) = T_ambient + ΔT_steady (1 - exp(-t / τ)), heat spreads into the board (Gaussian blur),
the sensor adds white noise at its NETD, and the result is quantised to raw counts through a
FLIR-style Planck calibration, so the frames carry counts, °C and parameters exactly like a real
camera's. Deterministic for a given ``rng``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.core import (
    CameraInfo,
    FrameMetadata,
    ObjectParameters,
    PlanckCalibration,
    PlanckConstants,
    ThermalFrame,
)

#: Calibration of a typical 640x480-class LWIR camera (-20..120 °C range).
CALIBRATION = PlanckCalibration(
    PlanckConstants(r1=17096.453, b=1428.0, f=1.0, o=-5947.0, r2=0.0128479)
)


@dataclass(frozen=True, slots=True)
class Component:
    """A heat source on the board: a box (pixels), its steady rise over ambient (°C), τ (s)."""

    name: str
    x: int
    y: int
    width: int
    height: int
    rise_c: float
    tau_s: float


def pcb_layout(width: int = 160, height: int = 120) -> list[Component]:
    """Components of the demo board, placed relative to the frame size."""
    w, h = width, height
    return [
        Component("U1", int(0.15 * w), int(0.20 * h), int(0.22 * w), int(0.25 * h), 38.0, 6.0),
        Component("U2", int(0.55 * w), int(0.18 * h), int(0.15 * w), int(0.18 * h), 22.0, 4.0),
        Component("Q1", int(0.60 * w), int(0.60 * h), int(0.10 * w), int(0.12 * h), 30.0, 3.0),
        Component("R7", int(0.25 * w), int(0.65 * h), int(0.08 * w), int(0.06 * h), 15.0, 2.0),
    ]


def pcb_heating_sequence(
    *,
    rng: np.random.Generator,
    frames: int = 20,
    fps: float = 2.0,
    width: int = 160,
    height: int = 120,
    ambient_c: float = 23.0,
    netd_c: float = 0.05,
    hot_spot: str | None = None,
    source: str = "synthetic-pcb",
) -> list[ThermalFrame]:
    """A power-on heating sequence of one PCB.

    Args:
        rng: random generator (noise and small per-part variation).
        frames: number of frames; fps: frames per second.
        width, height: frame size in pixels.
        ambient_c: ambient and board start temperature in °C.
        netd_c: sensor noise (noise-equivalent temperature difference) in °C.
        hot_spot: name of a component that runs 60 % hotter (a defect), or ``None``.
        source: label stored in each frame's metadata.
    """
    parameters = ObjectParameters(
        emissivity=0.95,
        object_distance_m=0.5,
        reflected_temp_c=ambient_c,
        atmospheric_temp_c=ambient_c,
        relative_humidity_pct=45.0,
    )
    start = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
    components = pcb_layout(width, height)
    variation = rng.normal(1.0, 0.03, len(components))
    out = []
    for i in range(frames):
        t = i / fps
        scene = _board(t, components, variation, width, height, ambient_c, hot_spot)
        scene += rng.normal(0.0, netd_c, scene.shape)
        raw = np.clip(np.rint(CALIBRATION.to_signal(scene, parameters)), 0, 65535).astype(np.uint16)
        meta = FrameMetadata(
            source=source,
            format="synthetic",
            camera=CameraInfo(make="FLIR", model="thermoscope synthetic", serial="0001"),
            capture_time=start + timedelta(seconds=t),
            parameters=parameters,
            calibration=CALIBRATION,
            frame_index=i,
            timestamp_s=t,
        )
        out.append(ThermalFrame(CALIBRATION.to_celsius(raw, parameters), raw=raw, metadata=meta))
    return out


def _board(
    t: float,
    components: list[Component],
    variation: NDArray[np.float64],
    width: int,
    height: int,
    ambient_c: float,
    hot_spot: str | None,
) -> NDArray[np.float64]:
    """Temperature field (°C) of the board at time ``t`` seconds after power-on."""
    rise = np.zeros((height, width), dtype=np.float64)
    for comp, factor in zip(components, variation, strict=True):
        steady = comp.rise_c * factor * (1.6 if comp.name == hot_spot else 1.0)
        rise[comp.y : comp.y + comp.height, comp.x : comp.x + comp.width] = steady * (
            1.0 - np.exp(-t / comp.tau_s)
        )
    spread = cv2.GaussianBlur(rise, (0, 0), sigmaX=max(1.0, width / 80))
    field: NDArray[np.float64] = ambient_c + np.maximum(rise, spread * 0.9)
    return field
