"""The patch anomaly model: fitting on OK frames, scoring, ONNX parity, release and index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.onnx_export import parity
from thermoscope.models.patch_features import FeatureSettings, PatchFeatures
from thermoscope.models.patch_model import (
    INDEX_PER_CELL,
    PatchSettings,
    coreset,
    example_index,
    fit_patch_model,
    gaussian_kernel,
    split_frames,
    write_patch_release,
)
from thermoscope.models.runtime import load_model

HEIGHT, WIDTH = 60, 80
CONTRACT = InputContract(window_c=(20.0, 60.0), height=64, width=80)
SETTINGS = PatchSettings(bank=8, calibration=0.25)


def board(rng: np.random.Generator, *, spot: tuple[int, int] | None = None) -> NDArray[np.float32]:
    """A 60x80 frame (°C): a warm block that moves by up to a pixel, noise, an optional spot."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    dx, dy = rng.uniform(-2, 2, size=2)
    block = ((np.abs(xx - 28 - dx) < 12) & (np.abs(yy - 24 - dy) < 10)).astype(np.float32)
    frame = 25.0 + 15.0 * block * rng.normal(1.0, 0.02) + rng.normal(0, 0.1, (HEIGHT, WIDTH))
    if spot is not None:
        frame += 12.0 * np.exp(-((xx - spot[0]) ** 2 + (yy - spot[1]) ** 2) / 8.0)
    return frame.astype(np.float32)


@pytest.fixture(scope="module")
def fitted() -> tuple[object, list[NDArray[np.float32]]]:
    rng = np.random.default_rng(5)
    ok = [board(rng) for _ in range(16)]
    return fit_patch_model(ok, CONTRACT, settings=SETTINGS), ok


def test_defects_score_above_good_parts_and_the_map_peaks_on_them(fitted) -> None:
    model, _ = fitted
    rng = np.random.default_rng(11)
    good = [board(rng) for _ in range(6)]
    spots = [(56, 40), (20, 44), (60, 16)]
    bad = [board(rng, spot=s) for s in spots]
    scores, maps = model.score(CONTRACT.apply_batch(good + bad))
    assert scores.shape == (9,)
    assert maps.shape == (9, 16, 20)
    assert ((scores >= 0) & (scores < 1)).all()
    assert scores[6:].min() > scores[:6].max()
    assert scores[6:].min() > 0.5  # above the release threshold
    for amap, (x, y) in zip(maps[6:], spots, strict=True):
        frame_map = CONTRACT.to_frame(amap, (HEIGHT, WIDTH))
        row, col = np.unravel_index(int(np.argmax(frame_map)), frame_map.shape)
        assert abs(int(col) - x) <= 6
        assert abs(int(row) - y) <= 6


def test_score_is_the_normalised_peak_of_the_map(fitted) -> None:
    model, ok = fitted
    scores, maps = model.score(CONTRACT.apply_batch(ok[:3]))
    np.testing.assert_allclose(scores, maps.reshape(3, -1).max(axis=1), rtol=0, atol=1e-6)


def test_onnx_matches_torch_within_1e_4_including_normalisation(fitted) -> None:
    model, ok = fitted
    rng = np.random.default_rng(2)
    x = CONTRACT.apply_batch([*ok[:2], board(rng, spot=(40, 40))])
    onnx = model.to_onnx(check=x)
    assert parity(model, onnx, x) <= 1e-4


def test_release_loads_in_the_runtime_with_nearest_confirmed_examples(
    fitted, tmp_path: Path
) -> None:
    model, ok = fitted
    rng = np.random.default_rng(3)
    confirmed = [(f"ng-{i}", board(rng, spot=(56, 40)), "hot_spot") for i in range(2)]
    index = example_index(model, [f.shape for f in ok], confirmed)
    assert len(index) == model.memory_t.shape[0] * INDEX_PER_CELL + 2
    folder = write_patch_release(model, tmp_path / "patch", name="patch", version=3, index=index)
    loaded = load_model(folder, neighbours=2)
    assert loaded.manifest.kind == "anomaly"
    assert loaded.manifest.training["family"] == "patch"
    defect = loaded.predict(board(rng, spot=(56, 40)))
    assert defect.label == "anomaly"
    assert defect.anomaly_score is not None
    assert defect.heatmap is not None
    assert defect.heatmap.shape == (HEIGHT, WIDTH)
    assert [n.label for n in defect.neighbours] == ["hot_spot", "hot_spot"]
    assert "looks like 2 confirmed: hot_spot, hot_spot" in defect.findings[0].explanation
    good = loaded.predict(board(rng))
    assert good.label == "ok"
    assert all(n.label == "ok" for n in good.neighbours)
    assert good.neighbours[0].frame_id.startswith("ok-")


