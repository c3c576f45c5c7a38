"""Done-when check of the run-long watch on the synthetic line: a slow drift is flagged well
before it makes the first NG part, and nothing is flagged before the drift starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thermoscope.core import Verdict
from thermoscope.datasets.synthetic import Drift, simulate_run
from thermoscope.recipes import compile_recipe, inspect, load_recipe
from thermoscope.recipes.watch import RunWatch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DRIFT_START = 200


@pytest.mark.parametrize(
    ("product", "drift"),
    [
        ("pcb", Drift("U1", 0.01, DRIFT_START)),
        ("battery", Drift("cooling", 0.01, DRIFT_START)),
        ("seal", Drift("seal", -0.03, DRIFT_START)),
    ],
    ids=["pcb-heat-sink", "battery-cooling", "seal-heater"],
)
def test_drift_is_flagged_at_least_50_parts_before_the_first_ng_part(
    product: str, drift: Drift
) -> None:
    plan = compile_recipe(load_recipe(EXAMPLES / f"{product}.yaml"))
    watch = RunWatch()
    first_alarm = first_ng = None
    run = simulate_run(
        product, parts=1000, defect_rate=0.0, rng=np.random.default_rng(2026), drift=drift
    )
    for part in run:
        inspection = inspect(part.frame, plan, source=part.serial)
        alarms = watch.update(inspection)
        if alarms and first_alarm is None:
            first_alarm = part.index
        if inspection.verdict is Verdict.NG:
            first_ng = part.index
            break
    assert first_ng is not None, "the drift never made an NG part: the scenario is too weak"
    assert first_alarm is not None, f"no drift alarm before the first NG part ({first_ng})"
    assert first_alarm >= DRIFT_START, f"false alarm at part {first_alarm}, before the drift"
    assert first_ng - first_alarm >= 50, f"alarm at {first_alarm}, first NG at {first_ng}"
