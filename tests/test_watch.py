"""The run-long drift watch: the done-when scenario (a slow drift flagged at least 50 parts before
the first NG part, on a synthetic stream and on the synthetic production line), false alarms in
control, ambient compensation, NG parts, history, settings,
and the incremental watch against the batch control-chart functions."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from thermoscope.analysis.control_charts import (
    ambient_margin,
    compensate_ambient,
    cusum,
    estimate_baseline,
    ewma,
    fit_ambient,
    nelson_rules,
)
from thermoscope.core.findings import Finding, Inspection, Verdict
from thermoscope.datasets.synthetic import Drift, simulate_run
from thermoscope.recipes import compile_recipe, inspect, load_recipe
from thermoscope.recipes.watch import DriftAlarm, RunWatch, WatchError, WatchSettings

FloatArray = npt.NDArray[np.float64]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

NOMINAL = 62.0  # °C, the in-control mean of "U1 max"
NOISE = 0.4  # °C, part-to-part standard deviation
NG_LIMIT = 66.0  # °C
WARN_LIMIT = 65.0  # °C
DRIFT_START = 300  # the first part that drifts
NG_CROSSING = 600  # where the drifting mean reaches the NG limit


def finding(value: float, *, rule: str = "max", region: str = "U1") -> Finding:
    verdict = Verdict.NG if value > NG_LIMIT else Verdict.WARN if value > WARN_LIMIT else Verdict.OK
    return Finding(rule, region, value, NG_LIMIT, verdict, f"{region} {rule} {value:.1f} °C")


def feed(
    watch: RunWatch,
    values: npt.ArrayLike,
    *,
    ambient: npt.ArrayLike | None = None,
    rule: str = "max",
    region: str = "U1",
) -> list[DriftAlarm]:
    """Give the watch one part per value; return the alarms raised."""
    x = np.asarray(values, dtype=np.float64)
    readings = None if ambient is None else np.asarray(ambient, dtype=np.float64)
    raised = []
    for i, value in enumerate(x):
        part = Inspection.of("line-1", i, [finding(float(value), rule=rule, region=region)])
        reading = None if readings is None or math.isnan(readings[i]) else float(readings[i])
        raised += watch.update(part, ambient=reading)
    return raised


def drifting_run(seed: int, parts: int = 800) -> FloatArray:
    """In control, then from part 300 a linear drift whose mean crosses the NG limit at 600."""
    rng = np.random.default_rng(seed)
    slope = (NG_LIMIT - NOMINAL) / (NG_CROSSING - DRIFT_START)  # °C per part
    drift = slope * np.maximum(0, np.arange(parts) - DRIFT_START)
    return NOMINAL + drift + rng.normal(0.0, NOISE, parts)


# --- the done-when scenario ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_a_slow_drift_is_flagged_50_parts_before_the_first_ng_part(seed: int) -> None:
    values = drifting_run(seed)
    first_ng = int(np.flatnonzero(values > NG_LIMIT)[0])
    watch = RunWatch()
    alarms = feed(watch, values)
    assert alarms, "the drift was never flagged"
    first = alarms[0]
    assert first.part_index >= DRIFT_START, "alarm before the drift started"
    assert first.part_index <= first_ng - 50, (first.part_index, first_ng)
    assert (first.rule, first.region, first.direction) == ("max", "U1", "up")
    assert values[first.part_index] < NG_LIMIT  # the part itself is still good
    assert watch.alarms == tuple(alarms)


def test_the_first_alarm_explains_itself() -> None:
    alarm = feed(RunWatch(), drifting_run(0))[0]
    assert alarm.chart == "ewma"
    assert alarm.statistic > alarm.limit
    assert alarm.unit == "°C"
    pattern = (
        r"U1 max is drifting up: EWMA (\d+\.\d+) °C above its (\d+\.\d+) °C control limit "
        r"\(baseline \d+\.\d+ °C\), (\d+) parts in a row above the centre line"
    )
    match = re.fullmatch(pattern, alarm.explanation)
    assert match, alarm.explanation
    assert float(match[1]) > float(match[2])


# --- the done-when scenario on the synthetic production line ------------------------------

# (product, drift target, °C per part from part 300, which series the drift shows in)
LINE_DRIFTS = [
    ("pcb", "Q1", 0.0145, "Q1"),  # a heat sink losing contact: Q1 runs warmer
    ("battery", "cooling", 0.02, "cells"),  # a failing coolant pump: every cell warmer
    ("seal", "seal", -0.02, "seam"),  # a failing jaw heater: the seam runs colder
]


@pytest.mark.parametrize(
    ("product", "target", "per_part_c", "shows_in"), LINE_DRIFTS, ids=[d[0] for d in LINE_DRIFTS]
)
def test_the_synthetic_line_drift_is_flagged_50_parts_before_it_fails_a_part(
    product: str, target: str, per_part_c: float, shows_in: str
) -> None:
    plan = compile_recipe(load_recipe(EXAMPLES / f"{product}.yaml"))
    drift = Drift(target, per_part_c, start_part=DRIFT_START)
    watch = RunWatch()
    first_ng = None  # the first part failed by the drift (not by a defect)
    for part in simulate_run(
        product, parts=1000, defect_rate=0.05, rng=np.random.default_rng(1), drift=drift
    ):
        inspection = inspect(part.frame, plan)
        watch.update(inspection, ambient=part.ambient_c)
        failed = inspection.verdict is Verdict.NG and not part.is_defective
        if failed and first_ng is None:
            first_ng = part.index
    assert first_ng is not None
    assert all(a.part_index >= DRIFT_START for a in watch.alarms), watch.alarms[0]
    drifting = [a for a in watch.alarms if a.region.startswith(shows_in)]
    assert drifting, f"{product}: the drift was never flagged"
    assert drifting[0].part_index <= first_ng - 50, (drifting[0], first_ng)


# --- in control ---------------------------------------------------------------------------


def test_no_false_alarm_over_20000_in_control_parts() -> None:
    values = np.random.default_rng(100).normal(NOMINAL, NOISE, 20_000)
    watch = RunWatch()
    assert feed(watch, values) == []
    history = watch.history("max", "U1")
    assert history.part_index.size == 10_000  # the default history_limit
    assert history.charted.all()


def test_false_alarms_are_rare_from_run_to_run() -> None:
    # Each run learns its own baseline (the main source of false alarms); with the defaults
    # about 1 % of 1,000-part runs raise one.
    alarmed = 0
    for seed in range(20):
        values = np.random.default_rng(1000 + seed).normal(NOMINAL, NOISE, 1100)
        alarmed += bool(feed(RunWatch(), values))
    assert alarmed <= 1


def hall_temperature(parts: int, *, warming: float = 4.0) -> FloatArray:
    """The hall, °C: air conditioning cycling ±1.5 °C every 100 parts, warming over the shift."""
    t = np.arange(parts)
    return 22.0 + 1.5 * np.sin(2.0 * np.pi * t / 100) + warming * (1 - np.cos(np.pi * t / 1200)) / 2


@pytest.mark.parametrize("seed", range(5))
def test_a_warm_afternoon_is_not_drift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hall = hall_temperature(1200)  # 4 °C warmer by the end of the shift
    values = NOMINAL + 0.5 * (hall - 22.0) + rng.normal(0.0, NOISE, hall.size)
    readings = hall + rng.normal(0.0, 0.05, hall.size)  # the ambient sensor
    compensated = RunWatch()
    assert feed(compensated, values, ambient=readings) == []
    assert compensated.history("max", "U1").ambient_slope == pytest.approx(0.5, abs=0.15)
    plain = RunWatch(WatchSettings(ambient_compensation=False))
    alarms = feed(plain, values, ambient=readings)
    assert alarms, "without compensation the afternoon should look like drift"
    assert "(not compensated)" in alarms[0].explanation


def test_a_compensated_drift_is_still_flagged() -> None:
    rng = np.random.default_rng(108)  # not the values' stream
    values = drifting_run(8)
    hall = hall_temperature(values.size)
    readings = hall + rng.normal(0.0, 0.05, hall.size)
    alarms = feed(RunWatch(), values + 0.5 * (hall - 22.0), ambient=readings)
    first_ng = int(np.flatnonzero(values > NG_LIMIT)[0])
    assert alarms
    assert DRIFT_START <= alarms[0].part_index <= first_ng - 50
    assert "ambient-compensated" in alarms[0].explanation


def test_a_fixed_ambient_slope_needs_no_fit() -> None:
    ambient = np.full(400, 22.0)
    ambient[150:] = 26.0  # the door opens: +4 °C, never seen during the baseline
    values = np.random.default_rng(9).normal(NOMINAL, NOISE, 400) + 0.8 * (ambient - 22.0)
    watch = RunWatch(WatchSettings(ambient_slope=0.8))
    assert feed(watch, values, ambient=ambient) == []
    assert watch.history("max", "U1").ambient_slope == 0.8
    assert feed(RunWatch(), values, ambient=ambient)  # a fit cannot see the slope: alarm


def test_a_missing_reading_reuses_the_last_one() -> None:
    ambient = np.full(300, np.nan)
    ambient[::10] = 22.0 + np.arange(30) * 0.1
    watch = RunWatch(WatchSettings(baseline_parts=50))
    feed(
        watch,
        np.full(300, NOMINAL) + np.random.default_rng(1).normal(0, NOISE, 300),
        ambient=ambient,
    )
    used = watch.history("max", "U1").ambient
    assert used[0] == 22.0
    assert used[9] == 22.0
    assert used[10] == pytest.approx(22.1)


# --- NG parts, directions, episodes -------------------------------------------------------


def test_a_defective_part_is_not_drift() -> None:
    values = np.random.default_rng(3).normal(NOMINAL, NOISE, 400)
    values[250] = 75.0  # one NG part: a defect, not the process moving
    skipping = RunWatch()
    assert feed(skipping, values) == []
    history = skipping.history("max", "U1")
    assert history.value[250] == history.compensated[250] == 75.0
    assert not history.charted[250]
    assert math.isnan(history.ewma[250])
    counting = RunWatch(WatchSettings(skip_ng=False))
    assert [a.part_index for a in feed(counting, values)] == [250]


def test_every_value_of_an_ng_part_is_left_out() -> None:
    # A hot cell fails the cell's rule and warms the module: the module's value, OK by itself,
    # carries the defect too.
    watch = RunWatch(WatchSettings(baseline_parts=20))
    rng = np.random.default_rng(4)
    for i in range(60):
        module = float(rng.normal(40.0, 0.3)) + (3.0 if i == 40 else 0.0)
        cell = finding(70.0 if i == 40 else float(rng.normal(NOMINAL, NOISE)), region="B4")
        watch.update(Inspection.of("line-1", i, [cell, finding(module, rule="mean", region="M")]))
    module_history = watch.history("mean", "M")
    assert not module_history.charted[40]
    assert module_history.charted[41]
    assert watch.alarms == ()


def test_a_downward_drift() -> None:
    values = 2 * NOMINAL - drifting_run(4)  # the mirror image: running colder
    alarms = feed(RunWatch(), values)
    assert alarms[0].direction == "down"
    assert DRIFT_START <= alarms[0].part_index < 450
    assert "is drifting down" in alarms[0].explanation
    assert "below its" in alarms[0].explanation


def test_one_alarm_per_drift_episode() -> None:
    rng = np.random.default_rng(5)
    shift = np.zeros(900)
    shift[200:400] = 1.5  # a heater runs hot for 200 parts, is fixed, then fails again
    shift[650:] = 1.5
    alarms = feed(RunWatch(), NOMINAL + shift + rng.normal(0, NOISE, 900))
    assert [a.direction for a in alarms] == ["up", "up"]
    assert 200 <= alarms[0].part_index < 230
    assert 650 <= alarms[1].part_index < 680


@pytest.mark.parametrize(
    ("chart", "text"),
    [
        ("cusum", r"cumulative excess \d+\.\d+ °C beyond its \d+\.\d+ °C CUSUM limit"),
        ("nelson2", r"9 points in a row on the same side of the centre \(Nelson rule 2\)"),
    ],
)
def test_each_chart_can_raise_the_alarm(chart: str, text: str) -> None:
    watch = RunWatch(WatchSettings(alarm_on=(chart,)))  # type: ignore[arg-type]
    alarm = feed(watch, drifting_run(1))[0]
    assert alarm.chart == chart
    assert re.search(text, alarm.explanation), alarm.explanation


def test_series_are_watched_independently() -> None:
    watch = RunWatch()
    drifting = drifting_run(6)
    steady = np.random.default_rng(106).normal(40.0, 0.3, drifting.size)
    for i, (a, b) in enumerate(zip(drifting, steady, strict=True)):
        watch.update(Inspection.of("line-1", i, [finding(a), finding(b, rule="mean", region="U2")]))
    assert watch.keys() == [("max", "U1"), ("mean", "U2")]
    assert {(a.rule, a.region) for a in watch.alarms} == {("max", "U1")}
    assert watch.parts == drifting.size


def test_a_constant_value_is_not_charted() -> None:
    watch = RunWatch(WatchSettings(baseline_parts=20))
    assert feed(watch, [0.0] * 50 + [3.0] * 10) == []
    history = watch.history("max", "U1")
    assert not history.active
    assert not history.charted.any()
    assert history.sigma == 0.0


def test_the_same_series_twice_in_one_part_is_an_error() -> None:
    part = Inspection.of("line-1", 0, [finding(62.0), finding(62.5)])
    with pytest.raises(WatchError, match="twice"):
        RunWatch().update(part)


def test_unknown_series_history() -> None:
    with pytest.raises(KeyError, match="max"):
        RunWatch().history("max", "U9")


# --- history ------------------------------------------------------------------------------


def test_history_keeps_the_last_parts() -> None:
    values = drifting_run(2, parts=700)
    full, bounded = RunWatch(), RunWatch(WatchSettings(history_limit=150))
    feed(full, values)
    feed(bounded, values)
    everything, tail = full.history("max", "U1"), bounded.history("max", "U1")
    np.testing.assert_array_equal(tail.part_index, np.arange(550, 700))
    for name in ("value", "compensated", "ewma", "ewma_upper", "cusum_upper", "cusum_lower"):
        np.testing.assert_array_equal(getattr(tail, name), getattr(everything, name)[-150:])
    np.testing.assert_array_equal(tail.nelson, everything.nelson[:, -150:])
    assert tail.alarms == everything.alarms


def test_history_is_a_copy() -> None:
    watch = RunWatch(WatchSettings(baseline_parts=20))
    feed(watch, drifting_run(3, parts=100))
    history = watch.history("max", "U1")
    history.value[:] = 0.0
    history.ewma[:] = 0.0
    again = watch.history("max", "U1")
    assert again.value[0] != 0.0
    assert np.isnan(again.ewma[0])


# --- settings -----------------------------------------------------------------------------


def test_settings_refuse_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValidationError, match="ewma_lamda"):
        WatchSettings.model_validate({"ewma_lamda": 0.2})
    with pytest.raises(ValidationError, match="ewma_lambda"):
        WatchSettings(ewma_lambda=0.0)
    with pytest.raises(ValidationError, match="baseline_parts"):
        WatchSettings(baseline_parts=3)
    with pytest.raises(ValidationError, match="twice"):
        WatchSettings(alarm_on=("ewma", "ewma"))
    with pytest.raises(ValidationError, match="alarm_on"):
        WatchSettings.model_validate({"alarm_on": ["nelson4"]})


def test_settings_load_from_json_and_describe_every_field() -> None:
    text = json.dumps({"baseline_parts": 50, "alarm_on": ["ewma", "nelson2"], "cusum_h": 6})
    loaded = WatchSettings.model_validate_json(text)
    assert loaded.alarm_on == ("ewma", "nelson2")
    assert loaded.cusum_h == 6.0
    for name, field in WatchSettings.model_fields.items():
        assert field.description, name


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "drift-watch.md").read_text("utf-8")
    for name in WatchSettings.model_fields:
        assert f"| `{name}` |" in doc, f"setting {name} missing from docs/drift-watch.md"


def test_an_alarm_names_the_series_once() -> None:
    alarm = feed(RunWatch(), drifting_run(0), rule="Q1 rise", region="Q1")[0]
    assert alarm.explanation.startswith("Q1 rise is drifting up: ")
    pair = feed(RunWatch(), drifting_run(0), rule="half-bridge balance", region="Q1-Q2")[0]
    assert pair.explanation.startswith("Q1-Q2 half-bridge balance is drifting up: ")


# --- the incremental watch equals the batch functions -------------------------------------


@st.composite
def streams(draw: st.DrawFn) -> tuple[WatchSettings, FloatArray, FloatArray]:
    """Settings, values (°C; NaN = not finite) and ambient readings (°C; NaN = none)."""
    choice = WatchSettings(
        baseline_parts=draw(st.integers(10, 60)),
        baseline_method=draw(st.sampled_from(["mean_std", "median_mad", "moving_range"])),
        ewma_lambda=draw(st.floats(0.02, 1.0)),
        ewma_width=draw(st.floats(1.0, 6.0)),
        cusum_k=draw(st.floats(0.0, 2.0)),
        cusum_h=draw(st.floats(1.0, 10.0)),
        alarm_on=tuple(
            draw(st.lists(st.sampled_from(["ewma", "cusum", "nelson1", "nelson3"]), unique=True))
        ),
        ambient_compensation=draw(st.booleans()),
        ambient_min_t=draw(st.sampled_from([0.0, 3.0])),
        ambient_coverage=draw(st.sampled_from([0.0, 3.0])),
        skip_ng=draw(st.booleans()),
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    parts = draw(st.integers(0, 400))
    ambient = 22.0 + 2.0 * np.sin(np.arange(parts) / draw(st.floats(5.0, 100.0)))
    values = NOMINAL + draw(st.floats(0.0, 1.5)) * (ambient - 22.0)
    values += draw(st.floats(0.0, 0.02)) * np.arange(parts) + rng.normal(0.0, NOISE, parts)
    values[rng.random(parts) < draw(st.floats(0.0, 0.05))] = NG_LIMIT + 1.0
    values[rng.random(parts) < 0.01] = np.nan
    ambient[rng.random(parts) < draw(st.floats(0.0, 0.3))] = np.nan
    return choice, values, ambient


@settings(max_examples=60, deadline=None)
@given(stream=streams())
def test_the_incremental_watch_equals_the_batch_functions(
    stream: tuple[WatchSettings, FloatArray, FloatArray],
) -> None:
    choice, values, ambient = stream
    watch = RunWatch(choice)
    alarms = feed(watch, values, ambient=ambient)
    if not values.size:
        assert watch.keys() == []
        return
    h = watch.history("max", "U1")
    np.testing.assert_array_equal(h.part_index, np.arange(values.size))
    np.testing.assert_array_equal(h.value, values)
    admitted = np.isfinite(values) & ~(choice.skip_ng & (values > NG_LIMIT))
    learnt = np.flatnonzero(admitted)[: choice.baseline_parts]
    np.testing.assert_array_equal(np.flatnonzero(h.baseline), learnt)
    if learnt.size < choice.baseline_parts:
        assert not h.active
        assert not h.charted.any()
        return
    # The ambient used: each reading, else the last one before it.
    used = ambient.copy()
    for i in range(1, used.size):
        if np.isnan(used[i]):
            used[i] = used[i - 1]
    np.testing.assert_array_equal(h.ambient, used)
    known = learnt[np.isfinite(used[learnt])]
    stderr = 0.0  # of the slope used, when fitted
    if choice.ambient_compensation and known.size >= 3:
        fit = fit_ambient(values[known], used[known])
        assert h.ambient_reference == pytest.approx(fit.reference, rel=1e-12)
        if fit.t_ratio >= choice.ambient_min_t and math.isfinite(fit.stderr):
            assert h.ambient_slope == pytest.approx(fit.slope, rel=1e-9)
            stderr = fit.stderr
        else:
            assert h.ambient_slope == 0.0
    else:
        assert h.ambient_slope == 0.0
    if known.size:
        assert h.ambient_reference == pytest.approx(np.mean(used[known]), rel=1e-12)
    filled = np.where(np.isnan(used), h.ambient_reference, used)
    level = values.copy()
    if h.ambient_slope:
        finite = np.isfinite(values)
        level[finite] = compensate_ambient(
            values[finite], filled[finite], slope=h.ambient_slope, reference=h.ambient_reference
        )
    base = estimate_baseline(level[learnt], method=choice.baseline_method)
    assert (h.center, h.sigma) == (pytest.approx(base.center), pytest.approx(base.sigma))
    np.testing.assert_allclose(h.compensated, level, rtol=1e-12)  # NaN where not finite
    if not h.active:
        assert base.sigma == 0.0
        return
    charted = np.flatnonzero(admitted)[choice.baseline_parts :]
    np.testing.assert_array_equal(np.flatnonzero(h.charted), charted)
    x = level[charted]
    np.testing.assert_allclose(h.compensated[charted], x, rtol=1e-12)
    tol = 1e-9 * (abs(h.center) + h.sigma)
    margin = (
        ambient_margin(
            filled[charted],
            reference=h.ambient_reference,
            stderr=stderr,
            coverage=choice.ambient_coverage,
        )
        if stderr
        else 0.0
    )
    lam, width = choice.ewma_lambda, choice.ewma_width
    chart = ewma(x, center=h.center, sigma=h.sigma, lam=lam, width=width, margin=margin)
    np.testing.assert_allclose(h.ewma[charted], chart.statistic, rtol=0, atol=tol)
    np.testing.assert_allclose(h.ewma_upper[charted], chart.upper, rtol=0, atol=tol)
    np.testing.assert_allclose(h.ewma_lower[charted], chart.lower, rtol=0, atol=tol)
    sums = cusum(
        x,
        center=h.center,
        sigma=h.sigma,
        k=choice.cusum_k,
        h=choice.cusum_h,
        restart=True,
        margin=margin,
    )
    np.testing.assert_allclose(h.cusum_upper[charted], sums.upper, rtol=0, atol=tol)
    np.testing.assert_allclose(h.cusum_lower[charted], sums.lower, rtol=0, atol=tol)
    assert h.cusum_limit == pytest.approx(sums.limit)
    np.testing.assert_array_equal(
        h.nelson[:, charted], nelson_rules(x, center=h.center, sigma=h.sigma).flags
    )
    # Every alarm sits where its chart signals, on an entry that was charted.
    signal_of = {
        "ewma": (chart.high, chart.low),
        "cusum": (sums.high, sums.low),
    }
    position = {int(part): i for i, part in enumerate(charted)}
    for alarm in alarms:
        i = position[alarm.part_index]
        if alarm.chart in signal_of:
            high, low = signal_of[alarm.chart]
            assert (high if alarm.direction == "up" else low)[i]
        else:
            assert h.nelson[int(alarm.chart.removeprefix("nelson")) - 1, alarm.part_index]
    assert h.alarms == tuple(alarms)
    nan_stats = ~h.charted
    assert np.isnan(h.ewma[nan_stats]).all()
