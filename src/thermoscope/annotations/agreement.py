"""Agreement between two annotators (or an annotator and a machine).

- ``iou``: intersection over union of two shapes; exact for two axis-aligned boxes, otherwise
  on their pixel masks (``to_mask`` rasterisation, so polygons, rotated boxes and masks compare
  pixel by pixel).
- ``match``: pairs of one annotator's annotations with the other's on the same frame (and the
  same label unless ``by_label=False``) with IoU at or above a threshold, by the Hungarian
  method (maximum total IoU) or greedily (highest IoU first); each annotation in at most one
  pair.
- ``detection_scores``: precision, recall and F1 of a candidate set against a reference set.
- ``verdict_agreement``: accuracy and Cohen's kappa of two lists of OK / NG verdicts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.model import Annotation, VerdictLabel
from thermoscope.annotations.shapes import Box, Mask, Shape
from thermoscope.core.findings import Verdict


def iou(a: Shape, b: Shape, *, frame_shape: tuple[int, int] | None = None) -> float:
    """Intersection over union of two shapes, 0..1 (0 when both are empty).

    ``frame_shape`` (height, width px) is the canvas for pixel-based comparison; by default a
    mask's own size, else just large enough to hold both shapes.
    """
    if isinstance(a, Box) and isinstance(b, Box):
        ax0, ay0, ax1, ay1 = a.bounds()
        bx0, by0, bx1, by1 = b.bounds()
        w = max(0.0, min(ax1, bx1) - max(ax0, bx0))
        h = max(0.0, min(ay1, by1) - max(ay0, by0))
        inter = w * h
        return inter / (a.area + b.area - inter)
    shape = frame_shape or _canvas(a, b)
    ma, mb = a.to_mask(shape), b.to_mask(shape)
    union = int(np.count_nonzero(ma | mb))
    return 0.0 if union == 0 else int(np.count_nonzero(ma & mb)) / union


def _canvas(a: Shape, b: Shape) -> tuple[int, int]:
    for s in (a, b):
        if isinstance(s, Mask):
            return s.height, s.width
    x1 = max(a.bounds()[2], b.bounds()[2])
    y1 = max(a.bounds()[3], b.bounds()[3])
    return max(1, math.ceil(y1) + 1), max(1, math.ceil(x1) + 1)


@dataclass(frozen=True, slots=True)
class Match:
    """Reference annotation ``reference[a]`` matched to ``candidate[b]`` with ``iou``."""

    a: int
    b: int
    iou: float


@dataclass(frozen=True, slots=True)
class Matching:
    """The result of ``match``: pairs and the indices left over on each side."""

    matches: tuple[Match, ...]
    unmatched_a: tuple[int, ...]
    unmatched_b: tuple[int, ...]


def match(
    reference: Sequence[Annotation],
    candidate: Sequence[Annotation],
    *,
    iou_threshold: float = 0.5,
    method: Literal["hungarian", "greedy"] = "hungarian",
    by_label: bool = True,
    frame_shape: tuple[int, int] | None = None,
) -> Matching:
    """Pair annotations of two annotators (see the module docstring).

    Args:
        reference, candidate: the two sets (e.g. ground truth and a model's drafts).
        iou_threshold: the least IoU of a pair, 0..1.
        method: ``"hungarian"`` maximises the summed IoU of the pairs; ``"greedy"`` takes the
            highest-IoU pair first.
        by_label: pair only annotations with the same label.
        frame_shape: (height, width) px canvas for pixel-based IoU (see ``iou``).
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise AnnotationError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    if method not in ("hungarian", "greedy"):
        raise AnnotationError(f"unknown matching method {method!r}")
    groups: dict[tuple[int, str], tuple[list[int], list[int]]] = {}
    for i, ann in enumerate(reference):
        groups.setdefault((ann.frame, ann.label if by_label else ""), ([], []))[0].append(i)
    for j, ann in enumerate(candidate):
        groups.setdefault((ann.frame, ann.label if by_label else ""), ([], []))[1].append(j)
    matches: list[Match] = []
    for rows, cols in groups.values():
        if not rows or not cols:
            continue
        ious = np.array(
            [
                [iou(reference[i].shape, candidate[j].shape, frame_shape=frame_shape) for j in cols]
                for i in rows
            ]
        )
        eligible = ious >= iou_threshold
        pairs = (
            _hungarian(np.where(eligible, ious, 0.0))
            if method == "hungarian"
            else (_greedy(ious, eligible))
        )
        matches.extend(
            Match(rows[r], cols[c], float(ious[r, c])) for r, c in pairs if eligible[r, c]
        )
    matches.sort(key=lambda m: (m.a, m.b))
    used_a = {m.a for m in matches}
    used_b = {m.b for m in matches}
    return Matching(
        tuple(matches),
        tuple(i for i in range(len(reference)) if i not in used_a),
        tuple(j for j in range(len(candidate)) if j not in used_b),
    )


def _greedy(ious: NDArray[np.float64], eligible: NDArray[np.bool_]) -> list[tuple[int, int]]:
    order = sorted(zip(*np.nonzero(eligible), strict=True), key=lambda rc: -ious[rc])
    used_r: set[int] = set()
    used_c: set[int] = set()
    out = []
    for r, c in order:
        if r not in used_r and c not in used_c:
            used_r.add(int(r))
            used_c.add(int(c))
            out.append((int(r), int(c)))
    return out


def _hungarian(weights: NDArray[np.float64]) -> list[tuple[int, int]]:
    """Row/column pairs of a maximum-weight assignment (Kuhn-Munkres with potentials)."""
    transposed = weights.shape[0] > weights.shape[1]
    cost = -(weights.T if transposed else weights)
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, dtype=np.int64)  # owner[j]: row (1-based) assigned to column j
    way = np.zeros(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            cur = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = int(way[j0])
            owner[j0] = owner[j1]
            j0 = j1
    pairs = [(int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    return [(c, r) for r, c in pairs] if transposed else pairs


@dataclass(frozen=True, slots=True)
class DetectionScores:
    """Counts and rates of a candidate set against a reference set at one IoU threshold.

    ``precision`` is 1 when the candidate set is empty, ``recall`` 1 when the reference set is
    empty; ``f1`` is 0 when both rates are 0. ``mean_iou`` is over the matched pairs (NaN when
    there is none).
    """

    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float
    mean_iou: float


def detection_scores(
    reference: Sequence[Annotation],
    candidate: Sequence[Annotation],
    *,
    iou_threshold: float = 0.5,
    method: Literal["hungarian", "greedy"] = "hungarian",
    by_label: bool = True,
    frame_shape: tuple[int, int] | None = None,
) -> DetectionScores:
    """Precision, recall and F1 of ``candidate`` against ``reference`` (arguments as ``match``)."""
    result = match(
        reference,
        candidate,
        iou_threshold=iou_threshold,
        method=method,
        by_label=by_label,
        frame_shape=frame_shape,
    )
    tp = len(result.matches)
    fp = len(result.unmatched_b)
    fn = len(result.unmatched_a)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mean = float(np.mean([m.iou for m in result.matches])) if result.matches else math.nan
    return DetectionScores(tp, fp, fn, precision, recall, f1, mean)


@dataclass(frozen=True, slots=True)
class VerdictAgreement:
    """Agreement of two raters on ``count`` verdicts: ``accuracy`` (observed agreement, 0..1)
    and Cohen's ``kappa`` (NaN when chance agreement is 1, i.e. both gave one same verdict
    throughout)."""

    count: int
    accuracy: float
    kappa: float


def verdict_agreement(
    a: Sequence[Verdict | str | VerdictLabel], b: Sequence[Verdict | str | VerdictLabel]
) -> VerdictAgreement:
    """Accuracy and Cohen's kappa of two raters' verdicts on the same parts, in order."""
    if len(a) != len(b):
        raise AnnotationError(f"verdict lists differ in length: {len(a)} and {len(b)}")
    if not a:
        raise AnnotationError("verdict agreement needs at least one pair")
    va = [_verdict(x) for x in a]
    vb = [_verdict(x) for x in b]
    n = len(va)
    observed = sum(x == y for x, y in zip(va, vb, strict=True)) / n
    ca, cb = Counter(va), Counter(vb)
    chance = sum(ca[k] * cb[k] for k in ca) / (n * n)
    kappa = math.nan if chance >= 1.0 else (observed - chance) / (1.0 - chance)
    return VerdictAgreement(n, observed, kappa)


def _verdict(value: Verdict | str | VerdictLabel) -> Verdict:
    if isinstance(value, VerdictLabel):
        return value.verdict
    try:
        return Verdict(value)
    except ValueError:
        raise AnnotationError(f"unknown verdict {value!r}") from None
