"""Regions of a frame: axis-aligned boxes, polygons and pixel masks, in pixel coordinates.

This module holds the project's one rasterisation convention (written out in
``docs/recipes.md``, section "Region geometry"); recipes, annotations and the browser UI all
fill shapes through it (the UI's ``shapes.js`` mirrors it line for line):

- ``x`` is the column, ``y`` the row, origin at the top-left *corner* of the top-left pixel, so
  pixel ``(c, r)`` covers ``[c, c+1) x [r, r+1)`` and its centre is ``(c + 0.5, r + 0.5)``.
- A pixel belongs to a filled shape when its centre lies inside the shape.
- A centre exactly on the outline is decided by the half-open crossing rule: cast a ray from the
  centre ``(px, py)`` towards -x and count the edges ``(x1, y1) -> (x2, y2)`` with
  ``min(y1, y2) <= py < max(y1, y2)`` that it meets at ``x <= px``; the centre is inside when
  the count is odd (even-odd rule for self-intersecting polygons). So left and top edges are
  in, right and bottom edges out, and shapes that share an edge never share a pixel.

Hence ``Box(x=10, y=20, width=5, height=4)`` and the polygon through its four corners both cover
columns 10..14 and rows 20..23 (20 pixels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import ThermoscopeError


class RegionError(ThermoscopeError, ValueError):
    """A region is malformed or does not fit the frame it is applied to."""


def _frame_shape(shape: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(v) for v in shape)
    if height <= 0 or width <= 0:
        raise RegionError(f"frame shape must be positive (H, W), got {tuple(shape)}")
    return height, width


def pixel_span(start: float, end: float, size: int) -> tuple[int, int]:
    """Index range ``[first, stop)`` of the pixels whose centres lie in ``[start, end)`` (px)
    along one axis of ``size`` pixels, clipped to ``[0, size]``."""
    first = min(max(math.ceil(start - 0.5), 0), size)
    stop = min(max(math.ceil(end - 0.5), 0), size)
    return first, max(first, stop)


def fill_box(
    x0: float, y0: float, x1: float, y1: float, shape: tuple[int, int]
) -> NDArray[np.bool_]:
    """Boolean (H, W) mask of the pixels whose centres lie in ``[x0, x1) x [y0, y1)`` (px).

    Parts outside the frame are clipped; raises ``RegionError`` for a non-positive frame shape.
    """
    height, width = _frame_shape(shape)
    out = np.zeros((height, width), dtype=bool)
    c0, c1 = pixel_span(x0, x1, width)
    r0, r1 = pixel_span(y0, y1, height)
    out[r0:r1, c0:c1] = True
    return out


def fill_polygon(points: Sequence[Sequence[float]], shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Boolean (H, W) mask of the pixels whose centres lie inside the closed polygon through
    ``points`` ((x, y) px), by the module's half-open crossing rule (even-odd).

    Parts outside the frame are clipped. Row by row, the crossings of the row's centre line with
    the edges are sorted and paired into spans. A crossing ``x1 + (py - y1) (x2 - x1) / (y2 - y1)``
    is computed product first, so one that lies exactly on a pixel centre (vertices on multiples
    of 1/64 px, frames below 65,536 px) comes out exact and is decided by the rule, not by
    rounding. Raises ``RegionError`` for a non-positive frame shape or fewer than 3 points.
    """
    height, width = _frame_shape(shape)
    out = np.zeros((height, width), dtype=bool)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] < 3:
        raise RegionError(f"polygon needs at least 3 points, got {pts.shape[0]}")
    x, y = pts[:, 0], pts[:, 1]
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    r0, r1 = pixel_span(float(y.min()), float(y.max()), height)
    if r1 <= r0:
        return out
    cy = (np.arange(r0, r1, dtype=np.float64) + 0.5)[:, None]
    crosses = (y <= cy) != (y2 <= cy)
    dy = np.where(y2 == y, 1.0, y2 - y)
    xs = np.where(crosses, x + (cy - y) * (x2 - x) / dy, np.inf)
    xs.sort(axis=1)
    # the half-open rule gives each row an even number of crossings: pair them in order
    starts, ends = xs[:, 0 : xs.shape[1] - 1 : 2], xs[:, 1::2]
    valid = np.isfinite(ends)
    rows = np.nonzero(valid)[0]
    c0 = np.clip(np.ceil(starts[valid] - 0.5), 0, width).astype(np.intp)
    c1 = np.clip(np.ceil(ends[valid] - 0.5), 0, width).astype(np.intp)
    if c0.size == 0:
        return out
    # +1 where a span starts, -1 where it stops; a running sum along the row marks the inside
    lo, hi = int(c0.min()), int(c1.max())
    span = hi - lo + 1
    size = (r1 - r0) * span
    diff = np.bincount(rows * span + (c0 - lo), minlength=size) - np.bincount(
        rows * span + (c1 - lo), minlength=size
    )
    out[r0:r1, lo:hi] = np.cumsum(diff.reshape(r1 - r0, span), axis=1)[:, :-1] > 0
    return out


