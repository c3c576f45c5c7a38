"""The synthetic heat + vibration motor line: combined rules reach recall >= 0.98 at precision
>= 0.95 where heat alone or vibration alone is measurably worse; records that do not fit the
recipe's sensors are clear errors. (benchmarks/eval_multisensor.py prints the 1,000-part table.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from thermoscope.core import SensorSeries, Verdict
from thermoscope.datasets.synthetic.motor import motor_part, motor_run
from thermoscope.recipes import InspectionError, compile_record, load_recipe

MOTOR = Path(__file__).resolve().parents[1] / "examples" / "motor.yaml"


def _scores(truth: list[bool], flagged: list[bool]) -> tuple[float, float]:
    tp = sum(t and f for t, f in zip(truth, flagged, strict=True))
    fp = sum(f and not t for t, f in zip(truth, flagged, strict=True))
    positives = sum(truth)
    return tp / positives, tp / (tp + fp) if tp + fp else 1.0


def test_combined_rules_beat_either_sensor_alone() -> None:
    plan = compile_record(load_recipe(MOTOR))
    truth: list[bool] = []
    combined: list[bool] = []
    heat: list[bool] = []
    vibration: list[bool] = []
    for part in motor_run(300, rng=np.random.default_rng(2024)):
        result = plan.inspect(part.record)
        truth.append(part.is_defective)
        combined.append(result.verdict is Verdict.NG)
        members = [
            m for f in result.findings if f.extra.get("mode") == "all_of"
            for m in f.extra["members"]
        ]  # fmt: skip
        heat.append(any(m["verdict"] == "NG" for m in members if m["unit"] == "°C"))
        vibration.append(any(m["verdict"] == "NG" for m in members if m["unit"] == "g²"))
    assert sum(truth) >= 20
    recall, precision = _scores(truth, combined)
    assert recall >= 0.98, recall
    assert precision >= 0.95, precision
    for alone in (heat, vibration):
        r, p = _scores(truth, alone)
        assert r >= 0.98  # each sensor sees every worn bearing...
        assert p <= precision - 0.2  # ...and flags its confounders too


def test_findings_say_which_sensors_agreed() -> None:
    plan = compile_record(load_recipe(MOTOR))
    rng = np.random.default_rng(4)
    hot = plan.inspect(motor_part(rng, 0, "hot_load").record)
    loose = plan.inspect(motor_part(rng, 1, "loose_mount").record)
    assert hot.verdict is Verdict.OK
    assert loose.verdict is Verdict.OK
    hot_wear = next(f for f in hot.findings if f.rule == "bearing wear")
    loose_wear = next(f for f in loose.findings if f.rule == "bearing wear")
    assert hot_wear.extra["agreed"] == ["thermal"]
    assert hot_wear.explanation.startswith("bearing wear: only thermal at NG (of thermal, vib)")
    assert loose_wear.extra["agreed"] == ["vib"]
    assert (loose_wear.value, loose_wear.limit, loose_wear.unit) == (1.0, 2.0, "rules")


def test_the_vibration_is_aligned_to_the_frames_by_timestamp() -> None:
    plan = compile_record(load_recipe(MOTOR))  # vib cut to the frame time ± 0.5 s
    part = motor_part(np.random.default_rng(0), 7, "ok")  # frames at 70 s, vib 69.5..70.5 s
    vib = part.record.sensors[0]
    late = replace(part.record, sensors=(replace(vib, start_s=vib.start_s + 5.0),))
    with pytest.raises(InspectionError, match=r"covers 74\.5\.\.75\.5 s, which does not overlap"):
        plan.inspect(late)
    early = replace(part.record, sensors=(replace(vib, start_s=vib.start_s - 0.8),))
    with pytest.raises(InspectionError, match=r"covers 0\.(19|20)\d* s, the recipe needs 0\.5 s"):
        plan.inspect(early)
    assert plan.inspect(part.record).verdict is Verdict.OK


@pytest.mark.parametrize(
    ("series", "message"),
    [
        (SensorSeries("vib", np.zeros(4096), 4096.0, "m/s²"), "in 'm/s²', the recipe expects 'g'"),
        (SensorSeries("vib", np.zeros(4000), 8000.0, "g"), "8000 Hz, the recipe expects 4096 Hz"),
        (SensorSeries("vib", np.zeros(1000), 4096.0, "g"), "the recipe needs 0.5 s"),
        (SensorSeries("mic", np.zeros(4096), 4096.0, "g"), "sensor 'vib' is missing"),
    ],
)
def test_sensor_input_that_does_not_fit_the_recipe_is_an_error(
    series: SensorSeries, message: str
) -> None:
    part = motor_part(np.random.default_rng(0), 0, "ok")
    record = replace(part.record, sensors=(series,))
    with pytest.raises(InspectionError, match=message):
        compile_record(load_recipe(MOTOR)).inspect(record)
