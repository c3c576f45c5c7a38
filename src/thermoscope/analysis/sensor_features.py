"""Features of a sensor time series: RMS, peak, crest factor, band energy, spectral centroid.

Plain functions on a 1-D array of samples (and its sample rate where frequencies matter); they
never modify their input. Units follow the samples' unit ``u``: RMS and peak in ``u``, the crest
factor is a ratio, a band energy is the mean-square value of the band in ``u²`` (the power the
band contributes, so the band energies of all bands add up to the mean square of the signal),
the spectral centroid is in Hz. The spectrum is that of the signal with its mean removed, under
a Hann window (normalised so a band's energy is unbiased for a tone inside it).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from thermoscope.analysis.spatial import AnalysisError

FloatArray = NDArray[np.float64]


def _samples(values: NDArray[np.floating] | FloatArray) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise AnalysisError(f"a series must be 1-D with at least 2 samples, got {arr.shape}")
    return arr


def rms(values: FloatArray, *, remove_mean: bool = True) -> float:
    """Root mean square of the samples (of their deviations from the mean by default), ``u``."""
    arr = _samples(values)
    if remove_mean:
        arr = arr - arr.mean()
    return float(np.sqrt(np.mean(arr * arr)))


def peak(values: FloatArray, *, remove_mean: bool = True) -> float:
    """Largest absolute sample (deviation from the mean by default), ``u``."""
    arr = _samples(values)
    if remove_mean:
        arr = arr - arr.mean()
    return float(np.max(np.abs(arr)))


def crest_factor(values: FloatArray) -> float:
    """Peak over RMS of the mean-removed samples (1.41 for a sine); NaN for a flat signal."""
    r = rms(values)
    return peak(values) / r if r > 0 else float("nan")


def power_spectrum(values: FloatArray, sample_rate_hz: float) -> tuple[FloatArray, FloatArray]:
    """One-sided power spectrum of the mean-removed, Hann-windowed samples.

    Returns:
        ``(frequencies_hz, power)`` where ``power`` sums (over all bins) to the mean square of
        the windowed signal rescaled by the window's power, ``u²`` per bin.
    """
    arr = _samples(values)
    if not sample_rate_hz > 0:
        raise AnalysisError(f"sample rate must be positive, got {sample_rate_hz!r} Hz")
    n = arr.size
    window = np.hanning(n)
    spectrum = np.fft.rfft((arr - arr.mean()) * window)
    power = (spectrum.real**2 + spectrum.imag**2) / (n * float(np.sum(window * window)))
    if n > 1:
        power[1 : (n + 1) // 2] *= 2.0  # one-sided: fold the negative frequencies in
    freqs = np.asarray(np.fft.rfftfreq(n, d=1.0 / sample_rate_hz), dtype=np.float64)
    return freqs, power


def band_energy(
    values: FloatArray, sample_rate_hz: float, *, low_hz: float, high_hz: float
) -> float:
    """Mean-square value of the frequency band ``[low_hz, high_hz]``, ``u²``.

    Raises:
        AnalysisError: the band is empty, inverted or above the Nyquist frequency.
    """
    if not 0.0 <= low_hz < high_hz:
        raise AnalysisError(f"band [{low_hz:g}, {high_hz:g}] Hz is empty or inverted")
    nyquist = sample_rate_hz / 2.0
    if low_hz >= nyquist:
        raise AnalysisError(
            f"band [{low_hz:g}, {high_hz:g}] Hz lies above the Nyquist frequency {nyquist:g} Hz"
        )
    freqs, power = power_spectrum(values, sample_rate_hz)
    inside = (freqs >= low_hz) & (freqs <= high_hz)
    if not bool(inside.any()):
        raise AnalysisError(
            f"band [{low_hz:g}, {high_hz:g}] Hz holds no frequency bin "
            f"(resolution {freqs[1] - freqs[0]:g} Hz)"
        )
    return float(np.sum(power[inside]))


def spectral_centroid(values: FloatArray, sample_rate_hz: float) -> float:
    """Power-weighted mean frequency of the spectrum, Hz; NaN for a flat signal."""
    freqs, power = power_spectrum(values, sample_rate_hz)
    total = float(np.sum(power))
    return float(np.sum(freqs * power) / total) if total > 0 else float("nan")
