"""Pre-annotation from inspections, and agreement between annotators."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from thermoscope.annotations import (
    AnnotatedItem,
    Annotation,
    AnnotationError,
    Box,
    LabelSchema,
    Mask,
    Point,
    Polygon,
    Provenance,
    ReviewState,
    RotatedBox,
    VerdictLabel,
    detection_scores,
    from_inspection,
    inspection_label,
    iou,
    match,
    verdict_agreement,
)
from thermoscope.annotations.agreement import _hungarian
from thermoscope.core import Finding, Inspection, Verdict
from thermoscope.core import regions as core
from thermoscope.datasets.synthetic import ProductLine
from thermoscope.recipes import inspect, load_recipe

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ANNA = Provenance.human("anna", created=T0)

REGIONS: dict[str, core.Region] = {
    "U1": core.Box(26, 24, 28, 24),
    "Q1": core.Polygon(((110, 24), (122, 24), (122, 36), (110, 36))),
    "R7": core.MaskRegion(np.pad(np.ones((6, 10), dtype=bool), ((76, 38), (30, 120)))),
}


def finding(rule: str, region: str, verdict: Verdict, **kw: object) -> Finding:
    defaults: dict[str, object] = {"value": 91.5, "limit": 85.0, "explanation": f"{region} hot"}
    return Finding(rule=rule, region=region, verdict=verdict, **(defaults | kw))  # type: ignore[arg-type]


def test_from_inspection_makes_machine_drafts() -> None:
    inspection = Inspection.of(
        "part-17.seq",
        4,
        [
            finding("u1-max", "U1", Verdict.NG, extra={"kind": "max_temperature"}, score=0.9),
            finding("q1-max", "Q1", Verdict.WARN, value=80.0),
            finding("r7-max", "R7", Verdict.NG, limit=None),
            finding("u2-max", "U2", Verdict.OK),
            finding("hot-spot", "", Verdict.NG, x=70, y=50, extra={"kind": "hot_spot"}),
            finding("delta", "U1-Q1", Verdict.WARN, explanation="ΔT too large"),
        ],
    )
    pre = from_inspection(
        inspection, REGIONS, model_name="recipe-engine", version="pcb@3", created=T0
    )
    assert [a.label for a in pre.annotations] == ["max_temperature", "q1-max", "r7-max", "hot_spot"]
    first = pre.annotations[0]
    assert first.shape == Box(26, 24, 28, 24)
    assert first.frame == 4
    assert dict(first.attributes) == {
        "value": 91.5,
        "limit": 85.0,
        "unit": "°C",
        "rule": "u1-max",
        "region": "U1",
        "severity": "NG",
    }
    assert first.provenance == Provenance.machine("recipe-engine", "pcb@3", score=0.9, created=T0)
    assert first.provenance.machine_made
    assert all(a.review.state is ReviewState.DRAFT for a in pre.annotations)
    assert pre.annotations[1].shape == Polygon(((110, 24), (122, 24), (122, 36), (110, 36)))
    assert pre.annotations[1].attributes["severity"] == "WARN"
    assert pre.annotations[1].provenance.score is None
    mask = pre.annotations[2].shape
    assert isinstance(mask, Mask)
    assert np.array_equal(mask.to_mask((120, 160)), REGIONS["R7"].mask((120, 160)))
    assert "limit" not in pre.annotations[2].attributes
    assert pre.annotations[3].shape == Point(70.5, 50.5)
    assert [f.rule for f in pre.unplaced] == ["delta"]
    assert pre.verdict.verdict is Verdict.NG
    assert pre.verdict.frame == 4
    assert pre.verdict.reason == "u1-max: U1 hot; r7-max: R7 hot; hot-spot:  hot"
    assert pre.verdict.provenance.machine_made
    # the drafts fit an item and a schema made of the inspection labels
    schema = LabelSchema(
        tuple(inspection_label(k) for k in ("max_temperature", "q1-max", "r7-max", "hot_spot"))
    )
    item = AnnotatedItem(
        item_id="part-17",
        width=160,
        height=120,
        frame_count=5,
        annotations=pre.annotations,
        verdicts=(pre.verdict,),
        schema=schema,
    )
    assert AnnotatedItem.from_dict(item.to_dict(), schema=schema) == item


def test_from_inspection_whole_frame_and_ok() -> None:
    inspection = Inspection.of(
        "a.jpg",
        None,
        [
            finding("frame-max", "", Verdict.WARN, explanation="max 91.5 °C"),
            finding("u1", "U1", Verdict.OK),
        ],
    )
    pre = from_inspection(inspection, REGIONS, model_name="m", version="1", frame_shape=(120, 160))
    assert [a.shape for a in pre.annotations] == [Box(0, 0, 160, 120)]
    assert pre.annotations[0].frame == 0
    assert pre.annotations[0].label == "frame-max"
    kinds = {"frame-max": "max"}
    labelled = from_inspection(
        inspection, {}, model_name="m", version="1", frame_shape=(120, 160), kinds=kinds
    )
    assert labelled.annotations[0].label == "max"
    assert pre.unplaced == ()
    assert pre.verdict.verdict is Verdict.OK
    assert pre.verdict.frame is None
    assert pre.verdict.reason == "frame-max: max 91.5 °C"
    clean = from_inspection(Inspection.of("b.jpg", 0, []), {}, model_name="m", version="1")
    assert clean.annotations == ()
    assert clean.verdict.verdict is Verdict.OK


def test_from_inspection_generic_region() -> None:
    class Disc:
        def mask(self, shape: tuple[int, int]) -> np.ndarray:
            yy, xx = np.mgrid[: shape[0], : shape[1]]
            return (xx - 10) ** 2 + (yy - 10) ** 2 <= 9

        def bounds(self) -> tuple[int, int, int, int]:
            return 7, 7, 14, 14

    inspection = Inspection.of("c", 0, [finding("disc", "D", Verdict.NG)])
    with_shape = from_inspection(
        inspection, {"D": Disc()}, model_name="m", version="1", frame_shape=(20, 20)
    )
    assert isinstance(with_shape.annotations[0].shape, Mask)
    assert with_shape.annotations[0].shape.area == 29
    without = from_inspection(inspection, {"D": Disc()}, model_name="m", version="1")
    assert without.annotations[0].shape == Box(7, 7, 7, 7)


# --- IoU ------------------------------------------------------------------------------------


def test_iou_of_boxes() -> None:
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou(Box(0, 0, 10, 10), Box(20, 20, 1, 1)) == 0.0
    assert iou(Box(0, 0, 10, 10), Box(2.5, 2.5, 5, 5)) == pytest.approx(0.25)


def test_iou_of_polygons_rotated_boxes_and_masks() -> None:
    square = Polygon(((0, 0), (10, 0), (10, 10), (0, 10)))
    half = Polygon(((5, 0), (15, 0), (15, 10), (5, 10)))
    assert iou(square, half) == pytest.approx(50 / 150)
    assert iou(square, Box(0, 0, 10, 10)) == 1.0  # polygon vs box: pixel-based, same pixels
    assert iou(RotatedBox(5, 5, 10, 10, 90), Box(0, 0, 10, 10)) == 1.0
    arr = np.zeros((20, 20), dtype=bool)
    arr[0:10, 0:5] = True
    assert iou(Mask.from_array(arr), square) == pytest.approx(0.5)
    assert iou(Mask.from_array(arr), Mask.from_array(arr)) == 1.0
    assert iou(Point(1, 1), Point(1.5, 1.2)) == 1.0
    with pytest.raises(AnnotationError, match="mask is 20x20"):
        iou(Mask.from_array(arr), square, frame_shape=(30, 30))


# --- matching ---------------------------------------------------------------------------------


def ann(label: str, shape: Box, frame: int = 0) -> Annotation:
    return Annotation(label=label, shape=shape, frame=frame, provenance=ANNA)


def test_hungarian_finds_the_best_assignment_where_greedy_does_not() -> None:
    # b0 overlaps a0 best, but taking that pair leaves a1 without a partner
    a = [ann("d", Box(0, 0, 10, 10)), ann("d", Box(4, 0, 10, 10))]
    b = [ann("d", Box(1.5, 0, 10, 10)), ann("d", Box(-2, 0, 10, 10))]
    ious = [[iou(x.shape, y.shape) for y in b] for x in a]
    assert ious[0][0] > ious[1][0] > 0.5
    assert ious[0][1] > 0.5
    assert ious[1][1] < 0.5
    greedy = match(a, b, method="greedy")
    assert [(m.a, m.b) for m in greedy.matches] == [(0, 0)]
    best = match(a, b)
    assert [(m.a, m.b) for m in best.matches] == [(0, 1), (1, 0)]
    assert best.unmatched_a == best.unmatched_b == ()


def test_match_respects_frames_labels_and_threshold() -> None:
    a = [
        ann("hot", Box(0, 0, 10, 10)),
        ann("cold", Box(20, 20, 5, 5)),
        ann("hot", Box(0, 0, 10, 10), 1),
    ]
    b = [
        ann("hot", Box(1, 0, 10, 10), 1),
        ann("hot", Box(20, 20, 5, 5)),
        ann("hot", Box(0, 0, 10, 10)),
    ]
    result = match(a, b)
    assert [(m.a, m.b) for m in result.matches] == [(0, 2), (2, 0)]
    assert result.unmatched_a == (1,)
    assert result.unmatched_b == (1,)
    assert [(m.a, m.b) for m in match(a, b, by_label=False).matches] == [(0, 2), (1, 1), (2, 0)]
    assert match(a, b, iou_threshold=0.95).matches[0].iou == 1.0
    assert len(match(a, b, iou_threshold=0.95).matches) == 1
    with pytest.raises(AnnotationError, match="iou_threshold"):
        match(a, b, iou_threshold=1.5)
    with pytest.raises(AnnotationError, match="unknown matching method"):
        match(a, b, method="best")  # type: ignore[arg-type]


def test_hungarian_is_optimal_on_random_matrices() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        w = rng.random((n, m)) * (rng.random((n, m)) < 0.6)
        pairs = _hungarian(w)
        assert len(pairs) == min(n, m)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        got = sum(w[r, c] for r, c in pairs)
        if n <= m:
            best = max(
                sum(w[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n)
            )
        else:
            best = max(
                sum(w[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m)
            )
        assert got == pytest.approx(best)


def test_detection_scores() -> None:
    reference = [ann("hot", Box(10 * k, 0, 8, 8)) for k in range(4)]
    candidate = [
        ann("hot", Box(0, 0, 8, 8)),
        ann("hot", Box(11, 0, 8, 8)),  # IoU 0.78
        ann("hot", Box(24, 0, 8, 8)),  # IoU 0.33: a false positive and a miss
        ann("hot", Box(60, 60, 8, 8)),
    ]
    scores = detection_scores(reference, candidate, iou_threshold=0.5)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (2, 2, 2)
    assert scores.precision == 0.5
    assert scores.recall == 0.5
    assert scores.f1 == 0.5
    assert scores.mean_iou == pytest.approx((1 + 56 / 72) / 2)
    loose = detection_scores(reference, candidate, iou_threshold=0.3)
    assert (loose.precision, loose.recall) == (0.75, 0.75)
    empty = detection_scores([], [])
    assert (empty.precision, empty.recall, empty.f1) == (1.0, 1.0, 1.0)
    assert math.isnan(empty.mean_iou)
    missed = detection_scores(reference, [])
    assert (missed.precision, missed.recall, missed.f1) == (1.0, 0.0, 0.0)


# --- verdicts -------------------------------------------------------------------------------


def test_verdict_agreement() -> None:
    a = ["OK"] * 6 + ["NG"] * 4
    b = ["OK"] * 5 + ["NG"] * 5
    result = verdict_agreement(a, b)
    assert result.count == 10
    assert result.accuracy == 0.9
    # chance: 0.6*0.5 + 0.4*0.5 = 0.5 -> kappa = (0.9 - 0.5) / 0.5
    assert result.kappa == pytest.approx(0.8)
    assert verdict_agreement(a, a).kappa == pytest.approx(1.0)
    swapped = verdict_agreement(["OK", "NG"], ["NG", "OK"])
    assert (swapped.accuracy, swapped.kappa) == (0.0, -1.0)
    labels = [VerdictLabel(verdict=Verdict.OK, provenance=ANNA)] * 3
    constant = verdict_agreement(labels, [Verdict.OK] * 3)
    assert constant.accuracy == 1.0
    assert math.isnan(constant.kappa)
    with pytest.raises(AnnotationError, match="differ in length"):
        verdict_agreement(["OK"], [])
    with pytest.raises(AnnotationError, match="at least one"):
        verdict_agreement([], [])
    with pytest.raises(AnnotationError, match="unknown verdict 'FINE'"):
        verdict_agreement(["FINE"], ["OK"])


def test_from_inspection_of_the_recipe_engine() -> None:
    """End to end: a defective synthetic board, inspected by the engine, pre-annotated."""
    recipe = load_recipe(Path(__file__).parents[1] / "examples" / "pcb.yaml")
    part = ProductLine("pcb", rng=np.random.default_rng(5)).part(0, defect="hot_spot", where="U2")
    inspection = inspect(part.frame, recipe)
    regions = {r.name: r.to_region() for r in recipe.regions}
    pre = from_inspection(
        inspection,
        regions,
        model_name=f"recipe:{recipe.name}",
        version=recipe.version,
        kinds={r.name: r.type for r in recipe.rules},
        frame_shape=part.frame.shape,
    )
    flagged = [f for f in inspection.findings if f.verdict is not Verdict.OK]
    assert len(pre.annotations) + len(pre.unplaced) == len(flagged) > 0
    assert {a.label for a in pre.annotations} <= {r.type for r in recipe.rules}
    assert pre.verdict.verdict is (Verdict.NG if inspection.verdict is Verdict.NG else Verdict.OK)
    item = AnnotatedItem(
        item_id="pcb-1", width=160, height=120, annotations=pre.annotations, verdicts=(pre.verdict,)
    )
    assert AnnotatedItem.from_dict(item.to_dict()) == item


def test_a_retake_inspection_drafts_no_verdict_and_no_defects() -> None:
    inspection = Inspection.of(
        "a.jpg",
        2,
        [
            finding("protocol", "top focus", Verdict.RETAKE),
            finding("u1-max", "U1", Verdict.NG, explanation="U1 hot"),
        ],
    )
    pre = from_inspection(inspection, REGIONS, model_name="m", version="1", frame_shape=(120, 160))
    assert (pre.annotations, pre.verdict, pre.unplaced) == ((), None, ())
    item = AnnotatedItem(item_id="a", width=160, height=120, annotations=pre.annotations)
    assert item.verdicts == ()
