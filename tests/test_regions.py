"""One rasterisation for every region: core, recipes and annotations against independent checks.

The convention (docs/recipes.md, "Region geometry"): a pixel belongs to a shape when its centre
does; a centre on the outline is in for left/top edges and out for right/bottom ones. The
references below are written here, independently of ``thermoscope.core.regions``:

- ``pnpoly``: the textbook crossing test (ray towards +x, strict comparisons) in exact rational
  arithmetic, at the pixel centre nudged by (1e-6, 1e-9) px. The nudge is how the half-open rule
  reads as a plain point-in-polygon test: it moves a centre that sits on a left or top edge into
  the shape and one on a right or bottom edge out of it, and on a 1/4-px vertex grid no centre
  that is off the outline lies within 1e-3 px of it, so nothing else changes.
- shapely's ``contains_xy`` at the same nudged point, for simple (valid) polygons.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from thermoscope.annotations import shapes as ann
from thermoscope.annotations.temperature import shape_temperatures
from thermoscope.core import ThermalFrame
from thermoscope.core import regions as core
from thermoscope.recipes import compile_recipe, inspect, parse_recipe

H, W = 12, 16
NUDGE_X = Fraction(1, 10**6)
NUDGE_Y = Fraction(1, 10**9)

Points = list[tuple[float, float]]


def pnpoly(points: Points, px: Fraction, py: Fraction) -> bool:
    """Crossing-number point-in-polygon test (ray towards +x) in exact rationals."""
    inside = False
    pts = [(Fraction(x), Fraction(y)) for x, y in points]
    j = len(pts) - 1
    for i, (xi, yi) in enumerate(pts):
        xj, yj = pts[j]
        if (yi > py) != (yj > py) and px < (xj - xi) * (py - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def reference_mask(points: Points, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """Pixel by pixel: is the nudged centre inside (``pnpoly``)?"""
    out = np.zeros(shape, dtype=bool)
    for r in range(shape[0]):
        for c in range(shape[1]):
            px = Fraction(2 * c + 1, 2) + NUDGE_X
            py = Fraction(2 * r + 1, 2) + NUDGE_Y
            out[r, c] = pnpoly(points, px, py)
    return out


def shapely_mask(points: Points, shape: tuple[int, int] = (H, W)) -> np.ndarray | None:
    """shapely's answer at the nudged centres, or None for an invalid (self-crossing) polygon."""
    polygon = shapely.Polygon(points)
    if not polygon.is_valid or polygon.area == 0:
        return None
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.asarray(
        shapely.contains_xy(polygon, cols + 0.5 + float(NUDGE_X), rows + 0.5 + float(NUDGE_Y))
    )


quarter = st.integers(-8, 4 * W + 8).map(lambda v: v / 4)
quarter_y = st.integers(-8, 4 * H + 8).map(lambda v: v / 4)
centre_x = st.integers(0, W - 1).map(lambda v: v + 0.5)
centre_y = st.integers(0, H - 1).map(lambda v: v + 0.5)


@st.composite
def boxes(draw: st.DrawFn) -> Points:
    """Axis-aligned rectangles on the quarter grid (edges through corners and centres)."""
    x0, x1 = sorted(draw(st.lists(quarter, min_size=2, max_size=2, unique=True)))
    y0, y1 = sorted(draw(st.lists(quarter_y, min_size=2, max_size=2, unique=True)))
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


@st.composite
def star_polygons(draw: st.DrawFn) -> Points:
    """Simple, often concave polygons: vertices sorted by angle about a centre."""
    n = draw(st.integers(3, 10))
    pts = draw(st.lists(st.tuples(quarter, quarter_y), min_size=n, max_size=n, unique=True))
    cx = sum(p[0] for p in pts) / n
    cy = sum(p[1] for p in pts) / n
    return sorted(pts, key=lambda p: (math.atan2(p[1] - cy, p[0] - cx), p))


polygons = st.one_of(
    boxes(),
    star_polygons(),
    # vertices on pixel centres: every edge runs through centres
    st.lists(st.tuples(centre_x, centre_y), min_size=3, max_size=8),
    # anything on the grid: self-crossing, degenerate, partly outside the frame
    st.lists(st.tuples(quarter, quarter_y), min_size=3, max_size=8),
)


