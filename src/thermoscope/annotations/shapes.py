"""Annotation shapes in pixel coordinates.

Coordinates are floats: ``x`` is the column, ``y`` the row, origin at the top-left *corner* of
the frame, so pixel ``(c, r)`` covers ``[c, c+1) x [r, r+1)`` and its centre is
``(c + 0.5, r + 0.5)``. A shape lies inside a ``width`` x ``height`` frame when all its
geometry lies in ``[0, width] x [0, height]`` (within 1e-6 px).

Rasterisation (``to_mask``) is core's one convention (``thermoscope.core.regions``, written
out in docs/recipes.md, "Region geometry"), shared with recipes and the browser UI: a pixel
belongs to a filled shape when its centre does, with half-open edges (left/top edges in,
right/bottom edges out) and the even-odd rule for self-intersecting polygons. So
``Box(10, 20, 5, 4)`` and the polygon through its corners select the same 5 x 4 pixels,
columns 10..14 and rows 20..23.

Dict forms (``to_dict`` / ``shape_from_dict``), lengths in pixels, angles in degrees:

- ``{"type": "box", "x", "y", "width", "height"}`` (top-left corner and size)
- ``{"type": "rotated_box", "cx", "cy", "width", "height", "angle_deg"}``
- ``{"type": "polygon", "points": [[x, y], ...]}`` (closed, at least 3 points)
- ``{"type": "polyline", "points": [[x, y], ...]}`` (open, at least 2 points)
- ``{"type": "point", "x", "y"}``
- ``{"type": "mask", "size": [height, width], "counts": "<COCO compressed RLE string>"}``
  (``from`` also accepts the uncompressed counts list)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.annotations import _read, rle
from thermoscope.annotations.errors import AnnotationError
from thermoscope.core import regions

#: Tolerance (pixels) of ``inside`` against rounding in computed corners.
INSIDE_TOLERANCE_PX = 1e-6

BoolArray = NDArray[np.bool_]
Bounds = tuple[float, float, float, float]


def _finite(values: Sequence[float], what: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise AnnotationError(f"{what}: coordinates must be finite, got {tuple(values)}")


def _check_frame_shape(shape: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(v) for v in shape)
    if height <= 0 or width <= 0:
        raise AnnotationError(f"frame shape must be positive (H, W), got {shape}")
    return height, width


def _bounds_inside(bounds: Bounds, width: float, height: float) -> bool:
    x0, y0, x1, y1 = bounds
    eps = INSIDE_TOLERANCE_PX
    return x0 >= -eps and y0 >= -eps and x1 <= width + eps and y1 <= height + eps


def _points(points: Sequence[Sequence[float]], minimum: int, what: str) -> tuple[Point2, ...]:
    try:
        pts = tuple((float(p[0]), float(p[1])) for p in points)
        bad = any(len(p) != 2 for p in points)
    except (TypeError, ValueError, IndexError) as exc:
        raise AnnotationError(f"{what}: points must be (x, y) pairs of numbers") from exc
    if bad:
        raise AnnotationError(f"{what}: points must be (x, y) pairs of numbers")
    if len(pts) < minimum:
        raise AnnotationError(f"{what} needs at least {minimum} points, got {len(pts)}")
    _finite([v for p in pts for v in p], what)
    return pts


Point2 = tuple[float, float]


#: Up to this many points, plain Python beats NumPy's per-call overhead (polygons of a few
#: vertices are the common case, built by the ten thousand on import).
_SMALL = 32


def _collinear(points: Sequence[Point2]) -> bool:
    """Whether all points lie on one line (or coincide), to 1e-12 relative."""
    if len(points) <= _SMALL:
        x0, y0 = points[0]
        d = [(x - x0, y - y0) for x, y in points]
        ax, ay = max(d, key=lambda v: math.hypot(v[0], v[1]))
        cross = max(abs(ax * dy - ay * dx) for dx, dy in d)
        return cross <= 1e-12 * math.hypot(ax, ay) ** 2
    arr = np.asarray(points, dtype=np.float64) - points[0]
    lengths = np.hypot(arr[:, 0], arr[:, 1])
    a = arr[int(np.argmax(lengths))]
    crosses = np.abs(a[0] * arr[:, 1] - a[1] * arr[:, 0])
    return bool(crosses.max() <= 1e-12 * float(lengths.max()) ** 2)


def polygon_area(points: Sequence[Point2]) -> float:
    """Area in px² of the closed polygon through ``points`` (shoelace formula, absolute)."""
    if len(points) <= _SMALL:
        total = 0.0
        px, py = points[-1]
        for x, y in points:
            total += px * y - x * py
            px, py = x, y
        return abs(total) / 2.0
    arr = np.asarray(points, dtype=np.float64)
    xs, ys = arr[:, 0], arr[:, 1]
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2.0)


def fill_polygon(points: Sequence[Point2], shape: tuple[int, int]) -> BoolArray:
    """Boolean (H, W) mask of pixels whose centres lie inside the polygon: core's one
    rasterisation (``thermoscope.core.regions.fill_polygon``, half-open edges, even-odd)."""
    return regions.fill_polygon(points, _check_frame_shape(shape))


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle: top-left corner ``(x, y)`` and ``width`` x ``height`` (px)."""

    kind: ClassVar[str] = "box"
    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        values = [float(v) for v in (self.x, self.y, self.width, self.height)]
        _finite(values, "box")
        if values[2] <= 0 or values[3] <= 0:
            raise AnnotationError(f"box needs a positive size, got {values[2]} x {values[3]}")
        for name, value in zip(("x", "y", "width", "height"), values, strict=True):
            object.__setattr__(self, name, value)

    def bounds(self) -> Bounds:
        """``(x0, y0, x1, y1)`` in px."""
        return self.x, self.y, self.x + self.width, self.y + self.height

    @property
    def area(self) -> float:
        """Area in px²."""
        return self.width * self.height

    def corners(self) -> tuple[Point2, ...]:
        """The four corners, clockwise on screen from the top-left."""
        x0, y0, x1, y1 = self.bounds()
        return (x0, y0), (x1, y0), (x1, y1), (x0, y1)

    def inside(self, width: float, height: float) -> bool:
        """Whether the box lies within a ``width`` x ``height`` frame."""
        return _bounds_inside(self.bounds(), width, height)

    def to_mask(self, shape: tuple[int, int]) -> BoolArray:
        """Boolean (H, W) mask of the pixels whose centres lie in the box."""
        return regions.fill_box(*self.bounds(), _check_frame_shape(shape))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {
            "type": self.kind,
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True, slots=True)
class RotatedBox:
    """A rectangle of ``width`` x ``height`` px centred on ``(cx, cy)``, turned by ``angle_deg``.

    The angle is in degrees, positive clockwise on screen (y points down), as CVAT's rotation;
    at 0° the box is axis-aligned with ``width`` along x.
    """

    kind: ClassVar[str] = "rotated_box"
    cx: float
    cy: float
    width: float
    height: float
    angle_deg: float

    def __post_init__(self) -> None:
        names = ("cx", "cy", "width", "height", "angle_deg")
        values = [float(getattr(self, n)) for n in names]
        _finite(values, "rotated box")
        if values[2] <= 0 or values[3] <= 0:
            raise AnnotationError(
                f"rotated box needs a positive size, got {values[2]} x {values[3]}"
            )
        for name, value in zip(names, values, strict=True):
            object.__setattr__(self, name, value)

    def corners(self) -> tuple[Point2, ...]:
        """The four corners (px), starting at the one that is top-left at 0°."""
        theta = math.radians(self.angle_deg)
        cos, sin = math.cos(theta), math.sin(theta)
        hw, hh = self.width / 2.0, self.height / 2.0
        return tuple(
            (self.cx + dx * cos - dy * sin, self.cy + dx * sin + dy * cos)
            for dx, dy in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))
        )

    def bounds(self) -> Bounds:
        """``(x0, y0, x1, y1)`` of the corners, px."""
        xs, ys = zip(*self.corners(), strict=True)
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def area(self) -> float:
        """Area in px²."""
        return self.width * self.height

    def inside(self, width: float, height: float) -> bool:
        """Whether all four corners lie within a ``width`` x ``height`` frame."""
        return _bounds_inside(self.bounds(), width, height)

    def to_mask(self, shape: tuple[int, int]) -> BoolArray:
        """Boolean (H, W) mask of the pixels whose centres lie in the box."""
        return fill_polygon(self.corners(), shape)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {
            "type": self.kind,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
            "angle_deg": self.angle_deg,
        }


