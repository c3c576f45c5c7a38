"""Evaluation figures against hand-computed cases, brute-force definitions and properties.

scikit-learn is not installed here, so AUROC and average precision are checked against the
values of its documented examples and against slow, literal definitions (the Mann-Whitney
pair count; the mean over positives of the precision at their own score).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermoscope.models.errors import ModelError
from thermoscope.models.evaluation import (
    auroc,
    average_precision,
    calibration,
    class_scores,
    collapse,
    confusion_matrix,
    evaluate,
    pr_curve,
    roc_curve,
    threshold_for_recall,
)


def pair_auroc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Share of (positive, negative) pairs the positive wins, ties half."""
    pos, neg = scores[truth], scores[~truth]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def literal_ap(truth: np.ndarray, scores: np.ndarray) -> float:
    """Mean over positives of the precision when everything scoring >= it is positive."""
    out = []
    for s in scores[truth]:
        chosen = scores >= s
        out.append(truth[chosen].mean())
    return float(np.mean(out))


def test_documented_examples() -> None:
    # scikit-learn's roc_auc_score / average_precision_score docstring examples
    truth = np.array([0, 0, 1, 1], dtype=bool)
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    assert auroc(truth, scores) == pytest.approx(0.75)
    assert average_precision(truth, scores) == pytest.approx(0.8333333333)
    roc = roc_curve(truth, scores)
    assert roc.x == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert roc.y == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert roc.thresholds == [None, 0.8, 0.4, 0.35, 0.1]
    pr = pr_curve(truth, scores)
    assert pr.x == [0.5, 0.5, 1.0, 1.0]
    assert pr.y == pytest.approx([1.0, 0.5, 2 / 3, 0.5])


def test_single_class_gives_none() -> None:
    assert auroc([True, True], [0.2, 0.3]) is None
    assert auroc([False, False], [0.2, 0.3]) is None
    assert average_precision([False, False], [0.2, 0.3]) is None
    assert threshold_for_recall([False], [0.5]) is None


scored = st.lists(
    st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])),
    min_size=2,
    max_size=40,
).filter(lambda rows: 0 < sum(t for t, _ in rows) < len(rows))


@settings(max_examples=150, deadline=None)
@given(scored)
def test_auroc_and_ap_equal_their_definitions(rows: list[tuple[bool, float]]) -> None:
    truth = np.array([t for t, _ in rows])
    scores = np.array([s for _, s in rows])
    assert auroc(truth, scores) == pytest.approx(pair_auroc(truth, scores), abs=1e-12)
    assert average_precision(truth, scores) == pytest.approx(literal_ap(truth, scores), abs=1e-12)
    # flipping the scores mirrors the AUROC; a monotone rescaling changes nothing
    assert auroc(truth, -scores) == pytest.approx(1.0 - pair_auroc(truth, scores), abs=1e-12)
    assert auroc(truth, 3 * scores + 1) == pytest.approx(auroc(truth, scores), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(scored, st.floats(0.05, 1.0))
def test_threshold_for_recall_is_the_highest_that_reaches_it(
    rows: list[tuple[bool, float]], target: float
) -> None:
    truth = np.array([t for t, _ in rows])
    scores = np.array([s for _, s in rows])
    point = threshold_for_recall(truth, scores, target)
    assert point is not None
    chosen = scores >= point.threshold
    assert point.recall == pytest.approx(truth[chosen].sum() / truth.sum())
    assert point.recall >= target - 1e-12
    higher = np.unique(scores[scores > point.threshold])
    for t in higher:  # every higher threshold misses the target
        assert truth[scores >= t].sum() / truth.sum() < target - 1e-12
    assert point.precision == pytest.approx(truth[chosen].mean())
    assert point.accuracy == pytest.approx(np.mean(chosen == truth))


def test_confusion_and_class_scores_by_hand() -> None:
    truth = [0, 0, 0, 1, 1, 2]
    pred = [0, 1, 0, 1, 1, 1]
    cm = confusion_matrix(truth, pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 0], [0, 1, 0]]
    precision, recall, f1, support = class_scores(cm)
    assert precision.tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert recall.tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert f1.tolist() == pytest.approx([0.8, 2 / 3, 0.0])
    assert support.tolist() == [3, 2, 1]


def test_calibration_bins_and_ece_by_hand() -> None:
    conf = [0.05, 0.15, 0.95, 1.0, 0.9]
    right = [False, False, True, True, False]
    cal = calibration(conf, right, bins=2)
    assert cal.count == [2, 3]
    assert cal.confidence[0] == pytest.approx(0.1)
    assert cal.accuracy == pytest.approx([0.0, 2 / 3])
    # |0 - 0.1| * 2/5 + |2/3 - 0.95| * 3/5
    assert cal.ece == pytest.approx(0.1 * 0.4 + abs(2 / 3 - 0.95) * 0.6)
    assert calibration([1.0, 1.0], [True, True]).ece == pytest.approx(0.0)
    assert calibration([], []).count == [0] * 10


def test_evaluate_twelve_classes_collapsed_to_anomaly() -> None:
    classes = [f"c{i}" for i in range(11)] + ["No-Anomaly"]
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 12, 300)
    logits = rng.normal(0, 1, (300, 12))
    logits[np.arange(300), truth] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    result = evaluate(truth, probs, classes, normal="No-Anomaly", target_recall=0.95)
    pred = probs.argmax(axis=1)
    assert result.accuracy == pytest.approx(np.mean(pred == truth))
    assert sum(map(sum, result.confusion)) == 300
    assert result.macro_f1 == pytest.approx(np.mean([c.f1 for c in result.per_class]))
    binary = result.binary
    assert binary is not None
    positive, score = collapse(truth, probs, classes, "No-Anomaly")
    assert binary.positives == int(positive.sum()) == int((truth != 11).sum())
    assert binary.accuracy == pytest.approx(np.mean((pred != 11) == (truth != 11)))
    assert binary.auroc == pytest.approx(pair_auroc(positive, score))
    assert binary.operating is not None
    assert binary.operating.recall >= 0.95
    assert result.recall_of("c3") == result.per_class[3].recall
    doc = json.loads(result.to_json())
    assert doc["binary"]["roc"]["thresholds"][0] is None
    assert doc["per_class"][11]["name"] == "No-Anomaly"


def test_anomaly_model_as_two_classes() -> None:
    scores = np.array([0.1, 0.2, 0.7, 0.9, 0.4])
    truth = np.array([0, 0, 1, 1, 1])
    result = evaluate(
        truth,
        np.c_[1 - scores, scores],
        ["normal", "anomaly"],
        y_pred=(scores >= 0.5).astype(int),
        normal="normal",
    )
    assert result.binary is not None
    assert result.binary.positive == "anomaly"
    assert result.binary.auroc == pytest.approx(1.0)
    assert result.accuracy == pytest.approx(0.8)
    assert result.per_class[1].recall == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0, 1], [[0.5, 0.5]], ["a", "b"]), "class indices"),
        (([0, 2], [[0.5, 0.5], [1.0, 0.0]], ["a", "b"]), "outside"),
        (([0], [[0.5, 0.5, 0.0]], ["a", "b"]), "probabilities must be"),
        (([0], [[0.5, np.nan]], ["a", "b"]), "finite"),
        (([0], [[1.0]], ["a"]), "2 or more"),
    ],
)
def test_bad_input_names_the_problem(args: tuple, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        evaluate(*args)


def test_unknown_normal_class_is_refused() -> None:
    with pytest.raises(ModelError, match="normal class"):
        evaluate([0], [[1.0, 0.0]], ["a", "b"], normal="ok")