def test_bank_vectors_map_back_to_their_frame_and_pixel(fitted) -> None:
    model, ok = fitted
    index = model.bank_index([f.shape for f in ok])
    memory, _ = split_frames(len(ok), model.settings)
    assert set(index.frame_ids.tolist()) <= {f"ok-{i}" for i in memory}
    assert index.xs.min() >= 0
    assert index.xs.max() < WIDTH
    assert index.ys.min() >= 0
    assert index.ys.max() < HEIGHT
    # a stored vector is the feature of its frame at its cell
    i = 7
    frame = ok[int(str(index.frame_ids[i]).removeprefix("ok-"))]
    with torch.no_grad():
        f = model.features(torch.from_numpy(CONTRACT.apply_batch([frame])))[0].numpy()
    row, col = model.refs[:, :INDEX_PER_CELL].reshape(-1, 3)[i, 1:]
    np.testing.assert_allclose(index.vectors[i], f[:, row, col], atol=1e-5)


def test_coreset_picks_the_farthest_points_and_keeps_all_when_asked_for_more() -> None:
    pool = torch.tensor([[[0.0], [0.1], [5.0], [10.0]]])
    assert coreset(pool, 2, start=0).tolist() == [[0, 3]]
    assert coreset(pool, 3, start=0).tolist() == [[0, 3, 2]]
    assert coreset(pool, 9).tolist() == [[0, 1, 2, 3]]


def test_gaussian_kernel_sums_to_one() -> None:
    assert gaussian_kernel(0).tolist() == [[1.0]]
    k = gaussian_kernel(1.0)
    assert k.shape == (5, 5)
    assert abs(float(k.sum()) - 1.0) < 1e-6
    assert k[2, 2] == k.max()


def test_temperature_features_are_the_cell_means() -> None:
    features = PatchFeatures(FeatureSettings(cnn_weight=0.0, temperature_weight=2.0, patch=1))
    x = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8) / 64
    out = features(x)
    assert out.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(
        out[0, 0].numpy(), 2.0 * torch.nn.functional.avg_pool2d(x, 4)[0, 0].numpy()
    )


@pytest.mark.parametrize(
    ("contract", "frames", "message"),
    [
        (InputContract(window_c=(20, 60), height=30, width=40), 4, "multiples of 4"),
        (
            InputContract(window_c=(20, 60), channels=("celsius", "gradient"), height=32, width=40),
            4,
            "1 channel",
        ),
        (CONTRACT, 1, "at least 2 OK frames"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(
    contract: InputContract, frames: int, message: str
) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ModelError, match=message):
        fit_patch_model([board(rng) for _ in range(frames)], contract, settings=SETTINGS)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ModelError, match="radius"):
        PatchSettings(radius=9)
    with pytest.raises(ModelError, match="odd"):
        FeatureSettings(patch=2)
    with pytest.raises(ModelError, match="relative"):
        FeatureSettings(relative="global")
    with pytest.raises(ModelError, match="neither"):
        FeatureSettings(cnn_weight=0.0, patch=0)


def test_relative_temperatures_ignore_an_overall_gain() -> None:
    features = PatchFeatures(FeatureSettings(cnn_weight=0.0, patch=3, relative="frame"))
    x = torch.rand(1, 1, 16, 16) + 0.5
    np.testing.assert_allclose(features(x).numpy(), features(x * 1.05).numpy(), rtol=2e-2)
    local = x.clone()
    local[..., :4, :4] += 0.5  # one cell warmer: a defect, not a gain
    changed = np.abs(features(local).numpy() - features(x).numpy()).max(axis=1)[0]
    assert changed[0, 0] > 0.05
