"""The synthetic line's ``hard`` difficulty: determinism, ground truth for localisation,
physically plausible subtle defects, and the ``normal`` difficulty left bit for bit as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from thermoscope.cli.main import app
from thermoscope.datasets.synthetic import (
    GROUND_TRUTH,
    VISIBLE_C,
    ProductLine,
    SyntheticPart,
    simulate_run,
)
from thermoscope.datasets.synthetic.heat import steady_state, unit_maps, upsample
from thermoscope.datasets.synthetic.line import HARD_CAMERA
from thermoscope.datasets.versions import DatasetError

#: Fingerprint of the ``normal`` output as it was before ``hard`` existed (recipes, tests and
#: recorded runs rely on it staying the same): per part of an 8-part run the mean and max °C, the
#: mean raw count and the defects (kind, mask pixels); then the mean raw count and the frame count
#: of a recording. Compared to 1e-4 °C and 1e-2 counts, not bit for bit: NumPy's vectorised
#: transcendental functions may differ in the last bit between CPUs.
NORMAL_FINGERPRINT: dict[
    str, tuple[list[tuple[float, float, float, list[tuple[str, int]]]], tuple[float, int]]
] = {
    "battery": (
        [
            (25.58916, 32.063046, 17189.672, []),
            (25.309619, 33.874554, 17139.937, [("hot_cell", 621)]),
            (25.849099, 36.593502, 17236.036, [("hot_cell", 619)]),
            (25.534805, 31.55179, 17179.167, []),
            (25.779151, 32.320522, 17222.073, []),
            (25.494003, 31.054749, 17170.929, []),
            (26.306567, 38.230701, 17317.085, [("hot_cell", 617)]),
            (26.084405, 35.726261, 17276.182, [("hot_cell", 612)]),
        ],
        (16967.995, 31),
    ),
    "pcb": (
        [
            (25.477244, 59.450912, 17203.846, []),
            (25.284486, 58.636036, 17168.816, [("cold_joint", 256)]),
            (25.478349, 60.260998, 17203.753, [("cold_joint", 144)]),
            (25.484501, 56.575073, 17201.387, []),
            (25.650349, 59.147549, 17233.638, []),
            (25.541616, 57.41124, 17211.241, []),
            (25.867518, 58.03389, 17273.944, [("hot_spot", 224)]),
            (25.633083, 58.922894, 17227.25, [("cold_joint", 144)]),
        ],
        (17060.014, 20),
    ),
    "seal": (
        [
            (28.948715, 61.421883, 18009.861, []),
            (28.448423, 61.638206, 17926.119, [("seal_gap", 131)]),
            (29.331306, 62.834946, 18090.416, []),
            (29.052677, 63.672646, 18043.885, [("seal_gap", 237)]),
            (28.79863, 63.834484, 18007.37, [("seal_gap", 249)]),
            (28.318426, 61.746246, 17918.019, []),
            (28.569069, 62.379833, 17960.84, [("seal_gap", 82)]),
            (29.202331, 62.384132, 18063.836, []),
        ],
        (18670.854, 16),
    ),
}


@pytest.mark.parametrize("product", sorted(NORMAL_FINGERPRINT))
def test_normal_difficulty_is_unchanged(product: str) -> None:
    parts, (recording_raw, recording_frames) = NORMAL_FINGERPRINT[product]
    run = list(simulate_run(product, parts=8, defect_rate=0.5, rng=np.random.default_rng(3)))
    assert len(run) == len(parts)
    for part, (mean_c, max_c, raw_mean, defects) in zip(run, parts, strict=True):
        assert part.frame.raw is not None
        celsius = part.frame.celsius.astype(np.float64)
        assert celsius.mean() == pytest.approx(mean_c, abs=1e-4)
        assert celsius.max() == pytest.approx(max_c, abs=1e-4)
        assert part.frame.raw.astype(np.float64).mean() == pytest.approx(raw_mean, abs=1e-2)
        assert sorted((d.kind, int(d.mask.sum())) for d in part.defects) == defects
    recording = ProductLine(product, rng=np.random.default_rng(4)).part(5, sequence=True)
    assert len(recording.frames) == recording_frames
    raw = [f.raw.astype(np.float64).mean() for f in recording.frames if f.raw is not None]
    assert len(raw) == recording_frames
    assert float(np.mean(raw)) == pytest.approx(recording_raw, abs=1e-2)


HARD_DEFECTS = [
    ("pcb", "cold_joint"),
    ("pcb", "hot_spot"),
    ("battery", "hot_cell"),
    ("seal", "seal_gap"),
]
#: Apparent size of each hard defect at inspection (°C, magnitude), as the models document it,
#: with 0.3 °C of slack for the lens blur and the pose's interpolation.
HARD_SIZE_C = {
    "cold_joint": (1.0, 2.0),
    "hot_spot": (3.0, 12.0),
    "hot_cell": (1.0, 6.0),
    "seal_gap": (3.0, 40.0),
}


def hard_line(product: str, seed: int = 11) -> ProductLine:
    return ProductLine(product, rng=np.random.default_rng(seed), difficulty="hard")


@pytest.mark.parametrize("product", sorted(NORMAL_FINGERPRINT))
def test_hard_runs_are_reproducible_from_the_seed(product: str) -> None:
    def run(seed: int) -> list[SyntheticPart]:
        return list(
            simulate_run(
                product,
                parts=6,
                defect_rate=0.5,
                rng=np.random.default_rng(seed),
                difficulty="hard",
            )
        )

    first, again, other = run(5), run(5), run(6)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.frame.raw, b.frame.raw)
        assert [(d.kind, d.where, d.bbox) for d in a.defects] == [
            (d.kind, d.where, d.bbox) for d in b.defects
        ]
        for da, db in zip(a.defects, b.defects, strict=True):
            assert np.array_equal(da.mask, db.mask)
    assert not np.array_equal(first[0].frame.raw, other[0].frame.raw)
    normal = next(simulate_run(product, parts=1, defect_rate=0.0, rng=np.random.default_rng(5)))
    assert not np.array_equal(first[0].frame.raw, normal.frame.raw)


@pytest.mark.parametrize(("product", "kind"), HARD_DEFECTS)
def test_hard_defects_are_subtle_smooth_localised_and_above_noise(product: str, kind: str) -> None:
    made = hard_line(product)
    low, high = HARD_SIZE_C[kind]
    for index in range(5):
        good, bad = made.part(index), made.part(index, defect=kind)
        (defect,) = bad.defects
        assert defect.mask.shape == bad.frame.shape
        assert defect.mask.any()
        x0, y0, x1, y1 = defect.bbox
        assert 0 <= x0 < x1 <= bad.frame.shape[1]
        assert 0 <= y0 < y1 <= bad.frame.shape[0]
        assert defect.mask[y0:y1, x0:x1].sum() == defect.mask.sum()
        # same part, same noise: the frames differ by the defect alone
        change = bad.frame.celsius - good.frame.celsius
        peak = float(change.flat[np.argmax(np.abs(change))])
        assert (
            np.sign(peak)
            == np.sign(defect.delta_c)
            == (-1 if kind in ("cold_joint", "seal_gap") else 1)
        )
        assert low - 0.3 <= abs(peak) <= high + 0.3, (index, peak)
        assert abs(peak - defect.delta_c) <= 0.15 * abs(peak) + 0.1
        # the largest change sits in the mask, and it is well above the camera's noise
        assert defect.mask.flat[np.argmax(np.abs(change))]
        assert abs(peak) >= 10 * HARD_CAMERA.netd_c
        # no square edges: neighbouring pixels never jump by most of the defect's size
        steps = max(np.abs(np.diff(change, axis=0)).max(), np.abs(np.diff(change, axis=1)).max())
        assert steps <= 0.75 * abs(peak), (index, steps, peak)


def test_a_cold_joint_is_one_to_two_degrees_off_its_neighbours() -> None:
    made = hard_line("pcb")
    for index in range(8):
        good, bad = made.part(index), made.part(index, defect="cold_joint")
        (defect,) = bad.defects
        change = bad.frame.celsius - good.frame.celsius
        assert 0.9 <= -change[defect.mask].min() <= 2.1
        # the joint's neighbourhood on a good board reads the same as the defect-free frame
        assert np.abs(change[~defect.mask]).max() < abs(defect.delta_c)


def test_hard_keeps_the_layout_and_the_normal_guarantees() -> None:
    for product in NORMAL_FINGERPRINT:
        assert (
            hard_line(product).layout == ProductLine(product, rng=np.random.default_rng(11)).layout
        )
    with pytest.raises(ValueError, match="unknown difficulty"):
        ProductLine("pcb", rng=np.random.default_rng(0), difficulty="extreme")


def test_synth_command_writes_a_hard_run_with_boxes(tmp_path: Path) -> None:
    out = tmp_path / "hard"
    result = CliRunner().invoke(
        app,
        [
            "synth",
            "seal",
            "--out",
            str(out),
            "--parts",
            "4",
            "--defect-rate",
            "0.5",
            "--difficulty",
            "hard",
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / GROUND_TRUTH).read_text("utf-8").splitlines()]
    assert sum(r["defective"] for r in records) == 2
    for record in records:
        for defect in record["defects"]:
            x0, y0, x1, y1 = defect["bbox"]
            assert 0 <= x0 < x1 <= 160
            assert 0 <= y0 < y1 <= 120
            assert (out / defect["mask"]).is_file()
    bad = CliRunner().invoke(app, ["synth", "pcb", "--out", str(out), "--difficulty", "extreme"])
    assert bad.exit_code == 2
    assert "--difficulty" in bad.output


def test_heat_spreads_further_along_copper_than_through_fr4() -> None:
    shape = (61, 61)
    conductance = np.ones(shape)
    loss = np.full(shape, 0.05)
    source = np.zeros(shape)
    source[30, 30] = 1.0
    plain = steady_state(conductance, loss, source)
    # uniform sheet: symmetric about the source, falling off with distance
    assert plain[30, 30] == plain.max()
    np.testing.assert_allclose(plain[30, 45], plain[15, 30], rtol=1e-3)
    np.testing.assert_allclose(plain[30, 20], plain[30, 40], rtol=1e-3)
    assert plain[30, 31] > plain[30, 35] > plain[30, 45] > 0
    # a copper trace through the source carries heat along it, not across
    conductance[30, :] = 40.0
    traced = steady_state(conductance, loss, source)
    assert traced[30, 45] / traced[30, 30] > 3 * plain[30, 45] / plain[30, 30]
    assert traced[30, 45] > 5 * traced[15, 30]
    # heat balance: what goes in leaves through the loss
    assert float((loss * traced).sum()) == pytest.approx(1.0, rel=1e-3)
    maps = unit_maps(conductance, loss, np.stack([source, source[::-1, ::-1]]))
    assert maps.shape == (2, *shape)
    np.testing.assert_allclose(maps.max(axis=(1, 2)), 1.0)
    big = upsample(maps[0], 3)
    assert big.shape == (183, 183)
    assert float(big.max()) == pytest.approx(1.0)


def test_heat_refuses_an_ill_posed_problem() -> None:
    ones = np.ones((4, 5))
    with pytest.raises(DatasetError, match="share"):
        steady_state(ones, ones, np.ones((5, 4)))
    with pytest.raises(DatasetError, match="> 0"):
        steady_state(ones, np.zeros((4, 5)), ones)


@pytest.mark.parametrize(("product", "kind"), HARD_DEFECTS)
def test_a_hard_recording_shows_its_defect_in_its_frame_range(product: str, kind: str) -> None:
    made = hard_line(product)
    good = made.part(2, sequence=True)
    bad = made.part(2, defect=kind, sequence=True)
    first, stop = bad.defects[0].frames
    assert 0 <= first < stop == len(bad.frames) == len(good.frames)
    last = np.abs(bad.frames[-1].celsius - good.frames[-1].celsius).max()
    assert last >= 0.9 * VISIBLE_C
