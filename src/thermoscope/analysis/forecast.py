"""Forecasts of a drifting value: how many parts (and hours) until it crosses its limit.

A monitored series is one value per part, in part order (a rule's value), in the rule's unit
(°C, °C/s...; *the unit* below). The drift model is a generalised hinge: the value sits at its
in-control centre ``c`` until an onset ``τ``, then, with ``u = t - τ``,

    ``y_t = c + h + s · (u + κ · u²)``        (for ``t > τ``)

a step ``h`` (a pump losing part of its flow at once), an initial rate ``s`` and a curvature
``κ`` (accelerating wear: the rate doubles every ``1 / (2κ)`` parts). ``h = κ = 0`` is a
straight ramp.

- :func:`correct_environment`: regress the value on environment readings (ambient °C, relative
  humidity %, airflow m/s, whatever is present) over the in-control baseline and remove their
  part, so a warm or humid afternoon is not extrapolated as wear.
- :func:`fit_wear`: the least-squares hinge of one complete past run (onset, step, rate,
  curvature).
- :func:`learn_wear_signature`: a station's :class:`WearSignature` from the fits of its past
  runs: the spread of each parameter between runs, the prior of the forecasts.
- :func:`forecast_crossing`: weighs the hinge over onsets, rates and (with a signature) the
  station's curvatures and steps, and gives the posterior median crossing with an interval, and
  (with a signature) the odds of the station's wear over no drift at all.

Inputs are never modified; options are keyword-only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

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
    """The drifting part of a series: the posterior's most likely hinge.

    Attributes:
        onset: the hinge ``τ``, 0-based in the series (the first drifting point is ``τ + 1``).
        slope: the initial rate ``s``, in the unit per part.
        slope_low, slope_high: the rate's interval (its posterior's central quantiles).
        step: the step ``h`` at the onset, in the unit (0 without a signature).
        curvature: ``κ``, per part (0 without a signature).
        level: the hinge's value at the last point, in the unit.
        points: how many points since the onset the hinge rests on.
        residual_sigma: robust spread of the points about the hinge (1.4826 · MAD), in the unit.
    """

    onset: int
    slope: float
    slope_low: float
    slope_high: float
    step: float
    curvature: float
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
        trend: the most likely hinge.
        drift_odds: with a wear signature, the Bayes factor of the station's wear over no drift
            (the points since ``start`` staying at the centre); ``None`` without one.
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
    drift_odds: float | None

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


class _Moments(NamedTuple):
    """Sums over the points after each onset ``τ`` (one entry per onset), with ``u = t - τ``
    and ``d`` the deviation from the centre: ``u[k]`` = Σ u^k (k = 0..4), ``ud[k]`` = Σ u^k d
    (k = 0..2); ``dd`` = Σ d² over every point."""

    u: FloatArray  # (5, T)
    ud: FloatArray  # (3, T)
    dd: float


def _moments(d: FloatArray, finite: npt.NDArray[np.bool_], tau: FloatArray) -> _Moments:
    first = int(tau[0])  # no point before the first onset drifts
    t = np.arange(first, d.size, dtype=np.float64)
    u = np.maximum(0.0, t[None, :] - tau[:, None])
    on = (u > 0.0) & finite[None, first:]
    powers = [on.astype(np.float64)]
    for _ in range(4):
        powers.append(powers[-1] * u)
    tail = d[first:]
    return _Moments(
        np.stack([p.sum(axis=1) for p in powers]),
        np.stack([p @ tail for p in powers[:3]]),
        float(d @ d),
    )


class _Sums(NamedTuple):
    """The moments for hinges ``g = u + κu²`` (first axis: κ; second: onset)."""

    gg: FloatArray  # Σ g², (K, T)
    gd: FloatArray  # Σ g d, (K, T)
    g: FloatArray  # Σ g, (K, T)
    points: FloatArray  # points, (T,)
    d: FloatArray  # Σ d, (T,)


def _sums(moments: _Moments, kappas: FloatArray) -> _Sums:
    u, ud = moments.u, moments.ud
    k = kappas[:, None]
    return _Sums(
        u[2][None, :] + 2.0 * k * u[3][None, :] + k * k * u[4][None, :],
        ud[1][None, :] + k * ud[2][None, :],
        u[1][None, :] + k * u[2][None, :],
        u[0],
        ud[0],
    )


class WearFit(NamedTuple):
    """The least-squares hinge of one series (see the module docstring).

    Attributes:
        onset: the hinge ``τ`` (0-based index; the first drifting point is ``τ + 1``).
        step: ``h``, in the unit (0 when not fitted).
        slope: ``s``, in the unit per part.
        curvature: ``κ``, per part (as given).
        sse: the sum of squared residuals over the whole series, in the unit squared.
        points: the finite points it rests on.
    """

    onset: int
    step: float
    slope: float
    curvature: float
    sse: float
    points: int

    def log_likelihood(self) -> float:
        """Gaussian log likelihood at the fitted noise level, up to a constant."""
        n = max(self.points, 1)
        return -0.5 * n * math.log(max(self.sse, 1e-300) / n)


def _fit(moments: _Moments, points: int, tau: FloatArray, step: bool, kappa: float) -> WearFit:
    sums = _sums(moments, np.array([kappa]))
    gg, gd, g = sums.gg[0], sums.gd[0], sums.g[0]
    if step:
        det = gg * sums.points - g * g
        ok = det > 1e-12 * np.maximum(gg * sums.points, 1e-300)
        safe = np.where(ok, det, 1.0)
        slope = np.where(ok, (gd * sums.points - g * sums.d) / safe, 0.0)
        steps = np.where(ok, (gg * sums.d - g * gd) / safe, 0.0)
    else:
        slope = np.where(gg > 0.0, gd / np.where(gg > 0.0, gg, 1.0), 0.0)
        steps = np.zeros_like(slope)
    explained = slope * gd + steps * sums.d
    best = int(np.argmax(explained))
    sse = max(moments.dd - float(explained[best]), 0.0)
    return WearFit(int(tau[best]), float(steps[best]), float(slope[best]), kappa, sse, points)


def fit_wear(
    values: npt.ArrayLike, *, center: float, start: int = 0, step: bool, curvature: float = 0.0
) -> WearFit:
    """Fit the hinge ``c + h + s · (u + κ u²)`` with a given ``κ`` to a complete drifting series.

    For every onset ``τ`` from ``start`` to ``n - MIN_TREND_POINTS`` the rate (and the step
    when ``step``) are the least squares of the points after ``τ`` (the points before stay at
    ``center``); the onset leaving the smallest sum of squares wins. Meant for past runs, where
    the drift has run its course: at a first alarm :func:`forecast_crossing` weighs the hinges
    instead. Non-finite values are ignored.

    Args:
        values: one value per part, in the unit.
        center: the in-control centre, in the unit.
        start: first candidate onset (the end of the baseline).
        step: fit a step at the onset (otherwise ``h = 0``).
        curvature: ``κ`` (≥ 0), per part.
    """
    y = _series(values, "values")
    n = y.size
    if not 0 <= start <= n - MIN_TREND_POINTS:
        raise ForecastError(
            f"need at least {MIN_TREND_POINTS} points after start {start}, the series has {n}"
        )
    if not curvature >= 0.0:
        raise ForecastError(f"curvature must be >= 0, got {curvature}")
    finite = np.isfinite(y)
    tau = np.arange(start, n - MIN_TREND_POINTS + 1, dtype=np.float64)
    moments = _moments(np.where(finite, y - center, 0.0), finite, tau)
    return _fit(moments, int(finite.sum()), tau, step, curvature)


@dataclass(frozen=True, slots=True)
class WearSignature:
    """How a value drifted in past runs of the same station: the prior of its forecasts.

    The rate's magnitude is log-normal, ``log|s| ~ N(log_rate, log_sd²)`` in the direction
    ``sign``; the curvature ``κ ~ N(curvature, curvature_sd²)`` and the step
    ``h ~ N(step, step_sd²)`` (see the module docstring). A straight wear has curvature and step
    0. Learnt by :func:`learn_wear_signature`.

    Attributes:
        log_rate: mean of ``log|s|``, ``s`` in the unit per part.
        log_sd: standard deviation of ``log|s|`` (0.1: rates vary about ±10 % between runs).
        sign: +1 for a value that rises as the station wears, -1 for one that falls.
        runs: how many past runs it was learnt from.
        shape: the wear's shape, one of :data:`WEAR_SHAPES`.
        curvature, curvature_sd: mean and spread of ``κ``, per part.
        step, step_sd: mean and spread of ``h``, in the unit (signed like the drift).
    """

    log_rate: float
    log_sd: float
    sign: int
    runs: int
    shape: str = "linear"
    curvature: float = 0.0
    curvature_sd: float = 0.0
    step: float = 0.0
    step_sd: float = 0.0

    def __post_init__(self) -> None:
        if self.sign not in (-1, 1) or self.runs < 1:
            raise ForecastError(f"sign must be ±1 and runs >= 1, got {self.sign}, {self.runs}")
        if self.shape not in WEAR_SHAPES:
            raise ForecastError(f"unknown wear shape {self.shape!r}")
        if not (self.log_sd > 0.0 and self.curvature_sd >= 0.0 and self.step_sd >= 0.0):
            raise ForecastError("log_sd must be > 0, curvature_sd and step_sd >= 0")

    @property
    def rate(self) -> float:
        """The typical (median) signed initial drift rate, unit per part."""
        return self.sign * math.exp(self.log_rate)

    @property
    def doubling_parts(self) -> float:
        """Parts over which the rate doubles (``math.inf`` without curvature)."""
        return 0.5 / self.curvature if self.curvature > 0.0 else math.inf


#: Wear shapes a signature chooses between: name -> (step fitted, curvature fitted).
WEAR_SHAPES = {
    "linear": (False, False),
    "step+ramp": (True, False),
    "accelerating": (False, True),
    "step+accelerating": (True, True),
}

#: Curvatures (per part) the station's shared ``κ`` is searched over: 0 and a log grid.
CURVATURE_GRID = np.concatenate([[0.0], np.geomspace(1e-6, 1e-1, 101)])


def learn_wear_signature(
    runs: list[tuple[FloatArray, float, int]], *, min_sd: float = 0.05
) -> WearSignature:
    """Learn a station's wear from complete past runs of it.

    Each shape of :data:`WEAR_SHAPES` is fitted to every run by :func:`fit_wear`: the rate (and
    step) per run, the curvature shared by the runs (the wear's mechanism; searched over
    :data:`CURVATURE_GRID`). The shape with the least Bayesian information criterion over all
    runs is the station's (a step or a curvature only where the runs need one); the signature is
    the mean and spread of its rate and step between the runs and its curvature with the spread
    of the profile likelihood (its values within 1/2 of the best log likelihood).

    Args:
        runs: ``(values, center, start)`` per past run: its series (unit), its in-control centre
            (unit) and the first index the drift may start at (the end of its baseline).
        min_sd: floor of ``log_sd``, and of ``curvature_sd`` and ``step_sd`` relative to the
            curvature and the mean step (a handful of runs underestimates the spread).

    Returns:
        The signature; raises :class:`ForecastError` when the runs disagree on the direction.
    """
    if not runs:
        raise ForecastError("learning a wear signature needs at least one past run")
    prepared = []
    for k, (values, center, start) in enumerate(runs):
        y = _series(values, f"runs[{k}]")
        if not 0 <= start <= y.size - MIN_TREND_POINTS:
            raise ForecastError(
                f"runs[{k}]: need at least {MIN_TREND_POINTS} points after start {start}, "
                f"the series has {y.size}"
            )
        finite = np.isfinite(y)
        tau = np.arange(start, y.size - MIN_TREND_POINTS + 1, dtype=np.float64)
        moments = _moments(np.where(finite, y - center, 0.0), finite, tau)
        prepared.append((moments, int(finite.sum()), tau))
    total = sum(points for _, points, _ in prepared)
    best: tuple[float, str, list[WearFit], float] | None = None
    for shape, (with_step, curved) in WEAR_SHAPES.items():
        grid = CURVATURE_GRID[1:] if curved else CURVATURE_GRID[:1]
        profile = []
        for kappa in grid:
            fits = [_fit(m, n, tau, with_step, float(kappa)) for m, n, tau in prepared]
            profile.append((sum(f.log_likelihood() for f in fits), fits))
        loglik = np.array([value for value, _ in profile])
        top = int(np.argmax(loglik))
        parameters = len(prepared) * (2 + with_step) + curved
        bic = -2.0 * float(loglik[top]) + parameters * math.log(total)
        near = grid[loglik >= loglik[top] - 0.5]
        kappa_sd = float(near.max() - near.min()) / 2.0 if curved else 0.0
        if best is None or bic < best[0]:
            best = (bic, shape, profile[top][1], kappa_sd)
    assert best is not None
    _, shape, fits, kappa_sd = best
    for k, fit in enumerate(fits):
        if fit.slope == 0.0:
            raise ForecastError(f"runs[{k}] does not drift (slope 0)")
    signs = {int(math.copysign(1.0, f.slope)) for f in fits}
    if len(signs) != 1:
        raise ForecastError("the past runs drift in opposite directions; learn one per direction")

    def spread(a: FloatArray) -> float:
        return float(a.std(ddof=1)) if a.size > 1 else 0.0

    logs = np.log(np.abs(np.array([f.slope for f in fits])))
    steps = np.array([f.step for f in fits])
    curvature, step = fits[0].curvature, float(steps.mean())
    return WearSignature(
        float(logs.mean()),
        max(spread(logs), min_sd),
        signs.pop(),
        len(fits),
        shape,
        curvature,
        max(kappa_sd, min_sd * curvature),
        step,
        max(spread(steps), min_sd * abs(step)),
    )


def _quantiles(values: FloatArray, weights: FloatArray, qs: tuple[float, ...]) -> list[float]:
    """The weighted ``qs`` quantiles of ``values`` (inf allowed), one sort for all; weights
    below 1e-12 of the largest are left out."""
    kept = weights > 1e-12 * weights.max()
    values, weights = values[kept], weights[kept]
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    positions = np.searchsorted(cumulative, np.asarray(qs) * cumulative[-1])
    picked = values[order][np.minimum(positions, values.size - 1)]
    return [float(v) for v in picked]


#: Quantiles of the signature's curvature a forecast weighs (equal weights).
CURVATURE_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)


def _log_likelihood(
    rates: FloatArray, sums: _Sums, sigma: float, signature: WearSignature | None
) -> tuple[FloatArray, FloatArray]:
    """Log likelihood of every (curvature, onset, rate) over no drift, the step integrated out
    under the signature's prior (none without a signature), and the step's posterior mean.
    Both (K, T, S)."""
    s = rates[None, None, :]
    var = sigma * sigma
    loglik = -(s * s * sums.gg[..., None] - 2.0 * s * sums.gd[..., None]) / (2.0 * var)
    if signature is None or signature.step_sd == 0.0:
        step = 0.0 if signature is None else signature.step
        loglik -= (step * step * sums.points - 2.0 * step * sums.d)[None, :, None] / (2.0 * var)
        loglik -= (step * s * sums.g[..., None]) / var
        return loglik, np.full(loglik.shape, step)
    mu, v = signature.step, signature.step_sd**2
    precision = (sums.points / var + 1.0 / v)[None, :, None]
    pull = (sums.d[None, :, None] - s * sums.g[..., None]) / var + mu / v
    loglik += pull * pull / (2.0 * precision) - mu * mu / (2.0 * v) - 0.5 * np.log(precision * v)
    return loglik, pull / precision


def _log_rate_prior(rates: FloatArray, signature: WearSignature | None) -> FloatArray:
    """Log prior of each rate per unit rate: flat without a signature, else its log-normal on
    the signature's side (-inf on the other)."""
    if signature is None:
        return np.zeros_like(rates)
    magnitude = np.abs(rates)
    z = (np.log(magnitude) - signature.log_rate) / signature.log_sd
    density = -0.5 * z * z - np.log(magnitude * signature.log_sd * math.sqrt(2.0 * math.pi))
    return np.where(np.sign(rates) == signature.sign, density, -np.inf)


