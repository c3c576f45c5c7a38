"""Capture protocol and camera health on the synthetic motor line (ground truth known):
mis-framed and blurred parts are RETAKE, not NG; camera drift is flagged as camera drift before
it causes a wrong verdict; a two-view part is NG when either view shows the defect."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from thermoscope.core import Finding, Inspection, PartRecord, ThermalFrame, Verdict, View
from thermoscope.datasets.synthetic.motor import motor_part, motor_run
from thermoscope.recipes import (
    Recipe,
    RecipeError,
    compile_record,
    inspect_record,
    load_recipe,
    parse_recipe,
)
from thermoscope.recipes.record import EMITTER_RULE, PROTOCOL_RULE
from thermoscope.recipes.watch import RunWatch, WatchSettings

MOTOR = Path(__file__).resolve().parents[1] / "examples" / "motor.yaml"


def _motor_dict() -> dict[str, Any]:
    data = yaml.safe_load(MOTOR.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _recipe(**changes: Any) -> Recipe:
    data = _motor_dict()
    data.update(changes)
    return parse_recipe(data)


def test_retake_ranks_above_ng_and_survives_json() -> None:
    assert Verdict.worst([Verdict.NG, Verdict.RETAKE, Verdict.OK]) is Verdict.RETAKE
    assert Verdict.RETAKE.severity == 3
    f = Finding("protocol", "top focus", 0.1, 2.0, Verdict.RETAKE, "retake: out of focus")
    inspection = Inspection.of("p", None, [f])
    assert Inspection.from_json(inspection.to_json()) == inspection


def test_misframed_parts_are_retake_never_ng() -> None:
    plan = compile_record(load_recipe(MOTOR))
    parts = list(motor_run(160, rng=np.random.default_rng(11), misframe_rate=0.25))
    misframed = [p for p in parts if p.misframed]
    assert len(misframed) >= 25
    for part in parts:
        result = plan.inspect(part.record)
        if part.misframed:
            assert result.verdict is Verdict.RETAKE, part.record.part_id
            assert all(f.verdict is not Verdict.NG for f in result.findings)
            said = [f.explanation for f in result.findings if f.rule == PROTOCOL_RULE]
            assert said
            assert all(s.startswith("retake: ") for s in said)
        else:
            assert result.verdict is not Verdict.RETAKE, result.findings
            assert (result.verdict is Verdict.NG) == part.is_defective


def _with_frames(record: PartRecord, change: Any) -> PartRecord:
    views = tuple(
        View(v.name, tuple(ThermalFrame(change(f.celsius), metadata=f.metadata) for f in v.frames))
        for v in record.views
    )
    return replace(record, views=views)


def test_blurred_frame_and_ambient_outside_the_range_are_retake() -> None:
    recipe = load_recipe(MOTOR)
    part = motor_part(np.random.default_rng(2), 0, "bearing_wear")
    assert inspect_record(part.record, recipe).verdict is Verdict.NG
    blurred = _with_frames(part.record, lambda c: cv2.GaussianBlur(c, (0, 0), 2.5))
    result = inspect_record(blurred, recipe)
    assert result.verdict is Verdict.RETAKE
    assert {f.region for f in result.findings if f.verdict is Verdict.RETAKE} == {
        "drive_end focus",
        "fan_end focus",
    }
    hot_hall = replace(part.record, ambient=replace(part.record.ambient, temperature_c=41.0))
    said = [f.explanation for f in inspect_record(hot_hall, recipe).findings]
    assert any("ambient 41 °C is outside the protocol's 15..35" in s for s in said)


def test_camera_drift_is_flagged_as_camera_drift_before_a_wrong_verdict() -> None:
    # no correction and a wide RETAKE bound: the drift can reach the verdicts
    emitter = dict(_motor_dict()["reference_emitter"], correct=False, max_offset_c=100.0)
    recipe = _recipe(reference_emitter=emitter)
    plan = compile_record(recipe)
    watch = RunWatch(WatchSettings(baseline_parts=40))
    first_warn = first_camera_alarm = first_wrong = None
    for i, part in enumerate(motor_run(300, rng=np.random.default_rng(5), drift_c_per_part=0.08)):
        result = plan.inspect(part.record)
        emitter_finding = next(f for f in result.findings if f.rule == EMITTER_RULE)
        if first_warn is None and emitter_finding.verdict is Verdict.WARN:
            first_warn = i
        alarms = watch.update(result, ambient=part.record.ambient.temperature_c)
        camera = [a for a in alarms if a.kind == "camera"]
        if first_camera_alarm is None and camera:
            first_camera_alarm = i
            assert camera[0].explanation.startswith("camera drift, not the product")
        if first_wrong is None and (result.verdict is Verdict.NG) != part.is_defective:
            first_wrong = i
    assert first_wrong is not None, "the drift never reached a verdict: the test shows nothing"
    assert first_warn is not None
    assert first_warn < first_wrong
    assert first_camera_alarm is not None
    assert first_camera_alarm < first_wrong
    assert all(a.kind == "product" for a in watch.alarms if a.rule != EMITTER_RULE)


def test_emitter_correction_keeps_verdicts_right_until_retake() -> None:
    plan = compile_record(load_recipe(MOTOR))  # correct: true, max_offset_c 2
    seen = set()
    for part in motor_run(120, rng=np.random.default_rng(6), drift_c_per_part=0.03):
        result = plan.inspect(part.record)
        if abs(part.camera_offset_c) > 2.05:
            assert result.verdict is Verdict.RETAKE
            assert "recalibrate" in result.findings[0].explanation
        elif abs(part.camera_offset_c) < 1.95:
            assert (result.verdict is Verdict.NG) == part.is_defective
            offset = result.findings[0].value
            assert offset == pytest.approx(part.camera_offset_c, abs=0.05)
        seen.add(result.verdict)
    assert Verdict.RETAKE in seen


@pytest.mark.parametrize("worn_end", ["drive_end", "fan_end"])
def test_a_two_view_part_is_ng_when_either_view_shows_the_defect(worn_end: str) -> None:
    recipe = load_recipe(MOTOR)
    part = motor_part(np.random.default_rng(8), 3, "bearing_wear", worn_end=worn_end)
    result = inspect_record(part.record, recipe)
    assert result.verdict is Verdict.NG
    by_rule = {f.rule: f for f in result.findings}
    worn = "bearing wear" if worn_end == "drive_end" else "fan_end/bearing wear"
    sound = "fan_end/bearing wear" if worn_end == "drive_end" else "bearing wear"
    assert by_rule[worn].verdict is Verdict.NG
    assert by_rule[sound].verdict is Verdict.OK
    assert by_rule[worn].extra["agreed"] == ["thermal", "vib"]
    assert "thermal and vib agree" in by_rule[worn].explanation
    ok = motor_part(np.random.default_rng(8), 4, "ok")
    assert inspect_record(ok.record, recipe).verdict is Verdict.OK


def test_a_record_missing_a_view_is_an_error() -> None:
    from thermoscope.recipes import InspectionError

    part = motor_part(np.random.default_rng(1), 0, "ok")
    one_view = replace(part.record, views=part.record.views[:1])
    with pytest.raises(InspectionError, match="has no view 'fan_end'"):
        inspect_record(one_view, load_recipe(MOTOR))
    with pytest.raises(InspectionError, match="inspect a PartRecord, not a ThermalFrame"):
        inspect_record(part.record.views[0].frames[0], load_recipe(MOTOR))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"reference_emitter": {"region": "nope", "temperature_c": 30, "max_offset_c": 1}},
         "reference_emitter.region", "unknown region 'nope'"),
        ({"reference_emitter": {"region": "emitter", "temperature_c": 30, "max_offset_c": 1,
                                "warn_offset_c": 2}},
         "reference_emitter", "above max_offset_c"),
        ({"protocol": {"ambient_c": [30, 20]}}, "protocol", "inverted ambient_c"),
        ({"protocol": {"framing": {"center": [1, 1], "max_offset_px": 3}}},
         "protocol.framing", "exactly one of threshold_c or above_background_c"),
        ({"views": [{"name": "drive_end", "regions": [{"name": "a", "box": {
            "x": 0, "y": 0, "width": 2, "height": 2}}], "rules": [
            {"type": "max", "region": "a", "limits": {"max": 1}}]}]},
         "views[0].name", "duplicate view name"),
        ({"sensors": []}, "rules[1].rules[1].sensor", "unknown sensor 'vib'"),
    ],
)  # fmt: skip
def test_bad_capture_sections_name_the_field(
    change: dict[str, Any], path: str, message: str
) -> None:
    data = _motor_dict()
    data.update(change)
    if "sensors" in change:
        data.pop("views")
    with pytest.raises(RecipeError, match=message) as info:
        parse_recipe(data)
    assert info.value.path == path


def test_views_compile_with_their_own_regions_and_pairs() -> None:
    from thermoscope.recipes import InspectionError, compile_recipe

    data = _motor_dict()
    data["views"][0]["regions"] += [
        {"name": "left", "box": {"x": 40, "y": 40, "width": 10, "height": 10}, "pair": "right"},
        {"name": "right", "box": {"x": 110, "y": 40, "width": 10, "height": 10}},
    ]
    data["views"][0]["rules"].append(
        {"type": "asymmetry", "region": "left", "limits": {"min": -30, "max": 30}}
    )
    recipe = parse_recipe(data)
    plan = compile_recipe(recipe, view="fan_end")
    assert set(plan.regions) == {"bearing", "stand", "left", "right"}
    part = motor_part(np.random.default_rng(9), 0, "ok")
    result = inspect_record(part.record, recipe)
    labels = {f.rule: f.region for f in result.findings}
    assert labels["fan_end/left asymmetry"] == "left-right"
    with pytest.raises(InspectionError, match=r"has no view 'top' \(drive_end, fan_end\)"):
        compile_recipe(recipe, view="top")