@runtime_checkable
class Region(Protocol):
    """Anything that can say which pixels of an (H, W) frame it covers."""

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """Boolean (H, W) array, True inside the region."""
        ...

    def bounds(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``: the smallest pixel box holding the region (x1, y1 exclusive)."""
        ...


def _check_inside(
    bounds: tuple[float, float, float, float], shape: tuple[int, int], what: str
) -> None:
    x0, y0, x1, y1 = bounds
    height, width = _frame_shape(shape)
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise RegionError(
            f"{what} spans x {x0:g}..{x1:g}, y {y0:g}..{y1:g}: outside the {width}x{height} frame"
        )


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle: top-left corner ``(x, y)`` and size, in pixels."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise RegionError(f"box needs a positive size, got {self.width}x{self.height}")

    def bounds(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` with x1, y1 exclusive."""
        return self.x, self.y, self.x + self.width, self.y + self.height

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """Boolean (H, W) mask; raises ``RegionError`` when the box leaves the frame."""
        _check_inside(self.bounds(), shape, "box")
        return fill_box(*self.bounds(), shape)


@dataclass(frozen=True, slots=True)
class Polygon:
    """A closed polygon through ``points`` ((x, y) pixel coordinates, at least three)."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        pts = tuple((float(x), float(y)) for x, y in self.points)
        if len(pts) < 3:
            raise RegionError(f"polygon needs at least 3 points, got {len(pts)}")
        if not all(math.isfinite(v) for p in pts for v in p):
            raise RegionError("polygon points must be finite")
        object.__setattr__(self, "points", pts)

    def _extent(self) -> tuple[float, float, float, float]:
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)

    def bounds(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the pixels whose centres can lie inside (x1, y1 exclusive)."""
        x0, y0, x1, y1 = self._extent()
        return (
            math.ceil(x0 - 0.5),
            math.ceil(y0 - 0.5),
            math.ceil(x1 - 0.5),
            math.ceil(y1 - 0.5),
        )

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """Boolean (H, W) mask of the pixels whose centres lie inside (``fill_polygon``);
        raises ``RegionError`` when a vertex lies outside ``[0, W] x [0, H]``."""
        _check_inside(self._extent(), shape, "polygon")
        return fill_polygon(self.points, shape)


@dataclass(frozen=True, slots=True, eq=False)
class MaskRegion:
    """An arbitrary set of pixels: a boolean (H, W) array (True inside)."""

    pixels: NDArray[np.bool_]

    def __post_init__(self) -> None:
        arr = np.asarray(self.pixels)
        if arr.ndim != 2:
            raise RegionError(f"mask must be 2-D, got shape {arr.shape}")
        arr = arr.astype(bool, copy=True)
        if not arr.any():
            raise RegionError("mask selects no pixel")
        arr.flags.writeable = False
        object.__setattr__(self, "pixels", arr)

    def bounds(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the selected pixels (x1, y1 exclusive)."""
        rows = np.flatnonzero(self.pixels.any(axis=1))
        cols = np.flatnonzero(self.pixels.any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """The mask itself; raises ``RegionError`` when its shape is not the frame's."""
        if self.pixels.shape != tuple(shape):
            raise RegionError(f"mask is {self.pixels.shape[::-1]} (WxH), the frame {shape[::-1]}")
        return self.pixels