def _logsumexp(a: FloatArray) -> float:
    top = float(np.max(a))
    return top + math.log(float(np.exp(a - top).sum())) if math.isfinite(top) else top


def _crossing(
    tau: FloatArray, rates: FloatArray, kappas: FloatArray, steps: FloatArray, gap: float
) -> FloatArray:
    """The index where each hinge (K, T, S) reaches ``gap`` (inf: never)."""
    s = rates[None, None, :]
    kappa = kappas[:, None, None]
    toward = np.sign(s) == math.copysign(1.0, gap)
    beyond = (steps - gap) * math.copysign(1.0, gap) >= 0.0
    remaining = np.where(toward, (gap - steps) / np.where(s == 0.0, 1.0, s), -1.0)
    radicand = 1.0 + 4.0 * kappa * remaining
    root = 2.0 * remaining / (1.0 + np.sqrt(np.maximum(radicand, 0.0)))
    u = np.where(beyond, 0.0, np.where(toward & (radicand >= 0.0), root, math.inf))
    return tau[None, :, None] + np.maximum(u, 1.0)


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
    grid: int = 100,
) -> Forecast:
    """Forecast when a drifting series crosses ``limit``.

    The hinge ``y_t = center + h + s · (u + κu²) + noise(sigma)`` (``u = t - τ``) is weighed
    over every onset ``τ`` from ``start`` and a grid of rates ``s``: the likelihood of the
    points, times, with the station's :class:`WearSignature`, its log-normal prior on ``s``,
    its curvatures (the quantiles :data:`CURVATURE_QUANTILES` of its ``κ``) and its normal prior
    on the step ``h`` (integrated out in closed form); without a signature the rate's prior is
    flat and ``h = κ = 0``. Each hinge crosses the limit where it reaches it; the forecast is
    the posterior median of that crossing and the interval its central ``confidence`` quantiles.

    Args:
        values: one value per part up to now, in the unit (already environment-corrected).
        limit: the limit the drift heads to, in the unit.
        center, sigma: the in-control centre and part-to-part standard deviation, in the unit.
        start: first index the onset may be at (the end of the baseline).
        signature: the station's past wear (``None``: the data alone).
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
    finite = np.isfinite(y)
    d = np.where(finite, y - center, 0.0)
    # With a signature's proper prior on the rate an onset may be as late as the last point but
    # one (a step seen on a single part); from the data alone a rate needs a trend to rest on.
    last_onset = n - 2 if signature is not None else n - MIN_TREND_POINTS
    tau = np.arange(start, last_onset + 1, dtype=np.float64)
    if signature is None:
        kappas = np.zeros(1)
    else:
        z = np.array([NormalDist().inv_cdf(q) for q in CURVATURE_QUANTILES])
        kappas = np.maximum(signature.curvature + signature.curvature_sd * z, 0.0)
    sums = _sums(_moments(d, finite, tau), kappas)
    # Rates: both signs on a log grid wide enough for the data and the prior.
    best = np.abs(sums.gd / np.maximum(sums.gg, 1e-12))
    spread = sigma / np.sqrt(np.maximum(sums.gg, 1e-12))
    high = float(np.max(best + 6.0 * spread))
    low = float(np.min(spread)) * 1e-3
    if signature is not None:
        high = max(high, math.exp(signature.log_rate + 6.0 * signature.log_sd))
        low = min(low, math.exp(signature.log_rate - 6.0 * signature.log_sd))
    magnitude = np.geomspace(max(low, 1e-12), max(high, 2e-12), grid)
    if signature is None:
        rates = np.concatenate([-magnitude[::-1], magnitude])
    else:  # the prior has no mass on the other side
        rates = magnitude if signature.sign > 0 else -magnitude[::-1]
    width = np.abs(np.gradient(rates))
    loglik, _ = _log_likelihood(rates, sums, sigma, signature)
    logpost = loglik + (np.log(width) + _log_rate_prior(rates, signature))[None, None, :]
    odds = None
    if signature is not None:
        # the prior: curvatures and onsets equally likely, the rate's density times its cell
        evidence = _logsumexp(logpost) - math.log(kappas.size * tau.size)
        odds = math.exp(min(evidence, 700.0))
    # Second pass: a fine linear grid over where the coarse posterior has its mass, on the
    # onsets that carry any (a negligible onset changes no quantile).
    coarse = np.exp(logpost - np.max(logpost))
    onsets = coarse.sum(axis=(0, 2))
    held = onsets > 1e-12 * onsets.max()
    tau = tau[held]
    sums = _Sums(
        sums.gg[:, held], sums.gd[:, held], sums.g[:, held], sums.points[held], sums.d[held]
    )
    mass = coarse.sum(axis=(0, 1))
    cumulative = np.cumsum(mass) / mass.sum()
    lo_i = max(0, int(np.searchsorted(cumulative, 1e-4)) - 1)
    hi_i = min(rates.size - 1, int(np.searchsorted(cumulative, 1.0 - 1e-4)) + 1)
    rates = np.linspace(rates[lo_i], rates[hi_i], 2 * grid)
    rates = rates[rates != 0.0]
    loglik, steps = _log_likelihood(rates, sums, sigma, signature)
    logpost = loglik + _log_rate_prior(rates, signature)[None, None, :]
    weight = np.exp(logpost - np.max(logpost))
    crossing = _crossing(tau, rates, kappas, steps, gap)
    tail = (1.0 - confidence) / 2.0
    first, median, second = _quantiles(crossing.ravel(), weight.ravel(), (tail, 0.5, 1.0 - tail))
    last = n - 1
    k, i, j = np.unravel_index(int(np.argmax(weight)), weight.shape)
    onset, slope, kappa = int(tau[i]), float(rates[j]), float(kappas[k])
    step = float(steps[k, i, j])
    slope_low, slope_high = _quantiles(rates, weight.sum(axis=(0, 1)), (tail, 1.0 - tail))
    u = np.maximum(0.0, np.arange(n, dtype=np.float64) - onset)
    fitted = center + np.where(u > 0.0, step + slope * (u + kappa * u * u), 0.0)
    residual = (y - fitted)[finite]
    trend = TrendFit(
        onset=onset,
        slope=slope,
        slope_low=slope_low,
        slope_high=slope_high,
        step=step,
        curvature=kappa,
        level=float(fitted[-1]),
        points=int(np.count_nonzero(finite[onset + 1 :])),
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
        drift_odds=odds,
    )
