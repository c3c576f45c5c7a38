"""Statistical process control on a production run: one value per part, in part order.

Every function takes a 1-D series of a rule's value (°C for temperatures, °C/s for rates, or
whatever unit the rule reports; call it *the unit* below) and returns arrays in that same unit,
or a small frozen dataclass of them. Inputs are never modified. Options are keyword-only.

- :func:`estimate_baseline`: the in-control centre and sigma from the first parts of a run
  (mean/standard deviation, median/MAD, or mean/moving range).
- :func:`fit_ambient` and :func:`compensate_ambient`: regress the value on the ambient temperature
  over the baseline and remove that component, so a warm afternoon is not reported as drift;
  :func:`ambient_margin` widens the charts' limits by what the slope's uncertainty may leave.
- :func:`ewma`: exponentially weighted moving average chart with its exact time-varying limits.
- :func:`cusum`: tabular (upper and lower) CUSUM, optionally restarted after each signal.
- :func:`nelson_rules` and :func:`western_electric_rules`: which points complete which pattern.

Conventions: charts start at the centre (EWMA ``z_0 = centre``, CUSUM sums at 0), a point is out of
control when strictly beyond a limit, and a run rule flags the point that completes its pattern
(the earliest part at which it can be seen), not the earlier points of the pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from thermoscope.core.errors import ThermoscopeError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BaselineMethod = Literal["mean_std", "median_mad", "moving_range"]

#: sigma of a normal distribution over its median absolute deviation (1 / Φ⁻¹(3/4)).
MAD_TO_SIGMA = 1.482602218505602
#: Mean moving range of two consecutive normal values over sigma (the control-chart constant d₂).
MOVING_RANGE_D2 = 2.0 / math.sqrt(math.pi)

#: Nelson's eight rules; sigma is the baseline standard deviation, "the centre" its centre line.
NELSON_RULES: dict[int, str] = {
    1: "one point more than 3 sigma from the centre",
    2: "9 points in a row on the same side of the centre",
    3: "6 points in a row steadily increasing or decreasing",
    4: "14 points in a row alternating up and down",
    5: "2 of 3 points in a row more than 2 sigma from the centre on the same side",
    6: "4 of 5 points in a row more than 1 sigma from the centre on the same side",
    7: "15 points in a row within 1 sigma of the centre",
    8: "8 points in a row more than 1 sigma from the centre, on both sides",
}

#: The Western Electric zone rules (1-3 are Nelson's 1, 5 and 6).
WESTERN_ELECTRIC_RULES: dict[int, str] = {
    1: "one point more than 3 sigma from the centre",
    2: "2 of 3 points in a row more than 2 sigma from the centre on the same side",
    3: "4 of 5 points in a row more than 1 sigma from the centre on the same side",
    4: "8 points in a row on the same side of the centre",
}

# Pattern lengths of the run rules above, shared with incremental implementations.
SAME_SIDE_RUN = 9  # Nelson 2
TREND_RUN = 6  # Nelson 3 (points, i.e. 5 successive increases)
ALTERNATING_RUN = 14  # Nelson 4 (points, i.e. 13 differences alternating in sign)
HUGGING_RUN = 15  # Nelson 7
MIXTURE_RUN = 8  # Nelson 8
WE_SAME_SIDE_RUN = 8  # Western Electric 4
TWO_OF_THREE = (2, 3, 2.0)  # (count, window, sigma distance): Nelson 5 / WE 2
FOUR_OF_FIVE = (4, 5, 1.0)  # Nelson 6 / WE 3

_EWMA_BLOCK = 4096


class ControlChartError(ThermoscopeError, ValueError):
    """A control-chart input or option is invalid (wrong shape, non-finite value, bad sigma...)."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """The in-control level of a value.

    Attributes:
        center: centre line, in the value's unit.
        sigma: standard deviation of one part's value, in the value's unit (may be 0 for a
            constant series; charts refuse it).
        count: number of values it was estimated from.
        method: the estimator used.
    """

    center: float
    sigma: float
    count: int
    method: BaselineMethod


@dataclass(frozen=True, slots=True)
class AmbientFit:
    """Least-squares slope of a value against the ambient temperature.

    Attributes:
        slope: change of the value per °C of ambient (the value's unit per °C).
        reference: mean ambient over the fit, °C; compensated values are "at this ambient".
        stderr: standard error of ``slope`` (``inf`` when the ambient did not vary).
        count: number of (value, ambient) pairs.
    """

    slope: float
    reference: float
    stderr: float
    count: int

    @property
    def t_ratio(self) -> float:
        """``|slope| / stderr``: how clearly the data show an ambient dependence (0 if none)."""
        if self.slope == 0.0:
            return 0.0
        return abs(self.slope) / self.stderr if self.stderr > 0 else math.inf


@dataclass(frozen=True, slots=True)
class EwmaResult:
    """An EWMA chart: ``z_i = λ x_i + (1 - λ) z_{i-1}``, ``z_0`` at the centre.

    Attributes:
        statistic: ``z_i`` per point, in the value's unit.
        lower, upper: the exact limits ``centre ∓ (L sigma √(λ/(2-λ) (1 - (1-λ)^{2i})) +
            margin_i)`` per point (``i`` from 1), in the value's unit.
        high: ``statistic > upper`` (drifting up).
        low: ``statistic < lower`` (drifting down).
    """

    statistic: FloatArray
    lower: FloatArray
    upper: FloatArray
    high: BoolArray
    low: BoolArray

    @property
    def signal(self) -> BoolArray:
        """Points out of control in either direction."""
        return self.high | self.low


@dataclass(frozen=True, slots=True)
class CusumResult:
    """A tabular CUSUM: reference value ``K = k * sigma``, decision interval ``H = h * sigma``.

    ``upper_i = max(0, upper_{i-1} + x_i - (centre + K))`` and
    ``lower_i = max(0, lower_{i-1} + (centre - K) - x_i)``, both starting at 0 (``K`` plus the
    point's margin when one is given; both back to 0 after a signal when restarted).

    Attributes:
        upper: cumulative excess above ``centre + K``, ≥ 0, in the value's unit.
        lower: cumulative shortfall below ``centre - K``, ≥ 0, in the value's unit.
        limit: the decision interval ``H``, in the value's unit.
        high: ``upper > H`` (drifting up).
        low: ``lower > H`` (drifting down).
    """

    upper: FloatArray
    lower: FloatArray
    limit: float
    high: BoolArray
    low: BoolArray

    @property
    def signal(self) -> BoolArray:
        """Points out of control in either direction."""
        return self.high | self.low


@dataclass(frozen=True, slots=True)
class RuleFlags:
    """Which points complete which run-rule pattern.

    Attributes:
        family: ``"nelson"`` or ``"western_electric"``.
        flags: ``(number of rules, number of points)``; row ``r - 1`` is rule ``r``.
    """

    family: Literal["nelson", "western_electric"]
    flags: BoolArray

    def rule(self, number: int) -> BoolArray:
        """The points flagged by rule ``number`` (from 1)."""
        if not 1 <= number <= self.flags.shape[0]:
            raise ControlChartError(f"{self.family} has rules 1..{self.flags.shape[0]}")
        row: BoolArray = self.flags[number - 1]
        return row

    @property
    def any(self) -> BoolArray:
        """Points flagged by at least one rule."""
        return np.asarray(self.flags.any(axis=0), dtype=np.bool_)


def estimate_baseline(
    values: npt.ArrayLike,
    *,
    method: BaselineMethod = "mean_std",
    parts: int | None = None,
) -> Baseline:
    """Centre and sigma of in-control values.

    Args:
        values: a value per part (any unit), in part order.
        method: ``"mean_std"`` (mean, sample standard deviation), ``"median_mad"`` (median,
            1.4826 * median absolute deviation: robust to a few outliers), or ``"moving_range"``
            (mean, mean |x_i - x_{i-1}| / 1.128: short-term sigma, insensitive to a slow trend).
        parts: use only the first ``parts`` values (all of them when None).

    Returns:
        The baseline in the unit of ``values``.
    """
    x = _series(values, "values")
    if parts is not None:
        if parts < 2:
            raise ControlChartError(f"a baseline needs at least 2 parts, got parts={parts}")
        x = x[:parts]
    if x.size < 2:
        raise ControlChartError(f"a baseline needs at least 2 values, got {x.size}")
    if method == "mean_std":
        center, sigma = float(np.mean(x)), float(np.std(x, ddof=1))
    elif method == "median_mad":
        center = float(np.median(x))
        sigma = MAD_TO_SIGMA * float(np.median(np.abs(x - center)))
    elif method == "moving_range":
        center = float(np.mean(x))
        sigma = float(np.mean(np.abs(np.diff(x)))) / MOVING_RANGE_D2
    else:
        raise ControlChartError(f"unknown baseline method {method!r}")
    return Baseline(center=center, sigma=sigma, count=int(x.size), method=method)


def fit_ambient(values: npt.ArrayLike, ambient: npt.ArrayLike) -> AmbientFit:
    """Ordinary least-squares slope of ``values`` on ``ambient``.

    Args:
        values: a value per part (any unit), e.g. over the baseline parts.
        ambient: the ambient temperature at each of those parts, °C.

    Returns:
        The slope (value unit per °C), the mean ambient (°C) and the slope's standard error.
        When the ambient did not vary the slope is 0 with an infinite standard error.
    """
    x = _series(values, "values")
    a = _series(ambient, "ambient")
    if a.shape != x.shape:
        raise ControlChartError(f"{a.size} ambient readings for {x.size} values")
    if x.size < 3:
        raise ControlChartError(f"an ambient fit needs at least 3 parts, got {x.size}")
    reference = float(np.mean(a))
    da = a - reference
    dx = x - np.mean(x)
    sxx = float(np.dot(da, da))
    if sxx <= 0.0:
        return AmbientFit(slope=0.0, reference=reference, stderr=math.inf, count=int(x.size))
    slope = float(np.dot(da, dx)) / sxx
    residual = dx - slope * da
    stderr = math.sqrt(float(np.dot(residual, residual)) / (x.size - 2) / sxx)
    return AmbientFit(slope=slope, reference=reference, stderr=stderr, count=int(x.size))


def compensate_ambient(
    values: npt.ArrayLike, ambient: npt.ArrayLike, *, slope: float, reference: float
) -> FloatArray:
    """The values as they would read at the reference ambient.

    Args:
        values: a value per part (any unit).
        ambient: the ambient temperature at each part, °C.
        slope: value unit per °C of ambient (from :func:`fit_ambient` or known physics).
        reference: the ambient the result refers to, °C.

    Returns:
        ``values - slope * (ambient - reference)``, a new array in the unit of ``values``.
    """
    x = _series(values, "values")
    a = _series(ambient, "ambient")
    if a.shape != x.shape:
        raise ControlChartError(f"{a.size} ambient readings for {x.size} values")
    _check_finite(slope, "slope")
    _check_finite(reference, "reference")
    return x - slope * (a - reference)


def ambient_margin(
    ambient: npt.ArrayLike, *, reference: float, stderr: float, coverage: float = 3.0
) -> FloatArray:
    """What an estimated ambient slope may leave in compensated values, per part.

    A slope off by ``δ`` leaves ``δ (ambient - reference)`` in a compensated value; this is its
    size for ``δ = coverage * stderr``, to widen the charts' limits with (``margin`` of
    :func:`ewma` and :func:`cusum`). The ambient moves slowly, so the current offset also
    stands for the recent ones an EWMA remembers.

    Args:
        ambient: the ambient temperature at each part, °C.
        reference: the ambient the compensation refers to, °C.
        stderr: standard error of the slope (value unit per °C), finite, ≥ 0.
        coverage: how many standard errors to allow for, ≥ 0.

    Returns:
        A margin per part, ≥ 0, in the value's unit.
    """
    a = _series(ambient, "ambient")
    _check_finite(reference, "reference")
    if not (math.isfinite(stderr) and stderr >= 0.0 and math.isfinite(coverage) and coverage >= 0):
        raise ControlChartError(
            f"stderr and coverage must be finite and >= 0, got {stderr} and {coverage}"
        )
    return coverage * stderr * np.abs(a - reference)


def ewma_limit_factor(index: npt.ArrayLike, *, lam: float) -> FloatArray:
    """``√(λ/(2-λ) (1 - (1-λ)^{2i}))``: the EWMA's own sigma at point ``i`` (from 1), in sigmas."""
    exponent = np.minimum(2.0 * np.asarray(index, dtype=np.float64), ewma_decay_horizon(lam))
    return np.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** exponent))


