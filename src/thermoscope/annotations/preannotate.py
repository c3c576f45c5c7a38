"""Pre-annotation: turn an ``Inspection`` into draft annotations a person accepts, edits or rejects.

Works from the core ``Inspection`` / ``Finding`` types only, so any producer of inspections
(the recipe engine, a model adapter) can feed it. Each NG or WARN finding becomes one draft
annotation marked machine-made:

- label: the rule's kind: ``kinds[finding.rule]`` when the caller maps rule names to kinds
  (from a recipe: ``{rule.name: rule.type}``), else ``finding.extra["kind"]`` when the producer
  gives it, else the rule's name;
- shape: the geometry of the finding's region, looked up by name in ``regions`` (core ``Box``
  → ``Box``, ``Polygon`` → ``Polygon``, ``MaskRegion`` → ``Mask``, any other ``Region`` → its
  mask when ``frame_shape`` is given, else its bounding box); a finding whose region is not in
  ``regions`` is placed on its ``extra["box"]`` (``[x0, y0, x1, y1]`` px, end-exclusive, as
  learned findings give it) as a ``Box`` when that is a non-empty box, else at its extreme
  pixel ``(x, y)`` as a ``Point`` at the pixel's centre,
  or, with neither, over the whole frame when ``frame_shape`` is given; otherwise it is
  returned in ``unplaced``;
- attributes (see ``inspection_label``): ``value`` and ``limit`` in the finding's ``unit``,
  ``unit``, ``rule``, ``region`` and ``severity`` (``"NG"`` or ``"WARN"``);
- provenance: ``Provenance.machine(model_name, version, score=finding.score)`` (a model's
  confidence in [0, 1]; ``None`` for rules).

The inspection's verdict becomes a draft ``VerdictLabel``: NG when the inspection is NG (reason:
the NG findings' explanations), OK otherwise (WARN findings are listed in the reason).

A RETAKE inspection (the capture broke the recipe's protocol) drafts nothing: no verdict (it is
not ground truth about the part, ``VerdictLabel`` refuses it) and no annotations (findings on an
unusable capture are not defects a person should confirm); the frame stays without a draft
until it is captured again or a person judges it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.model import Annotation, Provenance, VerdictLabel
from thermoscope.annotations.schema import AttributeSpec, AttributeType, AttributeValue, LabelSpec
from thermoscope.annotations.shapes import Box, Mask, Point, Polygon, Shape
from thermoscope.core import regions as core_regions
from thermoscope.core.findings import Finding, Inspection, Verdict


@dataclass(frozen=True, slots=True)
class PreAnnotation:
    """Draft records made from one inspection.

    Attributes:
        annotations: one per NG / WARN finding that could be placed.
        verdict: the draft OK / NG verdict (frame = the inspection's frame); ``None`` for a
            RETAKE inspection.
        unplaced: NG / WARN findings with no geometry (their region unknown and no pixel).
    """

    annotations: tuple[Annotation, ...]
    verdict: VerdictLabel | None
    unplaced: tuple[Finding, ...]


def inspection_label(kind: str, *, description: str = "") -> LabelSpec:
    """The label spec of pre-annotations of rule kind ``kind``, for a project's schema."""
    return LabelSpec(
        name=kind,
        description=description,
        attributes=(
            AttributeSpec("value", AttributeType.NUMBER, description="measured value, in unit"),
            AttributeSpec("limit", AttributeType.NUMBER, description="limit crossed, in unit"),
            AttributeSpec("unit", AttributeType.TEXT, description="unit of value and limit"),
            AttributeSpec("rule", AttributeType.TEXT, description="the rule's name"),
            AttributeSpec("region", AttributeType.TEXT, description="the region's name"),
            AttributeSpec("severity", AttributeType.ENUM, values=("NG", "WARN")),
        ),
    )


def from_inspection(
    inspection: Inspection,
    regions: Mapping[str, core_regions.Region],
    *,
    model_name: str,
    version: str,
    frame_shape: tuple[int, int] | None = None,
    kinds: Mapping[str, str] | None = None,
    created: datetime | None = None,
) -> PreAnnotation:
    """Draft annotations and a draft verdict from ``inspection`` (see the module docstring).

    Args:
        inspection: the inspection of one frame (``inspection.frame``; ``None`` counts as 0
            for the annotations and as the whole item for the verdict).
        regions: the recipe's regions by name, px.
        model_name, version: what made the inspection (recipe engine and recipe version, or a
            model and its version).
        frame_shape: (height, width) px of the frame; enables whole-frame and generic regions.
        kinds: rule name -> rule kind, the labels of the drafts (see the module docstring).
        created: time stamp of the drafts (now when ``None``).
    """
    if inspection.verdict is Verdict.RETAKE:
        return PreAnnotation((), None, ())
    frame = inspection.frame if inspection.frame is not None else 0
    annotations: list[Annotation] = []
    unplaced: list[Finding] = []
    flagged = [f for f in inspection.findings if f.verdict is not Verdict.OK]
    for finding in flagged:
        shape = _shape_of(finding, regions, frame_shape)
        if shape is None:
            unplaced.append(finding)
            continue
        annotations.append(
            Annotation(
                label=_kind(finding, kinds or {}),
                shape=shape,
                frame=frame,
                attributes=_attributes(finding),
                provenance=Provenance.machine(
                    model_name, version, score=_score(finding), created=created
                ),
            )
        )
    ng = [f for f in flagged if f.verdict is Verdict.NG]
    if inspection.verdict is Verdict.NG:
        reason = "; ".join(_describe(f) for f in ng) or "inspection verdict NG"
        verdict = Verdict.NG
    else:
        reason = "; ".join(_describe(f) for f in flagged)
        verdict = Verdict.OK
    label = VerdictLabel(
        verdict=verdict,
        reason=reason,
        frame=inspection.frame,
        provenance=Provenance.machine(model_name, version, created=created),
    )
    return PreAnnotation(tuple(annotations), label, tuple(unplaced))


def _kind(finding: Finding, kinds: Mapping[str, str]) -> str:
    kind = kinds.get(finding.rule) or finding.extra.get("kind")
    return kind if isinstance(kind, str) and kind else finding.rule


def _score(finding: Finding) -> float | None:
    score = finding.score
    return float(score) if score is not None and 0.0 <= score <= 1.0 else None


def _describe(finding: Finding) -> str:
    return f"{finding.rule}: {finding.explanation}" if finding.explanation else finding.rule


def _attributes(finding: Finding) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {
        "unit": finding.unit,
        "rule": finding.rule,
        "region": finding.region,
        "severity": finding.verdict.value,
    }
    for name, value in (("value", finding.value), ("limit", finding.limit)):
        if value is not None and math.isfinite(value):
            out[name] = float(value)
    return out


def _shape_of(
    finding: Finding,
    regions: Mapping[str, core_regions.Region],
    frame_shape: tuple[int, int] | None,
) -> Shape | None:
    region = regions.get(finding.region)
    if region is not None:
        return region_shape(region, frame_shape)
    box = _extra_box(finding.extra.get("box"))
    if box is not None:
        return box
    if finding.x is not None and finding.y is not None:
        return Point(finding.x + 0.5, finding.y + 0.5)
    if frame_shape is not None:
        return Box(0.0, 0.0, float(frame_shape[1]), float(frame_shape[0]))
    return None


def _extra_box(value: object) -> Box | None:
    """The ``Box`` of an ``extra["box"]`` ``[x0, y0, x1, y1]`` (px), if it is a non-empty one."""
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in value):
        return None
    x0, y0, x1, y1 = (float(v) for v in value)
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0)


def region_shape(region: core_regions.Region, frame_shape: tuple[int, int] | None = None) -> Shape:
    """The annotation shape of a core region (px; see the module docstring for the mapping)."""
    if isinstance(region, core_regions.Box):
        return Box(region.x, region.y, region.width, region.height)
    if isinstance(region, core_regions.Polygon):
        return Polygon(region.points)
    if isinstance(region, core_regions.MaskRegion):
        return Mask.from_array(region.pixels)
    if frame_shape is not None:
        return Mask.from_array(region.mask(frame_shape))
    x0, y0, x1, y1 = region.bounds()
    if x1 <= x0 or y1 <= y0:
        raise AnnotationError(f"region {region!r} has empty bounds")
    return Box(x0, y0, x1 - x0, y1 - y0)
