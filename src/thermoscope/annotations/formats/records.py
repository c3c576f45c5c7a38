"""Record conversions shared by the formats' ``reduce`` and ``parse``: flattened tracks,
rebuilt keyframes, kept annotations, bounds, clipping and loss notes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

import cv2
import numpy as np

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.formats.base import Losses
from thermoscope.annotations.item import AnnotatedItem
from thermoscope.annotations.model import Annotation, Provenance, Review, VerdictLabel
from thermoscope.annotations.schema import (
    AttributeValue,
)
from thermoscope.annotations.shapes import Box, Mask, Point, Polygon, Polyline, RotatedBox, Shape
from thermoscope.annotations.tracks import Keyframe, Track

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Record conversions used by reduce


#: A fresh draft review (immutable, so one instance serves every record).
DRAFT = Review()


def where(item: AnnotatedItem, path: str) -> str:
    """``item '<id>': <path>``, the way loss warnings name a record."""
    return f"item {item.item_id!r}: {path}"


def flatten_tracks(item: AnnotatedItem, losses: Losses | None) -> list[Annotation]:
    """The item's annotations and its tracks' shape on every frame where they are visible,
    frame by frame (on each frame the annotations first, then the tracks, in item order).
    A track's shape on frame ``f`` gets the id ``<track id>@<f>``."""
    per_frame: dict[int, list[Annotation]] = defaultdict(list)
    for a in item.annotations:
        per_frame[a.frame].append(a)
    for i, track in enumerate(item.tracks):
        if losses is not None:
            losses.add(
                "track",
                "tracks become separate shapes on each frame where they are visible "
                "(keyframes and track identity are not kept)",
                where(item, f"tracks[{i}]"),
            )
        for f in track.visible_frames(item.frame_count):
            shape = track.shape_at(f)
            assert shape is not None
            per_frame[f].append(
                kept_annotation(
                    id=f"{track.id}@{f}",
                    label=track.label,
                    shape=shape,
                    frame=f,
                    attributes=track.attributes,
                    metadata=track.metadata,
                    provenance=track.provenance,
                    review=track.review,
                )
            )
    return [a for f in sorted(per_frame) for a in per_frame[f]]


def drop_review(record: Any, item: AnnotatedItem, path: str, losses: Losses) -> Review:
    """A fresh draft review, noting the loss when the record's review was anything else."""
    if record.review != DRAFT:
        losses.add("review", "review state (always back as draft)", where(item, path))
    return DRAFT


def keep_metadata(
    metadata: Mapping[str, Any],
    kept: Mapping[str, type | tuple[type, ...]],
    item: AnnotatedItem,
    path: str,
    losses: Losses,
) -> dict[str, Any]:
    """The metadata entries whose key is in ``kept`` with a value of its type."""
    out = {k: v for k, v in metadata.items() if k in kept and isinstance(v, kept[k])}
    if len(out) != len(metadata):
        names = ", ".join(sorted(kept)) or "none"
        losses.add("metadata", f"record metadata (kept: {names})", where(item, path))
    return out


def item_losses(item: AnnotatedItem, losses: Losses, *, verdicts: bool) -> None:
    """Note the item-level losses every format shares: tolerance labels and item metadata,
    and verdicts unless the format holds them (``verdicts=True``)."""
    for i, _ in enumerate(item.tolerances):
        losses.add(
            "tolerance", "tolerance labels (temperature ranges)", where(item, f"tolerances[{i}]")
        )
    if item.metadata:
        losses.add("item-metadata", "item metadata", where(item, "metadata"))
    if not verdicts:
        for i, _ in enumerate(item.verdicts):
            losses.add("verdict", "OK/NG verdicts", where(item, f"verdicts[{i}]"))


def frame_verdicts(
    item: AnnotatedItem, losses: Losses, *, whole_on_single: bool = True
) -> list[tuple[int, VerdictLabel]]:
    """``(frame, verdict)`` pairs a per-frame format can hold, in frame order: a single-frame
    item's verdict on the whole item (or else on frame 0) sits on frame 0; on a sequence the
    whole-item verdict is lost."""
    whole = [(i, v) for i, v in enumerate(item.verdicts) if v.frame is None]
    if item.frame_count == 1 and whole_on_single:
        chosen = (
            whole[0]
            if whole
            else next(((i, v) for i, v in enumerate(item.verdicts) if v.frame == 0), None)
        )
        for i in range(len(item.verdicts)):
            if chosen is None or i != chosen[0]:
                losses.add(
                    "verdict",
                    "a second verdict on a single frame (the whole-item one is kept)",
                    where(item, f"verdicts[{i}]"),
                )
        return [] if chosen is None else [(0, chosen[1])]
    for i, _ in whole:
        losses.add(
            "verdict-item",
            "verdicts on a whole sequence (only per-frame verdicts are kept)",
            where(item, f"verdicts[{i}]"),
        )
    framed = [(v.frame, v) for v in item.verdicts if v.frame is not None]
    return sorted(framed, key=lambda fv: fv[0])