def ewma_decay_horizon(lam: float) -> float:
    """The exponent past which ``(1 - λ)^e`` (< 1e-20) no longer changes an EWMA limit.

    Capping the exponent there gives the same limits and spares slow subnormal arithmetic.
    """
    return math.log(1e-20) / math.log1p(-lam) if lam < 1.0 else 1.0


def ewma(
    values: npt.ArrayLike,
    *,
    center: float,
    sigma: float,
    lam: float = 0.1,
    width: float = 3.0,
    margin: npt.ArrayLike = 0.0,
) -> EwmaResult:
    """EWMA control chart with exact time-varying limits.

    Args:
        values: a value per part (any unit), in part order, all finite.
        center: in-control mean, in the value's unit (the chart starts there).
        sigma: in-control standard deviation of one value, in the value's unit, > 0.
        lam: weight λ of the newest value, 0 < λ ≤ 1 (small λ: long memory, small shifts).
        width: L, the limits' distance from the centre in units of the EWMA's own sigma.
        margin: added to both limits' distance from the centre, per point or one for all, ≥ 0,
            in the value's unit (e.g. :func:`ambient_margin`).

    Returns:
        The statistic, its limits and the points beyond them, in the value's unit.
    """
    x = _series(values, "values")
    _check_chart(center, sigma)
    if not 0.0 < lam <= 1.0:
        raise ControlChartError(f"EWMA λ must be in (0, 1], got {lam}")
    if not width > 0.0:
        raise ControlChartError(f"EWMA width L must be > 0, got {width}")
    extra = _margin(margin, x.shape)
    statistic = center + _ewma_filter(x - center, lam)
    half = width * sigma * ewma_limit_factor(np.arange(1, x.size + 1), lam=lam) + extra
    lower, upper = center - half, center + half
    return EwmaResult(statistic, lower, upper, statistic > upper, statistic < lower)


