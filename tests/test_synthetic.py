"""The synthetic production line: determinism, ground truth, file round trips, drift, and the
shipped example recipes finding its defective parts."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import thermoscope.io as tio
from thermoscope.analysis import registration
from thermoscope.core import Box, Verdict
from thermoscope.datasets.synthetic import (
    GROUND_TRUTH,
    PRODUCTS,
    VISIBLE_C,
    Drift,
    ProductLine,
    SyntheticPart,
    product_layout,
    save_run,
    simulate_run,
)
from thermoscope.recipes import load_recipe
from thermoscope.recipes.engine import compile_recipe, inspect

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

DEFECTS = [(name, kind) for name, product in PRODUCTS.items() for kind in product.defect_kinds]


def line(product: str, seed: int = 11, **options: float) -> ProductLine:
    return ProductLine(product, rng=np.random.default_rng(seed), **options)  # type: ignore[arg-type]


def raws(part: SyntheticPart) -> list[np.ndarray]:
    return [f.raw for f in part.frames if f.raw is not None]


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_same_seed_same_frames_other_seed_other_frames(product: str) -> None:
    first = list(simulate_run(product, parts=30, defect_rate=0.1, rng=np.random.default_rng(5)))
    again = list(simulate_run(product, parts=30, defect_rate=0.1, rng=np.random.default_rng(5)))
    other = list(simulate_run(product, parts=30, defect_rate=0.1, rng=np.random.default_rng(6)))
    for a, b in zip(first, again, strict=True):
        assert a.serial == b.serial
        assert np.array_equal(a.frame.raw, b.frame.raw)
        assert np.array_equal(a.frame.celsius, b.frame.celsius)
        assert [d.where for d in a.defects] == [d.where for d in b.defects]
    assert sum(p.is_defective for p in first) == 3
    assert not np.array_equal(first[0].frame.raw, other[0].frame.raw)


def test_a_part_does_not_depend_on_the_parts_made_before_it() -> None:
    pcb = line("pcb")
    run = list(pcb.run(40, defect_rate=0.1))
    bad = next(p for p in run if p.is_defective)
    alone = pcb.part(bad.index, defect=bad.defects[0].kind)
    assert np.array_equal(alone.frame.raw, bad.frame.raw)
    assert alone.defects[0].where == bad.defects[0].where
    plan = pcb.plan(40, defect_rate=0.1)
    assert len(plan) == 4
    assert {p.index: p.defects[0].kind for p in run if p.is_defective} == plan
    with pytest.raises(ValueError, match="defect_rate"):
        pcb.plan(4, defect_rate=1.5)


@pytest.mark.parametrize(("product", "kind"), DEFECTS)
def test_ground_truth_mask_sits_where_the_defect_is(product: str, kind: str) -> None:
    made = line(product)
    for index in range(6):
        good = made.part(index)
        bad = made.part(index, defect=kind)
        (defect,) = bad.defects
        assert (defect.part_index, defect.serial, defect.kind) == (index, bad.serial, kind)
        assert defect.mask.shape == bad.frame.shape
        assert defect.mask.any()
        # same part, same noise: the frames differ by the defect alone
        change = bad.frame.celsius - good.frame.celsius
        assert np.sign(change[defect.mask].mean()) == np.sign(defect.delta_c)
        assert abs(change[defect.mask]).min() >= 0.4 * abs(defect.delta_c) - 0.05
        outside = ~cv2.dilate(defect.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        assert abs(change[outside]).max() < 0.25 * abs(defect.delta_c)
        # ... and the mask lies in the named region where the part lies on the conveyor
        region = made.layout[defect.where]
        assert isinstance(region, Box)
        pose = bad.pose
        rows, cols = np.nonzero(defect.mask)
        centre_x, centre_y = cols.mean() + 0.5, rows.mean() + 0.5
        slack = 2 + abs(pose.dx_px) + abs(pose.dy_px) + 90 * np.radians(abs(pose.angle_deg))
        assert region.x - slack <= centre_x <= region.x + region.width + slack
        assert region.y - slack <= centre_y <= region.y + region.height + slack


@pytest.mark.parametrize(("product", "kind"), DEFECTS)
def test_sequence_frame_range_is_where_the_defect_shows(product: str, kind: str) -> None:
    made = line(product)
    good = made.part(2, sequence=True)
    bad = made.part(2, defect=kind, sequence=True)
    assert len(bad.frames) == PRODUCTS[product].frames
    first, stop = bad.defects[0].frames
    assert 0 <= first < stop == len(bad.frames)
    for k, (g, b) in enumerate(zip(good.frames, bad.frames, strict=True)):
        assert b.metadata.frame_index == k
        largest = float(abs(b.celsius - g.celsius).max())
        if k >= first:
            assert largest >= VISIBLE_C * 0.9
        else:
            assert largest < VISIBLE_C * 1.1


def test_pcb_components_heat_up_and_seals_cool_down() -> None:
    pcb = line("pcb").part(0, sequence=True)
    u1 = product_layout("pcb")["U1"]
    assert isinstance(u1, Box)
    means = [f.celsius[u1.y : u1.y + u1.height, u1.x : u1.x + u1.width].mean() for f in pcb.frames]
    assert all(np.diff(means) > 0)
    assert means[-1] - pcb.ambient_c > 25.0
    seal = line("seal").part(0, sequence=True)
    top = product_layout("seal")["seam_top"]
    assert isinstance(top, Box)
    seam = [f.celsius[top.y + 4 : top.y + 8, 40:120].mean() for f in seal.frames]
    assert all(np.diff(seam) < 0)
    times = [f.metadata.timestamp_s for f in seal.frames]
    assert times[0] == 0.0
    assert times[1] == pytest.approx(0.1)


@pytest.mark.parametrize(("suffix", "sequence"), [(".seq", True), (".csq", True), (".fff", False)])
def test_frames_round_trip_through_flir_files(tmp_path: Path, suffix: str, sequence: bool) -> None:
    part = line("battery").part(3, defect="hot_cell", sequence=sequence)
    path = tio.save(list(part.frames), tmp_path / f"{part.serial}{suffix}")
    with tio.open_path(path) as read:
        assert len(read) == len(part.frames)
        for original, back in zip(part.frames, read, strict=True):
            assert np.array_equal(back.raw, original.raw)
            np.testing.assert_allclose(back.celsius, original.celsius, atol=0.01)
            assert back.metadata.parameters is not None
            assert back.metadata.parameters.emissivity == pytest.approx(0.95)


def test_a_saved_run_reads_back_with_its_ground_truth(tmp_path: Path) -> None:
    parts = list(simulate_run("seal", parts=5, defect_rate=0.4, rng=np.random.default_rng(3)))
    manifest = save_run(parts, tmp_path / "run", suffix=".csq")
    assert manifest == tmp_path / "run" / GROUND_TRUTH
    records = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    assert [r["serial"] for r in records] == [p.serial for p in parts]
    for part, record in zip(parts, records, strict=True):
        assert record["defective"] == part.is_defective
        assert np.array_equal(tio.load(tmp_path / "run" / record["file"]).raw, part.frame.raw)
        for defect, saved in zip(part.defects, record["defects"], strict=True):
            mask = cv2.imread(str(tmp_path / "run" / saved["mask"]), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(mask > 0, defect.mask)
            x0, y0, x1, y1 = saved["bbox"]
            assert defect.mask[y0:y1, x0:x1].sum() == defect.mask.sum()
            assert saved["kind"] == "seal_gap"
    assert sum(r["defective"] for r in records) == 2


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_layout_fits_the_frame_and_scales(product: str) -> None:
    small, large = product_layout(product), product_layout(product, scale=2)
    frame = line(product, scale=2).part(0).frame
    assert frame.shape == (240, 320)
    assert set(small) == set(large)
    assert "conveyor" in small
    for name, region in large.items():
        assert region.mask(frame.shape).any(), name
        x0, y0, x1, y1 = small[name].bounds()
        assert region.bounds() == (2 * x0, 2 * y0, 2 * x1, 2 * y1)


def test_ambient_reference_reads_the_ambient_over_the_shift() -> None:
    made = line("pcb")
    ref = made.layout["conveyor"]
    first, late = made.part(0), made.part(900)
    assert late.ambient_c > first.ambient_c + 2.0
    for part in (first, late):
        reading = part.frame.celsius[ref.mask(part.frame.shape)].mean()
        assert reading == pytest.approx(part.ambient_c, abs=0.3)


def test_slow_drift_grows_part_after_part() -> None:
    made = line("seal")
    drift = Drift("seal", per_part_c=-0.05, start_part=100)
    seam = made.layout["seam_left"]
    assert isinstance(seam, Box)
    inner = (slice(seam.y + 10, seam.y + seam.height - 10), slice(seam.x + 4, seam.x + 8))
    for index, expected in ((50, 0.0), (100, 0.0), (300, -10.0)):
        drifted = made.part(index, drift=drift)
        steady = made.part(index)
        assert drifted.drift_c == pytest.approx(expected)
        shift = (drifted.frame.celsius[inner] - steady.frame.celsius[inner]).mean()
        assert shift == pytest.approx(expected, abs=0.05 + 0.1 * abs(expected))
        assert not drifted.is_defective


def test_jitter_moves_the_part_and_can_be_turned_off() -> None:
    still = line("pcb", jitter_px=0.0, jitter_deg=0.0)
    moving = line("pcb")
    assert still.part(4).pose.dx_px == 0.0
    poses = [moving.part(i).pose for i in range(20)]
    assert max(abs(p.dx_px) for p in poses) > 1.5
    assert all(abs(p.dx_px) <= 3 and abs(p.angle_deg) <= 1 for p in poses)


def test_pose_is_the_motion_a_registration_recovers() -> None:
    """``Pose`` follows ``analysis.registration.Motion`` (shift, then the frame centre)."""
    still = line("pcb", jitter_px=0.0, jitter_deg=0.0)
    shifted = line("pcb", jitter_deg=0.0)
    for index in range(5):
        moved = shifted.part(index)
        found = registration.estimate_translation(
            still.part(index).frame.celsius, moved.frame.celsius
        )
        assert (found.dx, found.dy) == pytest.approx((moved.pose.dx_px, moved.pose.dy_px), abs=0.4)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown product"):
        ProductLine("toaster", rng=np.random.default_rng(0))
    made = line("pcb")
    with pytest.raises(ValueError, match="no defect 'seal_gap'"):
        made.part(0, defect="seal_gap")
    with pytest.raises(ValueError, match="choose from"):
        made.part(0, defect="cold_joint", where="C3")
    with pytest.raises(ValueError, match="no drift target"):
        made.part(0, drift=Drift("pump", 0.1))


@pytest.mark.parametrize("product", sorted(PRODUCTS))
def test_shipped_recipe_finds_the_defective_parts(product: str) -> None:
    """The done-when check: 1,000 parts, 5 % defective, inspected with ``examples/<product>.yaml``.

    A part counts as rejected (positive) when its verdict is NG; WARN is a pass with a note for
    the drift watch and counts as not rejected. Recall >= 0.98 at precision >= 0.95 against the
    ground truth, and every rejected defective part has an NG finding on the defect's region.
    """
    plan = compile_recipe(load_recipe(EXAMPLES / f"{product}.yaml"))
    rng = np.random.default_rng(2026)
    hits = misses = false_alarms = 0
    for part in simulate_run(product, parts=1000, defect_rate=0.05, rng=rng):
        result = inspect(part.frame, plan)
        rejected = result.verdict is Verdict.NG
        if not part.is_defective:
            false_alarms += rejected
            continue
        if not rejected:
            misses += 1
            continue
        hits += 1
        where = part.defects[0].where
        ng = [f.region for f in result.findings if f.verdict is Verdict.NG]
        assert any(where in region for region in ng), (part.serial, where, ng)
    assert hits + misses == 50
    recall, precision = hits / (hits + misses), hits / max(hits + false_alarms, 1)
    assert recall >= 0.98, f"{product}: recall {recall:.3f} ({misses} missed)"
    assert precision >= 0.95, f"{product}: precision {precision:.3f} ({false_alarms} false alarms)"


def test_a_failing_jaw_heater_warns_before_parts_fail() -> None:
    plan = compile_recipe(load_recipe(EXAMPLES / "seal.yaml"))
    made = line("seal", seed=2026)
    drift = Drift("seal", per_part_c=-0.03, start_part=200)
    verdicts = {
        i: inspect(made.part(i, drift=drift).frame, plan).verdict for i in range(0, 700, 25)
    }
    assert all(v is Verdict.OK for i, v in verdicts.items() if i <= 250)
    first_warn = min(i for i, v in verdicts.items() if v is not Verdict.OK)
    first_ng = min(i for i, v in verdicts.items() if v is Verdict.NG)
    assert 250 < first_warn < first_ng < 700
