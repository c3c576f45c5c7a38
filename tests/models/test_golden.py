"""Golden-reference statistics: fitted on synthetic OK parts, NumPy vs ONNX parity, releases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thermoscope.core import Verdict
from thermoscope.datasets.synthetic import SyntheticPart, simulate_run
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.golden import (
    GOLDEN_OPSET,
    GOLDEN_THRESHOLD,
    GoldenSettings,
    GoldenStatistics,
    fit_golden,
)
from thermoscope.models.runtime import load_model, onnx_session

CONTRACT = InputContract(window_c=(15.0, 90.0), height=60, width=80)


@pytest.fixture(scope="module")
def pcb() -> list[SyntheticPart]:
    return list(simulate_run("pcb", parts=90, defect_rate=0.25, rng=np.random.default_rng(11)))


def split(
    parts: list[SyntheticPart],
) -> tuple[list[SyntheticPart], list[SyntheticPart], list[SyntheticPart]]:
    ok = [p for p in parts if not p.is_defective]
    return ok[:40], ok[40:], [p for p in parts if p.is_defective]


@pytest.mark.parametrize("settings", [GoldenSettings(), GoldenSettings(pool=1, top_k=5)])
def test_numpy_and_onnx_agree(pcb: list[SyntheticPart], settings: GoldenSettings) -> None:
    train, held, ng = split(pcb)
    golden = fit_golden([p.frame for p in train], CONTRACT, settings=settings)
    x = CONTRACT.apply_batch([p.frame.celsius for p in held + ng])
    scores, maps = golden.score(x)
    onnx_scores, onnx_maps = onnx_session(golden.to_onnx()).run(None, {"input": x})
    assert onnx_scores.shape == (len(x),)
    assert onnx_maps.shape == (len(x), 60, 80)
    assert np.abs(scores - onnx_scores).max() <= 1e-4
    assert np.abs(maps - onnx_maps).max() <= 1e-4


def test_ok_parts_score_low_and_defects_high(pcb: list[SyntheticPart]) -> None:
    train, held, ng = split(pcb)
    golden = fit_golden([p.frame for p in train], CONTRACT)
    assert golden.count == 40
    ok_scores, _ = golden.score(CONTRACT.apply_batch([p.frame.celsius for p in held]))
    ng_scores, ng_maps = golden.score(CONTRACT.apply_batch([p.frame.celsius for p in ng]))
    # The leave-one-out calibration puts unseen OK parts around or below the 0.5 level.
    assert np.median(ok_scores) < GOLDEN_THRESHOLD
    assert np.median(ng_scores) > np.median(ok_scores)
    # Hot spots are strong on the normal line: the map's peak falls on the defect.
    hits = []
    for p, m in zip(ng, ng_maps, strict=True):
        if p.defects[0].kind != "hot_spot":
            continue
        full = CONTRACT.to_frame(m, p.frame.shape)
        row, col = np.unravel_index(np.argmax(full), full.shape)
        mask = p.defects[0].mask
        near = mask[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3]
        hits.append(bool(near.any()))
    assert hits
    assert np.mean(hits) >= 0.8


def test_pooling_counts_zero_padding_like_onnx() -> None:
    contract = InputContract(window_c=(0.0, 1.0), height=4, width=5, max_clipped=1.0)
    frames = [np.full((4, 5), v, np.float32) for v in (0.4, 0.5, 0.6)]
    golden = fit_golden(frames, contract, settings=GoldenSettings(pool=3, sigma_floor=0.1))
    x = np.full((1, 1, 4, 5), 0.5, np.float32)
    x[0, 0, 0, 0] = 1.0
    raw, zp = golden.raw(x)
    z = np.abs(x[0, 0] - golden.mean[0]) / golden.std[0]
    padded = np.pad(z, 1)
    naive = np.array([[padded[r : r + 3, c : c + 3].sum() / 9 for c in range(5)] for r in range(4)])
    np.testing.assert_allclose(zp[0], naive, rtol=1e-5, atol=1e-6)
    assert raw[0] == pytest.approx(naive.max(), rel=1e-5)


def test_normalisation_is_increasing_and_maps_the_ok_level_to_one_half() -> None:
    contract = InputContract(window_c=(0.0, 1.0), height=2, width=2, max_clipped=1.0)
    frames = [np.full((2, 2), v, np.float32) for v in (0.4, 0.5, 0.6)]
    golden = fit_golden(frames, contract, settings=GoldenSettings(pool=1, sigma_floor=0.1))
    sigma = float(golden.std[0, 0, 0])
    # Raw scores t/2, t, 2t, 40t in z units: normalised 1 - 2^-(raw/t), never clipped.
    steps = np.array([0.5, 1.0, 2.0, 40.0])
    x = (0.5 + steps * golden.level * sigma).astype(np.float32).reshape(4, 1, 1, 1)
    scores, _ = golden.score(np.broadcast_to(x, (4, 1, 2, 2)))
    np.testing.assert_allclose(scores[:3], 1.0 - 2.0 ** -steps[:3], atol=1e-4)
    assert np.all(np.diff(scores) > 0)
    assert scores[-1] <= 1.0


def test_release_round_trip(tmp_path: Path, pcb: list[SyntheticPart]) -> None:
    train, _, ng = split(pcb)
    golden = fit_golden([p.frame for p in train], CONTRACT)
    folder = golden.write_release(
        tmp_path / "golden", name="pcb-golden", version=1, dataset_hash="sha256:0"
    )
    model = load_model(folder)
    assert model.kind == "golden"
    assert model.manifest.thresholds == {"anomaly": GOLDEN_THRESHOLD}
    assert model.manifest.training["family"] == "golden"
    assert model.manifest.training["ok_frames"] == 40
    expected, _ = golden.score(CONTRACT.apply_batch([p.frame.celsius for p in ng]))
    predictions = model.predict_batch([p.frame for p in ng])
    np.testing.assert_allclose([p.score for p in predictions], expected, atol=1e-4)
    assert [p.verdict is Verdict.NG for p in predictions] == list(expected >= 0.5)
    hot = ng[int(np.argmax(expected))]
    prediction = model.predict(hot.frame)
    assert prediction.verdict is Verdict.NG
    assert prediction.heatmap is not None
    assert prediction.heatmap.shape == hot.frame.shape


def test_refusals() -> None:
    frames = [np.full((4, 4), 0.5, np.float32)] * 2
    contract = InputContract(window_c=(0.0, 1.0), height=4, width=4)
    with pytest.raises(ModelError, match="at least 3 OK frames, got 2"):
        fit_golden(frames, contract)
    with pytest.raises(ModelError, match="odd integer"):
        GoldenSettings(pool=2)
    with pytest.raises(ModelError, match="top_k"):
        GoldenSettings(top_k=0)
    with pytest.raises(ModelError, match="quantile"):
        GoldenSettings(quantile=0.2)
    with pytest.raises(ModelError, match="sigma_floor"):
        GoldenSettings(sigma_floor=0.0)
    golden = fit_golden(frames * 2, contract)
    with pytest.raises(ModelError, match=r"golden inputs must be \(N, 1, 4, 4\)"):
        golden.raw(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ModelError, match="exceeds the pixel count"):
        GoldenStatistics(contract, golden.mean, golden.std, 1.0, GoldenSettings(top_k=17), 4)
    assert GOLDEN_OPSET >= 13
