"""Radiometric parameters: object/atmosphere settings a user may change, and camera constants."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from thermoscope.core.errors import RadiometryError


@dataclass(frozen=True, slots=True)
class ObjectParameters:
    """Measurement conditions that turn sensor signal into object temperature.

    Attributes:
        emissivity: object emissivity, 0 < e <= 1.
        object_distance_m: camera-to-object distance in metres (>= 0).
        reflected_temp_c: reflected apparent temperature in °C.
        atmospheric_temp_c: air temperature along the path in °C.
        relative_humidity_pct: relative humidity in percent (0..100), not a fraction.
        ir_window_temp_c: temperature of an external IR window in °C.
        ir_window_transmission: transmission of that window, 0 < t <= 1 (1 = no window).
    """

    emissivity: float = 0.95
    object_distance_m: float = 1.0
    reflected_temp_c: float = 20.0
    atmospheric_temp_c: float = 20.0
    relative_humidity_pct: float = 50.0
    ir_window_temp_c: float = 20.0
    ir_window_transmission: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise RadiometryError(f"{f.name} must be a finite number, got {value!r}")
        if not 0.0 < self.emissivity <= 1.0:
            raise RadiometryError(f"emissivity must be in (0, 1], got {self.emissivity}")
        if not 0.0 < self.ir_window_transmission <= 1.0:
            raise RadiometryError(
                f"ir_window_transmission must be in (0, 1], got {self.ir_window_transmission}"
            )
        if self.object_distance_m < 0.0:
            raise RadiometryError(f"object_distance_m must be >= 0, got {self.object_distance_m}")
        if not 0.0 <= self.relative_humidity_pct <= 100.0:
            raise RadiometryError(
                "relative_humidity_pct must be in [0, 100] (percent, not a fraction), "
                f"got {self.relative_humidity_pct}"
            )
        for name in ("reflected_temp_c", "atmospheric_temp_c", "ir_window_temp_c"):
            if getattr(self, name) <= -273.15:
                raise RadiometryError(
                    f"{name} must be above absolute zero, got {getattr(self, name)}"
                )

    def updated(self, **changes: Any) -> ObjectParameters:
        """Return a copy with the given fields changed (``None`` values are ignored)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise RadiometryError(f"unknown object parameter(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: float(v) for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, float]:
        """The parameters as a plain dict (units in the field names)."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PlanckConstants:
    """A camera's calibration constants (R1, B, F, O, R2) relating raw counts and temperature."""

    r1: float
    b: float
    f: float
    o: float
    r2: float

    def __post_init__(self) -> None:
        for f in fields(self):
            if not math.isfinite(getattr(self, f.name)):
                raise RadiometryError(f"Planck constant {f.name} is not finite")
        if self.r1 == 0.0 or self.r2 == 0.0 or self.b <= 0.0:
            raise RadiometryError(f"implausible Planck constants: {self}")


@dataclass(frozen=True, slots=True)
class AtmosphereConstants:
    """The two-band atmospheric transmission model constants (X, Alpha1/2, Beta1/2)."""

    alpha1: float = 0.006569
    alpha2: float = 0.012620
    beta1: float = -0.002276
    beta2: float = -0.006670
    x: float = 1.9
