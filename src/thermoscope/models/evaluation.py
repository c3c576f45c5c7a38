"""How well a model does on labelled data: NumPy only, no training framework needed.

Multi-class figures come from the true class index and the predicted class probabilities of
each sample: the confusion matrix, per-class precision / recall / F1, macro-F1, accuracy and
the calibration of the top-label confidence (reliability bins and the expected calibration
error). A binary view collapses the classes to "defect" vs "normal" (e.g. the 12 classes of
InfraredSolarModules to anomaly vs no-anomaly, given the name of the normal class) and scores
each sample by one minus the normal class's probability; it gives the ROC and precision-recall
curves, AUROC, average precision and the threshold picked for a target recall.

Conventions (as scikit-learn's): precision with no predicted sample of a class is 0, recall
with no true sample is 0; AUROC counts ties as half (the Mann-Whitney statistic); average
precision is sum over thresholds of (R_n - R_{n-1}) * P_n. Figures that are undefined (AUROC
with a single class present) are ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.models.errors import ModelError

#: Reliability bins over the confidence [0, 1] unless told otherwise.
DEFAULT_BINS = 10
#: Recall the operating threshold is picked for unless told otherwise.
DEFAULT_TARGET_RECALL = 0.99

_Floats = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ClassScores:
    """Precision, recall and F1 of one class (all in [0, 1]) and its number of true samples."""

    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True, slots=True)
class Curve:
    """A curve as parallel lists: ``x``, ``y`` and the score threshold of each point.

    ROC: x = false-positive rate, y = true-positive rate. PR: x = recall, y = precision. A
    threshold ``t`` means "positive when score >= t"; the ROC's first point (0, 0) has
    threshold ``None`` (nothing positive).
    """

    x: list[float]
    y: list[float]
    thresholds: list[float | None]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Reliability of a confidence: per equal-width bin over [0, 1], the samples in it, their
    mean confidence and the share of them that were right; ``ece`` the expected calibration
    error (bin-count weighted mean of |accuracy - confidence|), in [0, 1]. Empty bins hold
    ``None`` for confidence and accuracy."""

    edges: list[float]
    count: list[int]
    confidence: list[float | None]
    accuracy: list[float | None]
    ece: float


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A threshold on the binary score and what it gives on the data (rates in [0, 1])."""

    threshold: float
    target_recall: float
    recall: float
    precision: float
    false_positive_rate: float
    accuracy: float


@dataclass(frozen=True, slots=True)
class BinaryScores:
    """The defect-vs-normal view of an evaluation.

    Attributes:
        positive: what counts as positive: "anomaly", or the other class of two.
        normal: the class name(s) counted as negative.
        positives, negatives: how many samples of each.
        accuracy: accuracy of the collapsed prediction (the predicted class collapsed the same
            way), in [0, 1].
        auroc: area under the ROC curve, ``None`` when a side is empty.
        average_precision: area under the PR curve as a step sum, ``None`` without positives.
        roc, pr: the curves.
        operating: the threshold picked for the target recall, ``None`` without positives.
    """

    positive: str
    normal: list[str]
    positives: int
    negatives: int
    accuracy: float
    auroc: float | None
    average_precision: float | None
    roc: Curve
    pr: Curve
    operating: OperatingPoint | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything measured on one labelled set.

    Attributes:
        classes: class names, in the model's order.
        count: samples evaluated.
        confusion: ``confusion[i][j]`` = samples of true class i predicted as class j.
        per_class: precision, recall, F1 and support of each class.
        accuracy: share of samples predicted right, [0, 1].
        macro_f1: unweighted mean of the per-class F1 over classes that have true samples.
        calibration: reliability of the top-label confidence.
        binary: the defect-vs-normal view, ``None`` when no normal class was named.
    """

    classes: list[str]
    count: int
    confusion: list[list[int]]
    per_class: list[ClassScores]
    accuracy: float
    macro_f1: float
    calibration: Calibration
    binary: BinaryScores | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (lists, numbers, strings, ``None``)."""
        return asdict(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The evaluation as JSON text (no NaN: undefined figures are ``null``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def recall_of(self, name: str) -> float:
        """Recall of class ``name``; ``ModelError`` for an unknown class."""
        for scores in self.per_class:
            if scores.name == name:
                return scores.recall
        raise ModelError(f"evaluation: no class {name!r} in {self.classes}")


def _labels(y_true: ArrayLike, count: int, n_classes: int, what: str) -> NDArray[np.int64]:
    labels = np.asarray(y_true)
    if labels.ndim != 1 or labels.size != count:
        raise ModelError(f"evaluation: {what} must be {count} class indices, got {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ModelError(f"evaluation: {what} must be integer class indices, got {labels.dtype}")
    out = labels.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= n_classes):
        raise ModelError(f"evaluation: {what} outside 0..{n_classes - 1}")
    return out


def _binary(is_positive: ArrayLike, scores: ArrayLike) -> tuple[NDArray[np.bool_], _Floats]:
    truth = np.asarray(is_positive, dtype=bool).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if truth.size != values.size:
        raise ModelError(f"evaluation: {truth.size} labels for {values.size} scores")
    if not np.isfinite(values).all():
        raise ModelError("evaluation: scores must be finite")
    return truth, values


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """(K, K) counts: row = true class index, column = predicted class index."""
    truth = np.asarray(y_true)
    pred = _labels(y_pred, truth.size, n_classes, "predictions")
    truth = _labels(truth, truth.size, n_classes, "labels")
    flat = np.bincount(truth * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def class_scores(
    confusion: NDArray[np.integer[Any]],
) -> tuple[_Floats, _Floats, _Floats, NDArray[np.int64]]:
    """(precision, recall, F1, support) per class from a confusion matrix (0 where undefined)."""
    cm = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(cm)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(hits), where=total > 0)
    return precision, recall, f1, support.astype(np.int64)


def _ranked(truth: NDArray[np.bool_], scores: _Floats) -> tuple[_Floats, _Floats, _Floats]:
    """Cumulative true and false positives at each distinct threshold, highest first."""
    order = np.argsort(-scores, kind="mergesort")
    ranked = scores[order]
    hits = truth[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(ranked) != 0), ranked.size - 1]
    tps = np.cumsum(hits)[last]
    fps = (last + 1.0) - tps
    return tps, fps, ranked[last]


def roc_curve(is_positive: ArrayLike, scores: ArrayLike) -> Curve:
    """ROC curve: false- and true-positive rate at each distinct score, from (0, 0) to (1, 1).

    A side with no samples gives rates of 0 on that axis.
    """
    truth, values = _binary(is_positive, scores)
    if truth.size == 0:
        return Curve([0.0], [0.0], [None])
    tps, fps, thresholds = _ranked(truth, values)
    pos, neg = tps[-1], fps[-1]
    tpr = tps / pos if pos else np.zeros_like(tps)
    fpr = fps / neg if neg else np.zeros_like(fps)
    return Curve([0.0, *map(float, fpr)], [0.0, *map(float, tpr)], [None, *map(float, thresholds)])


def auroc(is_positive: ArrayLike, scores: ArrayLike) -> float | None:
    """Area under the ROC curve (probability a positive outscores a negative, ties half);
    ``None`` when either class is absent."""
    truth, values = _binary(is_positive, scores)
    if truth.all() or not truth.any():
        return None
    curve = roc_curve(truth, values)
    x, y = np.asarray(curve.x), np.asarray(curve.y)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def pr_curve(is_positive: ArrayLike, scores: ArrayLike) -> Curve:
    """Precision-recall curve at each distinct score, highest threshold first (recall rising).

    Recall is 0 everywhere without positives.
    """
    truth, values = _binary(is_positive, scores)
    if truth.size == 0:
        return Curve([], [], [])
    tps, fps, thresholds = _ranked(truth, values)
    precision = tps / (tps + fps)
    recall = tps / tps[-1] if tps[-1] else np.zeros_like(tps)
    return Curve(
        list(map(float, recall)), list(map(float, precision)), list(map(float, thresholds))
    )


def average_precision(is_positive: ArrayLike, scores: ArrayLike) -> float | None:
    """Sum over thresholds of (recall step) x precision; ``None`` without positives."""
    truth, values = _binary(is_positive, scores)
    if not truth.any():
        return None
    curve = pr_curve(truth, values)
    recall = np.r_[0.0, curve.x]
    return float(np.sum(np.diff(recall) * np.asarray(curve.y)))


def threshold_for_recall(
    is_positive: ArrayLike, scores: ArrayLike, target_recall: float = DEFAULT_TARGET_RECALL
) -> OperatingPoint | None:
    """The highest threshold (positive when score >= it) whose recall reaches
    ``target_recall``, with the precision, false-positive rate and accuracy it gives there;
    ``None`` without positives."""
    if not 0.0 < target_recall <= 1.0:
        raise ModelError(f"evaluation: target recall must be in (0, 1], got {target_recall}")
    truth, values = _binary(is_positive, scores)
    if not truth.any():
        return None
    tps, fps, thresholds = _ranked(truth, values)
    pos, neg = tps[-1], fps[-1]
    recall = tps / pos
    k = int(np.argmax(recall >= target_recall - 1e-12))
    correct = tps[k] + (neg - fps[k])
    return OperatingPoint(
        threshold=float(thresholds[k]),
        target_recall=float(target_recall),
        recall=float(recall[k]),
        precision=float(tps[k] / (tps[k] + fps[k])),
        false_positive_rate=float(fps[k] / neg) if neg else 0.0,
        accuracy=float(correct / truth.size),
    )


def calibration(
    confidence: ArrayLike, correct: ArrayLike, *, bins: int = DEFAULT_BINS
) -> Calibration:
    """Reliability bins of a confidence in [0, 1] against whether each sample was right.

    Bins are equal-width over [0, 1], closed on the right (a confidence of 1 falls in the
    last bin, 0 in the first).
    """
    if bins < 1:
        raise ModelError(f"evaluation: bins must be >= 1, got {bins}")
    conf = np.asarray(confidence, dtype=np.float64).ravel()
    right = np.asarray(correct, dtype=bool).ravel()
    if conf.size != right.size:
        raise ModelError(f"evaluation: {conf.size} confidences for {right.size} outcomes")
    if conf.size and not (np.isfinite(conf).all() and conf.min() >= 0.0 and conf.max() <= 1.0):
        raise ModelError("evaluation: confidences must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    right_sum = np.bincount(which, weights=right.astype(np.float64), minlength=bins)
    mean_conf: list[float | None] = []
    mean_acc: list[float | None] = []
    ece = 0.0
    for n, c, r in zip(count, conf_sum, right_sum, strict=True):
        if n == 0:
            mean_conf.append(None)
            mean_acc.append(None)
            continue
        mean_conf.append(float(c / n))
        mean_acc.append(float(r / n))
        ece += abs(r - c) / conf.size
    return Calibration(
        [float(e) for e in edges], [int(n) for n in count], mean_conf, mean_acc, float(ece)
    )


def collapse(
    y_true: ArrayLike,
    probabilities: ArrayLike,
    classes: Sequence[str],
    normal: str | Sequence[str],
) -> tuple[NDArray[np.bool_], _Floats]:
    """Defect vs normal: (true sample is not normal, 1 - summed probability of the normal
    class(es)) for each sample.

    Raises:
        ModelError: a normal class the model does not have, or mismatched shapes.
    """
    names = [normal] if isinstance(normal, str) else list(normal)
    missing = [n for n in names if n not in classes]
    if missing or not names:
        raise ModelError(f"evaluation: normal class {missing or names} not among {list(classes)}")
    probs = _probabilities(probabilities, len(classes))
    truth = _labels(y_true, probs.shape[0], len(classes), "labels")
    normal_index = [list(classes).index(n) for n in names]
    is_positive = ~np.isin(truth, normal_index)
    score = np.clip(1.0 - probs[:, normal_index].sum(axis=1), 0.0, 1.0)
    return is_positive, score


def _probabilities(probabilities: ArrayLike, n_classes: int) -> _Floats:
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != n_classes:
        raise ModelError(
            f"evaluation: probabilities must be (N, {n_classes}), got shape {probs.shape}"
        )
    if probs.size and not (np.isfinite(probs).all() and probs.min() >= 0 and probs.max() <= 1):
        raise ModelError("evaluation: probabilities must be finite and within [0, 1]")
    return probs


def evaluate(
    y_true: ArrayLike,
    probabilities: ArrayLike,
    classes: Sequence[str],
    *,
    y_pred: ArrayLike | None = None,
    normal: str | Sequence[str] | None = None,
    target_recall: float = DEFAULT_TARGET_RECALL,
    bins: int = DEFAULT_BINS,
) -> Evaluation:
    """Measure predictions against the truth.

    Args:
        y_true: true class index of each sample, (N,).
        probabilities: predicted probability of each class, (N, K), rows summing to about 1
            (an anomaly model gives [1 - score, score] with classes ("normal", "anomaly")).
        classes: the K class names.
        y_pred: predicted class index of each sample; default the most probable class (an
            anomaly model passes its thresholded decision).
        normal: the normal class name(s) for the defect-vs-normal view; ``None``: no such view.
        target_recall: the defect recall the operating threshold is picked for, (0, 1].
        bins: reliability bins.

    Raises:
        ModelError: shapes or values that do not fit (the message names which).
    """
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ModelError(f"evaluation: classes must be 2 or more distinct names, got {classes}")
    probs = _probabilities(probabilities, len(classes))
    truth = _labels(y_true, probs.shape[0], len(classes), "labels")
    pred = (
        probs.argmax(axis=1)
        if y_pred is None
        else _labels(y_pred, truth.size, len(classes), "predictions")
    )
    cm = confusion_matrix(truth, pred, len(classes))
    precision, recall, f1, support = class_scores(cm)
    per_class = [
        ClassScores(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    ]
    present = support > 0
    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    accuracy = float((truth == pred).mean()) if truth.size else 0.0
    confidence = probs[np.arange(truth.size), pred] if truth.size else np.zeros(0)
    binary = None
    if normal is not None:
        binary = _binary_view(truth, pred, probs, list(classes), normal, target_recall)
    return Evaluation(
        classes=list(classes),
        count=int(truth.size),
        confusion=cm.tolist(),
        per_class=per_class,
        accuracy=accuracy,
        macro_f1=macro_f1,
        calibration=calibration(confidence, truth == pred, bins=bins),
        binary=binary,
    )


def _binary_view(
    truth: NDArray[np.int64],
    pred: NDArray[np.int64],
    probs: _Floats,
    classes: list[str],
    normal: str | Sequence[str],
    target_recall: float,
) -> BinaryScores:
    is_positive, score = collapse(truth, probs, classes, normal)
    names = [normal] if isinstance(normal, str) else list(normal)
    normal_index = [classes.index(n) for n in names]
    predicted_positive = ~np.isin(pred, normal_index)
    agree = predicted_positive == is_positive
    positive = "anomaly"
    if len(classes) == 2 and len(names) == 1:
        positive = classes[1 - normal_index[0]]
    return BinaryScores(
        positive=positive,
        normal=names,
        positives=int(is_positive.sum()),
        negatives=int((~is_positive).sum()),
        accuracy=float(agree.mean()) if agree.size else 0.0,
        auroc=auroc(is_positive, score),
        average_precision=average_precision(is_positive, score),
        roc=roc_curve(is_positive, score),
        pr=pr_curve(is_positive, score),
        operating=threshold_for_recall(is_positive, score, target_recall),
    )