def cusum(
    values: npt.ArrayLike,
    *,
    center: float,
    sigma: float,
    k: float = 0.5,
    h: float = 5.0,
    restart: bool = False,
    margin: npt.ArrayLike = 0.0,
) -> CusumResult:
    """Tabular CUSUM, upper and lower.

    Args:
        values: a value per part (any unit), in part order, all finite.
        center: in-control mean, in the value's unit.
        sigma: in-control standard deviation of one value, in the value's unit, > 0.
        k: reference value (allowance) in sigma: about half the shift to detect, ≥ 0.
        h: decision interval in sigma, > 0.
        restart: start both sums again from 0 after each point beyond ``H`` (as after an
            investigated signal), so that a long excursion leaves no large sum behind.
        margin: added to the allowance ``K``, per point or one for all, ≥ 0, in the value's
            unit (e.g. :func:`ambient_margin`).

    Returns:
        Both cumulative sums and where they exceed ``H = h * sigma``, in the value's unit.
    """
    x = _series(values, "values")
    _check_chart(center, sigma)
    if not k >= 0.0:
        raise ControlChartError(f"CUSUM k must be >= 0, got {k}")
    if not h > 0.0:
        raise ControlChartError(f"CUSUM h must be > 0, got {h}")
    allowance = k * sigma + _margin(margin, x.shape)
    rise, fall = x - (center + allowance), (center - allowance) - x
    limit = h * sigma
    if restart:
        upper, lower = _restarted_sums(rise, fall, limit)
    else:
        upper, lower = _reflected_sum(rise), _reflected_sum(fall)
    return CusumResult(upper, lower, limit, upper > limit, lower > limit)


