"""Raw sensor counts <-> object temperature, following the Thermimage ``raw2temp`` equation.

The object signal is the measured signal with the reflected, atmospheric and IR-window radiance
(expressed in raw-signal units with the Planck relation) removed and the path transmission undone;
the inverse Planck relation turns it into a temperature. For a fixed parameter set this is a
monotonic map of the 16-bit count, so a 65,536-entry lookup table converts a frame in one gather.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import RadiometryError
from thermoscope.core.parameters import AtmosphereConstants, ObjectParameters, PlanckConstants

KELVIN = 273.15
FloatArray = NDArray[np.float32]
_TableKey = tuple["PlanckConstants", "AtmosphereConstants", "ObjectParameters"]
#: Lookup tables by parameter set (insertion order = age), and sets seen once without a table.
_TABLES: dict[_TableKey, FloatArray] = {}
_SEEN: dict[_TableKey, None] = {}
_MAX_TABLES = 64
_LOCK = threading.Lock()
RawArray = NDArray[np.uint16]


@runtime_checkable
class Calibration(Protocol):
    """Converts a camera's signal to °C and back for given object parameters."""

    def to_celsius(
        self, signal: NDArray[np.uint16] | NDArray[np.floating], params: ObjectParameters
    ) -> FloatArray:
        """Temperatures in °C (float32) for raw counts or a float signal in count units."""
        ...

    def to_signal(
        self, celsius: NDArray[np.floating], params: ObjectParameters
    ) -> NDArray[np.float64]:
        """The signal in count units (float64) that reads as ``celsius`` under ``params``."""
        ...


def _planck_signal(temp_c: float, p: PlanckConstants) -> float:
    """Blackbody signal in raw-count units at ``temp_c`` °C."""
    return p.r1 / (p.r2 * (math.exp(p.b / (temp_c + KELVIN)) - p.f)) - p.o


def atmospheric_transmission(params: ObjectParameters, atm: AtmosphereConstants) -> float:
    """Transmission (0..1] over half of the object distance (the equation applies it twice)."""
    t = params.atmospheric_temp_c
    h2o = (params.relative_humidity_pct / 100.0) * math.exp(
        1.5587 + 0.06939 * t - 0.00027816 * t**2 + 0.00000068455 * t**3
    )
    half = math.sqrt(params.object_distance_m / 2.0)
    return atm.x * math.exp(-half * (atm.alpha1 + atm.beta1 * math.sqrt(h2o))) + (
        1.0 - atm.x
    ) * math.exp(-half * (atm.alpha2 + atm.beta2 * math.sqrt(h2o)))


def _linear_terms(
    params: ObjectParameters, planck: PlanckConstants, atm: AtmosphereConstants
) -> tuple[float, float]:
    """``(gain, offset)`` with object signal = measured * gain - offset."""
    e = params.emissivity
    irt = params.ir_window_transmission
    tau = atmospheric_transmission(params, atm)
    if tau <= 0.0:
        raise RadiometryError(f"atmospheric transmission is {tau:.3g} for {params}")
    refl = _planck_signal(params.reflected_temp_c, planck)
    atmo = _planck_signal(params.atmospheric_temp_c, planck)
    wind = _planck_signal(params.ir_window_temp_c, planck)
    offset = (
        (1.0 - e) / e * refl
        + (1.0 - tau) / e / tau * atmo
        + (1.0 - irt) / e / tau / irt * wind
        + (1.0 - tau) / e / tau / irt / tau * atmo
    )
    gain = 1.0 / (e * tau * irt * tau)
    return gain, offset


@dataclass(frozen=True, slots=True)
class PlanckCalibration:
    """FLIR-style calibration: Planck constants plus the atmospheric transmission model."""

    planck: PlanckConstants
    atmosphere: AtmosphereConstants = field(default_factory=AtmosphereConstants)

    def lookup_table(self, params: ObjectParameters) -> FloatArray:
        """°C for every 16-bit count (65,536 float32 entries, NaN where undefined); cached."""
        key = (self.planck, self.atmosphere, params)
        table = _TABLES.get(key)
        if table is None:
            counts = np.arange(65536, dtype=np.float64)
            table = _evaluate(counts, self.planck, self.atmosphere, params)
            table.flags.writeable = False
            with _LOCK:
                _TABLES[key] = table
                while len(_TABLES) > _MAX_TABLES:
                    _TABLES.pop(next(iter(_TABLES)))
        return table

    def to_celsius(
        self, signal: NDArray[np.uint16] | NDArray[np.floating], params: ObjectParameters
    ) -> FloatArray:
        """°C (float32) for raw counts or a float signal in count units.

        Counts go through the cached 65,536-entry table once a parameter set is seen a second
        time (a sequence, a re-read); a one-off frame evaluates only its own count range.
        """
        if signal.dtype != np.uint16:
            counts = np.asarray(signal, dtype=np.float64)
            return _evaluate(counts, self.planck, self.atmosphere, params)
        key = (self.planck, self.atmosphere, params)
        if key in _TABLES or key in _SEEN or signal.size == 0:
            return self.lookup_table(params)[signal]
        with _LOCK:
            _SEEN[key] = None
            while len(_SEEN) > _MAX_TABLES:
                _SEEN.pop(next(iter(_SEEN)))
        lo, hi = int(signal.min()), int(signal.max())
        partial = _evaluate(
            np.arange(lo, hi + 1, dtype=np.float64), self.planck, self.atmosphere, params
        )
        result: FloatArray = partial[signal - np.uint16(lo)]
        return result

    def to_signal(
        self, celsius: NDArray[np.floating], params: ObjectParameters
    ) -> NDArray[np.float64]:
        """Measured signal in count units (float64) that would read as ``celsius``."""
        p = self.planck
        gain, offset = _linear_terms(params, p, self.atmosphere)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            obj = (
                p.r1 / (p.r2 * (np.exp(p.b / (np.asarray(celsius, np.float64) + KELVIN)) - p.f))
                - p.o
            )
            return np.asarray((obj + offset) / gain, dtype=np.float64)


def _evaluate(
    signal: NDArray[np.float64],
    planck: PlanckConstants,
    atm: AtmosphereConstants,
    params: ObjectParameters,
) -> FloatArray:
    gain, offset = _linear_terms(params, planck, atm)
    obj = signal * gain - offset
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        temp = planck.b / np.log(planck.r1 / (planck.r2 * (obj + planck.o)) + planck.f) - KELVIN
    return np.asarray(temp, dtype=np.float32)


def clear_table_cache() -> None:
    """Forget all cached lookup tables (benchmarks use it to measure a first decode)."""
    with _LOCK:
        _TABLES.clear()
        _SEEN.clear()
