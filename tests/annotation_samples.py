"""Annotated items for the format tests: a fixed schema, hand-made items and hypothesis
strategies that build random valid items."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from hypothesis import strategies as st

from thermoscope.annotations import (
    AnnotatedItem,
    Annotation,
    AnnotationError,
    AttributeSpec,
    Box,
    Keyframe,
    LabelSchema,
    LabelSpec,
    Mask,
    Point,
    Polygon,
    Polyline,
    Provenance,
    RotatedBox,
    Track,
    VerdictLabel,
)
from thermoscope.annotations.formats import ImportDefaults
from thermoscope.core import ThermalFrame

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
DEFAULTS = ImportDefaults(author="importer", model="import-model", created=T0)
SCHEMA = LabelSchema(
    (
        LabelSpec(
            "hot_spot",
            (
                AttributeSpec("severity", "enum", values=("low", "high")),
                AttributeSpec("note", "text"),
                AttributeSpec("delta_c", "number", minimum=-50, maximum=50),
                AttributeSpec("confirmed", "bool"),
            ),
        ),
        LabelSpec("cold_joint"),
        LabelSpec("missing part"),
    )
)
HUMAN = Provenance.human("alice", created=T0)
MACHINE = Provenance.machine("yolo", "8.1", score=0.625, created=T0)


def mask_of(height: int, width: int, x0: int, y0: int, x1: int, y1: int) -> Mask:
    arr = np.zeros((height, width), dtype=bool)
    arr[y0:y1, x0:x1] = True
    arr[y0, min(x1, width - 1)] = True
    return Mask.from_array(arr)


def sample_item(item_id: str = "a1b2", *, frame_count: int = 3) -> AnnotatedItem:
    """A sequence item with every shape type, a track, verdicts and attributes."""
    w, h = 64, 48
    return AnnotatedItem(
        item_id=item_id,
        width=w,
        height=h,
        frame_count=frame_count,
        annotations=(
            Annotation(
                label="hot_spot",
                shape=Box(1.25, 2.5, 10.5, 7.0),
                attributes={"severity": "high", "note": "U1", "delta_c": 3.5, "confirmed": True},
                metadata={"occluded": True},
                provenance=HUMAN,
            ),
            Annotation(
                label="hot_spot",
                shape=Polygon(((1.0, 1.0), (20.5, 3.0), (7.0, 30.25))),
                attributes={"severity": "low"},
                provenance=MACHINE,
            ),
            Annotation(label="cold_joint", shape=mask_of(h, w, 30, 10, 41, 20), provenance=HUMAN),
            Annotation(label="cold_joint", shape=RotatedBox(30, 20, 10, 6, 30), provenance=HUMAN),
            Annotation(label="missing part", shape=Point(3.5, 4.5), provenance=HUMAN),
            Annotation(
                label="missing part",
                shape=Polyline(((2.0, 40.0), (30.0, 44.0))),
                frame=frame_count - 1,
                provenance=HUMAN,
            ),
        ),
        tracks=(
            Track(
                label="hot_spot",
                keyframes=(Keyframe(0, Box(40, 30, 6, 6)),)
                + ((Keyframe(frame_count - 1, Box(50, 36, 8, 8)),) if frame_count > 1 else ()),
                attributes={"severity": "low"},
                provenance=HUMAN,
            ),
        ),
        verdicts=(
            VerdictLabel(verdict="NG", reason="U1 above 85 °C", frame=0, provenance=HUMAN),
            VerdictLabel(verdict="NG", reason="part", provenance=MACHINE),
        ),
    )


def single_item(item_id: str = "single") -> AnnotatedItem:
    """A single-frame item with boxes only and a verdict."""
    return AnnotatedItem(
        item_id=item_id,
        width=40,
        height=30,
        annotations=(
            Annotation(label="hot_spot", shape=Box(0, 0, 40, 30), provenance=HUMAN),
            Annotation(label="cold_joint", shape=Box(3.5, 4.25, 2, 3), provenance=MACHINE),
        ),
        verdicts=(VerdictLabel(verdict="OK", provenance=HUMAN),),
    )


def frames_for(item: AnnotatedItem, seed: int = 0) -> list[ThermalFrame]:
    """Radiometric frames (°C) that fit ``item``."""
    rng = np.random.default_rng(seed)
    return [
        ThermalFrame((20.0 + 10.0 * rng.random((item.height, item.width))).astype(np.float32))
        for _ in range(item.frame_count)
    ]


# ---------------------------------------------------------------------------------------------
# hypothesis strategies


def _coord(limit: int) -> st.SearchStrategy[float]:
    return st.floats(0.0, float(limit), allow_nan=False, allow_infinity=False)


@st.composite
def boxes(draw: st.DrawFn, width: int, height: int) -> Box:
    x0, x1 = sorted(draw(st.lists(_coord(width), min_size=2, max_size=2)))
    y0, y1 = sorted(draw(st.lists(_coord(height), min_size=2, max_size=2)))
    x1, y1 = max(x1, x0 + 0.5), max(y1, y0 + 0.5)
    if x1 > width:
        x0, x1 = width - (x1 - x0), float(width)
    if y1 > height:
        y0, y1 = height - (y1 - y0), float(height)
    return Box(x0, y0, x1 - x0, y1 - y0)


@st.composite
def rotated_boxes(draw: st.DrawFn, width: int, height: int) -> RotatedBox:
    side = min(width, height) / 3
    w = draw(st.floats(1.0, side))
    h = draw(st.floats(1.0, side))
    r = math.hypot(w, h) / 2 + 1e-3
    cx = draw(st.floats(r, width - r))
    cy = draw(st.floats(r, height - r))
    angle = draw(st.floats(-720.0, 720.0, allow_nan=False))
    return RotatedBox(cx, cy, w, h, angle)


@st.composite
def polygons(draw: st.DrawFn, width: int, height: int) -> Polygon:
    pts = draw(st.lists(st.tuples(_coord(width), _coord(height)), min_size=3, max_size=7))
    try:
        return Polygon(tuple(pts))
    except AnnotationError:
        return Polygon(((0.0, 0.0), (float(width), 0.0), (0.0, float(height))))


@st.composite
def masks(draw: st.DrawFn, width: int, height: int) -> Mask:
    x0 = draw(st.integers(0, width - 1))
    y0 = draw(st.integers(0, height - 1))
    x1 = draw(st.integers(x0 + 1, width))
    y1 = draw(st.integers(y0 + 1, height))
    return mask_of(height, width, x0, y0, x1, y1)


def shapes(width: int, height: int) -> st.SearchStrategy[object]:
    return st.one_of(
        boxes(width, height),
        rotated_boxes(width, height),
        polygons(width, height),
        masks(width, height),
        st.builds(Point, _coord(width), _coord(height)),
        st.builds(
            lambda a, b: Polyline((a, (a[0] + 1.0, a[1])) if a == b else (a, b)),
            st.tuples(st.floats(0, width - 1), _coord(height)),
            st.tuples(st.floats(0, width - 1), _coord(height)),
        ),
    )


provenances = st.sampled_from(
    [
        HUMAN,
        MACHINE,
        Provenance.machine("rules", "", created=T0),
        Provenance(author="bob", model="m", created=T0),
    ]
)

attributes = st.fixed_dictionaries(
    {},
    optional={
        "severity": st.sampled_from(["low", "high"]),
        "note": st.text(
            st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Co")), max_size=8
        ),
        "delta_c": st.one_of(st.integers(-50, 50), st.floats(-50, 50, allow_nan=False)),
        "confirmed": st.booleans(),
    },
)


@st.composite
def items(draw: st.DrawFn, item_id: str = "item") -> AnnotatedItem:
    width = draw(st.integers(8, 48))
    height = draw(st.integers(8, 48))
    frame_count = draw(st.integers(1, 3))
    annotations = []
    for _ in range(draw(st.integers(0, 5))):
        label = draw(st.sampled_from(["hot_spot", "cold_joint", "missing part"]))
        annotations.append(
            Annotation(
                label=label,
                shape=draw(shapes(width, height)),
                frame=draw(st.integers(0, frame_count - 1)),
                attributes=draw(attributes) if label == "hot_spot" else {},
                metadata=draw(st.sampled_from([{}, {"occluded": True}])),
                provenance=draw(provenances),
            )
        )
    tracks = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from([boxes, polygons]))
        frames = sorted(
            draw(st.sets(st.integers(0, frame_count - 1), min_size=1, max_size=frame_count))
        )
        keys = [
            Keyframe(f, draw(kind(width, height)), outside=draw(st.booleans()) if n else False)
            for n, f in enumerate(frames)
        ]
        tracks.append(
            Track(label="cold_joint", keyframes=tuple(keys), provenance=draw(provenances))
        )
    verdicts = []
    for frame in draw(st.sets(st.sampled_from([None, *range(frame_count)]), max_size=2)):
        ng = draw(st.booleans())
        verdicts.append(
            VerdictLabel(
                verdict="NG" if ng else "OK",
                reason="too hot" if ng else "",
                frame=frame,
                provenance=draw(provenances),
            )
        )
    return AnnotatedItem(
        item_id=item_id,
        width=width,
        height=height,
        frame_count=frame_count,
        annotations=tuple(annotations),
        tracks=tuple(tracks),
        verdicts=tuple(verdicts),
        schema=SCHEMA,
    )
