"""The registered, conditional patch model: in-graph alignment, residual to the OK subspace."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.onnx_export import parity
from thermoscope.models.patch_features import FeatureSettings
from thermoscope.models.patch_model import (
    PatchModel,
    PatchSettings,
    example_index,
    fit_patch_model,
    write_patch_release,
)
from thermoscope.models.patch_residual import AlignedResidual, fit_aligned_residual
from thermoscope.models.runtime import load_model

HEIGHT, WIDTH = 30, 40
CONTRACT = InputContract(window_c=(0.0, 40.0), height=32, width=40)
SETTINGS = PatchSettings(
    features=FeatureSettings(cnn_weight=0.0, temperature_weight=0.1, patch=3),
    components=4,
    bank=8,
    calibration=0.25,
)
#: Where the shiny pad and the cold joint beside it sit (x, y), frame pixels, nominal pose.
PAD, JOINT = (26, 15), (29, 18)


def board(rng: np.random.Generator, *, cold: float = 0.0) -> NDArray[np.float32]:
    """A 30x40 frame (°C): a warm component that runs ±5 %, a shiny pad beside it that reads
    the surroundings (2 °C cooler to 5 °C warmer from part to part), the part shifted by up to
    2 px and turned by up to 1°, 0.1 °C noise; ``cold``: a joint by the pad that much cooler
    (°C)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)

    def blob(x: float, y: float, sx: float, sy: float) -> NDArray[np.float32]:
        return np.exp(-(((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2) / 2)

    scene = 20.0 * rng.normal(1.0, 0.05) * blob(15, 15, 5, 4)
    scene += rng.uniform(-2.0, 5.0) * blob(*PAD, 1.5, 1.5)
    scene -= cold * blob(*JOINT, 1.2, 1.2)
    turn = cv2.getRotationMatrix2D((WIDTH / 2, HEIGHT / 2), float(rng.uniform(-1, 1)), 1.0)
    turn[:, 2] += rng.uniform(-2, 2, size=2)
    moved = cv2.warpAffine(scene.astype(np.float32), turn, (WIDTH, HEIGHT))
    return (25.0 + moved + rng.normal(0, 0.1, (HEIGHT, WIDTH))).astype(np.float32)


@pytest.fixture(scope="module")
def fitted() -> tuple[PatchModel, list[NDArray[np.float32]]]:
    rng = np.random.default_rng(8)
    ok = [board(rng) for _ in range(32)]
    return fit_patch_model(ok, CONTRACT, settings=SETTINGS), ok


def test_a_subtle_cold_joint_scores_above_every_good_part_and_is_localised(fitted) -> None:
    model, _ = fitted
    rng = np.random.default_rng(21)
    good = [board(rng) for _ in range(12)]
    bad = [board(rng, cold=1.5) for _ in range(6)]
    scores, maps = model.score(CONTRACT.apply_batch(good + bad))
    assert maps.shape == (18, 32, 40)  # a pixel map on the input
    assert scores[12:].min() > scores[:12].max()
    np.testing.assert_allclose(scores, maps.reshape(18, -1).max(axis=1), rtol=0, atol=1e-6)
    # the part moved: the peak must be where the joint lies in this frame, not in the template
    for amap in maps[12:]:
        frame_map = CONTRACT.to_frame(amap, (HEIGHT, WIDTH))
        row, col = np.unravel_index(int(np.argmax(frame_map)), frame_map.shape)
        assert abs(int(col) - JOINT[0]) <= 3
        assert abs(int(row) - JOINT[1]) <= 3


def test_alignment_recovers_a_shift_and_a_turn() -> None:
    yy, xx = np.mgrid[0:64, 0:80].astype(np.float32)
    scene = np.exp(-(((xx - 35) / 10) ** 2 + ((yy - 28) / 6) ** 2)) + 0.5 * np.exp(
        -(((xx - 60) / 4) ** 2 + ((yy - 45) / 5) ** 2)
    )
    front = AlignedResidual(torch.from_numpy(scene), torch.zeros((0, 64 * 80)), torch.ones(64, 80))
    turn = cv2.getRotationMatrix2D((40.0, 32.0), 0.8, 1.0)
    turn[:, 2] += (2.5, -1.5)
    moved = cv2.warpAffine(scene, turn, (80, 64), borderMode=cv2.BORDER_REPLICATE)
    with torch.no_grad():
        aligned, warp = front.align(torch.from_numpy(moved)[None, None])
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(aligned[0, 0].numpy()[inner] - scene[inner]).max() < 0.02
    # the warp's translation at the centre: the shift in normalised units (2 / side per pixel)
    assert warp[0, 0, 2].item() * 40 == pytest.approx(2.5, abs=0.15)
    assert warp[0, 1, 2].item() * 32 == pytest.approx(-1.5, abs=0.15)


def test_the_residual_ignores_what_good_parts_vary_in() -> None:
    rng = np.random.default_rng(4)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(40.0), indexing="ij")

    def blob(x: float, y: float, sx: float, sy: float) -> torch.Tensor:
        return torch.exp(-(((xx - x) / sx) ** 2 + ((yy - y) / sy) ** 2) / 2)[None, None]

    base = blob(14, 12, 6, 3) + 0.6 * blob(30, 22, 2, 4)
    varies, fixed = 0.1 * blob(28, 10, 2, 2), 0.1 * blob(8, 24, 2, 2)
    x = base + torch.from_numpy(rng.normal(0, 1, (20, 1, 1, 1)).astype(np.float32)) * varies
    noise = torch.from_numpy(rng.normal(0, 0.002, (20, 1, 32, 40)).astype(np.float32))
    front = fit_aligned_residual(x + noise, 1)
    assert front.components == 1
    with torch.no_grad():
        along = front(base + 3.0 * varies)[0].abs().max()  # far out, but the way parts vary
        across = front(base + 3.0 * fixed)[0].abs().max()  # the same change where none varies
    assert along < 0.1 * across


def test_onnx_matches_torch_within_1e_4_and_the_release_explains(fitted, tmp_path: Path) -> None:
    model, ok = fitted
    rng = np.random.default_rng(3)
    x = CONTRACT.apply_batch([ok[0], board(rng), board(rng, cold=1.5)])
    assert parity(model, model.to_onnx(), x) <= 1e-4
    confirmed = [(f"ng-{i}", board(rng, cold=3.0), "cold_joint") for i in range(2)]
    index = example_index(model, [f.shape for f in ok], confirmed)
    folder = write_patch_release(model, tmp_path / "p", name="p", version=1, index=index, check=x)
    loaded = load_model(folder, neighbours=2)
    assert loaded.manifest.training["components_used"] == 4
    found = loaded.predict(board(rng, cold=3.0))
    assert found.label == "anomaly"
    assert [n.label for n in found.neighbours] == ["cold_joint", "cold_joint"]
    assert "looks like 2 confirmed: cold_joint, cold_joint" in found.findings[0].explanation
    assert loaded.predict(board(rng)).label == "ok"


def test_bad_components_are_refused() -> None:
    with pytest.raises(ModelError, match="components"):
        PatchSettings(components=-1)
    with pytest.raises(ModelError, match="sides must be even"):
        AlignedResidual(torch.zeros(5, 8), torch.zeros((0, 40)), torch.ones(5, 8))
