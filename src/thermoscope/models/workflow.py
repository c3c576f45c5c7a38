"""What ``thermoscope model`` runs: train a release from labelled data, evaluate a release,
predict on files. The command line only parses, prints and shows progress; the server's jobs
can call the same functions.

- ``train_release``: golden statistics (``models.golden``) or a temporal model
  (``models.temporal``) from ``LabelledData`` (classifiers: ``models.classifier_release``);
  holds out a seeded, leak-free part, evaluates on it and writes one release folder
  (atomically, optionally signed) whose manifest carries the dataset hash, the code version,
  the training settings and the held-out figures.
- ``evaluate_release``: a release's predictions on labelled data (optionally only the part its
  training held out, recomputed from its seed) measured by ``models.evaluation``.
- ``predict_files``: one JSON-ready record per input file (``source``, ``label``, ``score``,
  ``verdict``, ``anomaly_score`` for anomaly models, ``probabilities`` for classifiers), or a
  record with ``error`` when the file cannot be read or does not fit the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from numpy.typing import NDArray

import thermoscope.io as tio
from thermoscope.core import ThermalFrame, ThermoscopeError
from thermoscope.datasets.synthetic.line import product_layout
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.evaluation import Evaluation, evaluate
from thermoscope.models.golden import GOLDEN_THRESHOLD, GoldenStatistics, fit_golden
from thermoscope.models.labelled import LabelledData, holdout_split
from thermoscope.models.manifest import METADATA_PREFIX
from thermoscope.models.provenance import code_version
from thermoscope.models.release import MODEL_FILE, Manifest, read_file, write_release
from thermoscope.models.runtime import (
    LoadedModel,
    Prediction,
    decide_class,
    is_ok_class,
    load_model,
)
from thermoscope.models.temporal import CurveFeatures, TemporalSettings, softmax, train_temporal

#: progress(stage, done, total): stage "load", "epoch", "predict" ...
Progress = Callable[[str, int, int], None]
#: Release file holding a temporal model's curve settings.
CURVES_FILE = "curves.json"
#: Release file listing the train and holdout item ids (written by classifier training).
SPLIT_FILE = "split.json"
#: Suffixes read as 8-bit pictures for intensity models (the solar layout's JPEGs).
PICTURE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
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
    """Train a model of ``kind`` ("golden" or "temporal") and write its release to ``out``.

    Classifiers are trained by ``models.classifier_release.train_classifier``.

    Args:
        data: the labelled data (``models.labelled.load_labelled``).
        out: the release folder to create (must not exist).
        kind: "golden" (statistics of the training part's normal frames) or "temporal"
            (recordings of a synthetic run).
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
        evaluation = _held_out(data, held_idx, held_probs, ["normal", "anomaly"], binary=True)
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
        evaluation = _held_out(data, held_idx, held_probs, classes, binary=False)
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
    else:
        raise ModelError(f"train: kind {kind!r} is not trained here (golden, temporal)")
    manifest = Manifest.from_dict(json.loads((folder / "manifest.json").read_bytes()))
    return TrainedRelease(folder, manifest, evaluation)


def _held_out(
    data: LabelledData,
    held_idx: list[int],
    probs: NDArray[Any],
    classes: Sequence[str],
    *,
    binary: bool,
) -> Evaluation | None:
    """The held-out figures: multi-class, or normal vs anomaly for anomaly-type models."""
    if not held_idx:
        return None
    labels = [data.labels[i] for i in held_idx]
    if binary:
        truth = [int(label != data.normal) for label in labels]
        pred = [int(p[1] >= GOLDEN_THRESHOLD) for p in probs]
        return evaluate(truth, probs, list(classes), y_pred=pred, normal=classes[0])
    normal = data.normal if data.normal in classes else None
    return evaluate([list(classes).index(x) for x in labels], probs, list(classes), normal=normal)


def _fit_golden(
    data: LabelledData,
    train_idx: list[int],
    held_idx: list[int],
    window: tuple[float, float],
) -> tuple[GoldenStatistics, NDArray[Any]]:
    """Golden statistics of the training part's normal frames; held-out [1 - s, s] scores."""
    if data.normal is None:
        raise ModelError("golden statistics learn from OK parts: the data names no normal class")
    normal = [i for i in train_idx if data.labels[i] == data.normal]
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
            sequence_curves(contract, features, seq, source=source)
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


def sequence_curves(
    contract: InputContract,
    features: CurveFeatures,
    frames: Sequence[ThermalFrame],
    *,
    source: str,
) -> NDArray[np.float32]:
    """A recording's curves (ambient: its first frame's median, as in training), after the
    contract has refused a first or last frame its window clips."""
    for frame in (frames[0], frames[-1]):
        contract.check(frame.celsius, source=source)
    return features.extract(frames)


# -- using a release -----------------------------------------------------------------------


def curve_features(folder: Path, manifest: Manifest) -> CurveFeatures:
    """A temporal release's curve settings (``curves.json``, checked against its hash)."""
    try:
        doc = json.loads(read_file(folder, CURVES_FILE, manifest))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{folder / CURVES_FILE}: not JSON ({exc})") from None
    return CurveFeatures.from_dict(doc)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One input's prediction in plain values (what a JSON line and an evaluation need)."""

    label: str
    score: float
    verdict: str
    probabilities: dict[str, float] | None
    anomaly_score: float | None


def _outcome(prediction: Prediction) -> Outcome:
    return Outcome(
        prediction.label,
        prediction.score,
        prediction.verdict.value,
        prediction.probabilities,
        prediction.anomaly_score,
    )


def _temporal_outcome(model: LoadedModel, curves: NDArray[np.float32]) -> list[Outcome]:
    logits = model.run(curves)["logits"].astype(np.float64)
    out = []
    for row in softmax(logits):
        probabilities = {c: float(p) for c, p in zip(model.classes, row, strict=True)}
        label, _, _ = decide_class(probabilities, model.manifest.thresholds)
        verdict = "OK" if is_ok_class(label) else "NG"
        out.append(Outcome(label, probabilities[label], verdict, probabilities, None))
    return out


def predict_data(
    model: LoadedModel,
    folder: Path,
    data: LabelledData,
    *,
    batch: int = 256,
    progress: Progress | None = None,
) -> list[Outcome]:
    """The release's outcome on every item of ``data``, in order.

    Raises:
        ModelError: the data's unit differs from the release's, a frame does not fit the
            contract (window clipping most pixels), or a temporal release gets no recordings.
    """
    if model.contract.unit != data.unit:
        raise ModelError(
            f"{folder}: the release reads {model.contract.unit} but the data is {data.unit}"
        )
    outcomes: list[Outcome] = []
    if model.kind == "temporal":
        if data.sequences is None:
            raise ModelError(f"{folder}: a temporal release needs recordings (a synthetic run)")
        features = curve_features(folder, model.manifest)
        for start in range(0, len(data), batch):
            stop = min(len(data), start + batch)
            curves = np.stack(
                [
                    sequence_curves(
                        model.contract, features, data.sequences[i], source=data.sources[i]
                    )
                    for i in range(start, stop)
                ]
            )
            outcomes += _temporal_outcome(model, curves)
            if progress is not None:
                progress("predict", stop, len(data))
        return outcomes
    for start in range(0, len(data), batch):
        stop = min(len(data), start + batch)
        try:
            predictions = model.predict_batch(data.inputs[start:stop])
        except ModelError as exc:
            raise ModelError(f"{folder}: items {start}..{stop - 1}: {exc}") from None
        outcomes += [_outcome(p) for p in predictions]
        if progress is not None:
            progress("predict", stop, len(data))
    return outcomes


def evaluate_outcomes(
    model: LoadedModel, data: LabelledData, outcomes: Sequence[Outcome], *, target_recall: float
) -> Evaluation:
    """Measure a release's outcomes against the data's labels (``models.evaluation``).

    Classifiers and temporal models: their classes and probabilities; anomaly and golden
    models: normal vs anomaly on the anomaly score and their own threshold.

    Raises:
        ModelError: a label the release does not know (classifiers), or no normal class to
            tell anomalies from (anomaly models).
    """
    if model.kind in ("anomaly", "golden"):
        if data.normal is None:
            raise ModelError("the data has no normal class to score an anomaly model against")
        truth = [int(label != data.normal) for label in data.labels]
        scores = np.array([o.anomaly_score or 0.0 for o in outcomes])
        pred = [int(o.verdict == "NG") for o in outcomes]
        return evaluate(
            truth,
            np.c_[1.0 - scores, scores],
            ["normal", "anomaly"],
            y_pred=pred,
            normal="normal",
            target_recall=target_recall,
        )
    classes = list(model.classes)
    unknown = sorted(set(data.labels) - set(classes))
    if unknown:
        raise ModelError(f"the data has classes {unknown} that the release does not know")
    truth = [classes.index(label) for label in data.labels]
    probs = np.array([[(o.probabilities or {}).get(c, 0.0) for c in classes] for o in outcomes])
    pred = [classes.index(o.label) for o in outcomes]
    normal = data.normal if data.normal in classes else None
    if normal is None:
        normal = next((c for c in classes if is_ok_class(c)), None)
    return evaluate(
        truth,
        probs.reshape(len(truth), len(classes)),
        classes,
        y_pred=pred,
        normal=normal,
        target_recall=target_recall,
    )


def held_out_part(folder: Path, manifest: Manifest, data: LabelledData) -> LabelledData:
    """The part of ``data`` the release's training held out: the ids its ``split.json``
    lists, else the split recomputed from its recorded seed and holdout share.

    Raises:
        ModelError: the data is not the release's training data (another dataset hash), an
            id of the split is missing from it, or the release records no split.
    """
    if data.dataset_hash != manifest.dataset_hash:
        raise ModelError(
            f"the data's hash {data.dataset_hash[:12]} is not the release's training data "
            f"{manifest.dataset_hash[:12]}: its held-out part cannot be recomputed"
        )
    if SPLIT_FILE in manifest.files:
        try:
            ids = json.loads(read_file(folder, SPLIT_FILE, manifest))["holdout"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelError(f"{folder / SPLIT_FILE}: no holdout ids ({exc})") from None
        position = {source: k for k, source in enumerate(data.sources)}
        missing = [i for i in ids if i not in position]
        if missing:
            raise ModelError(f"{folder / SPLIT_FILE}: {len(missing)} ids not in the data")
        held = [position[i] for i in ids]
    else:
        recorded = {**manifest.metrics, **manifest.training}
        try:
            seed, share = int(recorded["seed"]), float(recorded["holdout"])
        except (KeyError, TypeError, ValueError):
            raise ModelError("the release records no seed and holdout share") from None
        _, held = holdout_split(data, share=share, seed=seed)
    if not held:
        raise ModelError("the release held nothing out (holdout 0)")
    return data.subset(held)


#: What ``read_input`` gives: a frame, an 8-bit picture as float32, or a whole recording.
Input = ThermalFrame | NDArray[np.float32] | list[ThermalFrame]


def read_input(model: LoadedModel, path: Path) -> Input:
    """A file as the release reads it: an 8-bit picture for intensity models, the whole
    recording for temporal models, else the first frame of a radiometric file.

    Raises:
        ModelError: the file cannot be read that way (the message names it).
    """
    try:
        if model.contract.unit == "intensity":
            data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
            if image is None:
                raise ModelError(f"{path}: not a decodable picture")
            return image.astype(np.float32)
        if model.kind == "temporal":
            with tio.open_path(path) as recording:
                return list(recording)
        return tio.load(path)
    except ModelError:
        raise
    except ThermoscopeError as exc:
        message = str(exc)
        raise ModelError(message if str(path) in message else f"{path}: {message}") from None
    except OSError as exc:
        raise ModelError(f"{path}: {exc.strerror or exc}") from None


def predict_files(
    model: LoadedModel,
    paths: Sequence[Path],
    *,
    features: CurveFeatures | None = None,
    batch: int = 64,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready record per input file, in order: ``source``, ``model``, ``version``,
    ``label``, ``score``, ``verdict`` and ``anomaly_score`` / ``probabilities`` where the
    kind gives them; ``{"source", "model", "version", "error"}`` for a file that cannot be
    read or does not fit the model. Single frames go through the graph ``batch`` at a time (a
    batch the model refuses is retried file by file, so the error lands on its file)."""
    records: list[dict[str, Any]] = []
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        items: list[Input | ModelError] = []
        for path in chunk:
            try:
                items.append(read_input(model, path))
            except ModelError as exc:
                items.append(exc)
        frames = [(k, x) for k, x in enumerate(items) if not isinstance(x, ModelError | list)]
        outcomes: dict[int, Outcome | ModelError] = {}
        try:
            predicted = model.predict_batch([x for _, x in frames]) if frames else []
            outcomes = {k: _outcome(p) for (k, _), p in zip(frames, predicted, strict=True)}
        except ModelError:
            for k, frame in frames:
                outcomes[k] = _judge(model, frame, features, chunk[k])
        for k, item in enumerate(items):
            if isinstance(item, ModelError):
                outcomes[k] = item
            elif isinstance(item, list):
                outcomes[k] = _judge(model, item, features, chunk[k])
        records += [_record(model, path, outcomes[k]) for k, path in enumerate(chunk)]
        if progress is not None:
            progress("files", start + len(chunk), len(paths))
    return records


def _judge(
    model: LoadedModel, item: Input, features: CurveFeatures | None, path: Path
) -> Outcome | ModelError:
    """One input's outcome, or the error that stops it."""
    try:
        if isinstance(item, list):
            if features is None:
                raise ModelError(f"{path}: a temporal release needs its curve settings")
            curves = sequence_curves(model.contract, features, item, source=str(path))
            return _temporal_outcome(model, curves[None])[0]
        return _outcome(model.predict(item))
    except ModelError as exc:
        return exc


def _record(model: LoadedModel, path: Path, outcome: Outcome | ModelError) -> dict[str, Any]:
    record: dict[str, Any] = {"source": str(path), "model": model.name, "version": model.version}
    if isinstance(outcome, ModelError):
        message = str(outcome)
        return record | {"error": message if str(path) in message else f"{path}: {message}"}
    record |= {"label": outcome.label, "score": outcome.score, "verdict": outcome.verdict}
    if outcome.anomaly_score is not None:
        record["anomaly_score"] = outcome.anomaly_score
    if outcome.probabilities is not None:
        record["probabilities"] = outcome.probabilities
    return record


def export_onnx_file(folder: Path, out: Path, *, public_key: Path | None = None) -> Path:
    """A release's model as one standalone ONNX file: its ``model.onnx``, whose metadata
    already carries the manifest's identity, contract, classes, thresholds and dataset hash
    (``models.manifest.embed_metadata``), plus ``thermoscope.code_version``,
    ``thermoscope.training``, ``thermoscope.created`` / ``expires`` and, for temporal models,
    ``thermoscope.curves``; written whole or not at all.

    Raises:
        ModelError: the release is refused (``ReleaseError``) or its ONNX file is corrupt.
    """
    model = load_model(folder, public_key=public_key)
    manifest = model.manifest.to_dict()
    try:
        graph = onnx.load_from_string(read_file(folder, MODEL_FILE, model.manifest))
    except Exception as exc:  # onnx raises protobuf's DecodeError and others
        raise ModelError(f"{folder / MODEL_FILE}: not an ONNX model ({exc})") from None
    extra = {k: manifest[k] for k in ("code_version", "training", "created", "expires")}
    if model.kind == "temporal":
        extra["curves"] = curve_features(folder, model.manifest).to_dict()
    keys = {METADATA_PREFIX + name for name in extra}
    kept = [p for p in graph.metadata_props if p.key not in keys]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    for name, value in extra.items():
        graph.metadata_props.add(key=METADATA_PREFIX + name, value=json.dumps(value))
    try:
        return tio.registry.write_atomic(out, graph.SerializeToString())
    except OSError as exc:
        raise ModelError(f"{out}: cannot write ({exc.strerror or exc})") from None
