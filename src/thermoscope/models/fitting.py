"""Training a release from labelled data: the anomaly-type families (patch-feature anomaly
model, golden statistics) and the temporal model; ``thermoscope model train`` and the server's
jobs call ``train_release`` (classifiers: ``models.classifier_release.train_classifier``).

Every family holds out a seeded, class-stratified, leak-free part (``labelled.holdout_split``),
learns from the rest (the anomaly-type families from its normal frames only), measures the
held-out part with ``models.evaluation`` and writes one release folder (atomically, optionally
signed) whose manifest carries the dataset hash, the code version (``provenance``), the
settings, the seed and holdout share, and the held-out figures.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thermoscope.datasets.synthetic.line import product_layout
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.evaluation import Evaluation, evaluate
from thermoscope.models.golden import GOLDEN_THRESHOLD, GoldenStatistics, fit_golden
from thermoscope.models.labelled import LabelledData, holdout_split
from thermoscope.models.provenance import code_version
from thermoscope.models.release import MANIFEST_FILE, Manifest, write_release
from thermoscope.models.temporal import (
    CURVES_FILE,
    CurveFeatures,
    TemporalSettings,
    recording_curves,
    train_temporal,
)

#: Share of the training pixels left outside a window derived from the data (each side).
WINDOW_TAIL = 0.001


@dataclass(frozen=True, slots=True)
class TrainedRelease:
    """What ``train_release`` made: the folder, its manifest and the held-out evaluation."""

    folder: Path
    manifest: Manifest
    evaluation: Evaluation | None


def data_window(data: LabelledData, indices: Sequence[int]) -> tuple[float, float]:
    """A fixed window from the training data: the 0.1 and 99.9 percentiles of its pixels,
    rounded outwards to whole units; the full 0..255 for 8-bit pictures."""
    if data.unit == "intensity":
        return (0.0, 255.0)
    sample = np.concatenate([data.inputs[i].ravel()[::7] for i in indices])
    sample = sample[np.isfinite(sample)]
    lo, hi = np.quantile(sample, [WINDOW_TAIL, 1.0 - WINDOW_TAIL])
    lo, hi = float(np.floor(lo)), float(np.ceil(hi))
    return (lo, hi if hi > lo else lo + 1.0)


def _summary(ev: Evaluation | None) -> dict[str, Any]:
    if ev is None:
        return {}
    out: dict[str, Any] = {
        "holdout_count": ev.count,
        "accuracy": ev.accuracy,
        "macro_f1": ev.macro_f1,
        "ece": ev.calibration.ece,
        "recall": {c.name: c.recall for c in ev.per_class},
    }
    if ev.binary is not None:
        out |= {
            "binary_accuracy": ev.binary.accuracy,
            "auroc": ev.binary.auroc,
            "average_precision": ev.binary.average_precision,
        }
    return out


def train_release(
    data: LabelledData,
    out: Path,
    *,
    kind: str,
    name: str,
    version: int,
    seed: int,
    holdout: float,
    settings: Any = None,
    window: tuple[float, float] | None = None,
    private_key: Path | None = None,
) -> TrainedRelease:
    """Train a model of ``kind`` and write its release to ``out``.

    Classifiers are trained by ``models.classifier_release.train_classifier``.

    Args:
        data: the labelled data (``models.labelled.load_labelled``).
        out: the release folder to create (must not exist).
        kind: "anomaly" (the patch-feature model of the training part's normal frames, needs
            torch), "golden" (statistics of those frames) or "temporal" (recordings of a
            synthetic run).
        name, version: the release's identity.
        seed: seeds the held-out split and the training.
        holdout: share of the data held out for the release's own evaluation, [0, 1).
        settings: ``TemporalSettings`` for a temporal model.
        window: the input window (°C, or intensity for pictures); default from the data.
        private_key: sign the release with this Ed25519 key.
    Raises:
        ModelError: the data does not fit the kind (no recordings for a temporal model, one
            class only), the window clips most pixels of a frame, or the release cannot be
            written (nothing is left half-written).
    """
    if len(set(data.labels)) < 2:
        raise ModelError(
            f"training needs 2 or more classes, the data has {sorted(set(data.labels))}"
        )
    train_idx, held_idx = holdout_split(data, share=holdout, seed=seed)
    lo_hi = window or data_window(data, train_idx)
    training: dict[str, Any] = {"seed": seed, "holdout": holdout, "train_items": len(train_idx)}
    if kind == "golden":
        stats, held_probs = _fit_golden(data, train_idx, held_idx, lo_hi)
        evaluation = _held_out(data, held_idx, held_probs, ["normal", "anomaly"])
        folder = stats.write_release(
            out,
            name=name,
            version=version,
            dataset_hash=data.dataset_hash,
            code_version=code_version(),
            metrics=_summary(evaluation) | training,
            private_key=private_key,
        )
    elif kind == "temporal":
        onnx, contract, classes, extra, settings_used, held_probs = _fit_temporal(
            data, train_idx, held_idx, lo_hi, seed, settings
        )
        evaluation = _held_out(data, held_idx, held_probs, classes)
        folder = write_release(
            out,
            name=name,
            version=version,
            kind=kind,
            contract=contract,
            onnx=onnx,
            classes=classes,
            dataset_hash=data.dataset_hash,
            code_version=code_version(),
            training=settings_used | training,
            metrics=_summary(evaluation),
            extra_files=extra,
            private_key=private_key,
        )
    elif kind == "anomaly":
        folder, evaluation = _anomaly_release(
            data, out, train_idx, held_idx, lo_hi, seed, name, version, training, private_key
        )
    else:
        raise ModelError(f"train: kind {kind!r} is not trained here (anomaly, golden, temporal)")
    manifest = Manifest.from_dict(json.loads((folder / MANIFEST_FILE).read_bytes()))
    return TrainedRelease(folder, manifest, evaluation)


def _held_out(
    data: LabelledData,
    held_idx: list[int],
    probs: NDArray[Any],
    classes: Sequence[str],
) -> Evaluation | None:
    """The held-out figures: multi-class, or normal vs anomaly for anomaly-type models (their
    classes are ``["normal", "anomaly"]``, their threshold 0.5)."""
    if not held_idx:
        return None
    labels = [data.labels[i] for i in held_idx]
    if list(classes) == ["normal", "anomaly"]:
        truth = [int(label != data.normal) for label in labels]
        pred = [int(p[1] >= GOLDEN_THRESHOLD) for p in probs]
        return evaluate(truth, probs, list(classes), y_pred=pred, normal=classes[0])
    normal = data.normal if data.normal in classes else None
    return evaluate([list(classes).index(x) for x in labels], probs, list(classes), normal=normal)


def _ok_frames(data: LabelledData, train_idx: list[int], family: str) -> list[int]:
    if data.normal is None:
        raise ModelError(f"{family} learns from OK parts: the data names no normal class")
    return [i for i in train_idx if data.labels[i] == data.normal]


def _anomaly_release(
    data: LabelledData,
    out: Path,
    train_idx: list[int],
    held_idx: list[int],
    window: tuple[float, float],
    seed: int,
    name: str,
    version: int,
    training: dict[str, Any],
    private_key: Path | None,
) -> tuple[Path, Evaluation | None]:
    """The patch-feature anomaly model (``models.patch_model``, needs torch) of the training
    part's OK frames; its explanation index also holds the training part's labelled defects
    ("looks like these confirmed cold joints")."""
    from thermoscope.models.patch_model import (
        PatchSettings,
        example_index,
        fit_patch_model,
        write_patch_release,
    )

    ok = _ok_frames(data, train_idx, "the anomaly model")
    height, width = (max(8, side - side % 4) for side in data.inputs[0].shape)
    contract = InputContract(window_c=window, height=height, width=width, unit=data.unit)
    model = fit_patch_model(
        [data.inputs[i] for i in ok],
        contract,
        settings=PatchSettings(seed=seed),
        frame_ids=[data.sources[i] for i in ok],
    )
    defects = [i for i in train_idx if data.labels[i] != data.normal]
    index = example_index(
        model,
        [data.inputs[i].shape for i in ok],
        [(data.sources[i], data.inputs[i], data.labels[i]) for i in defects],
    )
    evaluation, check = None, None
    if held_idx:
        x = contract.apply_batch([data.inputs[i] for i in held_idx])
        score = model.score(x)[0].astype(np.float64)
        evaluation = _held_out(data, held_idx, np.c_[1.0 - score, score], ["normal", "anomaly"])
        check = x[:8]
    folder = write_patch_release(
        model,
        out,
        name=name,
        version=version,
        index=index,
        check=check,
        dataset_hash=data.dataset_hash,
        code_version=code_version(),
        metrics=_summary(evaluation) | training,
        private_key=private_key,
    )
    return folder, evaluation


def _fit_golden(
    data: LabelledData,
    train_idx: list[int],
    held_idx: list[int],
    window: tuple[float, float],
) -> tuple[GoldenStatistics, NDArray[Any]]:
    """Golden statistics of the training part's normal frames; held-out [1 - s, s] scores."""
    normal = _ok_frames(data, train_idx, "golden statistics")
    height, width = data.inputs[0].shape
    contract = InputContract(window_c=window, height=height, width=width, unit=data.unit)
    stats = fit_golden([data.inputs[i] for i in normal], contract)
    if not held_idx:
        return stats, np.zeros((0, 2))
    x = contract.apply_batch([data.inputs[i] for i in held_idx])
    score = stats.score(x)[0].astype(np.float64)
    return stats, np.c_[1.0 - score, score]


