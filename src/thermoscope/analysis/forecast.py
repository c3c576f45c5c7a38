"""Forecasts of a drifting value: how many parts (and hours) until it crosses its limit.

A monitored series is one value per part, in part order (a rule's value, or its EWMA), in the
rule's unit (°C, °C/s...; *the unit* below). The drift model is a hinge: the value sits at its
in-control centre until an onset part, then moves linearly, ``y_t = c + s · max(0, t - τ)``.

- :func:`correct_environment`: regress the value on environment readings (ambient °C, relative
  humidity %, airflow m/s, whatever is present) over the in-control baseline and remove their
  part, so a warm or humid afternoon is not extrapolated as wear.
- :func:`find_onset`: the onset ``τ`` that best fits the hinge to the points after the baseline
  (least squares with the centre fixed; O(n) with suffix sums).
- :func:`theil_sen`: the median of pairwise slopes and Sen's rank confidence interval.
- :func:`forecast_crossing`: onset, then a Theil-Sen line over the points since the onset,
  extrapolated to the limit, with an interval from the slope's confidence interval.

Inputs are never modified; options are keyword-only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from thermoscope.core.errors import ThermoscopeError

FloatArray = npt.NDArray[np.float64]

#: Fewest points since the onset a trend is fitted to.
MIN_TREND_POINTS = 8


class ForecastError(ThermoscopeError, ValueError):
    """A forecast input or option is invalid (too few points, non-finite limit, bad shape...)."""


@dataclass(frozen=True, slots=True)
class TrendFit:
    """The drifting part of a series: a line from the onset on.

    Attributes:
        onset: index of the first drifting point (the hinge ``τ``), 0-based in the series.
        slope: change per part, in the unit per part.
        slope_low, slope_high: the slope's interval (its posterior's central quantiles).
        level: the line's value at the last point, in the unit.
        points: how many points since the onset the line rests on.
        residual_sigma: robust spread of the points about the line (1.4826 · MAD), in the unit.
    """

    onset: int
    slope: float
    slope_low: float
    slope_high: float
    level: float
    points: int
    residual_sigma: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """When a drifting value is expected to cross its limit.

    Parts are counted from the series' last point (0: crossing now). ``math.inf`` means the
    value is not heading to the limit (or, for ``parts_high``, that the slope's interval
    includes no drift at all).

    Attributes:
        limit: the limit, in the unit.
        parts_to_limit: the central forecast, parts after the last point.
        parts_low, parts_high: its interval at ``confidence``.
        crossing_index: the series index of the forecast crossing (last index + parts_to_limit).
        hours_to_limit, hours_low, hours_high: the same in hours at the given part rate
            (``None`` without one).
        confidence: the interval's coverage (0.9: 90 %).
        trend: the fitted line.
    """

    limit: float
    parts_to_limit: float
    parts_low: float
    parts_high: float
    crossing_index: float
    hours_to_limit: float | None
    hours_low: float | None
    hours_high: float | None
    confidence: float
    trend: TrendFit

    @property
    def heading_to_limit(self) -> bool:
        """Whether the whole slope interval moves toward the limit (a finite ``parts_high``)."""
        return math.isfinite(self.parts_high)


def _series(values: npt.ArrayLike, what: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ForecastError(f"{what} must be 1-D, got shape {array.shape}")
    return array


def correct_environment(
    values: npt.ArrayLike,
    readings: Mapping[str, npt.ArrayLike],
    *,
    baseline: int,
    min_t: float = 3.0,
) -> tuple[FloatArray, dict[str, float]]:
    """Remove the part of ``values`` that follows environment readings.

    Fits ``value = a + Σ b_j · reading_j`` by least squares over the first ``baseline`` points
    (the in-control part of the run), keeps a coefficient only when it is at least ``min_t``
    standard errors from zero, and subtracts ``b_j · (reading_j - mean_j)``, the means taken
    over the baseline. A missing reading (NaN) counts as the baseline mean (no correction).

    Args:
        values: one value per part, in the unit.
        readings: environment series by name (``"ambient"`` °C, ``"humidity"`` %, ``"airflow"``
            m/s...), each as long as ``values``.
        baseline: points at the start the coefficients are fitted on (≥ 3 + number of readings).
        min_t: t-statistic a coefficient needs to be used.

    Returns:
        The corrected values (a new array) and the used coefficients, unit per reading unit, by
        name (a reading whose coefficient was not significant is absent).
    """
    y = _series(values, "values")
    names = [name for name in readings]
    columns = []
    for name in names:
        column = _series(readings[name], f"reading {name!r}")
        if column.shape != y.shape:
            raise ForecastError(
                f"reading {name!r} has {column.size} points, the values have {y.size}"
            )
        columns.append(column)
    if not names:
        return y.copy(), {}
    if not len(names) + 3 <= baseline <= y.size:
        raise ForecastError(
            f"baseline must be within [{len(names) + 3}, {y.size}] points, got {baseline}"
        )
    x = np.column_stack(columns)
    base_x = x[:baseline]
    means = np.nanmean(base_x, axis=0) if np.isfinite(base_x).any() else np.zeros(len(names))
    means = np.where(np.isfinite(means), means, 0.0)
    filled = np.where(np.isfinite(x), x, means)
    rows = np.isfinite(y[:baseline])
    design = np.column_stack([np.ones(int(rows.sum())), filled[:baseline][rows] - means])
    target = y[:baseline][rows]
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    dof = target.size - design.shape[1]
    used: dict[str, float] = {}
    if dof > 0:
        residual = target - design @ coef
        s2 = float(residual @ residual) / dof
        gram = design.T @ design
        if np.linalg.matrix_rank(gram) == gram.shape[0]:
            errors = np.sqrt(np.maximum(np.diag(np.linalg.inv(gram)) * s2, 0.0))
            for j, name in enumerate(names):
                b, se = float(coef[j + 1]), float(errors[j + 1])
                if se > 0.0 and abs(b) >= min_t * se:
                    used[name] = b
    corrected = y.copy()
    for j, name in enumerate(names):
        if name in used:
            corrected -= used[name] * (filled[:, j] - means[j])
    return corrected, used


def find_onset(values: npt.ArrayLike, *, center: float, start: int = 0) -> int:
    """The onset of a linear drift from ``center``: the hinge ``τ`` with the least squares.

    For every candidate ``τ`` in ``[start, n - MIN_TREND_POINTS]`` the slope of
    ``y - center = s · max(0, t - τ)`` has a closed form; the one leaving the smallest sum of
    squares wins. Non-finite values are ignored.

    Args:
        values: one value per part, in the unit.
        center: the in-control centre, in the unit.
        start: first candidate index (e.g. the end of the baseline).

    Returns:
        The onset index.
    """
    y = _series(values, "values")
    n = y.size
    if not 0 <= start <= n - MIN_TREND_POINTS:
        raise ForecastError(
            f"need at least {MIN_TREND_POINTS} points after start {start}, the series has {n}"
        )
    t = np.arange(n, dtype=np.float64)
    finite = np.isfinite(y)
    d = np.where(finite, y - center, 0.0)
    w = finite.astype(np.float64)

    def suffix(a: FloatArray) -> FloatArray:
        return np.cumsum(a[::-1])[::-1]

    # Sums over points t > τ: Σ w, Σ w t, Σ w t², Σ d, Σ d t.
    sw, st, stt = suffix(w), suffix(w * t), suffix(w * t * t)
    sd, sdt = suffix(d), suffix(d * t)
    tau = np.arange(start, n - MIN_TREND_POINTS + 1)
    after = tau + 1
    sxy = sdt[after] - tau * sd[after]
    sxx = stt[after] - 2.0 * tau * st[after] + tau * tau * sw[after]
    gain = np.where(sxx > 0.0, sxy * sxy / np.where(sxx > 0.0, sxx, 1.0), 0.0)
    return int(tau[int(np.argmax(gain))])


def theil_sen(
    t: npt.ArrayLike, y: npt.ArrayLike, *, confidence: float = 0.9
) -> tuple[float, float, float, float]:
    """Theil-Sen line: the median of pairwise slopes, and Sen's confidence interval for it.

    Args:
        t: abscissae (part indices), distinct.
        y: values, in the unit.
        confidence: coverage of the interval (0 < confidence < 1).

    Returns:
        ``(slope, intercept, slope_low, slope_high)``: unit per part, the median of
        ``y - slope · t`` (unit), and the interval's bounds.
    """
    x, v = _series(t, "t"), _series(y, "y")
    if x.shape != v.shape:
        raise ForecastError(f"t has {x.size} points, y has {v.size}")
    if not 0.0 < confidence < 1.0:
        raise ForecastError(f"confidence must be within (0, 1), got {confidence}")
    keep = np.isfinite(x) & np.isfinite(v)
    x, v = x[keep], v[keep]
    n = x.size
    if n < 3:
        raise ForecastError(f"a Theil-Sen line needs at least 3 finite points, got {n}")
    i, j = np.triu_indices(n, k=1)
    dx = x[j] - x[i]
    slopes = np.sort((v[j] - v[i])[dx != 0] / dx[dx != 0])
    pairs = slopes.size
    slope = float(np.median(slopes))
    intercept = float(np.median(v - slope * x))
    # Sen (1968): ranks (N ∓ C)/2 of the sorted slopes, C = z · sqrt(Var S), S Kendall's statistic.
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    spread = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    low_rank = max(0, math.floor((pairs - spread) / 2.0))
    high_rank = min(pairs - 1, math.ceil((pairs + spread) / 2.0))
    return slope, intercept, float(slopes[low_rank]), float(slopes[high_rank])


@dataclass(frozen=True, slots=True)
class WearSignature:
    """How fast a value drifted in past runs of the same station: a prior on the drift rate.

    The rate's magnitude is log-normal: ``log|s| ~ N(log_rate, log_sd²)``, in the direction
    ``sign``. Learnt by :func:`learn_wear_signature`.

    Attributes:
        log_rate: mean of ``log|s|``, ``s`` in the unit per part.
        log_sd: standard deviation of ``log|s|`` (0.1: rates vary about ±10 % between runs).
        sign: +1 for a value that rises as the station wears, -1 for one that falls.
        runs: how many past runs it was learnt from.
    """

    log_rate: float
    log_sd: float
    sign: int
    runs: int

    @property
    def rate(self) -> float:
        """The typical (median) signed drift rate, unit per part."""
        return self.sign * math.exp(self.log_rate)


def learn_wear_signature(
    runs: list[tuple[FloatArray, float, int]], *, min_sd: float = 0.05
) -> WearSignature:
    """Learn a station's drift rate from past runs of it.

    Each past run's rate is the Theil-Sen slope of its points since its onset (found by
    :func:`find_onset`), so a few outliers or NG parts do not bend it.

    Args:
        runs: ``(values, center, start)`` per past run: its series (unit), its in-control centre
            (unit) and the first index the drift may start at (the end of its baseline).
        min_sd: floor of ``log_sd`` (a handful of runs underestimates the spread).

    Returns:
        The signature; raises :class:`ForecastError` when the runs disagree on the direction.
    """
    if not runs:
        raise ForecastError("learning a wear signature needs at least one past run")
    slopes = []
    for k, (values, center, start) in enumerate(runs):
        y = _series(values, f"runs[{k}]")
        onset = find_onset(y, center=center, start=start)
        t = np.arange(onset, y.size, dtype=np.float64)
        slope = theil_sen(t, y[onset:])[0]
        if slope == 0.0:
            raise ForecastError(f"runs[{k}] does not drift (slope 0)")
        slopes.append(slope)
    signs = {int(math.copysign(1.0, s)) for s in slopes}
    if len(signs) != 1:
        raise ForecastError("the past runs drift in opposite directions; learn one per direction")
    logs = np.log(np.abs(np.array(slopes)))
    sd = float(logs.std(ddof=1)) if logs.size > 1 else 0.0
    return WearSignature(float(logs.mean()), max(sd, min_sd), signs.pop(), len(slopes))


def _quantiles(values: FloatArray, weights: FloatArray, qs: tuple[float, ...]) -> list[float]:
    """The weighted ``qs`` quantiles of ``values`` (inf allowed), one sort for all."""
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    positions = np.searchsorted(cumulative, np.asarray(qs) * cumulative[-1])
    picked = values[order][np.minimum(positions, values.size - 1)]
    return [float(v) for v in picked]


def _posterior(
    rates: FloatArray,
    width: FloatArray,
    sxx: FloatArray,
    sxy: FloatArray,
    sigma: float,
    signature: WearSignature | None,
) -> FloatArray:
    """Posterior weights of the hinge over onsets (rows) and rates (columns), max 1.

    ``width`` is each rate's share of the grid, so a flat prior in ``s`` on an uneven grid.
    """
    # log likelihood of (τ, s) up to a constant: -(s² Sxx - 2 s Sxy) / 2 sigma²
    loglik = -(rates[None, :] ** 2 * sxx[:, None] - 2.0 * rates[None, :] * sxy[:, None])
    loglik /= 2.0 * sigma * sigma
    logprior = np.log(width)
    if signature is not None:
        magnitude = np.abs(rates)
        z = (np.log(magnitude) - signature.log_rate) / signature.log_sd
        # log-normal density in |s| on the signature's side, none on the other
        side = np.sign(rates) == signature.sign
        logprior = logprior + np.where(side, -0.5 * z * z - np.log(magnitude), -np.inf)
    logpost = loglik + logprior[None, :]
    logpost -= np.max(logpost)
    weight: FloatArray = np.exp(logpost)
    return weight


def forecast_crossing(
    values: npt.ArrayLike,
    *,
    limit: float,
    center: float,
    sigma: float,
    start: int = 0,
    signature: WearSignature | None = None,
    parts_per_hour: float | None = None,
    confidence: float = 0.9,
    grid: int = 200,
) -> Forecast:
    """Forecast when a drifting series crosses ``limit``.

    The hinge ``y_t = center + s · max(0, t - τ) + noise(sigma)`` is weighed over a grid of onsets
    ``τ`` (every index from ``start``) and rates ``s``: the likelihood of the points, times the
    station's :class:`WearSignature` as a prior on ``s`` when one is given (flat otherwise).
    Each ``(τ, s)`` crosses the limit at ``τ + (limit - center) / s``; the forecast is the
    posterior median of that crossing and the interval its central ``confidence`` quantiles.
    The trend reported is the posterior's most likely hinge.

    Args:
        values: one value per part up to now, in the unit (already environment-corrected).
        limit: the limit the drift heads to, in the unit.
        center, sigma: the in-control centre and part-to-part standard deviation, in the unit.
        start: first index the onset may be at (the end of the baseline).
        signature: the station's past drift rates (``None``: the data alone).
        parts_per_hour: the line's rate, to give hours as well (``None``: parts only).
        confidence: coverage of the interval.
        grid: rates on the log grid per direction.

    Returns:
        The forecast; ``parts_to_limit`` is ``math.inf`` when the posterior says the value is
        more likely moving away from the limit than toward it.
    """
    y = _series(values, "values")
    if not all(math.isfinite(v) for v in (limit, center, sigma)) or sigma <= 0.0:
        raise ForecastError(
            f"limit, center and sigma must be finite and sigma > 0, got {limit}, {center}, {sigma}"
        )
    if parts_per_hour is not None and not (math.isfinite(parts_per_hour) and parts_per_hour > 0):
        raise ForecastError(f"parts_per_hour must be positive, got {parts_per_hour}")
    if not 0.0 < confidence < 1.0:
        raise ForecastError(f"confidence must be within (0, 1), got {confidence}")
    if grid < 20:
        raise ForecastError(f"grid must have at least 20 rates, got {grid}")
    n = y.size
    if not 0 <= start <= n - MIN_TREND_POINTS:
        raise ForecastError(
            f"need at least {MIN_TREND_POINTS} points after start {start}, the series has {n}"
        )
    gap = limit - center
    if gap == 0.0:
        raise ForecastError("the limit equals the centre: nothing to forecast")
    toward = math.copysign(1.0, gap)
    t = np.arange(n, dtype=np.float64)
    finite = np.isfinite(y)
    d = np.where(finite, y - center, 0.0)
    w = finite.astype(np.float64)
    tau = np.arange(start, n - MIN_TREND_POINTS + 1, dtype=np.float64)
    after = tau.astype(np.int64) + 1

    def suffix(a: FloatArray) -> FloatArray:
        return np.concatenate([np.cumsum(a[::-1])[::-1], [0.0]])

    sw, st, stt, sd, sdt = (suffix(a) for a in (w, w * t, w * t * t, d, d * t))
    sxy = sdt[after] - tau * sd[after]
    sxx = stt[after] - 2.0 * tau * st[after] + tau * tau * sw[after]
    # Rates: both signs on a log grid wide enough for the data and the prior.
    best = np.abs(sxy / np.maximum(sxx, 1e-12))
    spread = sigma / np.sqrt(np.maximum(sxx, 1e-12))
    high = float(np.max(best + 6.0 * spread))
    low = float(np.min(spread)) * 1e-3
    if signature is not None:
        high = max(high, math.exp(signature.log_rate + 6.0 * signature.log_sd))
        low = min(low, math.exp(signature.log_rate - 6.0 * signature.log_sd))
    magnitude = np.geomspace(max(low, 1e-12), max(high, 2e-12), grid)
    rates = np.concatenate([-magnitude[::-1], magnitude])
    weight = _posterior(rates, np.abs(np.gradient(rates)), sxx, sxy, sigma, signature)
    # Second pass: a fine linear grid over where the coarse posterior has its mass.
    mass = weight.sum(axis=0)
    cumulative = np.cumsum(mass) / mass.sum()
    lo_i = max(0, int(np.searchsorted(cumulative, 1e-4)) - 1)
    hi_i = min(rates.size - 1, int(np.searchsorted(cumulative, 1.0 - 1e-4)) + 1)
    rates = np.linspace(rates[lo_i], rates[hi_i], 2 * grid)
    rates = rates[rates != 0.0]
    weight = _posterior(rates, np.ones_like(rates), sxx, sxy, sigma, signature)
    crossing = np.where(
        np.sign(rates)[None, :] == toward, tau[:, None] + gap / rates[None, :], math.inf
    )
    flat_w, flat_c = weight.ravel(), crossing.ravel()
    tail = (1.0 - confidence) / 2.0
    first, median, second = _quantiles(flat_c, flat_w, (tail, 0.5, 1.0 - tail))
    last = n - 1
    i, j = np.unravel_index(int(np.argmax(weight)), weight.shape)
    onset, slope = int(tau[i]), float(rates[j])
    post_s = weight.sum(axis=0)
    slope_low, slope_high = _quantiles(rates, post_s, (tail, 1.0 - tail))
    fitted = center + slope * np.maximum(0.0, t - onset)
    residual = (y - fitted)[finite]
    trend = TrendFit(
        onset=onset,
        slope=slope,
        slope_low=slope_low,
        slope_high=slope_high,
        level=float(fitted[-1]),
        points=int(np.count_nonzero(finite[onset:])),
        residual_sigma=1.482602218505602 * float(np.median(np.abs(residual - np.median(residual)))),
    )

    def parts(index: float) -> float:
        return max(0.0, index - last)

    def hours(count: float) -> float | None:
        return None if parts_per_hour is None else count / parts_per_hour

    central, parts_low, parts_high = parts(median), parts(first), parts(second)
    return Forecast(
        limit=float(limit),
        parts_to_limit=central,
        parts_low=parts_low,
        parts_high=parts_high,
        crossing_index=last + central,
        hours_to_limit=hours(central),
        hours_low=hours(parts_low),
        hours_high=hours(parts_high),
        confidence=confidence,
        trend=trend,
    )
