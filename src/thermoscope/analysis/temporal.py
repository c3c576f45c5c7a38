"""Heating and cooling curves: a region's temperature per frame against time.

Functions take ``times_s`` (seconds, strictly increasing) and ``values`` (°C, one per time) as
1-D arrays, or a stack of frames for :func:`series_statistic`. Inputs are never modified;
options are keyword-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.analysis.spatial import AnalysisError, Statistic

FloatSeries = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LinearFit:
    """A straight line ``value = intercept + slope * t``.

    Attributes:
        slope: °C/s.
        intercept: °C at t = 0.
        points: how many samples the fit used.
    """

    slope: float
    intercept: float
    points: int


@dataclass(frozen=True, slots=True)
class CurveDeviation:
    """Where a curve strays furthest from its golden curve.

    Attributes:
        value: measured minus golden at that time, °C (signed; largest magnitude).
        time_s: when, seconds.
        index: which sample.
        compared: how many samples lay within the golden curve's time span.
    """

    value: float
    time_s: float
    index: int
    compared: int


def _series(times_s: ArrayLike, values: ArrayLike) -> tuple[FloatSeries, FloatSeries]:
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or v.shape != t.shape:
        raise AnalysisError(f"times and values must be 1-D of one length, got {t.shape}, {v.shape}")
    if t.size > 1 and not bool(np.all(np.diff(t) > 0)):
        raise AnalysisError("times must be strictly increasing")
    return t, v


def series_statistic(
    stack: NDArray[np.floating[Any]],
    mask: NDArray[np.bool_] | None = None,
    *,
    statistic: Statistic,
) -> FloatSeries:
    """One statistic of a region per frame of an (N, H, W) stack, °C, NaN pixels ignored.

    Args:
        stack: the region's crop in every frame.
        mask: (H, W) boolean region inside the crop (``None`` = every pixel).
        statistic: max, min, mean or median.
    """
    if stack.ndim != 3:
        raise AnalysisError(f"stack must be (N, H, W), got shape {stack.shape}")
    if mask is not None and mask.shape != stack.shape[1:]:
        raise AnalysisError(f"mask shape {mask.shape} differs from frame shape {stack.shape[1:]}")
    pixels = stack.reshape(len(stack), -1) if mask is None else stack[:, mask]
    nan_aware = bool(np.isnan(pixels.sum(dtype=np.float64)))
    if statistic == "max":
        out = np.nanmax(pixels, axis=1) if nan_aware else pixels.max(axis=1)
    elif statistic == "min":
        out = np.nanmin(pixels, axis=1) if nan_aware else pixels.min(axis=1)
    elif statistic == "mean":
        pixels64 = pixels.astype(np.float64)
        out = np.nanmean(pixels64, axis=1) if nan_aware else pixels64.mean(axis=1)
    elif statistic == "median":
        out = np.nanmedian(pixels, axis=1) if nan_aware else np.median(pixels, axis=1)
    else:
        raise AnalysisError(f"unknown statistic {statistic!r}")
    return np.asarray(out, dtype=np.float64)


def theil_sen(times_s: ArrayLike, values: ArrayLike) -> LinearFit:
    """Robust straight-line fit: the median of the slopes between every pair of samples.

    NaN samples are left out. Resists up to ~29 % outliers (a glint, a dropped frame).

    Raises:
        AnalysisError: fewer than two valid samples.
    """
    t, v = _series(times_s, values)
    keep = ~np.isnan(v)
    t, v = t[keep], v[keep]
    if t.size < 2:
        raise AnalysisError(f"a rate needs at least 2 samples, got {t.size}")
    i, j = np.triu_indices(t.size, k=1)
    slope = float(np.median((v[j] - v[i]) / (t[j] - t[i])))
    intercept = float(np.median(v - slope * t))
    return LinearFit(slope, intercept, int(t.size))


def heating_rate(
    times_s: ArrayLike,
    values: ArrayLike,
    *,
    window_s: tuple[float, float] | None = None,
) -> LinearFit:
    """Robust (Theil-Sen) slope of a curve, °C/s, over ``window_s`` = [t0, t1] (inclusive).

    A negative slope is cooling. Without a window every sample counts.

    Raises:
        AnalysisError: fewer than two valid samples in the window.
    """
    t, v = _series(times_s, values)
    if window_s is not None:
        t0, t1 = window_s
        if not t0 < t1:
            raise AnalysisError(f"window must have t0 < t1, got [{t0}, {t1}]")
        inside = (t >= t0) & (t <= t1)
        t, v = t[inside], v[inside]
    return theil_sen(t, v)


def time_to_reach(
    times_s: ArrayLike,
    values: ArrayLike,
    temperature: float,
    *,
    direction: Literal["rising", "falling"] = "rising",
) -> float | None:
    """First time the curve reaches ``temperature`` (°C), linearly interpolated, seconds.

    Rising: the first sample at or above it (falling: at or below) and the one before it are
    interpolated; a curve that starts beyond it reaches it at its first time. ``None`` when it
    never does. NaN samples are left out.
    """
    t, v = _series(times_s, values)
    keep = ~np.isnan(v)
    t, v = t[keep], v[keep]
    reached = v >= temperature if direction == "rising" else v <= temperature
    hits = np.flatnonzero(reached)
    if hits.size == 0:
        return None
    k = int(hits[0])
    if k == 0:
        return float(t[0])
    t0, t1, v0, v1 = float(t[k - 1]), float(t[k]), float(v[k - 1]), float(v[k])
    return t0 + (temperature - v0) * (t1 - t0) / (v1 - v0)


def curve_deviation(
    times_s: ArrayLike,
    values: ArrayLike,
    golden_times_s: ArrayLike,
    golden_values: ArrayLike,
) -> CurveDeviation:
    """The largest deviation of a curve from a golden curve (linearly interpolated between its
    points), over the samples within the golden curve's time span.

    Raises:
        AnalysisError: no valid sample lies within the golden curve's time span.
    """
    t, v = _series(times_s, values)
    gt, gv = _series(golden_times_s, golden_values)
    if gt.size < 2:
        raise AnalysisError(f"a golden curve needs at least 2 points, got {gt.size}")
    inside = (t >= gt[0]) & (t <= gt[-1]) & ~np.isnan(v)
    indices = np.flatnonzero(inside)
    if indices.size == 0:
        raise AnalysisError(
            f"no sample between {gt[0]:g} s and {gt[-1]:g} s, the golden curve's span"
        )
    deviation = v[indices] - np.interp(t[indices], gt, gv)
    k = int(np.abs(deviation).argmax())
    index = int(indices[k])
    return CurveDeviation(float(deviation[k]), float(t[index]), index, int(indices.size))