def _fit_temporal(
    data: LabelledData,
    train_idx: list[int],
    held_idx: list[int],
    window: tuple[float, float],
    seed: int,
    settings: Any,
) -> tuple[bytes, InputContract, list[str], dict[str, bytes], dict[str, Any], NDArray[Any]]:
    if data.sequences is None or data.product is None:
        raise ModelError("a temporal model learns from recordings: give a synthetic run folder")
    height, width = data.inputs[0].shape
    features = CurveFeatures(product_layout(data.product), (height, width))
    contract = InputContract(window_c=window, height=height, width=width, unit="celsius")
    curves = np.stack(
        [
            recording_curves(contract, features, seq, source=source)
            for seq, source in zip(data.sequences, data.sources, strict=True)
        ]
    )
    settings = settings or TemporalSettings(seed=seed)
    model = train_temporal(
        curves[train_idx],
        [data.labels[i] for i in train_idx],
        classes=data.classes,
        settings=settings,
    )
    held = model.probabilities(curves[held_idx]) if held_idx else np.zeros((0, len(data.classes)))
    extra = {CURVES_FILE: json.dumps(features.to_dict(), indent=2).encode("utf-8")}
    training = {
        "hidden": settings.hidden,
        "epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "weight_decay": settings.weight_decay,
        "product": data.product,
    }
    return model.to_onnx(), contract, list(model.classes), extra, training, held
