"""Annotations: labels, shapes, tracks across frames, OK/NG verdicts, tolerance ranges, review.

The model is immutable dataclasses checked on construction; ``AnnotatedItem.to_dict`` /
``from_dict`` is the stable, versioned interchange form the formats and datasets layers build
on (layout in ``thermoscope.annotations.item``). Coordinates are px with x = column, y = row,
origin at the frame's top-left corner; temperatures °C.
"""

from thermoscope.annotations.agreement import (
    DetectionScores,
    Match,
    Matching,
    VerdictAgreement,
    detection_scores,
    iou,
    match,
    verdict_agreement,
)
from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import (
    Annotation,
    Provenance,
    Review,
    ReviewState,
    ToleranceLabel,
    VerdictLabel,
    new_id,
)
from thermoscope.annotations.preannotate import (
    PreAnnotation,
    from_inspection,
    inspection_label,
    region_shape,
)
from thermoscope.annotations.schema import (
    AttributeSpec,
    AttributeType,
    AttributeValue,
    LabelSchema,
    LabelSpec,
)
from thermoscope.annotations.shapes import (
    Box,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
    shape_from_dict,
)
from thermoscope.annotations.temperature import TemperatureStats, shape_temperatures
from thermoscope.annotations.tracks import CurvePoint, Keyframe, Track, interpolate

__all__ = [
    "AnnotatedItem",
    "Annotation",
    "AnnotationError",
    "AttributeSpec",
    "AttributeType",
    "AttributeValue",
    "Box",
    "CurvePoint",
    "DetectionScores",
    "Keyframe",
    "LabelSchema",
    "LabelSpec",
    "Mask",
    "Match",
    "Matching",
    "Point",
    "Polygon",
    "Polyline",
    "PreAnnotation",
    "Provenance",
    "Review",
    "ReviewState",
    "RotatedBox",
    "Shape",
    "TemperatureStats",
    "ToleranceLabel",
    "Track",
    "VerdictAgreement",
    "VerdictLabel",
    "detection_scores",
    "from_inspection",
    "inspection_label",
    "interpolate",
    "iou",
    "match",
    "new_id",
    "region_shape",
    "shape_from_dict",
    "shape_temperatures",
    "verdict_agreement",
]
