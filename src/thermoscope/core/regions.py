"""Regions of a frame: axis-aligned boxes, polygons and pixel masks, in pixel coordinates.

Coordinates: ``x`` is the column, ``y`` the row, origin at the top-left pixel's corner; a box
``Box(x=10, y=20, width=5, height=4)`` covers columns 10..14 and rows 20..23.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import ThermoscopeError


class RegionError(ThermoscopeError, ValueError):
    """A region is malformed or does not fit the frame it is applied to."""


@runtime_checkable
class Region(Protocol):
    """Anything that can say which pixels of an (H, W) frame it covers."""

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """Boolean (H, W) array, True inside the region."""
        ...

    def bounds(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``: the smallest pixel box holding the region (x1, y1 exclusive)."""
        ...


def _check_inside(bounds: tuple[int, int, int, int], shape: tuple[int, int], what: str) -> None:
    x0, y0, x1, y1 = bounds
    height, width = shape
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise RegionError(
            f"{what} spans x {x0}..{x1}, y {y0}..{y1}: outside the {width}x{height} frame"
        )


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle: top-left ``(x, y)`` and size, in pixels."""

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
        out = np.zeros(shape, dtype=bool)
        out[self.y : self.y + self.height, self.x : self.x + self.width] = True
        return out


@dataclass(frozen=True, slots=True)
class Polygon:
    """A closed polygon through ``points`` ((x, y) pixel coordinates, at least three)."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        pts = tuple((float(x), float(y)) for x, y in self.points)
        if len(pts) < 3:
            raise RegionError(f"polygon needs at least 3 points, got {len(pts)}")
        if not all(np.isfinite(v) for p in pts for v in p):
            raise RegionError("polygon points must be finite")
        object.__setattr__(self, "points", pts)

    def bounds(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of the pixels the polygon touches (x1, y1 exclusive)."""
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return (
            int(np.floor(min(xs))),
            int(np.floor(min(ys))),
            int(np.ceil(max(xs))) + 1,
            int(np.ceil(max(ys))) + 1,
        )

    def mask(self, shape: tuple[int, int]) -> NDArray[np.bool_]:
        """Boolean (H, W) mask of the filled polygon (pixel centres inside or on the edge)."""
        x0, y0, x1, y1 = self.bounds()
        # vertices may lie on the far edge of the frame (x = W, y = H), not beyond it
        _check_inside((x0, y0, x1 - 1, y1 - 1), shape, "polygon")
        canvas = np.zeros(shape, dtype=np.uint8)
        pts = np.round(np.asarray(self.points, dtype=np.float64)).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1)
        return canvas.astype(bool)


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
