"""Classifier training data-parallel on Ray Train (``TorchTrainer``, 2 workers, DDP over gloo on
CPU) against the same training in one process, and ``thermoscope model train --engine ray``.

Both runs draw the same samples and augmentation with the same seed, and DDP averages the two
workers' half-batch gradients into the whole batch's, so the runs differ only where batch
normalisation normalises with the statistics of a worker's half of the batch (8 samples)
instead of the whole one (16), and in floating-point summation order. That perturbs every step
by about the sampling noise of 8 samples' statistics, and the two trajectories drift apart from
there: no tight bound follows from it, so the bounds are empirical, twice what was measured on
this data (96 frames, 3 classes, 6 epochs of 6 steps): the per-epoch mean training loss
differed by at most 0.048 (``LOSS_BOUND``), a frame's class probability by 0.05 on average
(``PROB_BOUND``; 0.22 at most). Ray is started here with ``ray.init(num_cpus=2)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from solar_fixture import make_solar_folder
from thermoscope.cli.exits import ExitCode
from thermoscope.cli.main import app
from thermoscope.models.errors import ModelError
from thermoscope.models.release import check_release
from thermoscope.models.training import (
    TrainSettings,
    fit_classifier,
    fit_classifier_ray,
    predict_logits,
)

#: Largest difference of an epoch's mean training loss between the two engines.
LOSS_BOUND = 0.1
#: Largest mean difference of a frame's class probability between the two engines.
PROB_BOUND = 0.1
#: A small network, 6 epochs of 6 steps of 16 frames (8 per worker on Ray).
SMALL = TrainSettings(epochs=6, batch_size=16, cnn_width=8, threads=2)
#: Ray Train copies Ray Data's settings object, whose deprecated fields warn (Ray's, not ours).
RAY_DEPRECATIONS = "ignore::DeprecationWarning:ray"


def three_classes(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Noise frames (1, 20, 12) with a bright band at the class's own rows."""
    rng = np.random.default_rng(0)
    labels = np.arange(n, dtype=np.int64) % 3
    x = rng.random((n, 1, 20, 12), dtype=np.float32) * 0.2
    for k in range(3):
        x[labels == k, :, 5 * k : 5 * k + 4] += 0.6
    return x, labels


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.train.torch")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.filterwarnings(RAY_DEPRECATIONS)
def test_ray_training_is_close_to_the_local_run(ray_runtime: None) -> None:
    x, y = three_classes()
    local = fit_classifier(x, y, 3, SMALL, seed=7)
    epochs: list[int] = []
    on_ray = fit_classifier_ray(
        x, y, 3, SMALL, seed=7, workers=2, progress=lambda _s, done, _t, _i: epochs.append(done)
    )
    assert epochs == [1, 2, 3, 4, 5, 6]
    losses = [[h["loss"] for h in fit.history] for fit in (local, on_ray)]
    assert losses[0][-1] < 0.8 * losses[0][0]  # both learn
    assert losses[1][-1] < 0.8 * losses[1][0]
    assert np.abs(np.subtract(*losses)).max() <= LOSS_BOUND
    probabilities = [
        torch.softmax(torch.from_numpy(predict_logits(fit.model, x)), dim=1).numpy()
        for fit in (local, on_ray)
    ]
    assert float(np.abs(probabilities[0] - probabilities[1]).mean()) <= PROB_BOUND
    assert on_ray.cpu_seconds > 0


@pytest.mark.slow
@pytest.mark.filterwarnings(RAY_DEPRECATIONS)
def test_model_train_engine_ray_writes_a_release(tmp_path: Path, ray_runtime: None) -> None:
    folder = make_solar_folder(tmp_path / "solar", per_class=3)
    out = tmp_path / "release"
    result = CliRunner().invoke(
        app,
        ["model", "train", str(folder), "--out", str(out), "--epochs", "1", "--engine", "ray",
         "--workers", "2", "--seed", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = check_release(out)
    assert (manifest.training["engine"], manifest.training["workers"]) == ("ray", 2)
    assert (manifest.training["epochs"], manifest.training["seed"]) == (1, 3)
    assert json.loads((out / "split.json").read_text(encoding="utf-8"))["seed"] == 3
    assert manifest.metrics["onnx_parity"] <= 1e-4


def test_ray_training_checks_its_workers_and_kind(tmp_path: Path) -> None:
    inputs = np.zeros((8, 1, 40, 24), dtype=np.float32)
    labels = np.arange(8, dtype=np.int64) % 2
    with pytest.raises(ModelError, match="batch_size 16 does not divide among 3 workers"):
        fit_classifier_ray(inputs, labels, 2, TrainSettings(batch_size=16), seed=0, workers=3)
    result = CliRunner().invoke(
        app,
        ["model", "train", str(tmp_path), "--out", str(tmp_path / "r"), "--kind", "golden",
         "--engine", "ray"],
    )  # fmt: skip
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "--engine ray trains classifiers only" in result.output