#: A crossing on a pixel centre that a quotient-first formula ((py - y1) / (y2 - y1) * (x2 - x1))
#: rounds off the centre: edge (13, 0) -> (1.5, 11.5) meets row 6's centre line at exactly x = 6.5.
ROUNDING_CASE: Points = [(13.0, 0.0), (1.5, 11.5), (7.25, 4.0), (4.0, 2.0), (10.25, 0.25)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(polygons)
@example(ROUNDING_CASE)
def test_fill_polygon_equals_the_independent_rasterisations(points: Points) -> None:
    got = core.fill_polygon(points, (H, W))
    np.testing.assert_array_equal(got, reference_mask(points), err_msg=str(points))
    reference = shapely_mask(points)
    if reference is not None:
        np.testing.assert_array_equal(got, reference, err_msg=f"shapely: {points}")


@settings(max_examples=100, deadline=None)
@given(boxes())
def test_a_box_and_the_polygon_through_its_corners_cover_the_same_pixels(points: Points) -> None:
    (x0, y0), _, (x1, y1), _ = points
    expected = core.fill_box(x0, y0, x1, y1, (H, W))
    np.testing.assert_array_equal(core.fill_polygon(points, (H, W)), expected)
    annotation = ann.Box(x0, y0, x1 - x0, y1 - y0)
    np.testing.assert_array_equal(annotation.to_mask((H, W)), expected)


def test_core_box_and_polygon_agree_and_match_the_documented_examples() -> None:
    # the case: a polygon with a box's corners covered 231 pixels, the box 200
    box = core.Box(10, 20, 20, 10)
    polygon = core.Polygon(((10, 20), (30, 20), (30, 30), (10, 30)))
    np.testing.assert_array_equal(polygon.mask((64, 64)), box.mask((64, 64)))
    assert int(polygon.mask((64, 64)).sum()) == 200
    # docs/recipes.md: vertices on pixel centres leave the right and bottom edges out
    on_centres = core.Polygon(((10.5, 20.5), (14.5, 20.5), (14.5, 23.5), (10.5, 23.5)))
    mask = on_centres.mask((64, 64))
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 22, 10, 13)
    assert int(mask.sum()) == 12
    assert on_centres.bounds() == (10, 20, 14, 23)


def test_polygon_bounds_hold_its_pixels_and_far_edge_vertices_are_inside() -> None:
    full = core.Polygon(((0, 0), (W, 0), (W, H), (0, H)))
    assert int(full.mask((H, W)).sum()) == H * W
    assert full.bounds() == (0, 0, W, H)
    with pytest.raises(core.RegionError, match="outside the 16x12 frame"):
        core.Polygon(((0, 0), (W + 0.5, 0), (0, H))).mask((H, W))


def test_fill_rejects_bad_frame_shapes_and_too_few_points() -> None:
    with pytest.raises(core.RegionError, match="frame shape must be positive"):
        core.fill_polygon([(0, 0), (1, 0), (0, 1)], (0, 4))
    with pytest.raises(core.RegionError, match="at least 3 points"):
        core.fill_polygon([(0, 0), (1, 0)], (4, 4))


def _recipe(points: Points, size: tuple[int, int]) -> dict[str, Any]:
    height, width = size
    return {
        "name": "geometry",
        "frame": {"width": width, "height": height},
        "regions": [{"name": "P", "polygon": [list(p) for p in points]}],
        "rules": [
            {"type": kind, "region": "P", "limits": {"max": 1e6}} for kind in ("max", "min", "mean")
        ],
    }


POLYGONS: dict[str, Points] = {
    "box corners": [(10, 20), (30, 20), (30, 30), (10, 30)],
    "on pixel centres": [(10.5, 20.5), (14.5, 20.5), (14.5, 23.5), (10.5, 23.5)],
    "concave": [(4, 4), (40, 4), (40, 40), (22.5, 12.5), (4, 40)],
    "diagonals through centres": [(2.5, 2.5), (30.5, 9.5), (17.5, 44.5), (0.5, 30.5)],
    "recipes.md C1": [(10, 10), (50, 10), (30, 50)],
    "fractional": [(3.25, 5.75), (47.5, 1.125), (60.875, 50.5), (12.0, 44.25)],
}


@pytest.mark.parametrize("name", sorted(POLYGONS))
def test_recipe_and_annotation_statistics_of_a_polygon_are_identical(name: str) -> None:
    size = (56, 64)
    points = POLYGONS[name]
    expected = reference_mask(points, size)
    rng = np.random.default_rng(4)
    celsius = rng.permutation(size[0] * size[1]).reshape(size).astype(np.float32) / 10 + 20
    frame = ThermalFrame(celsius)

    recipe = parse_recipe(_recipe(points, size))
    region = compile_recipe(recipe, size).regions["P"]
    placed = np.zeros(size, dtype=bool)
    crop = placed[region.y0 : region.y1, region.x0 : region.x1]
    crop[...] = True if region.mask is None else region.mask
    np.testing.assert_array_equal(placed, expected)

    np.testing.assert_array_equal(ann.Polygon(tuple(points)).to_mask(size), expected)
    values = celsius[expected]
    found = {f.rule.split()[-1]: f.value for f in inspect(frame, recipe).findings}
    stats = shape_temperatures(frame, ann.Polygon(tuple(points)))
    assert stats.pixels == values.size
    assert found["max"] == stats.max_c == float(values.max())
    assert found["min"] == stats.min_c == float(values.min())
    assert found["mean"] == pytest.approx(stats.mean_c, abs=1e-5)
    assert stats.mean_c == pytest.approx(float(values.astype(np.float64).mean()), abs=1e-9)