def nelson_rules(values: npt.ArrayLike, *, center: float, sigma: float) -> RuleFlags:
    """Nelson's rules 1-8 (see :data:`NELSON_RULES`).

    A point is flagged by a rule when it completes that rule's pattern; for the "k of m" rules
    (5 and 6) the flagged point is itself one of the k, and the window may be shorter than m at
    the start of the series. A point exactly on the centre line is on neither side, and equal
    consecutive values are neither increasing nor decreasing.

    Args:
        values: a value per part (any unit), in part order, all finite.
        center: centre line, in the value's unit.
        sigma: in-control standard deviation, in the value's unit, > 0.

    Returns:
        Flags of shape ``(8, len(values))``.
    """
    x = _series(values, "values")
    _check_chart(center, sigma)
    if x.size == 0:
        return RuleFlags("nelson", np.zeros((len(NELSON_RULES), 0), dtype=np.bool_))
    z = (x - center) / sigma
    d = np.diff(x)
    rising = _point_runs(d > 0)
    falling = _point_runs(d < 0)
    alternating = np.zeros(x.size, dtype=np.int64)
    if d.size >= 2:
        # A point whose two preceding differences change sign extends the alternation.
        alternating[2:] = _runs((d[1:] * d[:-1]) < 0)
    count, window, distance = TWO_OF_THREE
    count6, window6, distance6 = FOUR_OF_FIVE
    beyond_1 = np.abs(z) > 1.0
    mixture = (
        (_window_count(beyond_1, MIXTURE_RUN) == MIXTURE_RUN)
        & (_window_count(z > 1.0, MIXTURE_RUN) > 0)
        & (_window_count(z < -1.0, MIXTURE_RUN) > 0)
    )
    flags = np.stack(
        [
            np.abs(z) > 3.0,
            (_runs(z > 0) >= SAME_SIDE_RUN) | (_runs(z < 0) >= SAME_SIDE_RUN),
            (rising >= TREND_RUN - 1) | (falling >= TREND_RUN - 1),
            alternating >= ALTERNATING_RUN - 2,
            _k_of_m(z, count, window, distance),
            _k_of_m(z, count6, window6, distance6),
            _runs(np.abs(z) < 1.0) >= HUGGING_RUN,
            mixture,
        ]
    )
    return RuleFlags("nelson", flags)


