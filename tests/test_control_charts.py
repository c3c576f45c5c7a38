"""Control charts: known answers, each run rule on a constructed series, in-control run lengths,
ambient compensation, and properties (inputs untouched, the vectorised charts equal their
recursions)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.analysis.control_charts import (
    MAD_TO_SIGMA,
    MOVING_RANGE_D2,
    NELSON_RULES,
    WESTERN_ELECTRIC_RULES,
    ControlChartError,
    ambient_margin,
    compensate_ambient,
    cusum,
    estimate_baseline,
    ewma,
    ewma_limit_factor,
    fit_ambient,
    nelson_rules,
    western_electric_rules,
)

FloatArray = npt.NDArray[np.float64]

# Montgomery, Introduction to Statistical Quality Control, Example 9.1: 30 parts, the first 20
# from N(10, 1), the last 10 from N(11, 1).
MONTGOMERY = [
    9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34,
    9.03, 11.47, 10.51, 9.40, 10.08, 9.37, 10.62, 10.31, 8.52, 10.84,
    10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52,
]  # fmt: skip

# Triggers none of the eight rules (z values, in sigma from the centre).
CLEAN_PATTERN = [0.5, 1.5, -0.5, 0.2, -1.5, 0.3]


def ewma_loop(x: FloatArray, center: float, lam: float) -> FloatArray:
    z, out = center, []
    for value in x:
        z = lam * value + (1.0 - lam) * z
        out.append(z)
    return np.asarray(out)


def cusum_loop(
    x: FloatArray, center: float, allowance: float, restart_above: float = math.inf
) -> tuple[FloatArray, FloatArray]:
    up = down = 0.0
    ups, downs = [], []
    for value in x:
        up = max(0.0, up + value - center - allowance)
        down = max(0.0, down + center - allowance - value)
        ups.append(up)
        downs.append(down)
        if max(up, down) > restart_above:
            up = down = 0.0
    return np.asarray(ups), np.asarray(downs)


def run_lengths(
    signal_of: Callable[[FloatArray], npt.NDArray[np.bool_]], x: FloatArray, chunk: int = 20_000
) -> list[int]:
    """Parts to each signal, restarting the chart after each (as an operator would)."""
    lengths, start = [], 0
    while start < x.size:
        hits = np.flatnonzero(signal_of(x[start : start + chunk]))
        if hits.size == 0:
            break
        lengths.append(int(hits[0]) + 1)
        start += int(hits[0]) + 1
    return lengths


# --- known answers ------------------------------------------------------------------------


def test_ewma_known_answer_and_exact_limits() -> None:
    # lambda = 0.2, sigma = 2 °C, L = 3: factor² = λ/(2-λ) (1 - 0.8^(2i)) = (1 - 0.64^i) / 9.
    result = ewma([12.0, 12.0, 8.0], center=10.0, sigma=2.0, lam=0.2, width=3.0)
    np.testing.assert_allclose(result.statistic, [10.4, 10.72, 10.176])
    half = 3.0 * 2.0 * np.sqrt((1.0 - 0.64 ** np.arange(1, 4)) / 9.0)
    np.testing.assert_allclose(result.upper, 10.0 + half)
    np.testing.assert_allclose(result.lower, 10.0 - half)
    assert result.upper[0] == pytest.approx(11.2)  # 10 + 3·2·0.2
    assert not result.signal.any()


def test_ewma_limits_widen_to_their_asymptote() -> None:
    factor = ewma_limit_factor(np.arange(1, 2001), lam=0.1)
    assert factor[0] == pytest.approx(0.1)  # λ at the first point
    assert np.all(np.diff(factor) >= 0)
    assert factor[-1] == pytest.approx(math.sqrt(0.1 / 1.9))


def test_montgomery_cusum_signals_at_part_29() -> None:
    result = cusum(MONTGOMERY, center=10.0, sigma=1.0, k=0.5, h=5.0)
    assert result.limit == 5.0
    assert result.upper[28] == pytest.approx(5.28, abs=0.005)
    assert np.flatnonzero(result.high)[0] == 28  # the 29th part, as in the book
    assert not result.low.any()
    assert result.upper[3] == pytest.approx(1.16)  # 11.66 - 10.5
    assert result.lower[1] == pytest.approx(0.05 + 1.51)  # 9.5 - 9.45, then 9.5 - 7.99


def test_a_restarted_cusum_starts_again_from_zero() -> None:
    result = cusum(MONTGOMERY, center=10.0, sigma=1.0, k=0.5, h=5.0, restart=True)
    assert np.flatnonzero(result.high).tolist() == [28]
    assert result.upper[28] == pytest.approx(5.28, abs=0.005)
    assert result.upper[29] == pytest.approx(10.52 - 10.5)  # from 0 again
    plain = cusum(MONTGOMERY, center=10.0, sigma=1.0, k=0.5, h=5.0)
    np.testing.assert_array_equal(result.upper[:29], plain.upper[:29])


def test_a_restarted_cusum_through_a_long_shift() -> None:
    x = np.concatenate([np.zeros(50), np.full(5000, 2.0), np.zeros(50)])
    result = cusum(x, center=0.0, sigma=1.0, k=0.5, h=5.0, restart=True)
    np.testing.assert_array_equal(np.flatnonzero(result.high), np.arange(53, 5050, 4))
    assert result.upper.max() == 6.0  # 1.5 per part, restarted after each signal
    assert result.upper[-1] == 0.0
    assert cusum(x, center=0.0, sigma=1.0, k=0.5, h=5.0).upper[-1] == 7500.0 - 25.0


def test_margins_widen_the_limits() -> None:
    ambient = np.array([22.0, 24.0, 20.0])
    margin = ambient_margin(ambient, reference=22.0, stderr=0.05, coverage=3.0)
    np.testing.assert_allclose(margin, [0.0, 0.3, 0.3])
    x = [10.0, 10.0, 10.0]
    plain = ewma(x, center=10.0, sigma=1.0)
    wide = ewma(x, center=10.0, sigma=1.0, margin=margin)
    np.testing.assert_allclose(wide.upper - plain.upper, margin)
    np.testing.assert_allclose(plain.lower - wide.lower, margin)
    y = [11.0, 11.0, 11.0]
    np.testing.assert_allclose(
        cusum(y, center=10.0, sigma=1.0, margin=margin).upper, [0.5, 0.7, 0.9]
    )
    with pytest.raises(ControlChartError, match="margin"):
        ewma(x, center=10.0, sigma=1.0, margin=-1.0)
    with pytest.raises(ControlChartError, match="stderr"):
        ambient_margin(ambient, reference=22.0, stderr=math.inf)


def test_montgomery_ewma_first_values() -> None:
    result = ewma(MONTGOMERY, center=10.0, sigma=1.0, lam=0.1, width=2.7)
    assert result.statistic[0] == pytest.approx(9.945)
    assert result.upper[0] == pytest.approx(10.27)
    assert result.upper[-1] == pytest.approx(10.0 + 2.7 * math.sqrt(0.1 / 1.9), abs=1e-3)
    assert not result.signal[:20].any()  # in control while the mean is 10


def test_baseline_estimators() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 100.0]
    robust = estimate_baseline(x, method="median_mad")
    assert (robust.center, robust.sigma) == (3.0, pytest.approx(MAD_TO_SIGMA))
    classic = estimate_baseline(x, method="mean_std")
    assert classic.center == 22.0
    assert classic.sigma == pytest.approx(np.std(x, ddof=1))
    short = estimate_baseline(x, method="moving_range")
    assert short.sigma == pytest.approx(24.75 / MOVING_RANGE_D2)
    assert estimate_baseline(x, parts=4).center == 2.5
    assert estimate_baseline(x, parts=4).count == 4


def test_moving_range_ignores_a_slow_trend() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, 2000) + np.linspace(0.0, 20.0, 2000)
    assert estimate_baseline(x, method="moving_range").sigma == pytest.approx(1.0, rel=0.05)
    assert estimate_baseline(x, method="mean_std").sigma > 5.0


# --- run rules ----------------------------------------------------------------------------


def clean(n: int) -> list[float]:
    return [CLEAN_PATTERN[i % len(CLEAN_PATTERN)] for i in range(n)]


# (rule, z values completing the pattern at the last point, same values one point short)
NELSON_CASES = [
    (1, [*clean(6), 3.5], [*clean(6), 2.9]),
    (2, [-0.5, *[0.5] * 9], [-0.5, *[0.5] * 8]),
    (3, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 0.1, 0.2, 0.3, 0.4]),
    (4, [0.5 * (-1) ** i for i in range(14)], [0.5 * (-1) ** i for i in range(13)]),
    (5, [0.0, 2.5, 0.0, 2.5], [0.0, 2.5, 0.0, 0.0, 2.5]),
    (6, [1.5, 1.5, 0.0, 1.5, 1.5], [1.5, 1.5, 0.0, 0.0, 1.5, 1.5]),
    (7, [0.5 * (-1) ** i for i in range(15)], [0.5 * (-1) ** i for i in range(14)]),
    (8, [1.5 * (-1) ** i for i in range(8)], [1.5 * (-1) ** i for i in range(7)]),
]


@pytest.mark.parametrize(
    ("rule", "hit", "miss"), NELSON_CASES, ids=[f"rule{c[0]}" for c in NELSON_CASES]
)
def test_each_nelson_rule_triggers_on_its_pattern(
    rule: int, hit: list[float], miss: list[float]
) -> None:
    center, sigma = 50.0, 2.0  # °C: the rules work in sigma from the centre
    flags = nelson_rules(center + sigma * np.asarray(hit), center=center, sigma=sigma)
    assert flags.rule(rule)[-1], NELSON_RULES[rule]
    assert not flags.rule(rule)[:-1].any()
    short = nelson_rules(center + sigma * np.asarray(miss), center=center, sigma=sigma)
    assert not short.rule(rule).any()


def test_mirrored_patterns_trigger_too() -> None:
    for rule, hit, _ in NELSON_CASES:
        flags = nelson_rules(-np.asarray(hit), center=0.0, sigma=1.0)
        assert flags.rule(rule)[-1], rule


def test_no_rule_fires_on_a_clean_series() -> None:
    x = 20.0 + 0.5 * np.asarray(clean(600))
    assert not nelson_rules(x, center=20.0, sigma=0.5).any.any()
    assert not western_electric_rules(x, center=20.0, sigma=0.5).any.any()


def test_western_electric_rules() -> None:
    cases = {
        1: [0.0, -3.2],
        2: [2.5, -1.0, 2.5],
        3: [1.2, 1.2, 1.2, 0.0, 1.2],
        4: [0.3] * 8,
    }
    for rule, z in cases.items():
        flags = western_electric_rules(np.asarray(z), center=0.0, sigma=1.0)
        assert flags.rule(rule)[-1], WESTERN_ELECTRIC_RULES[rule]
        assert not flags.rule(rule)[:-1].any()
    assert not western_electric_rules([0.3] * 7, center=0.0, sigma=1.0).rule(4).any()
    with pytest.raises(ControlChartError):
        western_electric_rules([0.0], center=0.0, sigma=1.0).rule(5)


def test_points_on_the_centre_line_break_same_side_runs() -> None:
    x = np.asarray([0.5] * 8 + [0.0] + [0.5] * 8)
    assert not nelson_rules(x, center=0.0, sigma=1.0).rule(2).any()


# --- in-control behaviour -----------------------------------------------------------------


def test_rule_1_false_alarm_rate_is_0_27_percent() -> None:
    x = np.random.default_rng(11).normal(size=20_000)
    rate = nelson_rules(x, center=0.0, sigma=1.0).rule(1).mean()
    assert rate == pytest.approx(0.0027, rel=0.35)


def test_textbook_ewma_in_control_run_length() -> None:
    # λ = 0.1, L = 2.814 is the EWMA with ARL0 = 500 (Lucas & Saccucci 1990).
    x = np.random.default_rng(12).normal(10.0, 0.5, 60_000)
    lengths = run_lengths(lambda v: ewma(v, center=10.0, sigma=0.5, lam=0.1, width=2.814).signal, x)
    assert len(lengths) > 60
    assert 380 < np.mean(lengths) < 660


def test_textbook_cusum_in_control_run_length() -> None:
    # Two-sided k = 0.5, h = 5: ARL0 about 465 (Montgomery, Table 9.3).
    x = np.random.default_rng(13).normal(size=60_000)
    lengths = run_lengths(lambda v: cusum(v, center=0.0, sigma=1.0).signal, x)
    assert len(lengths) > 60
    assert 350 < np.mean(lengths) < 620


def test_ewma_finds_a_small_shift() -> None:
    rng = np.random.default_rng(14)
    x = np.concatenate([rng.normal(0.0, 1.0, 200), rng.normal(0.75, 1.0, 400)])
    alarms = np.flatnonzero(ewma(x, center=0.0, sigma=1.0, width=2.814).high)
    assert alarms.size
    assert 200 <= alarms[0] < 260  # within 60 parts of a 0.75 sigma shift


# --- ambient compensation -----------------------------------------------------------------


def test_fit_ambient_recovers_an_exact_slope() -> None:
    ambient = np.linspace(18.0, 26.0, 50)
    fit = fit_ambient(5.0 + 0.8 * ambient, ambient)
    assert fit.slope == pytest.approx(0.8)
    assert fit.reference == pytest.approx(22.0)
    assert fit.stderr == pytest.approx(0.0, abs=1e-12)
    assert fit.t_ratio > 1e6


def test_constant_ambient_gives_no_slope() -> None:
    fit = fit_ambient([1.0, 2.0, 3.0], [20.0, 20.0, 20.0])
    assert (fit.slope, fit.stderr, fit.t_ratio) == (0.0, math.inf, 0.0)


def test_ambient_compensation_removes_a_warm_afternoon() -> None:
    rng = np.random.default_rng(15)
    parts = np.arange(1500)
    # The hall warms by 6 °C over the shift and cools again; the part follows at 0.7 °C/°C.
    hall = 21.0 + 3.0 * (1.0 - np.cos(2.0 * np.pi * parts / 1500))
    ambient = hall + rng.normal(0.0, 0.05, 1500)  # the ambient sensor's readings
    value = 64.0 + 0.7 * (hall - 21.0) + rng.normal(0.0, 0.3, 1500)
    baseline = slice(0, 300)  # the morning: the hall warms by 2 °C
    fit = fit_ambient(value[baseline], ambient[baseline])
    assert fit.slope == pytest.approx(0.7, abs=0.05)
    assert fit.t_ratio > 10
    level = compensate_ambient(value, ambient, slope=fit.slope, reference=fit.reference)
    assert np.std(level) < 0.32  # the part's own noise is 0.3 °C
    assert abs(np.corrcoef(level, ambient)[0, 1]) < 0.2
    raw = estimate_baseline(value[baseline])
    raw_chart = ewma(value, center=raw.center, sigma=raw.sigma, width=3.0)
    assert raw_chart.high.mean() > 0.5  # uncompensated, the afternoon looks like drift
    base = estimate_baseline(level[baseline])
    chart = ewma(level, center=base.center, sigma=base.sigma, width=3.0)
    assert chart.signal.mean() < 0.02


# --- errors and properties ----------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda: ewma(np.zeros((2, 2)), center=0.0, sigma=1.0),
        lambda: ewma([1.0, math.nan], center=0.0, sigma=1.0),
        lambda: ewma([1.0], center=0.0, sigma=0.0),
        lambda: ewma([1.0], center=math.inf, sigma=1.0),
        lambda: ewma([1.0], center=0.0, sigma=1.0, lam=0.0),
        lambda: ewma([1.0], center=0.0, sigma=1.0, width=-1.0),
        lambda: cusum([1.0], center=0.0, sigma=1.0, k=-0.1),
        lambda: cusum([1.0], center=0.0, sigma=1.0, h=0.0),
        lambda: nelson_rules([1.0], center=0.0, sigma=-1.0),
        lambda: estimate_baseline([1.0]),
        lambda: estimate_baseline([1.0, 2.0, 3.0], parts=1),
        lambda: estimate_baseline([1.0, 2.0], method="mode"),  # type: ignore[arg-type]
        lambda: fit_ambient([1.0, 2.0, 3.0], [1.0, 2.0]),
        lambda: fit_ambient([1.0, 2.0], [1.0, 2.0]),
        lambda: compensate_ambient([1.0], [20.0], slope=math.nan, reference=20.0),
    ],
)
def test_invalid_inputs_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(ControlChartError):
        call()


def test_empty_series_give_empty_charts() -> None:
    assert ewma([], center=0.0, sigma=1.0).statistic.shape == (0,)
    assert cusum([], center=0.0, sigma=1.0).upper.shape == (0,)
    assert nelson_rules([], center=0.0, sigma=1.0).flags.shape == (8, 0)


series = st.builds(
    lambda seed, n, shift: np.random.default_rng(seed).normal(shift, 1.0, n),
    st.integers(0, 2**32 - 1),
    st.integers(0, 700),
    st.floats(-2.0, 2.0),
)


@settings(max_examples=60, deadline=None)
@given(x=series, lam=st.floats(0.01, 1.0), k=st.floats(0.0, 2.0), h=st.floats(0.5, 10.0))
def test_vectorised_charts_equal_their_recursions(
    x: FloatArray, lam: float, k: float, h: float
) -> None:
    chart = ewma(x, center=0.3, sigma=1.5, lam=lam)
    np.testing.assert_allclose(chart.statistic, ewma_loop(x, 0.3, lam), rtol=0, atol=1e-10)
    sums = cusum(x, center=0.3, sigma=1.5, k=k, h=h)
    up, down = cusum_loop(x, 0.3, k * 1.5)
    np.testing.assert_allclose(sums.upper, up, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sums.lower, down, rtol=0, atol=1e-9)
    assert np.all(sums.upper >= 0)
    assert np.all(sums.lower >= 0)
    np.testing.assert_array_equal(sums.high, sums.upper > h * 1.5)
    np.testing.assert_allclose(chart.upper - 0.3, 0.3 - chart.lower)
    restarted = cusum(x, center=0.3, sigma=1.5, k=k, h=h, restart=True)
    up, down = cusum_loop(x, 0.3, k * 1.5, restart_above=h * 1.5)
    np.testing.assert_allclose(restarted.upper, up, rtol=0, atol=1e-9)
    np.testing.assert_allclose(restarted.lower, down, rtol=0, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(x=series, method=st.sampled_from(["mean_std", "median_mad", "moving_range"]))
def test_inputs_are_never_modified(x: FloatArray, method: str) -> None:
    if x.size < 3:
        x = np.concatenate([x, [0.1, -0.2, 0.3]])
    ambient = 20.0 + np.cos(np.arange(x.size))
    keep_x, keep_a = x.copy(), ambient.copy()
    x.flags.writeable = False  # a write would raise
    ambient.flags.writeable = False
    ewma(x, center=0.0, sigma=1.0)
    cusum(x, center=0.0, sigma=1.0)
    nelson_rules(x, center=0.0, sigma=1.0)
    western_electric_rules(x, center=0.0, sigma=1.0)
    estimate_baseline(x, method=method)  # type: ignore[arg-type]
    fit = fit_ambient(x, ambient)
    out = compensate_ambient(x, ambient, slope=fit.slope, reference=fit.reference)
    assert out is not x
    np.testing.assert_array_equal(x, keep_x)
    np.testing.assert_array_equal(ambient, keep_a)
