"""Recipes: the schema (loading, one clear error per mistake) and the inspection engine (every
rule type on hand-made frames with known answers, explanations, sequences, alignment, real files).
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import thermoscope.io as tio
from sample_data import reference_cases, reference_for
from synthetic_frames import CALIBRATION, PARAMETERS, planck_frame
from thermoscope.core import FrameMetadata, Inspection, ThermalFrame, ThermalSequence, Verdict
from thermoscope.recipes import (
    InspectionError,
    Recipe,
    RecipeError,
    compile_recipe,
    inspect,
    load_recipe,
    parse_recipe,
    recipe_json_schema,
)
from thermoscope.recipes.schema import RULE_TYPES

H, W = 40, 60


def box(x: int, y: int, w: int, h: int) -> dict[str, int]:
    return {"x": x, "y": y, "width": w, "height": h}


def recipe_dict(rules: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    regions = extra.pop(
        "regions",
        [
            {"name": "U3", "box": box(10, 5, 10, 8)},
            {"name": "U4", "box": box(40, 5, 10, 8), "pair": "U3"},
            {"name": "bg", "box": box(0, 30, 60, 10)},
        ],
    )
    return {"name": "test", "frame": {"width": W, "height": H}, "regions": regions,
            "rules": rules, **extra}  # fmt: skip


def make(rules: list[dict[str, Any]], base_dir: Path | None = None, **extra: Any) -> Recipe:
    return parse_recipe(recipe_dict(rules, **extra), base_dir=base_dir)


def scene(**hot: float) -> np.ndarray:
    """A 20 °C frame; keyword ``x_y=value`` sets single pixels."""
    a = np.full((H, W), 20.0, np.float32)
    for key, value in hot.items():
        x, y = (int(v) for v in key.strip("p").split("_"))
        a[y, x] = value
    return a


def one(image: np.ndarray, rule: dict[str, Any], **extra: Any) -> Any:
    result = inspect(ThermalFrame(image), make([rule], **extra))
    assert len(result.findings) == 1
    return result.findings[0]


# --------------------------------------------------------------------------- explanations


def test_max_over_its_limit_is_ng_with_margin_location_and_explanation() -> None:
    f = one(scene(p12_7=78.2), {"type": "max", "region": "U3", "limits": {"max": 70}})
    assert f.verdict is Verdict.NG
    assert f.rule == "U3 max"
    assert f.region == "U3"
    assert f.value == pytest.approx(78.2, abs=1e-5)
    assert f.limit == 70
    assert f.margin == pytest.approx(-8.2, abs=1e-5)
    assert (f.x, f.y) == (12, 7)
    assert f.unit == "°C"
    assert f.explanation == "U3 max 78.2 °C is 8.2 °C over its 70 °C limit"


def test_max_inside_its_limit_says_how_far_below() -> None:
    f = one(scene(p12_7=61.0), {"type": "max", "region": "U3", "limits": {"max": 70}})
    assert f.verdict is Verdict.OK
    assert f.margin == pytest.approx(9.0)
    assert f.explanation == "U3 max 61.0 °C, 9.0 °C below its 70 °C limit"


def test_warning_band() -> None:
    rule = {"type": "max", "region": "U3", "limits": {"max": 70, "warn_max": 65}}
    f = one(scene(p12_7=67.0), rule)
    assert f.verdict is Verdict.WARN
    assert f.margin == pytest.approx(3.0)
    assert (
        f.explanation
        == "U3 max 67.0 °C is over its 65 °C warning limit, 3.0 °C below its 70 °C limit"
    )
    assert one(scene(p12_7=65.0), rule).verdict is Verdict.OK  # limits are inside tolerance
    assert one(scene(p12_7=70.0), rule).verdict is Verdict.WARN
    low = {"type": "min", "region": "U3", "limits": {"min": 10, "warn_min": 15}}
    f = one(scene(p12_7=12.0), low)
    assert f.verdict is Verdict.WARN
    assert (
        f.explanation
        == "U3 min 12.0 °C is under its 15 °C warning limit, 2.0 °C above its 10 °C limit"
    )


def test_min_under_its_limit_and_the_nearest_of_two_limits() -> None:
    rule = {"type": "min", "region": "U3", "limits": {"min": 40, "max": 90}}
    assert one(scene() + 20, rule).verdict is Verdict.OK  # exactly at the limit
    f = one(scene(p11_6=31.0), rule)
    assert f.verdict is Verdict.NG
    assert f.limit == 40
    assert f.margin == pytest.approx(-20.0)
    assert (f.x, f.y) == (10, 5)  # the first of the 20 °C pixels
    assert f.explanation == "U3 min 20.0 °C is 20.0 °C under its 40 °C limit"
    hot = one(scene() + 65, rule)
    assert hot.limit == 90  # nearer than 40
    assert hot.explanation == "U3 min 85.0 °C, 5.0 °C below its 90 °C limit"


def test_small_gaps_get_more_decimals_and_no_negative_zero() -> None:
    f = one(scene(p12_7=70.04), {"type": "max", "region": "U3", "limits": {"max": 70}})
    assert f.explanation == "U3 max 70.0 °C is 0.04 °C over its 70 °C limit"
    f = one(scene(), {"type": "delta_t", "region": "U3", "reference": "U4", "limits": {"max": 1}})
    assert f.explanation == "U3 ΔT to U4 0.0 °C, 1.0 °C below its 1 °C limit (U4 max 20.0 °C)"


# --------------------------------------------------------------------------- every rule type


def test_mean_and_percentile() -> None:
    image = scene()
    image[5:13, 10:20] = np.arange(80, dtype=np.float32).reshape(8, 10)
    f = one(image, {"type": "mean", "region": "U3", "limits": {"max": 100}})
    assert f.value == pytest.approx(39.5)
    assert (f.x, f.y) == (None, None)
    f = one(image, {"type": "percentile", "region": "U3", "percentile": 90, "limits": {"max": 100}})
    assert f.value == pytest.approx(np.percentile(np.arange(80), 90))
    assert f.rule == "U3 percentile"
    assert f.explanation.startswith("U3 p90 71.1 °C")
    assert (f.x, f.y) == (11, 12)  # 71 is the nearest pixel


def test_delta_t_between_regions_and_against_ambient() -> None:
    image = scene(p12_7=50.0, p45_8=44.0)
    image[30:, :] = 23.0
    f = one(image, {"type": "delta_t", "region": "U3", "reference": "U4", "limits": {"max": 5}})
    assert f.value == pytest.approx(6.0)
    assert f.region == "U3-U4"
    assert (f.x, f.y) == (12, 7)
    assert f.explanation == "U3 ΔT to U4 6.0 °C is 1.0 °C over its 5 °C limit (U4 max 44.0 °C)"
    ambient_rule = {
        "type": "delta_t",
        "region": "U3",
        "reference": "ambient",
        "limits": {"max": 30},
    }
    f = one(image, ambient_rule, ambient={"region": "bg"})
    assert f.value == pytest.approx(27.0)
    assert (
        f.explanation == "U3 ΔT to ambient 27.0 °C, 3.0 °C below its 30 °C limit (ambient 23.0 °C)"
    )
    assert f.region == "U3"
    assert one(image, ambient_rule, ambient={"value_c": 25}).value == pytest.approx(25.0)
    recipe = make([ambient_rule], ambient={"value_c": 25})
    assert inspect(ThermalFrame(image), recipe, ambient_c=10.0).findings[0].value == 40.0
    mean_rule = {**ambient_rule, "statistic": "mean"}
    assert one(image, mean_rule, ambient={"value_c": 20}).value == pytest.approx(30 / 80)


def test_hot_and_cold_spot_areas() -> None:
    image = scene()
    image[6:9, 11:14] = 60.0  # 9 px
    image[11, 18] = 70.0  # 1 px, hottest, separate
    rule = {"type": "hot_spot_area", "region": "U3", "threshold_c": 50, "limits": {"max": 5}}
    f = one(image, rule)
    assert (f.value, f.verdict, f.x, f.y, f.unit) == (9, Verdict.NG, 11, 6, "px")
    assert f.explanation == "U3 hot spot 9 px is 4 px over its 5 px limit (pixels above 50.0 °C)"
    assert f.extra == {"threshold_c": 50.0, "total_px": 10, "spots": 2}
    mm = {**rule, "unit": "mm2", "limits": {"max": 1}}
    f = one(image, mm, camera={"pixel_pitch_mm": 0.5})
    assert (f.value, f.unit) == (pytest.approx(2.25), "mm²")
    cold = {"type": "cold_spot_area", "region": "U4", "below_median_c": 5, "limits": {"max": 0}}
    image[7, 44] = 12.0
    f = one(image, cold)
    assert (f.value, f.x, f.y, f.verdict) == (1, 44, 7, Verdict.NG)
    assert f.explanation.endswith("(pixels below 15.0 °C)")


def test_asymmetry_with_a_declared_pair_and_mirrored() -> None:
    image = scene()
    image[5:13, 10:20] += np.arange(10, dtype=np.float32)  # U3 rises to the right
    image[5:13, 40:50] += np.arange(10, dtype=np.float32)[::-1]  # U4 is its mirror image
    rule = {"type": "asymmetry", "region": "U3", "limits": {"min": -1, "max": 1}}
    f = one(image, rule)
    assert f.value == pytest.approx(0.0)
    assert f.region == "U3-U4"
    assert f.rule == "U3 asymmetry"
    assert f.explanation.startswith("U3/U4 asymmetry 0.0 °C")
    mirrored = {**rule, "mirror": "horizontal"}
    assert one(image, mirrored).value == pytest.approx(0.0)
    image[9, 41] += 4.0  # partner pixel mirrored onto U3 column 18
    f = one(image, mirrored)
    assert (f.value, f.x, f.y, f.verdict) == (pytest.approx(-4.0), 18, 9, Verdict.NG)
    assert one(image, {**rule, "region": "U4", "pair": "U3"}).value == pytest.approx(4 / 80)


def test_gradient_per_pixel_and_per_mm() -> None:
    image = scene()
    image[:, 15:] = 30.0  # a 10 °C step between columns 14 and 15
    rule = {"type": "gradient", "region": "U3", "limits": {"max": 3}}
    f = one(image, rule)
    assert (f.value, f.x, f.y, f.unit) == (pytest.approx(5.0), 14, 5, "°C/px")
    assert f.explanation == "U3 gradient 5.00 °C/px is 2.00 °C/px over its 3 °C/px limit"
    f = one(image, {**rule, "unit": "mm", "limits": {"max": 50}}, camera={"pixel_pitch_mm": 0.2})
    assert (f.value, f.unit) == (pytest.approx(25.0), "°C/mm")


def test_polygon_and_mask_file_regions(tmp_path: Path) -> None:
    mask = np.zeros((H, W), np.uint8)
    mask[20:25, 30:33] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    np.save(tmp_path / "m.npy", mask > 0)
    regions = [
        {"name": "tri", "polygon": [[0, 0], [20, 0], [0, 20]]},
        {"name": "png", "mask": "m.png"},
        {"name": "npy", "mask": "m.npy"},
    ]
    rules = [{"type": "max", "region": n, "limits": {"max": 50}} for n in ("tri", "png", "npy")]
    recipe = make(rules, base_dir=tmp_path, regions=regions)
    image = scene(p19_19=90.0, p3_3=55.0, p32_24=60.0, p33_24=99.0)
    values = [(f.value, f.x, f.y) for f in inspect(ThermalFrame(image), recipe).findings]
    assert values == [(55.0, 3, 3), (60.0, 32, 24), (60.0, 32, 24)]


# --------------------------------------------------------------------------- sequences


def sequence(values: list[float], *, dt: float | None = 0.5) -> list[ThermalFrame]:
    frames = []
    for i, v in enumerate(values):
        image = scene()
        image[5:13, 10:20] = v
        meta = FrameMetadata(
            source="part-7", frame_index=i, timestamp_s=None if dt is None else 100 + i * dt
        )
        frames.append(ThermalFrame(image, metadata=meta))
    return frames


def seq_rules(tmp_path: Path) -> list[dict[str, Any]]:
    (tmp_path / "golden.csv").write_text("t_s,celsius\n0,20\n10,70\n")
    return [
        {
            "type": "heating_rate",
            "region": "U3",
            "window_s": [0, 2],
            "limits": {"min": 4, "max": 6},
        },
        {"type": "cooling_rate", "region": "U3", "window_s": [3, 5], "limits": {"min": 2}},
        {"type": "time_to_reach", "region": "U3", "temperature_c": 27, "limits": {"max": 1}},
        {
            "type": "curve_shape",
            "region": "U3",
            "golden_file": "golden.csv",
            "limits": {"min": -2, "max": 2},
        },
        {"type": "max", "region": "U3", "limits": {"max": 40}},
    ]


def test_sequence_rules(tmp_path: Path) -> None:
    values = [20.0 + 5 * i for i in range(5)] + [40.0 - 3 * i for i in range(1, 6)]
    # t = 0 .. 4.5 s; rising 10 °C/s to 40 °C at t = 2 s, then falling 6 °C/s
    recipe = make(seq_rules(tmp_path), base_dir=tmp_path)
    result = inspect(sequence(values), recipe)
    rate, cooling, reach, curve, last = result.findings
    assert result.source == "part-7"
    assert result.frame == 9
    assert (rate.value, rate.unit, rate.verdict) == (pytest.approx(10.0), "°C/s", Verdict.NG)
    assert (
        rate.explanation == "U3 heating rate 10.00 °C/s is 4.00 °C/s over its 6 °C/s limit (0-2 s)"
    )
    assert (cooling.value, cooling.verdict) == (pytest.approx(6.0), Verdict.OK)
    assert (reach.value, reach.unit) == (pytest.approx(0.7), "s")
    assert reach.explanation == "U3 time to 27 °C 0.70 s, 0.30 s below its 1 s limit"
    assert curve.value == pytest.approx(40.0 - 3 * 5 - 20 - 5 * 4.5)  # t = 4.5 s
    assert curve.explanation.endswith("(at t = 4.50 s)")
    assert curve.extra["time_s"] == 4.5
    assert last.value == pytest.approx(25.0)  # the last frame by default


def test_sequence_timing_and_frame_choice(tmp_path: Path) -> None:
    values = [20.0 + 5 * i for i in range(5)]
    rules = [*seq_rules(tmp_path)[:1], {"type": "max", "region": "U3", "limits": {"max": 90}}]
    untimed = sequence(values, dt=None)
    with pytest.raises(InspectionError, match="frame_rate_hz"):
        inspect(untimed, make(rules))
    timed = make(rules, sequence={"frame_rate_hz": 4, "frame": 1})
    rate, peak = inspect(ThermalSequence.of(untimed, source="seq"), timed).findings
    assert rate.value == pytest.approx(20.0)
    assert peak.value == 25.0
    with pytest.raises(InspectionError, match="outside the 5 frames"):
        inspect(untimed, make(rules, sequence={"frame_rate_hz": 4, "frame": 5}))
    backwards = sequence(values)[::-1]
    with pytest.raises(InspectionError, match="do not increase"):
        inspect(backwards, make(rules))
    with pytest.raises(InspectionError, match="sequence rules"):
        inspect(untimed[0], timed)
    with pytest.raises(InspectionError, match="no frames"):
        inspect([], timed)


def test_unmeasurable_sequence_values_are_ng_with_a_reason(tmp_path: Path) -> None:
    rules = [
        {"type": "time_to_reach", "region": "U3", "temperature_c": 90, "limits": {"max": 1}},
        {"type": "heating_rate", "region": "U3", "window_s": [10, 20], "limits": {"min": 1}},
    ]
    never, empty = inspect(sequence([20.0, 30.0, 40.0]), make(rules)).findings
    assert never.verdict is Verdict.NG
    assert math.isnan(never.value)
    assert never.explanation == "U3 mean never rose to 90 °C within 1.00 s"
    assert never.to_json()["value"] is None
    assert empty.verdict is Verdict.NG
    assert "cannot be measured" in empty.explanation


# --------------------------------------------------------------------------- inputs that do not fit


def test_wrong_frame_size_is_a_clear_error() -> None:
    recipe = make([{"type": "max", "region": "U3", "limits": {"max": 70}}])
    small = ThermalFrame(np.zeros((30, 60), np.float32), metadata=FrameMetadata(source="a.tif"))
    with pytest.raises(
        InspectionError, match=r"a.tif is 60x30 pixels but recipe 'test' expects 60x40"
    ):
        inspect(small, recipe)
    with pytest.raises(InspectionError, match="expects 60x40"):
        inspect([small, small], recipe)
    with pytest.raises(InspectionError, match="drawn for 60x40 frames, not 64x48"):
        compile_recipe(recipe, (48, 64))


def test_all_nan_region_is_ng() -> None:
    image = scene()
    image[5:13, 10:20] = np.nan
    f = one(image, {"type": "max", "region": "U3", "limits": {"max": 70}})
    assert f.verdict is Verdict.NG
    assert f.explanation == "U3 max: no valid temperature in the region"
    assert f.to_json()["value"] is None


def test_emissivity_needs_a_calibration() -> None:
    recipe = make(
        [{"type": "max", "region": "U3", "limits": {"max": 70}}], camera={"emissivity": 0.8}
    )
    with pytest.raises(InspectionError, match="no radiometric calibration"):
        inspect(ThermalFrame(scene()), recipe)


def test_global_and_region_emissivity_recompute_temperatures() -> None:
    frame = planck_frame(H, W)
    regions = [
        {"name": "left", "box": box(0, 0, 30, 40), "emissivity": 0.7},
        {"name": "right", "box": box(30, 0, 30, 40)},
    ]
    rules = [{"type": "max", "region": n, "limits": {"max": 500}} for n in ("left", "right")]
    recipe = make(rules, regions=regions, camera={"emissivity": 0.9})
    left, right = inspect(frame, recipe).findings
    whole = frame.with_parameters(emissivity=0.9).celsius
    own = frame.with_parameters(emissivity=0.7).celsius
    assert right.value == pytest.approx(float(whole[:, 30:].max()), abs=1e-4)
    assert left.value == pytest.approx(float(own[:, :30].max()), abs=1e-4)
    assert left.value > float(whole[:, :30].max())


def test_inputs_are_not_modified_and_json_keys_are_stable() -> None:
    image = scene(p12_7=78.2)
    frame = ThermalFrame(image, metadata=FrameMetadata(source="p1.tiff", frame_index=3))
    before = frame.celsius.copy()
    result = inspect(frame, make([{"type": "max", "region": "U3", "limits": {"max": 70}}]))
    np.testing.assert_array_equal(frame.celsius, before)
    data = result.to_json()
    assert list(data) == ["source", "frame", "verdict", "findings"]
    assert (data["source"], data["frame"], data["verdict"]) == ("p1.tiff", 3, "NG")
    assert list(data["findings"][0]) == [
        "rule", "region", "value", "limit", "verdict", "x", "y", "explanation",
        "margin", "unit", "score", "extra",
    ]  # fmt: skip
    assert data["findings"][0]["unit"] == "°C"
    assert data["findings"][0]["margin"] == pytest.approx(70 - data["findings"][0]["value"])
    json.dumps(data, allow_nan=False)
    assert Inspection.from_json(json.loads(json.dumps(data))) == result


def test_plans_are_reused_and_equal_to_fresh_ones() -> None:
    recipe = make([{"type": "max", "region": "U3", "limits": {"max": 70}}])
    frame = ThermalFrame(scene(p12_7=50.0))
    plan = compile_recipe(recipe)
    assert inspect(frame, recipe) == inspect(frame, plan) == inspect(frame, recipe, source="")
    assert inspect(frame, plan, source="x").source == "x"


# --------------------------------------------------------------------------- alignment


def textured(shape: tuple[int, int] = (H, W), seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (25 + cv2.GaussianBlur(rng.normal(0, 4, shape), (0, 0), 1.5)).astype(np.float32)


def move(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.full_like(image, 25.0)
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


@pytest.mark.parametrize("fiducials", [[], ["f1", "f2"]], ids=["phase", "fiducials"])
def test_alignment_registers_a_shifted_part(tmp_path: Path, fiducials: list[str]) -> None:
    reference = textured()
    reference[9, 15] = 80.0
    np.save(tmp_path / "ref.npy", reference)
    regions = [
        {"name": "U3", "box": box(12, 6, 8, 6)},
        {"name": "f1", "box": box(30, 10, 12, 12)},
        {"name": "f2", "box": box(8, 20, 12, 12)},
    ]
    alignment = {"reference": "ref.npy", "fiducials": fiducials, "max_shift_px": 4}
    recipe = make(
        [{"type": "max", "region": "U3", "limits": {"max": 70}}],
        base_dir=tmp_path, regions=regions, alignment=alignment,
    )  # fmt: skip
    f = inspect(ThermalFrame(move(reference, 3, -2)), recipe).findings[0]
    assert (f.value, f.x, f.y) == (80.0, 15, 9)  # found where the reference had it
    far = inspect(ThermalFrame(move(reference, 9, 0)), recipe)
    assert far.verdict is Verdict.NG
    assert [g.rule for g in far.findings] == ["alignment"]
    assert (
        "alignment allows" in far.findings[0].explanation
        or "not found" in far.findings[0].explanation
    )


def test_region_emissivity_follows_an_aligned_part(tmp_path: Path) -> None:
    base = planck_frame(H, W)
    assert base.raw is not None
    np.save(tmp_path / "ref.npy", base.celsius)
    raw = np.roll(base.raw, (2, 3), axis=(0, 1))  # the part moved 3 px right, 2 px down
    moved = ThermalFrame(CALIBRATION.to_celsius(raw, PARAMETERS), raw=raw, metadata=base.metadata)
    regions = [{"name": "spot", "box": box(13, 17, 6, 6), "emissivity": 0.7}]
    rules = [{"type": "max", "region": "spot", "limits": {"max": 500}}]
    recipe = make(rules, base_dir=tmp_path, regions=regions, alignment={"reference": "ref.npy"})
    expected = base.with_parameters(emissivity=0.7).celsius[17:23, 13:19].max()
    assert inspect(moved, recipe).findings[0].value == pytest.approx(float(expected), abs=1e-3)


def test_arrays_are_not_frames() -> None:
    recipe = make([{"type": "max", "region": "U3", "limits": {"max": 70}}])
    with pytest.raises(InspectionError, match="not an array"):
        inspect(scene(), recipe)  # type: ignore[arg-type]
    with pytest.raises(InspectionError, match="not ndarray"):
        inspect([scene()], recipe)  # type: ignore[list-item]


def test_alignment_reference_must_fit(tmp_path: Path) -> None:
    np.save(tmp_path / "ref.npy", np.zeros((10, 10), np.float32))
    recipe = make(
        [{"type": "max", "region": "U3", "limits": {"max": 70}}],
        base_dir=tmp_path, alignment={"reference": "ref.npy"},
    )  # fmt: skip
    with pytest.raises(RecipeError, match=r"alignment.reference: .*10x10"):
        compile_recipe(recipe)


# --------------------------------------------------------------------------- schema


def test_yaml_json_and_defaults(tmp_path: Path) -> None:
    data = recipe_dict([{"type": "max", "region": "U3", "limits": {"max": 70}}], version=1.5)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "r.json").write_text(json.dumps(data))
    a, b = load_recipe(tmp_path / "r.yaml"), load_recipe(tmp_path / "r.json")
    assert a == b
    assert a.version == "1.5"
    assert a.rules[0].label == "U3 max"
    assert a.pair_of("U3") == "U4"
    assert a.pair_of("U4") == "U3"
    assert not a.has_sequence_rules


MALFORMED: list[tuple[str, Any, str, str]] = [
    ("unknown top key", ("colour", "red"), "colour", "unknown key 'colour'"),
    ("unknown rule key", ("rules.0.colour", 1), "rules[0].colour", "unknown key"),
    ("unknown limits key", ("rules.0.limits.top", 1), "rules[0].limits.top", "unknown key"),
    ("unknown region key", ("regions.0.box.depth", 1), "regions[0].box.depth", "unknown key"),
    (
        "inverted ng",
        ("rules.0.limits", {"min": 80, "max": 70}),
        "rules[0].limits",
        "min 80 > max 70",
    ),
    (
        "inverted warn",
        ("rules.0.limits", {"max": 80, "warn_min": 9, "warn_max": 8}),
        "rules[0].limits",
        "warn_min 9 > warn_max 8",
    ),
    (
        "warn outside",
        ("rules.0.limits", {"max": 70, "warn_max": 75}),
        "rules[0].limits",
        "warn_max 75 is above max 70",
    ),
    (
        "no ng limit",
        ("rules.0.limits", {"warn_max": 75}),
        "rules[0].limits",
        "at least one NG limit",
    ),
    ("box outside", ("regions.0.box.x", 55), "regions[0]", "outside the 60x40 frame"),
    (
        "polygon outside",
        ("regions.0", {"name": "U3", "polygon": [[0, 0], [70, 0], [0, 9]]}),
        "regions[0]",
        "outside",
    ),
    (
        "two shapes",
        ("regions.0.polygon", [[0, 0], [5, 0], [0, 5]]),
        "regions[0]",
        "exactly one of box, polygon or mask",
    ),
    (
        "missing mask",
        ("regions.0", {"name": "U3", "mask": "nope.png"}),
        "regions[0].mask",
        "file not found",
    ),
    (
        "missing golden",
        (
            "rules.0",
            {"type": "curve_shape", "region": "U3", "golden_file": "g.csv", "limits": {"max": 1}},
        ),
        "rules[0].golden_file",
        "file not found",
    ),
    (
        "missing reference",
        ("alignment", {"reference": "ref.npy"}),
        "alignment.reference",
        "file not found",
    ),
    ("duplicate region", ("regions.2.name", "U3"), "regions[2].name", "duplicate region name 'U3'"),
    (
        "duplicate rule",
        ("rules.1", {"type": "max", "region": "U3", "limits": {"max": 1}}),
        "rules[1].name",
        "duplicate rule name 'U3 max'",
    ),
    ("unknown region", ("rules.0.region", "U9"), "rules[0].region", "unknown region 'U9'"),
    (
        "unknown reference",
        ("rules.0", {"type": "delta_t", "region": "U3", "reference": "X", "limits": {"max": 1}}),
        "rules[0].reference",
        "unknown region 'X'",
    ),
    (
        "no ambient",
        (
            "rules.0",
            {"type": "delta_t", "region": "U3", "reference": "ambient", "limits": {"max": 1}},
        ),
        "rules[0].reference",
        "no ambient section",
    ),
    ("unknown pair", ("regions.1.pair", "U7"), "regions[1].pair", "unknown region 'U7'"),
    (
        "no pair",
        ("rules.0", {"type": "asymmetry", "region": "bg", "limits": {"max": 1}}),
        "rules[0].pair",
        "has no pair",
    ),
    (
        "unknown fiducial",
        ("alignment", {"reference": "r.npy", "fiducials": ["Z"]}),
        "alignment.fiducials[0]",
        "unknown region 'Z'",
    ),
    ("unknown type", ("rules.0.type", "hottest"), "rules[0].type", "unknown rule type 'hottest'"),
    (
        "no type",
        ("rules.0", {"region": "U3", "limits": {"max": 1}}),
        "rules[0].type",
        "missing rule type",
    ),
    (
        "bad emissivity",
        ("camera", {"emissivity": 1.5}),
        "camera.emissivity",
        "less than or equal to 1",
    ),
    ("nan", ("camera", {"pixel_pitch_mm": float("nan")}), "camera.pixel_pitch_mm", "finite"),
    (
        "percentile",
        (
            "rules.0",
            {"type": "percentile", "region": "U3", "percentile": 120, "limits": {"max": 1}},
        ),
        "rules[0].percentile",
        "less than or equal to 100",
    ),
    (
        "two thresholds",
        (
            "rules.0",
            {
                "type": "hot_spot_area",
                "region": "U3",
                "threshold_c": 5,
                "above_median_c": 1,
                "limits": {"max": 1},
            },
        ),
        "rules[0]",
        "exactly one of threshold_c or above_median_c",
    ),
    (
        "mm without pitch",
        ("rules.0", {"type": "gradient", "region": "U3", "unit": "mm", "limits": {"max": 1}}),
        "rules[0].unit",
        "needs camera.pixel_pitch_mm",
    ),
    (
        "inverted window",
        (
            "rules.0",
            {"type": "heating_rate", "region": "U3", "window_s": [3, 1], "limits": {"max": 1}},
        ),
        "rules[0].window_s",
        "inverted window",
    ),
    (
        "golden backwards",
        (
            "rules.0",
            {
                "type": "curve_shape",
                "region": "U3",
                "golden": [[0, 1], [0, 2]],
                "limits": {"max": 1},
            },
        ),
        "rules[0]",
        "times must increase",
    ),
    (
        "ambient both",
        ("ambient", {"region": "bg", "value_c": 20}),
        "ambient",
        "exactly one of region or value_c",
    ),
    ("reserved name", ("regions.2.name", "ambient"), "regions[2]", "reserved"),
    ("negative size", ("frame.width", 0), "frame.width", "greater than or equal to 1"),
    ("no rules", ("rules", []), "rules", "at least 1 item"),
    ("missing name", ("name", None), "name", "valid string"),
]


def mutate(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    node: Any = out
    for k in keys[:-1]:
        node = node[k]
    if isinstance(node, list) and keys[-1] == len(node):
        node.append(value)
    else:
        node[keys[-1]] = value
    return out


@pytest.mark.parametrize(
    ("change", "path", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_recipes_give_one_error_naming_the_field(
    tmp_path: Path, change: tuple[str, Any], path: str, message: str
) -> None:
    base = recipe_dict([{"type": "max", "region": "U3", "limits": {"max": 70}}])
    data = mutate(base, *change)
    np.save(tmp_path / "r.npy", np.zeros((H, W), np.float32))
    file = tmp_path / "recipe.yaml"
    file.write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError) as caught:
        load_recipe(file)
    err = caught.value
    assert len(err.problems) == 1, err.problems
    assert err.path == path
    assert message in str(err)
    assert str(err).startswith(f"{file}: {path}: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed\n", "not valid YAML/JSON at line 2"),
        ("- a\n- b\n", "must be a mapping"),
        ("", "got nothing"),
        ("name: a\nname: b\n", "key 'name' given twice"),
        ('{"name": "a", "frame": ', "not valid YAML/JSON"),
        ("? [a, b]\n: 1\n", "unhashable key"),
        (b"name: \xc3\x28\n", "not valid YAML/JSON"),
    ],
)
def test_unreadable_text_gives_one_recipe_error(text: str | bytes, message: str) -> None:
    with pytest.raises(RecipeError, match=re.escape(message)) as caught:
        parse_recipe(text)
    assert caught.value.path == ""


def test_missing_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot read the recipe"):
        load_recipe(tmp_path / "absent.yaml")


def test_several_problems_are_listed_in_one_error() -> None:
    data = recipe_dict([{"type": "max", "region": "U3", "limits": {"max": 70}}], colour=1, size=2)
    with pytest.raises(RecipeError) as caught:
        parse_recipe(data)
    assert [p for p, _ in caught.value.problems] == ["colour", "size"]
    assert str(caught.value).splitlines()[0] == "invalid recipe"


def test_json_schema_describes_every_field() -> None:
    schema = recipe_json_schema()
    assert set(schema["$defs"]) >= {m.__name__ for m in RULE_TYPES.values()}
    objects = [schema, *schema["$defs"].values()]
    for obj in objects:
        assert obj.get("additionalProperties") is False, obj.get("title")
        for name, prop in obj.get("properties", {}).items():
            assert prop.get("description"), f"{obj.get('title')}.{name} has no description"


# --------------------------------------------------------------------------- fuzzing the parser


def parses_or_refuses(source: Any) -> None:
    """A valid recipe, or one RecipeError with at least one problem: never another exception."""
    try:
        parse_recipe(source)
    except RecipeError as exc:
        problems = exc.problems
    else:
        return
    assert problems


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = st.sampled_from(
    ["name", "frame", "width", "height", "regions", "rules", "type", "region", "limits", "min",
     "max", "box", "x", "y", "polygon", "mask", "pair", "reference", "ambient", "alignment",
     "camera", "emissivity", "golden", "window_s", "percentile", "value_c", "sequence"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(FIELD_NAMES | st.text(max_size=6), json_values, max_size=6))
def test_random_mappings_give_a_recipe_or_a_recipe_error(data: dict[str, Any]) -> None:
    parses_or_refuses(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_changes_to_a_valid_recipe_give_a_recipe_or_a_recipe_error(
    data: st.DataObject,
) -> None:
    recipe = recipe_dict(
        [
            {"type": "max", "region": "U3", "limits": {"max": 70, "warn_max": 60}},
            {"type": "delta_t", "region": "U3", "reference": "U4", "limits": {"min": -5, "max": 5}},
            {
                "type": "curve_shape",
                "region": "U3",
                "golden": [[0, 1], [2, 3]],
                "limits": {"max": 1},
            },
        ],
        ambient={"region": "bg"},
    )
    for _ in range(data.draw(st.integers(1, 3))):
        node: Any = recipe
        while True:
            keys = list(range(len(node))) if isinstance(node, list) else list(node)
            if not keys:
                break
            key = data.draw(st.sampled_from(keys))
            if isinstance(node[key], (dict, list)) and data.draw(st.booleans()):
                node = node[key]
                continue
            node[key] = data.draw(json_values)
            break
    parses_or_refuses(recipe)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=100))
def test_random_text_gives_a_recipe_or_a_recipe_error(text: str | bytes) -> None:
    parses_or_refuses(text)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_random_yaml_documents_give_a_recipe_error(value: Any) -> None:
    text = yaml.safe_dump({"name": "x", "frame": {"width": 4, "height": 4}, "rules": value})
    with pytest.raises(RecipeError):
        parse_recipe(text)


# --------------------------------------------------------------------------- real files


@pytest.mark.samples
@pytest.mark.parametrize("path", reference_cases("flir"))
def test_real_files_max_min_mean_equal_the_reference(path: Path) -> None:
    reference = np.load(reference_for(path))["celsius"]
    frames = reference if reference.ndim == 3 else reference[None]
    h, w = frames.shape[1:]
    x0, y0, bw, bh = w // 4, h // 4, w // 2, h // 2
    recipe = parse_recipe(
        {
            "name": "real",
            "frame": {"width": w, "height": h},
            "regions": [{"name": "centre", "box": box(x0, y0, bw, bh)}],
            "rules": [
                {"type": t, "region": "centre", "limits": {"min": -273, "max": 5000}}
                for t in ("max", "min", "mean")
            ],
        }
    )
    with tio.open_path(path) as seq:
        decoded = [frame for frame in seq]
    assert len(decoded) == len(frames)
    for celsius, frame in zip(frames, decoded, strict=True):
        crop = celsius[y0 : y0 + bh, x0 : x0 + bw]
        got = inspect(ThermalFrame(celsius), recipe)
        hi, lo, mean = got.findings
        assert hi.value == float(crop.max())
        assert lo.value == float(crop.min())
        assert mean.value == float(crop.mean(dtype=np.float64))
        assert celsius[hi.y, hi.x] == hi.value
        assert celsius[lo.y, lo.x] == lo.value
        assert got.verdict is Verdict.OK
        # the same rules on the file as our readers decode it (within the readers' 0.01 °C)
        from_file = inspect(frame, recipe)
        for ours, ref in zip(from_file.findings, got.findings, strict=True):
            assert abs(ours.value - ref.value) <= 0.01
