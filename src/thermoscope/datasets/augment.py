"""Thermal-aware augmentation: pure functions of frames (and their annotations) with an ``rng``.

Nothing here modifies its inputs: every function returns new frames, shapes and annotations.

Geometry (``rotate90``, ``flip``, ``rotate``) moves the temperatures, the raw counts (exactly for
quarter turns and flips; dropped for small-angle rotations, where interpolated counts would no
longer match the calibration) and every shape with them. Coordinates are px with the origin at
the frame's top-left corner (as in ``thermoscope.annotations``); positive rotation angles turn the
image counter-clockwise on screen, as ``numpy.rot90`` and OpenCV do. Shapes are either annotation
shapes (``Box`` ... ``Mask``) or plain ``(N, 2)`` arrays of ``(x, y)`` points. After a small-angle
rotation a box becomes a ``RotatedBox``; a shape that leaves the frame is clipped to it
(polygons exactly, polylines by clamping their vertices), and one that leaves it entirely is
dropped (plain point arrays are returned unclipped). In an ``AnnotatedItem`` a track whose
keyframes end up of different shape types is turned into polygons, and keyframes that left the
frame are dropped.

Radiometry:

- ``add_noise``: white Gaussian noise of standard deviation ``netd_c`` °C per pixel (a sensor's
  NETD as a temporal noise figure; its slight dependence on scene temperature is ignored).
- ``offset_ambient``: the whole scene ``offset_c`` °C warmer, as if ambient (air and surroundings)
  were: every temperature, and the reflected and atmospheric temperatures of the parameters,
  shift by ``offset_c``.
- ``change_emissivity``: the frame as the camera would have shown it with another emissivity
  setting, i.e. the same measured signal read as temperatures for ``emissivity``. Calibrated
  frames use ``ThermalFrame.with_parameters``; others an approximation in radiance space:
  ``L(T') = L(Tr) + (e_old / e_new) (L(T) - L(Tr))`` with the Planck-like band radiance
  ``L(T) = 1 / (exp(B / T) - 1)``, ``T`` in kelvin, ``B`` = 1428 K (a typical 8-14 µm
  microbolometer), ``Tr`` the reflected temperature and ``e_old`` the emissivity of the frame's
  parameters (20 °C and 0.95 when it has none), and the atmosphere ignored (transmission 1).
  Pixels whose object radiance would be negative become NaN. Noise and offsets drop the raw
  counts, which would no longer match the temperatures.

Time (sequences, a list of frames): ``shift_time`` delays (or advances) the content by whole
frames, repeating the first (or last) frame, and keeps each position's timestamps;
``crop_time`` cuts a window and renumbers it. Annotations move with the content; records that
leave the window are dropped, and tracks get keyframes at the window's edges where they are
visible there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.annotations import (
    AnnotatedItem,
    AnnotationError,
    Box,
    Keyframe,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
    Track,
)
from thermoscope.core import ObjectParameters, ThermalFrame
from thermoscope.storage.identity import content_id

Points = NDArray[np.float64]
ShapeLike = Shape | Points
Border = Literal["edge", "nan"]
#: Planck-like band constant B (kelvin) of the radiance approximation in ``change_emissivity``.
BAND_B_K = 1428.0
KELVIN = 273.15


class Augmented(NamedTuple):
    """The result of a geometric augmentation.

    Attributes:
        frames: the transformed frames (one for a single frame).
        shapes: the transformed shapes, in order (``None`` where a shape left the frame).
        annotation: the transformed annotation (``item_id`` updated to the new content id),
            or ``None`` when none was given.
    """

    frames: tuple[ThermalFrame, ...]
    shapes: tuple[ShapeLike | None, ...]
    annotation: AnnotatedItem | None

    @property
    def frame(self) -> ThermalFrame:
        """The first (for a single frame: the) transformed frame."""
        return self.frames[0]


# -- geometry ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Geometry:
    """A pixel-coordinate transform of a ``width`` x ``height`` frame.

    ``matrix`` is the 2 x 3 affine map of corner-origin coordinates; ``out_size`` the
    transformed frame's (height, width); ``exact`` whether it maps pixels onto pixels (quarter
    turns and flips) rather than resampling.
    """

    kind: Literal["rot90", "flip", "rotate"]
    amount: float
    height: int
    width: int

    @property
    def out_size(self) -> tuple[int, int]:
        if self.kind == "rot90" and int(self.amount) % 2:
            return self.width, self.height
        return self.height, self.width

    @property
    def exact(self) -> bool:
        return self.kind != "rotate"

    @property
    def matrix(self) -> NDArray[np.float64]:
        w, h = self.width, self.height
        if self.kind == "flip":
            if self.amount == 0:  # horizontal: mirror left-right
                return np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0]])
            return np.array([[1.0, 0.0, 0.0], [0.0, -1.0, h]])
        if self.kind == "rot90":
            k = int(self.amount) % 4
            return [
                np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
                np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w]]),
                np.array([[-1.0, 0.0, w], [0.0, -1.0, h]]),
                np.array([[0.0, -1.0, h], [1.0, 0.0, 0.0]]),
            ][k]
        return np.asarray(cv2.getRotationMatrix2D((w / 2.0, h / 2.0), self.amount, 1.0))

    @property
    def turn_deg(self) -> float:
        """How far a direction on screen turns, degrees counter-clockwise (0 or 180 for flips)."""
        if self.kind == "rot90":
            return 90.0 * (int(self.amount) % 4)
        return self.amount if self.kind == "rotate" else 0.0

    def array(self, values: NDArray[Any], border: Border = "edge") -> NDArray[Any]:
        """The transformed (H, W) array (nearest neighbour for bool and integer arrays)."""
        if self.kind == "rot90":
            return np.ascontiguousarray(np.rot90(values, int(self.amount) % 4))
        if self.kind == "flip":
            return np.ascontiguousarray(values[:, ::-1] if self.amount == 0 else values[::-1])
        centre = ((self.width - 1) / 2.0, (self.height - 1) / 2.0)
        m = cv2.getRotationMatrix2D(centre, self.amount, 1.0)
        smooth = values.dtype.kind == "f"
        source = values.astype(np.uint8) if values.dtype == np.bool_ else values
        out = cv2.warpAffine(
            source,
            m,
            (self.width, self.height),
            flags=cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_REPLICATE if border == "edge" else cv2.BORDER_CONSTANT,
            borderValue=(math.nan if smooth else 0.0,),
        )
        return out.astype(bool) if values.dtype == np.bool_ else out

    def points(self, pts: Points) -> Points:
        arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        m = self.matrix
        return arr @ m[:, :2].T + m[:, 2]

    def mirrors(self) -> bool:
        return self.kind == "flip"


def _map_shape(shape: Shape, g: _Geometry) -> Shape | None:
    """The exact image of ``shape`` (may lie partly outside the transformed frame; ``None`` for
    a mask turned entirely out of it)."""
    if isinstance(shape, Box) and g.exact:
        pts = g.points(np.array(shape.corners()))
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))
    if isinstance(shape, Box | RotatedBox):
        rb = (
            RotatedBox(
                shape.x + shape.width / 2,
                shape.y + shape.height / 2,
                shape.width,
                shape.height,
                0.0,
            )
            if isinstance(shape, Box)
            else shape
        )
        ((cx, cy),) = g.points(np.array([[rb.cx, rb.cy]]))
        angle = -rb.angle_deg if g.mirrors() else rb.angle_deg - g.turn_deg
        angle = (angle + 180.0) % 360.0 - 180.0
        return RotatedBox(float(cx), float(cy), rb.width, rb.height, angle)
    if isinstance(shape, Polygon | Polyline):
        pts = g.points(np.array(shape.points))
        return type(shape)(tuple((float(x), float(y)) for x, y in pts))
    if isinstance(shape, Point):
        ((x, y),) = g.points(np.array([[shape.x, shape.y]]))
        return Point(float(x), float(y))
    mask = g.array(shape.to_mask((shape.height, shape.width)), "nan")
    return Mask.from_array(np.asarray(mask, dtype=bool)) if mask.any() else None


def _clip_polygon(points: Points, width: float, height: float) -> Points:
    """Sutherland-Hodgman: the part of a polygon inside ``[0, width] x [0, height]``."""
    out = points
    for axis, limit, keep_below in (
        (0, 0.0, False),
        (0, width, True),
        (1, 0.0, False),
        (1, height, True),
    ):
        if len(out) == 0:
            break
        src, out_list = out, []
        for i in range(len(src)):
            cur, prev = src[i], src[i - 1]
            cur_in = cur[axis] <= limit if keep_below else cur[axis] >= limit
            prev_in = prev[axis] <= limit if keep_below else prev[axis] >= limit
            if cur_in != prev_in:
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                out_list.append(prev + t * (cur - prev))
            if cur_in:
                out_list.append(cur)
        out = np.array(out_list).reshape(-1, 2)
    return out


def _corners(shape: Shape) -> Points | None:
    if isinstance(shape, Box | RotatedBox):
        return np.array(shape.corners())
    if isinstance(shape, Polygon):
        return np.array(shape.points)
    return None


def _fit(shape: Shape | None, width: int, height: int, *, polygon: bool = False) -> Shape | None:
    """``shape`` made to lie inside the frame (clipped), or ``None`` when nothing is left.

    With ``polygon``, boxes and rotated boxes become polygons (used to unify a track).
    """
    if shape is None:
        return None
    if shape.inside(width, height) and not (polygon and isinstance(shape, Box | RotatedBox)):
        return shape
    corners = _corners(shape)
    try:
        if corners is not None:
            clipped = _clip_polygon(corners, width, height)
            return Polygon(tuple((float(x), float(y)) for x, y in clipped))
        if isinstance(shape, Polyline):
            pts = np.clip(np.array(shape.points), 0.0, [width, height])
            return Polyline(tuple((float(x), float(y)) for x, y in pts))
    except AnnotationError:
        return None  # clipped to nothing (fewer than 3 points, or a line)
    return None  # a point outside, or a mask (always inside)


def _transform_shapes(shapes: Sequence[ShapeLike], g: _Geometry) -> tuple[ShapeLike | None, ...]:
    height, width = g.out_size
    out: list[ShapeLike | None] = []
    for shape in shapes:
        if isinstance(shape, np.ndarray):
            out.append(g.points(shape))
        else:
            out.append(_fit(_map_shape(shape, g), width, height))
    return tuple(out)


def _transform_track(track: Track, g: _Geometry) -> Track | None:
    height, width = g.out_size
    mapped = [(k, _map_shape(k.shape, g)) for k in track.keyframes]
    fitted = [(k, _fit(s, width, height)) for k, s in mapped]
    if len({s.kind for _, s in fitted if s is not None}) > 1:
        fitted = [(k, _fit(s, width, height, polygon=True)) for k, s in mapped]
    keys = tuple(Keyframe(k.frame, s, k.outside) for k, s in fitted if s is not None)
    return replace(track, keyframes=keys) if keys else None


def _transform_annotation(item: AnnotatedItem, g: _Geometry, item_id: str) -> AnnotatedItem:
    height, width = g.out_size
    annotations = []
    for a in item.annotations:
        shape = _fit(_map_shape(a.shape, g), width, height)
        if shape is not None:
            annotations.append(replace(a, shape=shape))
    tolerances = []
    for t in item.tolerances:
        shape = _fit(_map_shape(t.shape, g), width, height)
        if shape is not None:
            tolerances.append(replace(t, shape=shape))
    tracks = [t for t in (_transform_track(t, g) for t in item.tracks) if t is not None]
    return replace(
        item,
        item_id=item_id,
        width=width,
        height=height,
        annotations=tuple(annotations),
        tracks=tuple(tracks),
        tolerances=tuple(tolerances),
    )


def _frames(frames: ThermalFrame | Sequence[ThermalFrame]) -> list[ThermalFrame]:
    items = [frames] if isinstance(frames, ThermalFrame) else list(frames)
    if not items:
        raise ValueError("no frames to augment")
    if len({f.shape for f in items}) != 1:
        raise ValueError("the frames of a sequence must all have the same size")
    return items


def _apply(
    frames: ThermalFrame | Sequence[ThermalFrame],
    g_of: tuple[Literal["rot90", "flip", "rotate"], float],
    shapes: Sequence[ShapeLike],
    annotation: AnnotatedItem | None,
    border: Border = "edge",
) -> Augmented:
    items = _frames(frames)
    height, width = items[0].shape
    g = _Geometry(g_of[0], g_of[1], height, width)
    out = []
    for frame in items:
        celsius = np.asarray(g.array(frame.celsius, border), dtype=np.float32)
        raw = None
        if frame.raw is not None and g.exact:
            raw = np.asarray(g.array(frame.raw), dtype=np.uint16)
        out.append(replace(frame, celsius=celsius, raw=raw))
    new_annotation = None
    if annotation is not None:
        new_annotation = _transform_annotation(annotation, g, content_id(out))
    return Augmented(tuple(out), _transform_shapes(shapes, g), new_annotation)


def rotate90(
    frames: ThermalFrame | Sequence[ThermalFrame],
    k: int = 1,
    *,
    shapes: Sequence[ShapeLike] = (),
    annotation: AnnotatedItem | None = None,
) -> Augmented:
    """Turn frames by ``k`` quarter turns counter-clockwise (exact; raw counts kept)."""
    return _apply(frames, ("rot90", float(int(k) % 4)), shapes, annotation)


def flip(
    frames: ThermalFrame | Sequence[ThermalFrame],
    *,
    direction: Literal["horizontal", "vertical"] = "horizontal",
    shapes: Sequence[ShapeLike] = (),
    annotation: AnnotatedItem | None = None,
) -> Augmented:
    """Mirror frames left-right (``horizontal``) or top-bottom (``vertical``); exact."""
    if direction not in ("horizontal", "vertical"):
        raise ValueError(f"direction must be horizontal or vertical, got {direction!r}")
    return _apply(frames, ("flip", 0.0 if direction == "horizontal" else 1.0), shapes, annotation)


def rotate(
    frames: ThermalFrame | Sequence[ThermalFrame],
    angle_deg: float,
    *,
    shapes: Sequence[ShapeLike] = (),
    annotation: AnnotatedItem | None = None,
    border: Border = "edge",
) -> Augmented:
    """Turn frames by ``angle_deg`` degrees counter-clockwise about their centre, same size.

    Temperatures are interpolated bilinearly; pixels that come from outside the frame repeat
    the nearest edge (``border="edge"``) or are NaN (``"nan"``). Raw counts are dropped.
    """
    if not math.isfinite(angle_deg):
        raise ValueError(f"angle must be finite, got {angle_deg}")
    if border not in ("edge", "nan"):
        raise ValueError(f"border must be edge or nan, got {border!r}")
    return _apply(frames, ("rotate", float(angle_deg)), shapes, annotation, border)


# -- radiometry ----------------------------------------------------------------------------


def add_noise(frame: ThermalFrame, *, netd_c: float, rng: np.random.Generator) -> ThermalFrame:
    """``frame`` plus white Gaussian noise of standard deviation ``netd_c`` °C (raw dropped)."""
    if not (math.isfinite(netd_c) and netd_c >= 0):
        raise ValueError(f"netd_c must be a finite number >= 0 °C, got {netd_c}")
    noise = rng.normal(0.0, netd_c, frame.shape)
    celsius = (frame.celsius.astype(np.float64) + noise).astype(np.float32)
    return replace(frame, celsius=celsius, raw=None)


def offset_ambient(frame: ThermalFrame, *, offset_c: float) -> ThermalFrame:
    """The scene ``offset_c`` °C warmer with its surroundings (raw dropped; see the module)."""
    if not math.isfinite(offset_c):
        raise ValueError(f"offset_c must be finite, got {offset_c}")
    meta = frame.metadata
    params = meta.parameters
    if params is not None:
        params = params.updated(
            reflected_temp_c=params.reflected_temp_c + offset_c,
            atmospheric_temp_c=params.atmospheric_temp_c + offset_c,
        )
    celsius = (frame.celsius.astype(np.float64) + offset_c).astype(np.float32)
    return replace(frame, celsius=celsius, raw=None, metadata=replace(meta, parameters=params))


def _band_radiance(celsius: NDArray[np.float64] | float) -> NDArray[np.float64]:
    """``1 / (exp(B / T) - 1)`` for temperatures in °C (relative band radiance)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.asarray(1.0 / np.expm1(BAND_B_K / (celsius + KELVIN)), dtype=np.float64)