@dataclass(frozen=True, slots=True)
class Polygon:
    """A closed polygon through ``points`` ((x, y) px, at least 3, not all on one line)."""

    kind: ClassVar[str] = "polygon"
    points: tuple[Point2, ...]

    def __post_init__(self) -> None:
        pts = _points(self.points, 3, "polygon")
        if _collinear(pts):
            raise AnnotationError("polygon has zero area (its points are collinear)")
        object.__setattr__(self, "points", pts)

    def bounds(self) -> Bounds:
        """``(x0, y0, x1, y1)`` of the vertices, px."""
        xs, ys = zip(*self.points, strict=True)
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def area(self) -> float:
        """Area in px² (shoelace formula; self-intersecting polygons count signed parts)."""
        return polygon_area(self.points)

    def perimeter(self) -> float:
        """Length of the closed outline, px."""
        return _path_length(self.points, closed=True)

    def inside(self, width: float, height: float) -> bool:
        """Whether every vertex lies within a ``width`` x ``height`` frame."""
        return _bounds_inside(self.bounds(), width, height)

    def to_mask(self, shape: tuple[int, int]) -> BoolArray:
        """Boolean (H, W) mask of the pixels whose centres lie inside (even-odd rule)."""
        return fill_polygon(self.points, shape)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {"type": self.kind, "points": [[x, y] for x, y in self.points]}


