"""Family 4, the temporal model: it separates defective synthetic heating sequences from good
ones, ONNX Runtime gives the NumPy logits, and bad input is refused by name."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from thermoscope.datasets.synthetic.line import ProductLine, SyntheticPart, product_layout
from thermoscope.models.errors import ModelError
from thermoscope.models.evaluation import evaluate
from thermoscope.models.temporal import (
    CurveFeatures,
    TemporalClassifier,
    TemporalSettings,
    train_temporal,
)

TRAIN = 150
PARTS = 200
#: parts, curve settings, (N, C, T) curves, labels
Run = tuple[list[SyntheticPart], CurveFeatures, np.ndarray, list[str]]


@pytest.fixture(scope="module")
def pcb() -> Run:
    line = ProductLine("pcb", rng=np.random.default_rng(11))
    parts = list(line.run(PARTS, defect_rate=0.4, sequence=True))
    features = CurveFeatures(product_layout("pcb"), parts[0].frame.celsius.shape)
    curves = np.stack([features.extract(p.frames) for p in parts])
    labels = [p.defects[0].kind if p.defects else "ok" for p in parts]
    return parts, features, curves, labels


@pytest.fixture(scope="module")
def model(
    pcb: tuple[list[SyntheticPart], CurveFeatures, np.ndarray, list[str]],
) -> TemporalClassifier:
    _, _, curves, labels = pcb
    return train_temporal(curves[:TRAIN], labels[:TRAIN], settings=TemporalSettings(seed=3))


@pytest.mark.slow
def test_separates_defective_sequences(
    pcb: Run,
    model: TemporalClassifier,
) -> None:
    _, _, curves, labels = pcb
    held = labels[TRAIN:]
    assert {"ok", "hot_spot", "cold_joint"} <= set(held)
    truth = [model.classes.index(label) for label in held]
    result = evaluate(truth, model.probabilities(curves[TRAIN:]), list(model.classes), normal="ok")
    assert result.binary is not None
    assert result.binary.auroc is not None
    assert result.binary.auroc >= 0.95
    assert result.binary.accuracy >= 0.9


@pytest.mark.slow
def test_onnx_runtime_matches_numpy(
    pcb: Run,
    model: TemporalClassifier,
) -> None:
    _, _, curves, _ = pcb
    session = ort.InferenceSession(model.to_onnx(), providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(["logits"], {"input": curves})
    assert onnx_logits.shape == (len(curves), len(model.classes))
    assert np.abs(onnx_logits - model.logits(curves)).max() <= 1e-4


def test_training_is_seeded() -> None:
    rng = np.random.default_rng(0)
    curves = rng.normal(0, 1, (30, 4, 8))
    labels = ["ok"] * 15 + ["ng"] * 15
    a = train_temporal(curves, labels, settings=TemporalSettings(epochs=20, seed=5))
    b = train_temporal(curves, labels, settings=TemporalSettings(epochs=20, seed=5))
    assert np.array_equal(a.w1, b.w1)
    assert np.array_equal(a.logits(curves), b.logits(curves))
    assert a.classes == ("ng", "ok")


def test_curve_settings_round_trip_and_refusals() -> None:
    layout = product_layout("seal")
    features = CurveFeatures(layout, (120, 160), points=6, statistics=("mean", "p10"))
    again = CurveFeatures.from_dict(features.to_dict())
    assert again.to_dict() == features.to_dict()
    assert again.channels == len(layout) * 2
    stack = np.full((5, 120, 160), 25.0, dtype=np.float32)
    stack[:, 40:60, 40:60] += np.linspace(0, 10, 5)[:, None, None]
    curves = features.extract(stack, ambient_c=20.0)
    assert curves.shape == (again.channels, 6)
    assert curves.min() >= 5.0 - 1e-6
    with pytest.raises(ModelError, match="wants 160x120"):
        features.extract(np.zeros((3, 100, 100)))
    with pytest.raises(ModelError, match="2 or more frames"):
        features.extract(stack[:1])
    with pytest.raises(ModelError, match="increasing"):
        features.extract(stack, times_s=[0, 1, 1, 2, 3])
    with pytest.raises(ModelError, match="unknown statistics"):
        CurveFeatures(layout, (120, 160), statistics=("p100",))
    with pytest.raises(ModelError, match="region 'tray'"):
        CurveFeatures(layout, (40, 40))
    with pytest.raises(ModelError, match="keys"):
        CurveFeatures.from_dict({**features.to_dict(), "extra": 1})


def test_bad_training_input() -> None:
    curves = np.zeros((4, 2, 3))
    with pytest.raises(ModelError, match="2 or more classes"):
        train_temporal(curves, ["ok"] * 4)
    with pytest.raises(ModelError, match="4 labels"):
        train_temporal(curves[:3], ["ok", "ng", "ok", "ng"])
    with pytest.raises(ModelError, match="not among"):
        train_temporal(curves, ["ok", "ng", "ok", "x"], classes=["ok", "ng"])
    model = train_temporal(curves, ["ok", "ng", "ok", "ng"], settings=TemporalSettings(epochs=2))
    with pytest.raises(ModelError, match=r"input must be \(N, 2, 3\)"):
        model.logits(np.zeros((1, 3, 3)))
