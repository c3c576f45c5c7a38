"""Recipe rules over sensor features and rules that combine rules (all_of / any_of)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from thermoscope.core import PartRecord, SensorSeries, ThermalFrame, Verdict, View
from thermoscope.recipes import RecipeError, inspect, inspect_record, parse_recipe

RATE = 1000.0


def _recipe(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "rig",
        "frame": {"width": 8, "height": 6},
        "sensors": [{"name": "vib", "unit": "g", "sample_rate_hz": RATE}],
        "regions": [{"name": "hub", "box": {"x": 0, "y": 0, "width": 4, "height": 3}}],
        "rules": rules,
    }


def _record(hub_c: float, amp: float) -> PartRecord:
    celsius = np.full((6, 8), 20.0, np.float32)
    celsius[:3, :4] = hub_c
    t = np.arange(1000) / RATE
    vib = SensorSeries("vib", amp * np.sin(2 * math.pi * 120 * t), RATE, "g")
    return PartRecord("P", (View("main", (ThermalFrame(celsius),)),), (vib,))


def test_sensor_features_as_rules() -> None:
    recipe = parse_recipe(
        _recipe(
            [
                {"type": "sensor", "sensor": "vib", "feature": "rms", "limits": {"max": 1.0}},
                {"type": "sensor", "sensor": "vib", "feature": "peak", "limits": {"max": 1.0}},
                {
                    "type": "sensor",
                    "sensor": "vib",
                    "feature": "crest_factor",
                    "limits": {"min": 1.2, "max": 3.0},
                },
                {
                    "type": "sensor",
                    "sensor": "vib",
                    "feature": "spectral_centroid",
                    "limits": {"min": 100, "max": 140},
                },
                {
                    "type": "sensor",
                    "sensor": "vib",
                    "feature": "band_energy",
                    "band_hz": [110, 130],
                    "limits": {"max": 0.1, "warn_max": 0.05},
                },
            ]
        )
    )
    result = inspect_record(_record(30.0, 0.4), recipe)
    by_rule = {f.rule: f for f in result.findings}
    assert by_rule["vib rms"].value == pytest.approx(0.4 / math.sqrt(2), rel=1e-3)
    assert by_rule["vib rms"].unit == "g"
    assert by_rule["vib crest_factor"].unit == "ratio"
    assert by_rule["vib spectral_centroid"].value == pytest.approx(120, abs=1)
    band = by_rule["vib band_energy"]
    assert (band.unit, band.region, band.verdict) == ("g²", "vib", Verdict.WARN)
    assert band.value == pytest.approx(0.08, rel=0.02)
    assert band.extra == {"sensor": "vib", "feature": "band_energy", "band_hz": [110.0, 130.0]}
    assert "over its 0.05 g² warning limit" in band.explanation
    assert result.verdict is Verdict.WARN
    # a frame inspected on its own has no sensors: the sensor rule says so, NG
    alone = inspect(_record(30.0, 0.4).views[0].frames[0], recipe)
    assert alone.findings[0].verdict is Verdict.NG
    assert "the part has no sensor 'vib'" in alone.findings[0].explanation


@pytest.mark.parametrize(
    ("hub_c", "amp", "all_of", "any_of"),
    [
        (30.0, 0.1, Verdict.OK, Verdict.OK),
        (60.0, 0.1, Verdict.OK, Verdict.NG),
        (30.0, 1.0, Verdict.OK, Verdict.NG),
        (60.0, 1.0, Verdict.NG, Verdict.NG),
    ],
)
def test_all_of_and_any_of(hub_c: float, amp: float, all_of: Verdict, any_of: Verdict) -> None:
    members = [
        {"type": "max", "region": "hub", "limits": {"max": 50}},
        {"type": "sensor", "sensor": "vib", "feature": "rms", "limits": {"max": 0.5}},
    ]
    recipe = parse_recipe(
        _recipe(
            [
                {"type": "all_of", "name": "both", "rules": members},
                {
                    "type": "any_of",
                    "name": "either",
                    "rules": [{**m, "name": f"{i}"} for i, m in enumerate(members)],
                },
            ]
        )
    )
    by_rule = {f.rule: f for f in inspect_record(_record(hub_c, amp), recipe).findings}
    assert by_rule["both"].verdict is all_of
    assert by_rule["either"].verdict is any_of
    assert by_rule["either"].limit == 1.0
    assert [m["rule"] for m in by_rule["both"].extra["members"]] == ["hub max", "vib rms"]


def test_combined_rules_nest() -> None:
    recipe = parse_recipe(
        _recipe(
            [
                {
                    "type": "any_of",
                    "name": "outer",
                    "rules": [
                        {
                            "type": "all_of",
                            "name": "inner",
                            "rules": [
                                {"type": "max", "region": "hub", "limits": {"max": 50}},
                                {"type": "min", "region": "hub", "limits": {"min": 50}},
                            ],
                        },
                        {"type": "sensor", "sensor": "vib", "feature": "rms", "limits": {"max": 5}},
                    ],
                }
            ]
        )
    )
    finding = inspect_record(_record(60.0, 0.1), recipe).findings[0]
    assert finding.extra["sources"] == ["inner", "vib"]
    assert finding.verdict is Verdict.OK  # inner: max NG but min OK -> OK; vib OK


@pytest.mark.parametrize(
    ("rules", "path", "message"),
    [
        ([{"type": "sensor", "sensor": "vib", "feature": "band_energy", "limits": {"max": 1}}],
         "rules[0]", "band_hz is required for band_energy"),
        ([{"type": "sensor", "sensor": "vib", "feature": "rms", "band_hz": [1, 2],
           "limits": {"max": 1}}], "rules[0]", "only there"),
        ([{"type": "sensor", "sensor": "mic", "feature": "rms", "limits": {"max": 1}}],
         "rules[0].sensor", "unknown sensor 'mic'"),
        ([{"type": "all_of", "name": "x", "rules": [
            {"type": "max", "region": "hub", "limits": {"max": 1}},
            {"type": "heating_rate", "region": "hub", "limits": {"max": 1}}]}],
         "rules[0].rules[1].type", "sequence rules cannot be combined"),
        ([{"type": "all_of", "name": "x", "rules": [
            {"type": "max", "region": "hub", "limits": {"max": 1}},
            {"type": "max", "region": "nope", "limits": {"max": 1}}]}],
         "rules[0].rules[1].region", "unknown region 'nope'"),
        ([{"type": "all_of", "name": "x", "rules": [
            {"type": "max", "region": "hub", "limits": {"max": 1}}]}],
         "rules[0].rules", "at least 2"),
        ([{"type": "any_of", "name": "x", "rules": [
            {"type": "max", "region": "hub", "limits": {"max": 1}},
            {"type": "bogus", "region": "hub"}]}],
         "rules[0].rules[1].type", "unknown rule type 'bogus'"),
    ],
)  # fmt: skip
def test_bad_sensor_and_combined_rules_name_the_field(
    rules: list[dict[str, Any]], path: str, message: str
) -> None:
    with pytest.raises(RecipeError, match=message) as info:
        parse_recipe(_recipe(rules))
    assert info.value.path == path