def western_electric_rules(values: npt.ArrayLike, *, center: float, sigma: float) -> RuleFlags:
    """The four Western Electric zone rules (see :data:`WESTERN_ELECTRIC_RULES`).

    Same conventions as :func:`nelson_rules`.

    Returns:
        Flags of shape ``(4, len(values))``.
    """
    x = _series(values, "values")
    _check_chart(center, sigma)
    z = (x - center) / sigma
    count, window, distance = TWO_OF_THREE
    count3, window3, distance3 = FOUR_OF_FIVE
    flags = np.stack(
        [
            np.abs(z) > 3.0,
            _k_of_m(z, count, window, distance),
            _k_of_m(z, count3, window3, distance3),
            (_runs(z > 0) >= WE_SAME_SIDE_RUN) | (_runs(z < 0) >= WE_SAME_SIDE_RUN),
        ]
    )
    return RuleFlags("western_electric", flags)


def _series(values: npt.ArrayLike, name: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ControlChartError(f"{name} must be a 1-D series, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ControlChartError(f"{name} must be finite (found NaN or infinity)")
    return x


def _check_finite(value: float, name: str) -> None:
    if not math.isfinite(value):
        raise ControlChartError(f"{name} must be finite, got {value}")


def _check_chart(center: float, sigma: float) -> None:
    _check_finite(center, "center")
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise ControlChartError(f"sigma must be finite and > 0, got {sigma}")


def _margin(margin: npt.ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    extra = np.broadcast_to(np.asarray(margin, dtype=np.float64), shape)
    if not np.all(extra >= 0.0):
        raise ControlChartError("a margin must be >= 0 (and not NaN)")
    return extra


def _ewma_filter(deviation: FloatArray, lam: float) -> FloatArray:
    """``z_i = λ d_i + (1 - λ) z_{i-1}`` from ``z_0 = 0``, vectorised a block at a time.

    Within a block, ``z_t = (1 - λ)^t Σ_{j ≤ t} λ (1 - λ)^-j d_j`` (a cumulative sum); blocks are
    short enough for ``(1 - λ)^-j`` to stay below 1e150, so no term overflows and each z keeps
    the relative precision of its largest recent terms. The carry between blocks is a scalar loop.
    """
    n = deviation.size
    if n == 0 or lam == 1.0:
        return deviation.copy()
    keep = 1.0 - lam
    block = int(min(n, _EWMA_BLOCK, 1 + 150.0 // -math.log10(keep)))
    blocks = -(-n // block)
    padded = np.zeros(blocks * block)
    padded[:n] = deviation
    steps = np.arange(block, dtype=np.float64)
    growth = keep**-steps
    within = np.cumsum(padded.reshape(blocks, block) * (lam * growth), axis=1) / growth
    decay = keep**block
    carried = [0.0] * blocks
    carry = 0.0
    for b, end in enumerate(within[:, -1].tolist()):
        carried[b] = carry
        carry = end + decay * carry
    out = within + np.asarray(carried)[:, None] * keep ** (steps + 1.0)
    return out.reshape(-1)[:n]


def _reflected_sum(increments: FloatArray) -> FloatArray:
    """``s_i = max(0, s_{i-1} + e_i)`` from ``s_0 = 0``: the walk minus its running minimum."""
    walk = np.cumsum(increments)
    floor = np.minimum(np.minimum.accumulate(walk), 0.0)
    return np.maximum(walk - floor, 0.0)


def _restarted_sums(
    rise: FloatArray, fall: FloatArray, limit: float
) -> tuple[FloatArray, FloatArray]:
    """Both reflected sums, each restarted at 0 after a point where either exceeds ``limit``.

    Each stretch between signals is searched in windows that double until the next signal,
    so the cost stays O(n log n) however many signals there are.
    """
    upper, lower = np.empty_like(rise), np.empty_like(fall)
    start, window = 0, 64
    while start < rise.size:
        stop = min(rise.size, start + window)
        up, down = _reflected_sum(rise[start:stop]), _reflected_sum(fall[start:stop])
        hits = np.flatnonzero((up > limit) | (down > limit))
        if hits.size == 0 and stop < rise.size:
            window *= 2
            continue
        end = start + (int(hits[0]) + 1 if hits.size else up.size)
        upper[start:end], lower[start:end] = up[: end - start], down[: end - start]
        start, window = end, 64
    return upper, lower


def _runs(condition: BoolArray) -> npt.NDArray[np.int64]:
    """Length of the run of True ending at each index (0 where False)."""
    index = np.arange(condition.size)
    last_false = np.maximum.accumulate(np.where(condition, -1, index))
    return index - last_false


def _point_runs(step: BoolArray) -> npt.NDArray[np.int64]:
    """Per point, how many consecutive differences ending at it satisfy ``step``."""
    out = np.zeros(step.size + 1, dtype=np.int64)
    out[1:] = _runs(step)
    return out


def _window_count(condition: BoolArray, window: int) -> npt.NDArray[np.int64]:
    """How many of the last ``window`` points (fewer at the start) satisfy ``condition``."""
    total = np.concatenate([[0], np.cumsum(condition, dtype=np.int64)])
    end = np.arange(1, condition.size + 1)
    counts: npt.NDArray[np.int64] = total[end] - total[np.maximum(end - window, 0)]
    return counts


def _k_of_m(z: FloatArray, count: int, window: int, distance: float) -> BoolArray:
    """Points beyond ``distance`` sigma that make ``count`` of the last ``window`` on that side."""
    above, below = z > distance, z < -distance
    return (above & (_window_count(above, window) >= count)) | (
        below & (_window_count(below, window) >= count)
    )
