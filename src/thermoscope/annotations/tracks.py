"""Tracks: one object followed across the frames of a sequence, by keyframes and interpolation.

A track holds keyframes ``(frame, shape, outside)``, one per frame at most, all of one shape
type. Between two keyframes the shape is interpolated (as CVAT does):

- box, rotated box, point: every coordinate linearly; a rotated box's angle along the shorter
  arc;
- polygon, polyline: both outlines are parametrised by normalised arc length, aligned (start
  vertex and direction for polygons, direction for polylines) to minimise the summed squared
  distance, resampled at the union of both vertex sets (so each keyframe's vertices are kept
  exactly), then interpolated point by point;
- mask: held from the earlier keyframe (no interpolation).

The shape persists after the last keyframe; a keyframe with ``outside=True`` hides the object
from that frame until the next keyframe (and the interpolation toward an ``outside`` keyframe
holds the earlier shape). Before the first keyframe there is no shape.

Dict form of a track::

    {"id", "label", "keyframes": [{"frame": int, "shape": {shape dict}, "outside": bool}],
     "attributes": {...}, "metadata": {...}, "provenance": {...}, "review": {...}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thermoscope.annotations import _read
from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.model import (
    Provenance,
    Review,
    Reviewable,
    _frozen_attributes,
    _review,
    _wrap,
    freeze_json,
    new_id,
)
from thermoscope.annotations.schema import AttributeValue
from thermoscope.annotations.shapes import (
    Box,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
    shape_from_dict,
)
from thermoscope.annotations.temperature import TemperatureStats, shape_temperatures
from thermoscope.core.frame import ThermalFrame
from thermoscope.core.sequence import ThermalSequence

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Keyframe:
    """The shape of a track on one frame (0-based index); ``outside`` hides it from here on."""

    frame: int
    shape: Shape
    outside: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.frame, bool) or not isinstance(self.frame, int) or self.frame < 0:
            raise AnnotationError(f"keyframe: frame must be an integer >= 0, got {self.frame!r}")
        if not isinstance(self.outside, bool):
            raise AnnotationError("keyframe: outside must be a bool")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {"frame": self.frame, "shape": self.shape.to_dict(), "outside": self.outside}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "keyframe") -> Keyframe:
        """The keyframe of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(d, ("frame", "shape"), ("outside",), path)
        return cls(
            _read.integer(d["frame"], f"{path}.frame"),
            shape_from_dict(d["shape"], f"{path}.shape"),
            _read.boolean(d.get("outside", False), f"{path}.outside"),
        )


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The temperatures inside a track's shape on one frame.

    Attributes:
        frame: 0-based frame index.
        timestamp_s: the frame's time since the first frame, s (``None`` when unknown).
        stats: max / mean / min in °C and the pixel count.
    """

    frame: int
    timestamp_s: float | None
    stats: TemperatureStats

    @property
    def max_c(self) -> float:
        """Hottest pixel, °C."""
        return self.stats.max_c

    @property
    def mean_c(self) -> float:
        """Mean over the pixels, °C."""
        return self.stats.mean_c

    @property
    def min_c(self) -> float:
        """Coldest pixel, °C."""
        return self.stats.min_c


@dataclass(frozen=True, slots=True, kw_only=True)
class Track(Reviewable):
    """One object across frames.

    Attributes:
        id: unique within its item.
        label: the label's name in the project schema.
        keyframes: at least one; sorted by frame on construction; one per frame.
        attributes: attribute values by name (the same on every frame).
        metadata: JSON-ready extras.
        provenance, review: as for every record.
    """

    label: str
    keyframes: tuple[Keyframe, ...]
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance
    review: Review = field(default_factory=Review)
    id: str = field(default_factory=new_id)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or self.id != self.id.strip():
            raise AnnotationError("track: id must be a non-empty string without outer spaces")
        what = f"track {self.id!r}"
        if not isinstance(self.label, str) or not self.label:
            raise AnnotationError(f"{what}: label must be a non-empty string")
        keyframes = tuple(sorted(self.keyframes, key=lambda k: k.frame))
        if not keyframes:
            raise AnnotationError(f"{what}: needs at least one keyframe")
        for a, b in pairwise(keyframes):
            if a.frame == b.frame:
                raise AnnotationError(f"{what}: two keyframes at frame {a.frame}")
        kinds = {k.shape.kind for k in keyframes}
        if len(kinds) > 1:
            raise AnnotationError(f"{what}: keyframes mix shape types {sorted(kinds)}")
        object.__setattr__(self, "keyframes", keyframes)
        object.__setattr__(self, "attributes", _frozen_attributes(self.attributes, what))
        object.__setattr__(self, "metadata", freeze_json(self.metadata, f"{what}: metadata"))

    @property
    def first_frame(self) -> int:
        """Frame of the first keyframe."""
        return self.keyframes[0].frame

    def shape_at(self, frame: int) -> Shape | None:
        """The (interpolated) shape on ``frame``, or ``None`` where the object is not visible."""
        if frame < self.first_frame:
            return None
        frames = [k.frame for k in self.keyframes]
        i = int(np.searchsorted(frames, frame, side="right")) - 1
        key = self.keyframes[i]
        if key.outside:
            return None
        if key.frame == frame or i + 1 == len(self.keyframes):
            return key.shape
        nxt = self.keyframes[i + 1]
        if nxt.outside:
            return key.shape
        return interpolate(key.shape, nxt.shape, (frame - key.frame) / (nxt.frame - key.frame))

    def visible_frames(self, frame_count: int) -> list[int]:
        """The frames in ``0 .. frame_count-1`` where the object has a shape."""
        return [f for f in range(frame_count) if self.shape_at(f) is not None]

    def temperature_curve(
        self, frames: ThermalSequence | Sequence[ThermalFrame]
    ) -> tuple[CurvePoint, ...]:
        """Max / mean / min °C inside the interpolated shape on every frame where it is visible.

        ``frames`` are the radiometric frames of the item (a ``ThermalSequence`` is read lazily:
        only the frames where the track is visible are decoded). Pixels with NaN temperature are
        left out; a shape that covers no finite pixel gives NaN statistics.
        """
        out = []
        for index in range(len(frames)):
            shape = self.shape_at(index)
            if shape is None:
                continue
            frame = frames[index]
            out.append(
                CurvePoint(index, frame.metadata.timestamp_s, shape_temperatures(frame, shape))
            )
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {
            "id": self.id,
            "label": self.label,
            "keyframes": [k.to_dict() for k in self.keyframes],
            "attributes": dict(self.attributes),
            "metadata": dict(self.metadata),
            "provenance": self.provenance.to_dict(),
            "review": self.review.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "track") -> Track:
        """The track of a dict written by ``to_dict``."""
        d = _read.mapping(data, path)
        _read.keys(
            d,
            ("id", "label", "keyframes", "provenance"),
            ("attributes", "metadata", "review"),
            path,
        )
        keys = _read.array(d["keyframes"], f"{path}.keyframes")
        return _wrap(
            path,
            lambda: cls(
                id=_read.string(d["id"], f"{path}.id"),
                label=_read.string(d["label"], f"{path}.label"),
                keyframes=tuple(
                    Keyframe.from_dict(k, f"{path}.keyframes[{i}]") for i, k in enumerate(keys)
                ),
                attributes=_read.mapping(d.get("attributes", {}), f"{path}.attributes"),
                metadata=_read.mapping(d.get("metadata", {}), f"{path}.metadata"),
                provenance=Provenance.from_dict(d["provenance"], f"{path}.provenance"),
                review=_review(d, path),
            ),
        )


def interpolate(a: Shape, b: Shape, t: float) -> Shape:
    """The shape a fraction ``t`` (0..1) of the way from ``a`` to ``b`` (same shape type).

    A mask is held (``a``); when an interpolated polygon or polyline degenerates (zero area
    or length), the nearer of ``a`` and ``b`` is returned.
    """
    if a.kind != b.kind:
        raise AnnotationError(f"cannot interpolate a {a.kind} to a {b.kind}")
    if t <= 0:
        return a
    if t >= 1:
        return b
    if isinstance(a, Box) and isinstance(b, Box):
        return Box(*(_lerp(u, v, t) for u, v in zip(_box(a), _box(b), strict=True)))
    if isinstance(a, RotatedBox) and isinstance(b, RotatedBox):
        turn = (b.angle_deg - a.angle_deg + 180.0) % 360.0 - 180.0
        return RotatedBox(
            _lerp(a.cx, b.cx, t),
            _lerp(a.cy, b.cy, t),
            _lerp(a.width, b.width, t),
            _lerp(a.height, b.height, t),
            a.angle_deg + t * turn,
        )
    if isinstance(a, Point) and isinstance(b, Point):
        return Point(_lerp(a.x, b.x, t), _lerp(a.y, b.y, t))
    if isinstance(a, Polygon | Polyline) and isinstance(b, Polygon | Polyline):
        closed = isinstance(a, Polygon)
        pa, pb = resample_pair(a.points, b.points, closed=closed)
        pts = tuple(map(tuple, (1.0 - t) * pa + t * pb))
        try:
            return Polygon(pts) if closed else Polyline(pts)
        except AnnotationError:
            return a if t < 0.5 else b
    return a


def _lerp(u: float, v: float, t: float) -> float:
    return u + (v - u) * t


def _box(box: Box) -> tuple[float, float, float, float]:
    return box.x, box.y, box.width, box.height


def _params(points: FloatArray, closed: bool) -> tuple[FloatArray, FloatArray]:
    """Vertex positions along the outline in [0, 1) (closed) or [0, 1] (open), and the
    cumulative lengths of the path (px) including the closing edge for closed outlines."""
    path = np.vstack([points, points[:1]]) if closed else points
    cum = np.concatenate(([0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))))
    total = cum[-1]
    params = cum / total
    return (params[:-1] if closed else params), cum


def _sample(points: FloatArray, closed: bool, s: FloatArray) -> FloatArray:
    """Points (shape ``s.shape + (2,)``) at normalised arc-length positions ``s``."""
    path = np.vstack([points, points[:1]]) if closed else points
    _, cum = _params(points, closed)
    target = np.asarray(s) * cum[-1]
    seg = np.clip(np.searchsorted(cum, target, side="right") - 1, 0, len(path) - 2)
    length = cum[seg + 1] - cum[seg]
    frac = np.where(length > 0, (target - cum[seg]) / np.where(length > 0, length, 1.0), 0.0)
    out: FloatArray = path[seg] + frac[..., None] * (path[seg + 1] - path[seg])
    return out


def resample_pair(
    a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]], *, closed: bool
) -> tuple[FloatArray, FloatArray]:
    """Two outlines resampled to the same number of corresponding points (see module doc).

    Returns two (N, 2) arrays; ``a``'s result passes through all of ``a``'s vertices in order
    and likewise for ``b`` (whose start and direction may be changed to best match ``a``).
    """
    pa = np.asarray(a, dtype=np.float64)
    pb = np.asarray(b, dtype=np.float64)
    m = len(pb)
    probe = np.linspace(0.0, 1.0, min(max(len(pa), m, 16) * 2, 64), endpoint=not closed)
    sa = _sample(pa, closed, probe)
    # candidate parametrisations of b: from each vertex (closed only), forward and backward
    starts = _params(pb, closed)[0] if closed else np.zeros(1)
    forward = (starts[:, None] + probe[None, :]) % 1.0 if closed else probe[None, :]
    backward = (starts[:, None] - probe[None, :]) % 1.0 if closed else 1.0 - probe[None, :]
    costs = [
        (((_sample(pb, closed, grid) - sa) ** 2).sum(axis=(1, 2))) for grid in (forward, backward)
    ]
    direction = int(np.argmin([c.min() for c in costs]))
    k = int(np.argmin(costs[direction]))
    if direction == 0:
        pb = np.roll(pb, -k, axis=0)
    else:
        pb = np.roll(pb[::-1], -(m - 1 - k) if closed else 0, axis=0)
    s = np.union1d(_params(pa, closed)[0], _params(pb, closed)[0])
    s = s[np.concatenate(([True], np.diff(s) > 1e-12))]
    return _sample(pa, closed, s), _sample(pb, closed, s)
