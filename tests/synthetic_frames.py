"""Small synthetic radiometric frames for tests (no sample files needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from thermoscope.core import (
    CameraInfo,
    FrameMetadata,
    ObjectParameters,
    PlanckCalibration,
    PlanckConstants,
    ThermalFrame,
)

#: Planck constants of a typical FLIR LWIR camera (as found in the AX8 sample's metadata).
CALIBRATION = PlanckCalibration(
    PlanckConstants(r1=16951.8, b=1435.1, f=1.0, o=-7142.0, r2=0.0142949)
)
PARAMETERS = ObjectParameters(emissivity=0.95, object_distance_m=1.0, relative_humidity_pct=50.0)


def planck_frame(
    height: int = 24, width: int = 32, *, seed: int = 0, index: int | None = None
) -> ThermalFrame:
    """A smooth scene with a hot spot, as raw counts plus °C through a FLIR-style calibration."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    scene = (
        25.0
        + 10.0 * xx / width
        + 40.0 * np.exp(-((xx - width / 3) ** 2 + (yy - height / 2) ** 2) / 20)
    )
    scene += rng.normal(0.0, 0.05, scene.shape)
    raw = np.rint(CALIBRATION.to_signal(scene, PARAMETERS)).astype(np.uint16)
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    meta = FrameMetadata(
        source="synthetic",
        format="synthetic",
        camera=CameraInfo(make="FLIR", model="Synthetic", serial="123"),
        capture_time=start + timedelta(seconds=0.5 * (index or 0)),
        parameters=PARAMETERS,
        calibration=CALIBRATION,
        frame_index=index,
    )
    return ThermalFrame(CALIBRATION.to_celsius(raw, PARAMETERS), raw=raw, metadata=meta)