def change_emissivity(frame: ThermalFrame, *, emissivity: float) -> ThermalFrame:
    """The frame read with emissivity setting ``emissivity`` (see the module docstring)."""
    if not (math.isfinite(emissivity) and 0.0 < emissivity <= 1.0):
        raise ValueError(f"emissivity must be in (0, 1], got {emissivity}")
    meta = frame.metadata
    if meta.calibration is not None and meta.parameters is not None:
        return frame.with_parameters(emissivity=emissivity)
    params = meta.parameters or ObjectParameters()
    reflected = _band_radiance(params.reflected_temp_c)
    radiance = reflected + params.emissivity / emissivity * (
        _band_radiance(frame.celsius.astype(np.float64)) - reflected
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        kelvin = BAND_B_K / np.log1p(1.0 / radiance)
    celsius = np.where(radiance > 0, kelvin - KELVIN, np.nan).astype(np.float32)
    new_meta = replace(meta, parameters=params.updated(emissivity=emissivity))
    return replace(frame, celsius=celsius, metadata=new_meta)


# -- time ----------------------------------------------------------------------------------


def _retimed(frames: Sequence[ThermalFrame], sources: Sequence[int]) -> list[ThermalFrame]:
    """Position ``i`` gets the content of ``frames[sources[i]]`` and keeps its own timing."""
    out = []
    for position, src in enumerate(sources):
        timing = frames[position].metadata
        content = frames[src]
        meta = replace(
            content.metadata,
            frame_index=timing.frame_index,
            timestamp_s=timing.timestamp_s,
            capture_time=timing.capture_time,
        )
        out.append(replace(content, metadata=meta))
    return out


def _moved_annotation(
    item: AnnotatedItem, frames: Sequence[ThermalFrame], move: int, length: int
) -> AnnotatedItem:
    """``item`` with every frame index ``f`` moved to ``f + move`` in a ``length``-frame item."""

    def inside(f: int) -> bool:
        return 0 <= f + move < length

    tracks = []
    for track in item.tracks:
        keys = {k.frame + move: k for k in track.keyframes if inside(k.frame)}
        for edge in (0, length - 1):
            shape = track.shape_at(edge - move)
            if edge not in keys and shape is not None:
                keys[edge] = Keyframe(edge, shape)
        moved = tuple(replace(k, frame=f) for f, k in sorted(keys.items()))
        if moved:
            tracks.append(replace(track, keyframes=moved))
    return replace(
        item,
        item_id=content_id(frames),
        frame_count=length,
        annotations=tuple(
            replace(a, frame=a.frame + move) for a in item.annotations if inside(a.frame)
        ),
        tracks=tuple(tracks),
        verdicts=tuple(
            v if v.frame is None else replace(v, frame=v.frame + move)
            for v in item.verdicts
            if v.frame is None or inside(v.frame)
        ),
    )


def shift_time(
    frames: Sequence[ThermalFrame], *, shift: int, annotation: AnnotatedItem | None = None
) -> tuple[list[ThermalFrame], AnnotatedItem | None]:
    """Delay the content by ``shift`` frames (negative: advance it), keeping the length.

    The first (or last) frame is repeated to fill; each position keeps its timestamps.
    """
    items = _frames(frames)
    n = len(items)
    sources = [min(max(i - shift, 0), n - 1) for i in range(n)]
    out = _retimed(items, sources)
    moved = None if annotation is None else _moved_annotation(annotation, out, shift, n)
    return out, moved


def crop_time(
    frames: Sequence[ThermalFrame],
    *,
    start: int,
    length: int,
    annotation: AnnotatedItem | None = None,
) -> tuple[list[ThermalFrame], AnnotatedItem | None]:
    """Frames ``start .. start+length-1``, renumbered from 0 with timestamps from the first."""
    items = _frames(frames)
    if start < 0 or length < 1 or start + length > len(items):
        raise ValueError(f"window {start}+{length} outside the {len(items)} frames")
    window = items[start : start + length]
    t0 = window[0].metadata.timestamp_s
    out = []
    for i, frame in enumerate(window):
        meta = frame.metadata
        ts = None if meta.timestamp_s is None or t0 is None else meta.timestamp_s - t0
        out.append(replace(frame, metadata=replace(meta, frame_index=i, timestamp_s=ts)))
    moved = None if annotation is None else _moved_annotation(annotation, out, -start, length)
    return out, moved


# -- random policy -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AugmentPolicy:
    """Ranges ``augment`` draws from (a range ``(a, a)`` or ``None`` turns a step off).

    Attributes:
        quarter_turns: draw 0-3 quarter turns (for square-agnostic scenes).
        flip: mirror left-right with probability 1/2, top-bottom with probability 1/2.
        max_angle_deg: small rotation drawn uniformly from ±this (degrees).
        netd_c: (low, high) noise standard deviation in °C.
        ambient_offset_c: (low, high) ambient offset in °C.
        emissivity: (low, high) emissivity setting.
        time_shift: (low, high) whole frames of temporal shift (sequences only).
    """

    quarter_turns: bool = False
    flip: bool = True
    max_angle_deg: float = 0.0
    netd_c: tuple[float, float] | None = (0.0, 0.05)
    ambient_offset_c: tuple[float, float] | None = None
    emissivity: tuple[float, float] | None = None
    time_shift: tuple[int, int] | None = None


def augment(
    frames: ThermalFrame | Sequence[ThermalFrame],
    *,
    rng: np.random.Generator,
    policy: AugmentPolicy = AugmentPolicy(),
    annotation: AnnotatedItem | None = None,
    shapes: Sequence[ShapeLike] = (),
) -> Augmented:
    """One random draw of ``policy`` applied to a frame or a sequence (same draw for all frames).

    The steps run in this order: temporal shift, quarter turns, flips, small rotation,
    emissivity, ambient offset, noise (noise is drawn per frame).
    """
    items = _frames(frames)
    result = Augmented(tuple(items), tuple(shapes), annotation)
    if policy.time_shift is not None and len(items) > 1:
        shift = int(rng.integers(policy.time_shift[0], policy.time_shift[1] + 1))
        moved, ann = shift_time(items, shift=shift, annotation=annotation)
        result = Augmented(tuple(moved), result.shapes, ann)
    if policy.quarter_turns:
        result = _step(result, rotate90, int(rng.integers(0, 4)))
    if policy.flip:
        for direction in ("horizontal", "vertical"):
            if rng.random() < 0.5:
                result = _step(result, flip, direction=direction)
    if policy.max_angle_deg > 0:
        angle = float(rng.uniform(-policy.max_angle_deg, policy.max_angle_deg))
        result = _step(result, rotate, angle)
    out = list(result.frames)
    if policy.emissivity is not None:
        e = float(rng.uniform(*policy.emissivity))
        out = [change_emissivity(f, emissivity=e) for f in out]
    if policy.ambient_offset_c is not None:
        offset = float(rng.uniform(*policy.ambient_offset_c))
        out = [offset_ambient(f, offset_c=offset) for f in out]
    if policy.netd_c is not None:
        netd = float(rng.uniform(*policy.netd_c))
        out = [add_noise(f, netd_c=netd, rng=rng) for f in out]
    ann = result.annotation
    if ann is not None:
        ann = replace(ann, item_id=content_id(out))
    return Augmented(tuple(out), result.shapes, ann)


def _step(current: Augmented, op: Callable[..., Augmented], *args: Any, **kwargs: Any) -> Augmented:
    """Apply a geometric ``op`` to an ``Augmented``, keeping dropped shapes as ``None``."""
    live = [s for s in current.shapes if s is not None]
    done = op(current.frames, *args, shapes=live, annotation=current.annotation, **kwargs)
    moved = iter(done.shapes)
    shapes = tuple(None if s is None else next(moved) for s in current.shapes)
    return Augmented(done.frames, shapes, done.annotation)
