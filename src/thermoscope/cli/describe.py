"""What ``thermoscope info`` reports about a file, as plain data (the caller prints it)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from thermoscope.core import FrameMetadata, PlanckCalibration, ThermalFrame, ThermalSequence
from thermoscope.io import TemperatureUnavailableError


def frame_stats(frame: ThermalFrame) -> dict[str, float | None]:
    """Min, max and mean °C over the finite pixels (``None`` when there are none)."""
    finite = frame.celsius[np.isfinite(frame.celsius)]
    if finite.size == 0:
        return {"min_c": None, "max_c": None, "mean_c": None}
    return {
        "min_c": round(float(finite.min()), 3),
        "max_c": round(float(finite.max()), 3),
        "mean_c": round(float(finite.mean(dtype=np.float64)), 3),
    }


def describe(path: Path, seq: ThermalSequence) -> dict[str, Any]:
    """A JSON-ready summary: camera, size, frame count, parameters and °C statistics of frame 0."""
    frame = seq[0]
    info = _summary(path, frame.metadata, frame.shape, len(seq))
    info.update(frame_stats(frame))
    if seq.issues:
        info["issues"] = list(seq.issues)
    return _present(info)


def describe_without_temperatures(path: Path, error: TemperatureUnavailableError) -> dict[str, Any]:
    """The summary of a file whose counts and metadata read but whose °C cannot be computed."""
    if error.metadata is None or error.raw is None:
        raise error
    info = _summary(path, error.metadata, error.raw.shape, 1)
    info["temperatures"] = f"unavailable: {error.reason}"
    return _present(info)


def _summary(
    path: Path, meta: FrameMetadata, shape: tuple[int, ...], frames: int
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "file": str(path),
        "format": meta.format,
        "camera": _camera_name(meta.camera.make, meta.camera.model),
        "serial": meta.camera.serial or None,
        "lens": meta.camera.lens or None,
        "width": shape[1],
        "height": shape[0],
        "frames": frames,
        "captured": meta.capture_time.isoformat() if meta.capture_time else None,
    }
    if meta.parameters is not None:
        info["parameters"] = {k: round(v, 6) for k, v in meta.parameters.as_dict().items()}
    if isinstance(meta.calibration, PlanckCalibration):
        p = meta.calibration.planck
        info["planck"] = {"R1": p.r1, "B": p.b, "F": p.f, "O": p.o, "R2": p.r2}
    if meta.gps is not None:
        info["gps"] = {"latitude": meta.gps.latitude, "longitude": meta.gps.longitude}
    return info


def _present(info: dict[str, Any]) -> dict[str, Any]:
    """Drop unknown values."""
    return {k: v for k, v in info.items() if v is not None and v != {} and not _is_nan(v)}


def _camera_name(make: str, model: str) -> str | None:
    """``"FLIR T640"``: the make, then the model unless the model already names the make."""
    if model.lower().startswith(make.lower()):
        return model or None
    return f"{make} {model}".strip() or None


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)
