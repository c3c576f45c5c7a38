"""The UI's shape pixels and statistics equal the recipe engine's and the annotation layer's.

``shapes.js`` mirrors ``thermoscope.core.regions`` (docs/recipes.md, "Region geometry"); here the
same polygons (boxes' corners, vertices on pixel centres, concave, edges whose crossings fall
exactly on pixel centres) are filled in Chromium and compared pixel for pixel with a compiled
recipe region, and the °C statistics the sidebar shows with the recipe's findings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from thermoscope.annotations.errors import AnnotationError
from thermoscope.annotations.shapes import Polygon
from thermoscope.annotations.temperature import shape_temperatures
from thermoscope.core import ThermalFrame
from thermoscope.recipes import compile_recipe, inspect, parse_recipe

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

HEIGHT, WIDTH = 48, 64

POLYGONS: list[list[list[float]]] = [
    [[10, 20], [30, 20], [30, 30], [10, 30]],
    [[10.5, 20.5], [14.5, 20.5], [14.5, 23.5], [10.5, 23.5]],
    [[4, 4], [40, 4], [40, 40], [22.5, 12.5], [4, 40]],
    [[2.5, 2.5], [30.5, 9.5], [17.5, 44.5], [0.5, 30.5]],
    # edge (13, 0) -> (1.5, 11.5) crosses row 6's centre line exactly at x = 6.5: a formula that
    # divides before it multiplies (the UI's old one) rounds it to 6.500000000000001
    [[13.0, 0.0], [1.5, 11.5], [7.25, 4.0], [4.0, 2.0], [10.25, 0.25]],
]


def quarter_grid_polygons(rng: np.random.Generator, count: int) -> list[list[list[float]]]:
    """Random polygons (often concave or self-crossing) with vertices on a 1/4-px grid."""
    out = []
    for _ in range(count):
        n = int(rng.integers(3, 9))
        xs = rng.integers(0, 4 * WIDTH + 1, n) / 4
        ys = rng.integers(0, 4 * HEIGHT + 1, n) / 4
        out.append(np.c_[xs, ys].tolist())
    return out


def recipe_pixels(points: list[list[float]]) -> tuple[np.ndarray, Any]:
    """The compiled recipe region of a polygon as a full-frame mask, and the recipe."""
    recipe = parse_recipe(
        {
            "name": "geometry",
            "frame": {"width": WIDTH, "height": HEIGHT},
            "regions": [{"name": "P", "polygon": points}],
            "rules": [
                {"type": kind, "region": "P", "limits": {"max": 1e6}}
                for kind in ("max", "min", "mean")
            ],
        }
    )
    region = compile_recipe(recipe).regions["P"]
    mask = np.zeros((HEIGHT, WIDTH), dtype=bool)
    box = mask[region.y0 : region.y1, region.x0 : region.x1]
    box[...] = True if region.mask is None else region.mask
    return mask, recipe


def test_ui_polygon_pixels_and_statistics_equal_the_recipe_engine(
    module_page: sync_api.Page,
) -> None:
    rng = np.random.default_rng(9)
    celsius = (rng.permutation(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) / 10 + 20).astype(np.float32)
    cases = POLYGONS + quarter_grid_polygons(rng, 40)
    out = module_page.evaluate(
        """async (arg) => {
             const m = await import('/js/shapes.js');
             const c = Float32Array.from(arg.celsius);
             return arg.polygons.map((points) => {
               const s = {type: "polygon", points};
               const mask = new Array(arg.w * arg.h).fill(0);
               const spans = m.spans(s, arg.w, arg.h);
               for (let k = 0; k < spans.length; k += 3) {
                 const row = spans[k] * arg.w;
                 for (let col = spans[k + 1]; col < spans[k + 2]; col++) mask[row + col] = 1;
               }
               return {mask, stats: m.shapeStats(c, arg.w, arg.h, s)};
             });
           }""",
        {"celsius": celsius.ravel().tolist(), "polygons": cases, "w": WIDTH, "h": HEIGHT},
    )
    frame = ThermalFrame(celsius)
    compared = 0
    for points, got in zip(cases, out, strict=True):
        ui_mask = np.array(got["mask"], bool).reshape(HEIGHT, WIDTH)
        shape = _annotation(points)
        if shape is not None:
            np.testing.assert_array_equal(ui_mask, shape.to_mask((HEIGHT, WIDTH)), str(points))
        if not ui_mask.any() or not _fits_recipe(points):
            continue
        recipe_mask, recipe = recipe_pixels(points)
        np.testing.assert_array_equal(ui_mask, recipe_mask, err_msg=str(points))
        found = {f.rule.split()[-1]: f.value for f in inspect(frame, recipe).findings}
        assert got["stats"]["pixels"] == int(recipe_mask.sum())
        assert got["stats"]["max"] == found["max"]
        assert got["stats"]["min"] == found["min"]
        assert got["stats"]["mean"] == pytest.approx(found["mean"], abs=1e-4)
        if shape is not None:
            stats = shape_temperatures(frame, shape)
            assert (stats.max_c, stats.min_c, stats.pixels) == (
                found["max"],
                found["min"],
                got["stats"]["pixels"],
            )
        compared += 1
    assert compared >= len(POLYGONS)


def _annotation(points: list[list[float]]) -> Polygon | None:
    """The annotation polygon, or None when its points are collinear (no area to annotate)."""
    try:
        return Polygon(tuple((x, y) for x, y in points))
    except AnnotationError:
        return None


def _fits_recipe(points: list[list[float]]) -> bool:
    arr = np.asarray(points)
    return bool(arr.min() >= 0 and arr[:, 0].max() <= WIDTH and arr[:, 1].max() <= HEIGHT)
