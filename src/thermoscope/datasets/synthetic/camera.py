"""The simulated camera: scene temperatures → radiance → raw counts → °C, like a real LWIR camera.

The scene's true temperatures and emissivities are turned into the signal a FLIR-style camera
measures (Planck relation, reflected and atmospheric radiance at the *actual* ambient
temperature), the sensor adds its residual fixed-pattern non-uniformity (per-pixel and per-column
offsets, a radial vignetting residual and a small gain error after the last non-uniformity
correction) and temporal noise at its NETD, and the signal is quantised to 16-bit counts. The
camera then converts counts to °C with the parameters it was *configured* with (emissivity 0.95,
reflected temperature set at the start of the shift), exactly what a real camera on a line does;
so a change of ambient over a shift shows up as the small apparent-temperature error it causes
in reality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from thermoscope.core import ObjectParameters, PlanckCalibration, PlanckConstants
from thermoscope.core.radiometry import KELVIN

FloatT = TypeVar("FloatT", np.float32, np.float64)

#: Calibration of a typical 640x480-class LWIR camera (-20..120 °C range).
CALIBRATION = PlanckCalibration(
    PlanckConstants(r1=17096.453, b=1428.0, f=1.0, o=-5947.0, r2=0.0128479)
)

#: Temperature (°C) at which NETD and non-uniformity are specified, as camera makers do.
REFERENCE_C = 30.0


@dataclass(frozen=True, slots=True)
class CameraModel:
    """Noise and non-uniformity of the simulated camera, and how it is configured.

    Attributes:
        netd_c: temporal noise, noise-equivalent temperature difference at 30 °C (°C rms).
        pixel_offset_c: residual per-pixel offset non-uniformity at 30 °C (°C rms).
        column_offset_c: residual per-column offset (readout stripes) at 30 °C (°C rms).
        vignetting_c: residual radial offset, how much colder the corners read than the centre
            (°C).
        gain_rms: residual per-pixel gain error (fraction, rms), applied to the signal relative to
            the 30 °C level.
        emissivity: emissivity the camera is configured with (0..1].
        distance_m: configured camera-to-object distance (m).
        humidity_pct: configured relative humidity (%).
    """

    netd_c: float = 0.05
    pixel_offset_c: float = 0.06
    column_offset_c: float = 0.03
    vignetting_c: float = 0.25
    gain_rms: float = 0.003
    emissivity: float = 0.95
    distance_m: float = 0.5
    humidity_pct: float = 45.0


class Sensor:
    """One physical camera of the given model: its fixed pattern is drawn once from ``rng``.

    Args:
        model: noise, non-uniformity and configuration.
        shape: (height, width) in pixels.
        configured_ambient_c: reflected and atmospheric temperature the camera is set to (°C).
        rng: draws the fixed pattern.
    """

    def __init__(
        self,
        model: CameraModel,
        shape: tuple[int, int],
        *,
        configured_ambient_c: float,
        rng: np.random.Generator,
    ) -> None:
        self.model = model
        self.calibration = CALIBRATION
        self.parameters = ObjectParameters(
            emissivity=model.emissivity,
            object_distance_m=model.distance_m,
            reflected_temp_c=configured_ambient_c,
            atmospheric_temp_c=configured_ambient_c,
            relative_humidity_pct=model.humidity_pct,
        )
        ref = self.calibration.to_signal(
            np.array([REFERENCE_C - 0.5, REFERENCE_C, REFERENCE_C + 0.5]), self.parameters
        )
        #: Signal at 30 °C (counts) and the responsivity there (counts per °C).
        self.reference_counts = float(ref[1])
        self.counts_per_c = float(ref[2] - ref[0])
        height, width = shape
        yy, xx = np.mgrid[0:height, 0:width]
        radius2 = ((xx - (width - 1) / 2) ** 2 + (yy - (height - 1) / 2) ** 2) / (
            ((width - 1) / 2) ** 2 + ((height - 1) / 2) ** 2
        )
        offset_c = (
            model.pixel_offset_c * rng.standard_normal(shape)
            + model.column_offset_c * rng.standard_normal(width)[None, :]
            - model.vignetting_c * (radius2 - radius2.mean())
        )
        self._offset_counts = (self.reference_counts + offset_c * self.counts_per_c).astype(
            np.float32
        )
        self._gain = (1.0 + model.gain_rms * rng.standard_normal(shape)).astype(np.float32)

    def exposure(
        self,
        emissivity: NDArray[np.floating],
        *,
        ambient_c: float,
        reflected_c: NDArray[np.floating] | None = None,
    ) -> Exposure:
        """The sensor's response to a scene of these emissivities at this ambient temperature.

        Args:
            emissivity: true emissivity per pixel (0..1], shape (H, W).
            ambient_c: actual air and surroundings temperature (°C); sets the reflected and
                atmospheric radiance.
            reflected_c: temperature of what each pixel reflects (°C, (H, W)) when the
                surroundings are not at ambient (a lamp, a warm machine); ``None``: ambient.
                A pixel reads ``ε·T + (1 - ε)·T_refl`` in radiance terms.
        """
        actual = self.parameters.updated(
            emissivity=1.0, reflected_temp_c=ambient_c, atmospheric_temp_c=ambient_c
        )
        # the signal of a blackbody is affine in its Planck signal: a * planck(T) + b
        probe = np.array([20.0, 80.0])
        measured = self.calibration.to_signal(probe, actual)
        planck = planck_signal(probe, self.calibration.planck)
        a = float((measured[1] - measured[0]) / (planck[1] - planck[0]))
        b = float(measured[0] - a * planck[0])
        reflected: float | NDArray[np.float32] = float(
            self.calibration.to_signal(np.array([ambient_c]), actual)[0]
        )
        if reflected_c is not None:
            reflected = self.calibration.to_signal(np.asarray(reflected_c), actual).astype(
                np.float32
            )
        # counts = ref + gain (refl + e (a planck + b - refl) - ref) + offset, split into
        # slope * planck + intercept (the offset map includes the reference level)
        weight = np.asarray(emissivity, dtype=np.float32) * self._gain
        slope = weight * np.float32(a)
        intercept = self._gain * np.float32(reflected - self.reference_counts)
        intercept += self._offset_counts
        intercept += weight * np.float32(b - reflected)
        return Exposure(
            slope, intercept, self.model.netd_c * self.counts_per_c, self.calibration.planck
        )

    def to_celsius(self, raw: NDArray[np.uint16]) -> NDArray[np.float32]:
        """°C as the camera reports them, with its configured parameters."""
        return self.calibration.to_celsius(raw, self.parameters)


@dataclass(frozen=True, slots=True, eq=False)
class Exposure:
    """A sensor's response for one scene setting: counts = slope · planck(T) + intercept + noise.

    Attributes:
        slope: counts per unit of Planck signal, float32 (H, W) (emissivity, transmission, gain).
        intercept: counts, float32 (H, W) (reflected and atmospheric radiance, offsets).
        noise_counts: temporal noise, counts rms.
        planck: the camera's Planck constants.
    """

    slope: NDArray[np.float32]
    intercept: NDArray[np.float32]
    noise_counts: float
    planck: PlanckConstants

    def counts(self, celsius: NDArray[np.floating], rng: np.random.Generator) -> NDArray[np.uint16]:
        """Raw counts for true surface temperatures ``celsius`` (°C, (H, W)); ``rng``: noise."""
        signal = planck_signal(np.asarray(celsius, dtype=np.float32), self.planck)
        signal *= self.slope
        signal += self.intercept
        noise = rng.standard_normal(signal.shape, dtype=np.float32)
        noise *= np.float32(self.noise_counts)
        signal += noise
        np.rint(signal, out=signal)
        return np.clip(signal, 0, 65535, out=signal).astype(np.uint16)


def planck_signal(celsius: NDArray[FloatT], planck: PlanckConstants) -> NDArray[FloatT]:
    """Blackbody signal in raw-count units, R1 / (R2 (exp(B / T) - F)) - O, T in kelvin.

    Computed in the dtype of ``celsius`` (float32 is plenty for 16-bit counts).
    """
    dtype = celsius.dtype.type
    out: NDArray[FloatT] = np.divide(dtype(planck.b), celsius + dtype(KELVIN))
    np.exp(out, out=out)
    out -= dtype(planck.f)
    out *= dtype(planck.r2)
    np.divide(dtype(planck.r1), out, out=out)
    out -= dtype(planck.o)
    return out
