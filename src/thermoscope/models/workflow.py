"""What ``thermoscope model`` runs with a release: evaluate it, predict on files, export it.
The command line only parses, prints and shows progress; the server's jobs can call the same
functions (training: ``models.fitting``).

- ``predict_data`` + ``evaluate_outcomes``: a release's predictions on labelled data
  (``held_out_part``: only the part its training held out) measured by ``models.evaluation``.
- ``predict_files``: one JSON-ready record per input file (``source``, ``label``, ``score``,
  ``verdict``, ``anomaly_score`` for anomaly models, ``probabilities`` for classifiers), or a
  record with ``error`` when the file cannot be read or does not fit the model.
- ``export_onnx_file``: the release's model as one standalone ONNX file.
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
from thermoscope.models.errors import ModelError
from thermoscope.models.evaluation import Evaluation, evaluate
from thermoscope.models.labelled import LabelledData, holdout_split
from thermoscope.models.manifest import METADATA_PREFIX
from thermoscope.models.release import MODEL_FILE, Manifest, read_file
from thermoscope.models.runtime import (
    LoadedModel,
    Prediction,
    decide_class,
    is_ok_class,
    load_model,
)
from thermoscope.models.temporal import CURVES_FILE, CurveFeatures, recording_curves, softmax

#: progress(stage, done, total): stage "load", "epoch", "predict" ...
Progress = Callable[[str, int, int], None]
#: Release file listing the train and holdout item ids (written by classifier training).
SPLIT_FILE = "split.json"
#: Suffixes read as 8-bit pictures for intensity models (the solar layout's JPEGs).
PICTURE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})


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
                    recording_curves(
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
            curves = recording_curves(model.contract, features, item, source=str(path))
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