@dataclass(frozen=True, slots=True)
class Polyline:
    """An open line through ``points`` ((x, y) px, at least 2, positive length)."""

    kind: ClassVar[str] = "polyline"
    points: tuple[Point2, ...]

    def __post_init__(self) -> None:
        pts = _points(self.points, 2, "polyline")
        if _path_length(pts, closed=False) <= 0:
            raise AnnotationError("polyline has zero length (all its points coincide)")
        object.__setattr__(self, "points", pts)

    def bounds(self) -> Bounds:
        """``(x0, y0, x1, y1)`` of the vertices, px."""
        xs, ys = zip(*self.points, strict=True)
        return min(xs), min(ys), max(xs), max(ys)

    @property
    def area(self) -> float:
        """0 px²: a line has no area (see ``length``)."""
        return 0.0

    def length(self) -> float:
        """Length of the line, px."""
        return _path_length(self.points, closed=False)

    def inside(self, width: float, height: float) -> bool:
        """Whether every vertex lies within a ``width`` x ``height`` frame."""
        return _bounds_inside(self.bounds(), width, height)

    def to_mask(self, shape: tuple[int, int]) -> BoolArray:
        """Boolean (H, W) mask of the pixels a 1-px line touches (8-connected, OpenCV)."""
        height, width = _check_frame_shape(shape)
        canvas = np.zeros((height, width), dtype=np.uint8)
        shift = 8
        pts = np.round((np.asarray(self.points) - 0.5) * (1 << shift)).astype(np.int32)
        cv2.polylines(canvas, [pts], False, 1, 1, cv2.LINE_8, shift)
        return canvas.astype(bool)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {"type": self.kind, "points": [[x, y] for x, y in self.points]}


