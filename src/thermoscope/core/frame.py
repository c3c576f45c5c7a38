"""``ThermalFrame``: one radiometric image as float32 °C with its raw counts and metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import RadiometryError, ThermoscopeError
from thermoscope.core.parameters import ObjectParameters
from thermoscope.core.radiometry import Calibration, FloatArray, RawArray

#: Largest side length a frame may have (pixels); anything bigger is treated as corrupt input.
MAX_SIDE = 16384


class FrameError(ThermoscopeError, ValueError):
    """A ``ThermalFrame`` was constructed from inconsistent data."""


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """Who made the image: camera and lens identification (empty strings when unknown)."""

    make: str = ""
    model: str = ""
    serial: str = ""
    lens: str = ""
    software: str = ""


@dataclass(frozen=True, slots=True)
class GpsPosition:
    """Where the image was taken: WGS84 degrees and metres above sea level."""

    latitude: float
    longitude: float
    altitude_m: float | None = None


@dataclass(frozen=True, slots=True)
class FrameMetadata:
    """Everything known about a frame besides its pixels.

    Attributes:
        source: file name or other origin label.
        format: reader that produced the frame (``"flir-rjpeg"``, ``"tiff"`` ...).
        camera: camera and lens identification.
        capture_time: when the frame was taken (timezone-aware where the file says so).
        parameters: object parameters the temperatures were computed with.
        calibration: converts the raw counts to °C for other parameters (``None`` when the
            file carries temperatures only).
        gps: position, when the file has one.
        frame_index: position in a sequence (0-based), ``None`` for a single image.
        timestamp_s: seconds since the first frame of a sequence.
        extra: format-specific values (camera temperature range, palette, embedded image...).
    """

    source: str = ""
    format: str = ""
    camera: CameraInfo = CameraInfo()
    capture_time: datetime | None = None
    parameters: ObjectParameters | None = None
    calibration: Calibration | None = None
    gps: GpsPosition | None = None
    frame_index: int | None = None
    timestamp_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class ThermalFrame:
    """A radiometric frame.

    Attributes:
        celsius: temperatures in °C, float32, shape (H, W); NaN where the signal is undefined.
        raw: sensor counts as stored in the file, uint16 (H, W), or ``None``.
        metadata: camera, parameters, calibration and provenance.
    """

    celsius: FloatArray
    raw: RawArray | None = None
    metadata: FrameMetadata = FrameMetadata()

    def __post_init__(self) -> None:
        celsius = np.asarray(self.celsius)
        if celsius.ndim != 2:
            raise FrameError(f"celsius must be 2-D (H, W), got shape {celsius.shape}")
        if not (0 < celsius.shape[0] <= MAX_SIDE and 0 < celsius.shape[1] <= MAX_SIDE):
            raise FrameError(f"frame size {celsius.shape} outside 1..{MAX_SIDE} pixels per side")
        if not np.issubdtype(celsius.dtype, np.floating):
            raise FrameError(f"celsius must be floating point, got {celsius.dtype}")
        object.__setattr__(self, "celsius", np.ascontiguousarray(celsius, dtype=np.float32))
        if self.raw is not None:
            raw = np.asarray(self.raw)
            if raw.dtype != np.uint16 or raw.shape != celsius.shape:
                raise FrameError(
                    f"raw must be uint16 of shape {celsius.shape}, got {raw.dtype} {raw.shape}"
                )
            object.__setattr__(self, "raw", raw)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        h, w = self.celsius.shape
        return int(h), int(w)

    @property
    def height(self) -> int:
        """Rows in pixels."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Columns in pixels."""
        return self.shape[1]

    def temperature_at(self, x: int, y: int) -> float:
        """Temperature in °C at column ``x``, row ``y``."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise FrameError(f"pixel ({x}, {y}) outside the {self.width}x{self.height} frame")
        return float(self.celsius[y, x])

    def with_parameters(
        self, *, mask: NDArray[np.bool_] | None = None, **changes: float | None
    ) -> ThermalFrame:
        """Recompute temperatures with changed object parameters, without re-reading the file.

        Args:
            mask: optional boolean (H, W) array; only these pixels are recomputed (e.g. a region
                with its own emissivity). The frame's stored parameters are updated only when
                no mask is given.
            **changes: ``ObjectParameters`` fields to change, e.g. ``emissivity=0.9``.

        Raises:
            RadiometryError: the frame has no calibration or parameters to recompute from.
        """
        meta = self.metadata
        if meta.calibration is None or meta.parameters is None:
            raise RadiometryError(
                f"{meta.source or 'frame'} has no radiometric calibration "
                f"(format {meta.format or 'unknown'}); temperatures cannot be recomputed"
            )
        new_params = meta.parameters.updated(**changes)
        signal: NDArray[Any]
        if self.raw is not None:
            signal = self.raw
        else:
            signal = meta.calibration.to_signal(self.celsius, meta.parameters)
        if mask is None:
            celsius = meta.calibration.to_celsius(signal, new_params)
            return replace(self, celsius=celsius, metadata=replace(meta, parameters=new_params))
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise FrameError(f"mask shape {mask.shape} does not match frame shape {self.shape}")
        celsius = self.celsius.copy()
        celsius[mask] = meta.calibration.to_celsius(signal[mask], new_params)
        return replace(self, celsius=celsius)
