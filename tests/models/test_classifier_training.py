"""Classifier training: seeded reproducibility, a release from a solar folder and from a dataset
version, torch vs ONNX logits, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from solar_fixture import make_solar_folder
from thermoscope.annotations import AnnotatedItem, Provenance, VerdictLabel
from thermoscope.core import ThermalFrame, Verdict
from thermoscope.datasets.store import DatasetStore
from thermoscope.datasets.versions import DatasetError
from thermoscope.models.classifier_release import SPLIT_FILE, FlipAveraged, train_classifier
from thermoscope.models.errors import ModelError
from thermoscope.models.onnx_export import export_onnx, parity
from thermoscope.models.release import Manifest
from thermoscope.models.runtime import load_model
from thermoscope.models.training import (
    TrainSettings,
    augment_batch,
    fit_classifier,
    predict_logits,
    sample_weights,
)
from thermoscope.storage.identity import content_id

TINY = TrainSettings(epochs=1, batch_size=16, cnn_width=8, threads=1, holdout=0.25)


def _data(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n, dtype=np.int64) % 3
    x = rng.random((n, 1, 20, 12), dtype=np.float32) * 0.2
    for k in range(3):
        x[labels == k, :, 5 * k : 5 * k + 4] += 0.6
    return x, labels


def test_seeded_training_repeats_exactly() -> None:
    x, y = _data()
    a = fit_classifier(x, y, 3, TINY, seed=7)
    b = fit_classifier(x, y, 3, TINY, seed=7)
    c = fit_classifier(x, y, 3, TINY, seed=8)
    la, lb, lc = (predict_logits(r.model, x) for r in (a, b, c))
    np.testing.assert_array_equal(la, lb)
    assert a.history[0]["loss"] == b.history[0]["loss"]
    assert not np.array_equal(la, lc)


def test_sampler_and_augmentation() -> None:
    w = sample_weights(np.array([0, 0, 0, 1]), 1.0)
    assert w.tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 2])
    x = torch.rand(32, 1, 10, 6)
    gen = torch.Generator().manual_seed(0)
    out = augment_batch(x, TrainSettings(), gen)
    assert out.shape == x.shape
    assert float(out.min()) >= 0.0
    assert float(out.max()) <= 1.0
    plain = TrainSettings(flips=False, shift_px=0, brightness=0.0, contrast=0.0)
    torch.testing.assert_close(augment_batch(x, plain, gen), x)
    with pytest.raises(ModelError, match=r"label_smoothing=1\.5"):
        TrainSettings(label_smoothing=1.5)


def test_flip_averaged_torch_and_onnx_logits_agree() -> None:
    x, y = _data()
    fit = fit_classifier(x, y, 3, TINY, seed=0)
    for module in (fit.model, FlipAveraged(fit.model)):
        onnx = export_onnx(module, x[:1], output_names=("logits",))
        assert parity(module, onnx, x) <= 1e-4


def test_train_release_from_solar_folder(tmp_path: Path) -> None:
    folder = make_solar_folder(tmp_path / "solar", per_class=5)
    lines: list[str] = []
    epochs: list[int] = []
    out = train_classifier(
        folder,
        tmp_path / "release",
        settings=TINY,
        seed=1,
        log=lines.append,
        progress=lambda stage, done, total, info: epochs.append(done),
    )
    manifest = Manifest.from_dict(json.loads((out / "manifest.json").read_text()))
    assert manifest.kind == "classifier"
    assert manifest.classes[0] == "No-Anomaly"
    assert len(manifest.classes) == 12
    assert manifest.contract.window_c == (0.0, 255.0)
    metrics = manifest.metrics
    assert metrics["holdout"] == 15
    assert set(metrics["recall"]) == set(manifest.classes)
    assert 0.0 <= metrics["binary_accuracy"] <= 1.0
    assert metrics["onnx_parity"] <= 1e-4
    assert manifest.training["seed"] == 1
    split = json.loads((out / SPLIT_FILE).read_text())
    assert not set(split["train"]) & set(split["holdout"])
    assert epochs == [1]
    assert lines[0].startswith("reading")
    model = load_model(out)
    frame = np.full((40, 24), 120.0)
    assert model.predict(frame).label in manifest.classes
    with pytest.raises(ModelError, match="pretrained"):
        train_classifier(folder, tmp_path / "r2", settings=TrainSettings(pretrained="imagenet"))
    assert not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_pretrained_lite0_and_synthetic_spots_train(tmp_path: Path) -> None:
    folder = make_solar_folder(tmp_path / "solar", per_class=3)
    settings = TrainSettings(
        architecture="efficientnet_lite0",
        pretrained="imagenet",
        epochs=1,
        batch_size=8,
        threads=1,
        holdout=0.25,
        synthetic_share=0.2,
        synthetic_class="Hot-Spot",
    )
    out = train_classifier(folder, tmp_path / "release", settings=settings, seed=0)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["pretrained_tensors"] == 294
    assert manifest["metrics"]["onnx_parity"] <= 1e-4
    with pytest.raises(ModelError, match="synthetic_class: 'NG' is not a class"):
        train_classifier(
            folder, tmp_path / "r2", settings=TrainSettings(epochs=1, synthetic_share=0.1)
        )


def _store(root: Path, verdicts: list[str | None]) -> DatasetStore:
    store = DatasetStore.create(root)
    me = Provenance.human("tester")
    for i, verdict in enumerate(verdicts):
        celsius = np.full((16, 20), 30.0 + i * 0.01, dtype=np.float32)
        celsius[4:8, 5:9] += 8.0 if verdict == "NG" else 0.0
        frame = ThermalFrame(celsius=celsius)
        ann = AnnotatedItem(
            item_id=content_id([frame]),
            width=frame.width,
            height=frame.height,
            verdicts=()
            if verdict is None
            else (VerdictLabel(verdict=Verdict(verdict), reason="hot", provenance=me),),
        )
        store.add(frame, annotation=ann, serial=f"s{i}")
    store.commit(message="v1")
    return store


def test_train_from_a_dataset_version(tmp_path: Path) -> None:
    store = _store(tmp_path / "ds", ["OK", "NG"] * 8 + [None])
    out = train_classifier(
        store.root,
        tmp_path / "release",
        settings=TrainSettings(
            epochs=1, batch_size=4, cnn_width=8, threads=1, height=16, width=20, tta=False
        ),
        target="verdict",
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["NG", "OK"]
    assert manifest["dataset_hash"] == store.log()[-1].id
    assert manifest["contract"]["unit"] == "celsius"
    assert manifest["contract"]["window_c"] == [30.0, 39.0]
    assert manifest["metrics"]["holdout"] >= 2
    assert manifest["metrics"]["onnx_parity"] <= 1e-4
    plain = len(onnx.load(out / "model.onnx").graph.node)
    averaged = train_classifier(
        store.root,
        tmp_path / "averaged",
        settings=TrainSettings(epochs=1, batch_size=4, cnn_width=8, threads=1, height=16, width=20),
        target="verdict",
    )
    assert len(onnx.load(averaged / "model.onnx").graph.node) > 3 * plain


def test_a_version_without_the_needed_labels_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path / "ds", [None, None, "OK"])
    with pytest.raises(ModelError, match=r"needs items of at least 2 classes by verdict.*2 item"):
        train_classifier(store.root, tmp_path / "release", target="verdict")
    with pytest.raises(DatasetError, match="neither an InfraredSolarModules folder"):
        train_classifier(tmp_path / "nothing", tmp_path / "release")
    assert not (tmp_path / "release").exists()