@dataclass(frozen=True, slots=True)
class Point:
    """A single location ``(x, y)`` in px."""

    kind: ClassVar[str] = "point"
    x: float
    y: float

    def __post_init__(self) -> None:
        values = [float(self.x), float(self.y)]
        _finite(values, "point")
        object.__setattr__(self, "x", values[0])
        object.__setattr__(self, "y", values[1])

    def bounds(self) -> Bounds:
        """``(x, y, x, y)`` px."""
        return self.x, self.y, self.x, self.y

    @property
    def area(self) -> float:
        """0 px²."""
        return 0.0

    def inside(self, width: float, height: float) -> bool:
        """Whether the point lies within a ``width`` x ``height`` frame."""
        return _bounds_inside(self.bounds(), width, height)

    def to_mask(self, shape: tuple[int, int]) -> BoolArray:
        """Boolean (H, W) mask of the one pixel holding the point (none when outside)."""
        height, width = _check_frame_shape(shape)
        out = np.zeros((height, width), dtype=bool)
        if 0 <= self.x <= width and 0 <= self.y <= height:
            out[min(math.floor(self.y), height - 1), min(math.floor(self.x), width - 1)] = True
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form (see the module docstring)."""
        return {"type": self.kind, "x": self.x, "y": self.y}


@dataclass(frozen=True, slots=True)
class Mask:
    """A pixel mask of a whole ``height`` x ``width`` frame, stored as COCO run lengths.

    ``counts`` are the uncompressed column-major runs (see ``thermoscope.annotations.rle``); at
    least one pixel must be set. Build one from an array with ``Mask.from_array``.
    """

    kind: ClassVar[str] = "mask"
    height: int
    width: int
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.height, bool) or isinstance(self.width, bool):
            raise AnnotationError("mask size must be integers")
        height, width = int(self.height), int(self.width)
        if height <= 0 or width <= 0:
            raise AnnotationError(f"mask needs a positive size, got {height} x {width} (HxW)")
        counts = tuple(self.counts)
        rle.check_counts(counts, height, width)
        counts = tuple(int(c) for c in counts)
        if rle.area(counts) == 0:
            raise AnnotationError("mask selects no pixel")
        object.__setattr__(self, "height", height)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "counts", counts)

    @classmethod
    def from_array(cls, mask: NDArray[np.bool_]) -> Mask:
        """The mask of a boolean (H, W) array (True = inside)."""
        arr = np.asarray(mask, dtype=bool)
        if arr.ndim != 2:
            raise AnnotationError(f"mask must be 2-D, got shape {arr.shape}")
        return cls(int(arr.shape[0]), int(arr.shape[1]), tuple(rle.encode(arr)))

    def bounds(self) -> Bounds:
        """``(x0, y0, x1, y1)`` px of the pixel squares it selects."""
        arr = rle.decode(self.counts, self.height, self.width)
        rows = np.flatnonzero(arr.any(axis=1))
        cols = np.flatnonzero(arr.any(axis=0))
        return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)

    @property
    def area(self) -> float:
        """Selected pixels, px²."""
        return float(rle.area(self.counts))

    def inside(self, width: float, height: float) -> bool:
        """Whether the mask is of a ``width`` x ``height`` frame."""
        return (self.width, self.height) == (width, height)

    def to_mask(self, shape: tuple[int, int]) -> BoolArray:
        """The boolean (H, W) array; ``shape`` must be the mask's own."""
        if tuple(shape) != (self.height, self.width):
            raise AnnotationError(
                f"mask is {self.height}x{self.width} (HxW), asked for {shape[0]}x{shape[1]}"
            )
        return rle.decode(self.counts, self.height, self.width)

    def to_string(self) -> str:
        """The counts as a compressed COCO RLE string."""
        return rle.to_string(self.counts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form: a COCO RLE object plus ``type``."""
        return {"type": self.kind, "size": [self.height, self.width], "counts": self.to_string()}


Shape = Box | RotatedBox | Polygon | Polyline | Point | Mask

#: Shape classes by their ``type`` name in dicts.
SHAPE_TYPES: dict[str, type[Shape]] = {
    cls.kind: cls for cls in (Box, RotatedBox, Polygon, Polyline, Point, Mask)
}


def _path_length(points: Sequence[Point2], *, closed: bool) -> float:
    arr = np.asarray(points, dtype=np.float64)
    if closed:
        arr = np.vstack([arr, arr[:1]])
    return float(np.hypot(*np.diff(arr, axis=0).T).sum())


def shape_from_dict(data: Mapping[str, Any], path: str = "shape") -> Shape:
    """The shape of a dict written by ``to_dict`` (strict: unknown keys are errors)."""
    d = _read.mapping(data, path)
    kind = _read.string(d.get("type"), f"{path}.type")
    try:
        if kind == "box":
            _read.keys(d, ("type", "x", "y", "width", "height"), (), path)
            return Box(*(_read.number(d[k], f"{path}.{k}") for k in ("x", "y", "width", "height")))
        if kind == "rotated_box":
            names = ("cx", "cy", "width", "height", "angle_deg")
            _read.keys(d, ("type", *names), (), path)
            return RotatedBox(*(_read.number(d[k], f"{path}.{k}") for k in names))
        if kind in ("polygon", "polyline"):
            _read.keys(d, ("type", "points"), (), path)
            raw = _read.array(d["points"], f"{path}.points")
            pts = []
            for i, p in enumerate(raw):
                pair = _read.array(p, f"{path}.points[{i}]")
                if len(pair) != 2:
                    raise AnnotationError(f"{path}.points[{i}]: expected [x, y]")
                pts.append(
                    (
                        _read.number(pair[0], f"{path}.points[{i}]"),
                        _read.number(pair[1], f"{path}.points[{i}]"),
                    )
                )
            return Polygon(tuple(pts)) if kind == "polygon" else Polyline(tuple(pts))
        if kind == "point":
            _read.keys(d, ("type", "x", "y"), (), path)
            return Point(_read.number(d["x"], f"{path}.x"), _read.number(d["y"], f"{path}.y"))
        if kind == "mask":
            _read.keys(d, ("type", "size", "counts"), (), path)
            size = _read.array(d["size"], f"{path}.size")
            if len(size) != 2:
                raise AnnotationError(f"{path}.size: expected [height, width]")
            height, width = (_read.integer(v, f"{path}.size") for v in size)
            counts_raw = d["counts"]
            if isinstance(counts_raw, str):
                counts = rle.from_string(counts_raw)
            else:
                counts = [
                    _read.integer(c, f"{path}.counts")
                    for c in _read.array(counts_raw, f"{path}.counts")
                ]
            return Mask(height, width, tuple(counts))
    except AnnotationError as exc:
        if str(exc).startswith(path):
            raise
        raise AnnotationError(f"{path}: {exc}") from exc
    raise AnnotationError(f"{path}.type: unknown shape type {kind!r}; one of {sorted(SHAPE_TYPES)}")