def rename(prefix: str, index: int) -> str:
    """A positional record id (``a0``, ``t3`` ...)."""
    return f"{prefix}{index}"


def bounding_box(shape: Shape) -> Box | None:
    """The axis-aligned box around a shape (``None`` when it has no area: a point or a
    horizontal or vertical line)."""
    x0, y0, x1, y1 = mask_bounds(shape) if isinstance(shape, Mask) else shape.bounds()
    if x1 <= x0 or y1 <= y0:
        return None
    # the bounds of a valid shape are finite, and the size is positive: Box's checks hold
    return _assembled(Box, x=float(x0), y=float(y0), width=float(x1 - x0), height=float(y1 - y0))


def mask_bounds(mask: Mask) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` px of the pixels a mask selects, from its runs (no decoding)."""
    counts = np.asarray(mask.counts, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    on = np.arange(len(counts)) % 2 == 1
    on &= counts > 0
    first = starts[on]
    last = starts[on] + counts[on] - 1
    h = mask.height
    cols0, cols1 = first // h, last // h
    rows = np.concatenate((first % h, last % h))
    spans_columns = cols1 > cols0
    y0 = 0 if spans_columns.any() else int(rows.min())
    y1 = h - 1 if spans_columns.any() else int(rows.max())
    return float(cols0.min()), float(y0), float(cols1.max() + 1), float(y1 + 1)


def rebuild_track(shapes: Sequence[tuple[int, Shape]], frame_count: int) -> tuple[Keyframe, ...]:
    """Keyframes that show ``shapes`` (frame, shape) on exactly their frames: a keyframe on
    each, and an ``outside`` one after each frame not followed by the next."""
    keys: list[Keyframe] = []
    ordered = sorted(shapes, key=lambda fs: fs[0])
    for n, (frame, shape) in enumerate(ordered):
        keys.append(Keyframe(frame, shape))
        nxt = ordered[n + 1][0] if n + 1 < len(ordered) else frame_count
        if nxt > frame + 1 and frame + 1 < frame_count:
            keys.append(Keyframe(frame + 1, shape, outside=True))
    return tuple(keys)


def track_as_frames(track: Track, frame_count: int) -> tuple[Keyframe, ...]:
    """The keyframes ``rebuild_track`` gives for the track's visible shapes."""
    shapes = []
    for f in track.visible_frames(frame_count):
        shape = track.shape_at(f)
        assert shape is not None
        shapes.append((f, shape))
    return rebuild_track(shapes, frame_count)


def with_records(
    item: AnnotatedItem,
    *,
    annotations: Sequence[Annotation] = (),
    tracks: Sequence[Track] = (),
    verdicts: Sequence[VerdictLabel] = (),
) -> AnnotatedItem:
    """A copy of ``item`` with the given records and nothing else (no tolerances, no
    metadata). The records come from ``item``'s own, which fit it, so its checks are not
    repeated (``reduce`` is on the export path)."""
    return _assembled(
        AnnotatedItem,
        item_id=item.item_id,
        width=item.width,
        height=item.height,
        frame_count=item.frame_count,
        annotations=tuple(annotations),
        tracks=tuple(tracks),
        verdicts=tuple(verdicts),
        tolerances=(),
        metadata=MappingProxyType({}),
    )


def kept_annotation(
    *,
    id: str,
    label: str,
    shape: Shape,
    frame: int,
    provenance: Provenance,
    attributes: Mapping[str, AttributeValue] | None = None,
    metadata: Mapping[str, Any] | None = None,
    review: Review | None = None,
) -> Annotation:
    """An annotation assembled from the parts of a valid one (a label, shape, frame,
    attribute values and JSON metadata taken from it or converted by a format), without
    repeating ``Annotation``'s checks; attributes are stored sorted by name, as it does."""
    return _assembled(
        Annotation,
        id=id,
        label=label,
        shape=shape,
        frame=frame,
        attributes=MappingProxyType(dict(sorted((attributes or {}).items()))),
        metadata=MappingProxyType(dict(metadata or {})),
        provenance=provenance,
        review=review if review is not None else DRAFT,
    )


def _assembled(cls: type[T], **fields: Any) -> T:
    record = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(record, name, value)
    return record


def make_item(
    item_id: str,
    width: int,
    height: int,
    frame_count: int,
    annotations: Sequence[Annotation] = (),
    tracks: Sequence[Track] = (),
    verdicts: Sequence[VerdictLabel] = (),
    metadata: Mapping[str, Any] | None = None,
) -> AnnotatedItem:
    """An imported item (positional arguments, for ``Problems.attempt``)."""
    return AnnotatedItem(
        item_id=item_id,
        width=width,
        height=height,
        frame_count=frame_count,
        annotations=tuple(annotations),
        tracks=tuple(tracks),
        verdicts=tuple(verdicts),
        metadata=dict(metadata or {}),
    )


def with_id(record: T, new_id: str) -> T:
    """``record`` itself given the (non-empty) id ``new_id``: only for a record the caller
    has just built and nobody else holds (an import numbering what it read); otherwise use
    ``renamed``, which copies."""
    object.__setattr__(record, "id", new_id)
    return record


def renamed(record: T, new_id: str) -> T:
    """A copy of a valid record with the (non-empty) id ``new_id``."""
    copy = object.__new__(type(record))
    for name in record.__dataclass_fields__:  # type: ignore[attr-defined]
        if hasattr(record, name):
            object.__setattr__(copy, name, getattr(record, name))
    object.__setattr__(copy, "id", new_id)
    return copy


def shape_inside(shape: Shape, width: int, height: int) -> str | None:
    """``None`` when ``shape`` lies in a ``width`` x ``height`` frame, else why not."""
    if shape.inside(width, height):
        return None
    if isinstance(shape, Mask):
        return f"mask is {shape.width}x{shape.height}, the image {width}x{height}"
    x0, y0, x1, y1 = shape.bounds()
    return (
        f"{shape.kind} spans x {x0:g}..{x1:g}, y {y0:g}..{y1:g}: outside the {width}x{height} image"
    )


def note_provenance(
    original: Provenance, kept: Provenance, item: AnnotatedItem, path: str, losses: Losses
) -> Provenance:
    """``kept``, noting a loss when it differs from ``original``."""
    if kept != original:
        losses.add(
            "provenance", "provenance (who or what made a record, and when)", where(item, path)
        )
    return kept


def mask_polygons(mask: Mask) -> list[Polygon]:
    """The outer outlines of a mask's connected parts as polygons through the centres of their
    boundary pixels (OpenCV contours; holes and parts thinner than 3 outline points are
    lost)."""
    from thermoscope.annotations import rle

    x0, y0, x1, y1 = (int(v) for v in mask_bounds(mask))
    arr = rle.decode(mask.counts, mask.height, mask.width)[y0:y1, x0:x1].astype(np.uint8)
    contours, _ = cv2.findContours(arr, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours:
        pts = contour.reshape(-1, 2).astype(np.float64) + np.array([x0 + 0.5, y0 + 0.5])
        if len(pts) < 3:
            continue
        try:
            out.append(Polygon(tuple((float(x), float(y)) for x, y in pts)))
        except AnnotationError:
            continue
    return out


def normal_angle(degrees: float) -> float:
    """An angle in [0, 360) degrees (``-1e-300`` gives 0, not 360)."""
    turned = degrees % 360.0
    return 0.0 if turned >= 360.0 else turned


def clip_shape(shape: Shape, width: int, height: int, *, margin: float) -> Shape | None:
    """A shape that reaches outside a ``width`` x ``height`` image by at most ``margin`` px,
    moved into it (``None`` when it reaches farther, or is a mask): boxes are cut to the
    image, the vertices of polygons and polylines and points are moved onto its edge, and a
    rotated box becomes the polygon of its corners moved so."""
    if shape.inside(width, height):
        return shape
    if isinstance(shape, Mask):
        return None
    x0, y0, x1, y1 = shape.bounds()
    if min(x0, y0) < -margin or x1 > width + margin or y1 > height + margin:
        return None

    def inside(x: float, y: float) -> tuple[float, float]:
        return min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))

    if isinstance(shape, Box):
        return _clip_box(shape, width, height)
    if isinstance(shape, Point):
        return Point(*inside(shape.x, shape.y))
    points = shape.corners() if isinstance(shape, RotatedBox) else shape.points
    moved = tuple(inside(x, y) for x, y in points)
    try:
        return Polyline(moved) if isinstance(shape, Polyline) else Polygon(moved)
    except AnnotationError:
        return None


def _clip_box(box: Box, width: int, height: int) -> Box | None:
    """A box cut to the image; a side inside it keeps its exact coordinate."""
    x, w = _clip_span(box.x, box.width, width)
    y, h = _clip_span(box.y, box.height, height)
    return Box(x, y, w, h) if w > 0 and h > 0 else None


def _clip_span(start: float, size: float, limit: int) -> tuple[float, float]:
    end = start + size
    if start >= 0 and end <= limit:
        return start, size
    start = max(start, 0.0)
    return start, min(end, float(limit)) - start
