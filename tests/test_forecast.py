"""Forecasts of drifting values (analysis.forecast) and the maintenance watch above it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from thermoscope.analysis.forecast import (
    ForecastError,
    WearSignature,
    correct_environment,
    find_onset,
    forecast_crossing,
    learn_wear_signature,
    theil_sen,
)
from thermoscope.core import Finding, Inspection, Verdict
from thermoscope.recipes.maintenance import (
    ForecastAlert,
    MaintenanceError,
    MaintenanceWatch,
    PrecursorAlert,
    learn_precursors,
)


def hinge(
    n: int, *, onset: int, slope: float, sigma: float, seed: int, center: float = 40.0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return center + slope * np.maximum(0, t - onset) + rng.normal(0.0, sigma, n)


def test_onset_of_a_hinge_is_found_within_a_few_dozen_parts() -> None:
    y = hinge(500, onset=200, slope=0.05, sigma=0.5, seed=1)
    assert abs(find_onset(y, center=40.0, start=100) - 200) <= 30


def test_theil_sen_ignores_outliers_and_its_interval_holds_the_slope() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(200.0)
    y = 3.0 + 0.02 * t + rng.normal(0.0, 0.2, t.size)
    y[::17] += 25.0  # a few wild parts
    slope, intercept, low, high = theil_sen(t, y, confidence=0.9)
    assert slope == pytest.approx(0.02, abs=0.002)
    assert intercept == pytest.approx(3.0, abs=0.2)
    assert low < 0.02 < high


def test_forecast_with_a_wear_signature_lands_within_20_percent() -> None:
    limit, onset, slope = 45.0, 200, 0.02
    actual = onset + (limit - 40.0) / slope  # 450
    signature = WearSignature(math.log(0.021), 0.15, +1, 5)
    hits = 0
    for seed in range(10):
        y = hinge(280, onset=onset, slope=slope, sigma=1.0, seed=seed)
        forecast = forecast_crossing(
            y,
            limit=limit,
            center=40.0,
            sigma=1.0,
            start=100,
            signature=signature,
            parts_per_hour=120.0,
        )
        last = y.size - 1
        hits += abs(last + forecast.parts_to_limit - actual) <= 0.2 * (actual - last)
        assert forecast.parts_low <= forecast.parts_to_limit <= forecast.parts_high
        assert forecast.hours_to_limit == pytest.approx(forecast.parts_to_limit / 120.0)
        assert forecast.trend.slope > 0
    assert hits >= 8


def test_forecast_from_data_alone_follows_the_trend_and_stays_open_when_moving_away() -> None:
    y = hinge(600, onset=100, slope=0.02, sigma=0.3, seed=3)
    forecast = forecast_crossing(y, limit=55.0, center=40.0, sigma=0.3, start=50)
    # crossing at 100 + 15 / 0.02 = 850
    assert forecast.crossing_index == pytest.approx(850.0, rel=0.05)
    assert forecast.trend.onset == pytest.approx(100, abs=25)
    assert forecast.parts_low < 250 < forecast.parts_high
    away = forecast_crossing(y, limit=30.0, center=40.0, sigma=0.3, start=50)
    assert math.isinf(away.parts_to_limit)
    assert not away.heading_to_limit


def test_environment_correction_removes_a_significant_reading_only() -> None:
    rng = np.random.default_rng(4)
    n = 400
    ambient = 22.0 + 4.0 * np.sin(np.linspace(0.0, math.pi, n))
    humidity = rng.uniform(30.0, 60.0, n)
    values = 10.0 + 0.8 * (ambient - 22.0) + rng.normal(0.0, 0.1, n)
    before = values.copy()
    corrected, used = correct_environment(
        values, {"ambient": ambient, "humidity": humidity}, baseline=n
    )
    np.testing.assert_array_equal(values, before)
    assert set(used) == {"ambient"}
    assert used["ambient"] == pytest.approx(0.8, abs=0.03)
    assert corrected.std() < 0.15 < values.std()


def test_wear_signature_is_learnt_from_past_runs() -> None:
    runs = [
        (hinge(600, onset=150, slope=rate, sigma=0.3, seed=10 + k), 40.0, 100)
        for k, rate in enumerate((0.018, 0.02, 0.022, 0.02))
    ]
    signature = learn_wear_signature(runs)
    assert signature.sign == 1
    assert signature.runs == 4
    assert signature.rate == pytest.approx(0.02, rel=0.05)
    falling = (hinge(600, onset=150, slope=-0.02, sigma=0.3, seed=20), 40.0, 100)
    with pytest.raises(ForecastError, match="opposite directions"):
        learn_wear_signature([*runs, falling])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": 0.0}, "sigma > 0"),
        ({"limit": 40.0}, "limit equals the centre"),
        ({"start": 95}, "at least 8 points"),
        ({"parts_per_hour": -1.0}, "parts_per_hour"),
        ({"confidence": 1.0}, "confidence"),
    ],
)
def test_forecast_rejects_bad_input(kwargs: dict[str, float], match: str) -> None:
    options: dict[str, float] = {"limit": 45.0, "center": 40.0, "sigma": 1.0, "start": 10}
    options.update(kwargs)
    with pytest.raises(ForecastError, match=match):
        forecast_crossing(np.full(100, 40.0), **options)  # type: ignore[arg-type]


def test_environment_readings_must_match_the_values() -> None:
    with pytest.raises(ForecastError, match="reading 'ambient' has 3 points"):
        correct_environment(np.zeros(10), {"ambient": np.zeros(3)}, baseline=8)


def part(
    index: int, value: float, *, verdict: Verdict = Verdict.OK, warn: bool = False
) -> Inspection:
    findings = [
        Finding("Q1 rise", "Q1", value, 45.0, Verdict.OK, "rise"),
        Finding("U2 rise", "U2", 20.0, 28.0, Verdict.WARN if warn else Verdict.OK, "rise"),
    ]
    if verdict is Verdict.NG:
        findings.append(Finding("short", "U1", 1.0, 0.0, Verdict.NG, "short"))
    return Inspection.of(f"P-{index}", None, findings)


def test_maintenance_watch_alerts_with_station_value_forecast_and_evidence() -> None:
    y = hinge(700, onset=200, slope=0.02, sigma=0.5, seed=5)
    signature = WearSignature(math.log(0.021), 0.15, +1, 4)
    watch = MaintenanceWatch(
        {"Q1 rise": (20.0, 45.0)},
        station="3",
        parts_per_hour=180.0,
        signatures={("Q1 rise", "Q1"): signature},
    )
    alerts = []
    for index, value in enumerate(y):
        alerts += watch.update(
            part(index, float(value)), ambient=22.0, environment={"humidity": 40.0}
        )
        if alerts:
            break
    assert alerts, "no alert on a clear drift"
    alert = alerts[0]
    assert isinstance(alert, ForecastAlert)
    assert (alert.station, alert.rule, alert.region, alert.direction) == (
        "3",
        "Q1 rise",
        "Q1",
        "up",
    )
    actual = 200 + 5.0 / 0.02
    assert abs(alert.part_index + alert.forecast.parts_to_limit - actual) <= 0.2 * (
        actual - alert.part_index
    )
    assert "station 3:" in alert.explanation
    assert "45 °C limit" in alert.explanation
    assert "drifting since part" in alert.evidence
    assert "4 past runs" in alert.evidence
    assert alert.forecast.hours_to_limit == pytest.approx(alert.forecast.parts_to_limit / 180.0)
    with pytest.raises(MaintenanceError, match="parts_per_hour"):
        MaintenanceWatch({}, station="s", parts_per_hour=0.0)


def precursor_run(
    seed: int, bursts: tuple[int, ...], *, precursors: bool = True
) -> list[Inspection]:
    rng = np.random.default_rng(seed)
    parts = []
    for index in range(400):
        ng = any(start <= index < start + 4 for start in bursts)
        before = precursors and any(start - 40 <= index < start for start in bursts)
        warn = bool(rng.random() < (0.2 if before else 0.005))
        parts.append(part(index, 40.0, verdict=Verdict.NG if ng else Verdict.OK, warn=warn))
    return parts


def test_precursors_of_ng_bursts_are_learnt_and_flagged_before_the_next_burst() -> None:
    signature = learn_precursors(
        [precursor_run(1, (150, 300)), precursor_run(2, (200,))], window=50
    )
    assert signature is not None
    assert signature.keys == (("U2 rise", "U2"),)
    assert signature.bursts == 3
    assert signature.preceded >= 2
    watch = MaintenanceWatch({}, station="s1", precursors=signature)
    flagged = [
        alert.part_index
        for p in precursor_run(3, (250,))
        for alert in watch.update(p)
        if isinstance(alert, PrecursorAlert)
    ]
    assert flagged
    assert 210 <= flagged[0] < 250
    quiet = MaintenanceWatch({}, station="s1", precursors=signature)
    assert not [a for p in precursor_run(4, (250,), precursors=False) for a in quiet.update(p)]
    assert learn_precursors([precursor_run(5, ())]) is None
