"""The UI's JavaScript modules agree with the Python library they mirror, run in Chromium.

Palette tables, COCO run lengths, shape rasterisation and statistics, track interpolation and
the automatic display range are computed in the browser and compared with
``thermoscope.render`` and ``thermoscope.annotations`` on the same inputs.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from thermoscope.annotations import rle
from thermoscope.annotations.model import Provenance
from thermoscope.annotations.shapes import shape_from_dict
from thermoscope.annotations.tracks import Keyframe, Track, interpolate
from thermoscope.render import PALETTES, auto_range, render

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


def run(page: sync_api.Page, module: str, body: str, arg: Any = None) -> Any:
    """Evaluate ``body`` (an async function body with ``m``, the module, and ``arg``)."""
    script = f"async (arg) => {{ const m = await import('/js/{module}'); {body} }}"
    return page.evaluate(script, arg)


def test_palette_tables_equal_the_python_tables(module_page: sync_api.Page) -> None:
    tables = run(
        module_page,
        "palettes.js",
        "return m.PALETTES.map((p) => [p.name, Array.from(m.rgbTable(p)), p.nan]);",
    )
    assert [name for name, _, _ in tables] == list(PALETTES)
    for name, table, nan in tables:
        np.testing.assert_array_equal(np.array(table).reshape(256, 3), PALETTES[name].lut)
        assert tuple(nan) == PALETTES[name].nan_color, name


def test_run_lengths_match_coco(module_page: sync_api.Page) -> None:
    rng = np.random.default_rng(7)
    masks = [rng.random((h, w)) < p for h, w, p in [(5, 7, 0.5), (40, 30, 0.1), (64, 80, 0.9)]]
    masks.append(np.zeros((4, 4), bool))
    masks.append(np.ones((3, 5), bool))
    cases = [
        {"flat": m.astype(int).ravel().tolist(), "h": m.shape[0], "w": m.shape[1]} for m in masks
    ]
    out = run(
        module_page,
        "rle.js",
        """return arg.map(({flat, h, w}) => {
             const counts = m.encode(Uint8Array.from(flat), h, w);
             const text = m.toString(counts);
             return {counts, text, back: Array.from(m.decode(m.fromString(text), h, w))};
           });""",
        cases,
    )
    for mask, got in zip(masks, out, strict=True):
        counts = rle.encode(mask)
        assert got["counts"] == counts
        assert got["text"] == rle.to_string(counts)
        np.testing.assert_array_equal(np.array(got["back"]).reshape(mask.shape), mask)


def random_shapes(rng: np.random.Generator, width: int, height: int) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    for _ in range(12):
        x0, x1 = sorted(rng.uniform(0, width, 2))
        y0, y1 = sorted(rng.uniform(0, height, 2))
        shapes.append({"type": "box", "x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
        n = int(rng.integers(3, 9))
        pts = np.c_[rng.uniform(0, width, n), rng.uniform(0, height, n)]
        shapes.append({"type": "polygon", "points": pts.tolist()})
        shapes.append({"type": "point", "x": float(rng.uniform(0, width)), "y": y0})
    shapes.append({"type": "box", "x": 10, "y": 20, "width": 5, "height": 4})
    shapes.append({"type": "polygon", "points": [[10, 20], [15, 20], [15, 24], [10, 24]]})
    shapes.append(
        {"type": "rotated_box", "cx": 30.0, "cy": 20.0, "width": 20, "height": 8, "angle_deg": 30}
    )
    return shapes


def test_shape_pixels_and_temperatures_match_python(module_page: sync_api.Page) -> None:
    rng = np.random.default_rng(3)
    height, width = 48, 64
    celsius = rng.normal(30, 5, (height, width)).astype(np.float32)
    celsius[5, 5] = np.nan
    shapes = random_shapes(rng, width, height)
    out = run(
        module_page,
        "shapes.js",
        """const c = Float32Array.from(arg.celsius, (v) => v === null ? NaN : v);
           return arg.shapes.map((s) => {
             const mask = new Array(arg.w * arg.h).fill(0);
             const spans = m.spans(s, arg.w, arg.h);
             for (let k = 0; k < spans.length; k += 3) {
               const row = spans[k] * arg.w;
               for (let col = spans[k + 1]; col < spans[k + 2]; col++) mask[row + col] = 1;
             }
             return {mask, stats: m.shapeStats(c, arg.w, arg.h, s)};
           });""",
        {
            "celsius": [None if np.isnan(v) else float(v) for v in celsius.ravel()],
            "shapes": shapes,
            "w": width,
            "h": height,
        },
    )
    for shape, got in zip(shapes, out, strict=True):
        expected = shape_from_dict(shape).to_mask((height, width))
        mask = np.array(got["mask"], bool).reshape(height, width)
        np.testing.assert_array_equal(mask, expected, err_msg=json.dumps(shape))
        values = celsius[expected]
        values = values[np.isfinite(values)]
        if values.size:
            assert got["stats"]["max"] == pytest.approx(float(values.max()), abs=1e-6)
            assert got["stats"]["min"] == pytest.approx(float(values.min()), abs=1e-6)
            assert got["stats"]["mean"] == pytest.approx(float(values.mean()), abs=1e-4)
        assert got["stats"]["pixels"] == values.size


def test_track_interpolation_matches_python(module_page: sync_api.Page) -> None:
    rng = np.random.default_rng(11)
    cases = []
    for kind in ("box", "polygon", "point", "rotated_box") * 4:
        pair = []
        for _ in range(2):
            if kind == "box":
                x, y = rng.uniform(0, 50, 2)
                w, h = rng.uniform(1, 40, 2)
                pair.append({"type": "box", "x": x, "y": y, "width": w, "height": h})
            elif kind == "polygon":
                n = int(rng.integers(3, 8))
                pts = np.c_[rng.uniform(0, 90, n), rng.uniform(0, 90, n)]
                pair.append({"type": "polygon", "points": pts.tolist()})
            elif kind == "point":
                pair.append({"type": "point", "x": rng.uniform(0, 90), "y": rng.uniform(0, 90)})
            else:
                angle = float(rng.uniform(-400, 400))
                pair.append(
                    {"type": "rotated_box", "cx": 40, "cy": 40, "width": 9, "height": 5}
                    | {"angle_deg": angle}
                )
        cases.append([*pair, float(rng.uniform(0, 1))])
    out = run(
        module_page, "tracks.js", "return arg.map(([a, b, t]) => m.interpolate(a, b, t));", cases
    )
    for (a, b, t), got in zip(cases, out, strict=True):
        expected = interpolate(shape_from_dict(a), shape_from_dict(b), t).to_dict()
        assert got["type"] == expected["type"]
        for key, value in expected.items():
            if key != "type":
                np.testing.assert_allclose(got[key], value, atol=1e-9, err_msg=key)


def test_track_shape_at_follows_keyframes(module_page: sync_api.Page) -> None:
    box = {"type": "box", "x": 0.0, "y": 0.0, "width": 10.0, "height": 10.0}
    moved = {"type": "box", "x": 20.0, "y": 10.0, "width": 20.0, "height": 10.0}
    keys = [
        {"frame": 2, "shape": box, "outside": False},
        {"frame": 6, "shape": moved, "outside": False},
        {"frame": 8, "shape": moved, "outside": True},
        {"frame": 10, "shape": box, "outside": False},
    ]
    track = Track(
        label="part",
        keyframes=tuple(
            Keyframe(k["frame"], shape_from_dict(k["shape"]), k["outside"]) for k in keys
        ),
        provenance=Provenance.human("tester"),
    )
    got = run(
        module_page,
        "tracks.js",
        "return Array.from({length: 12}, (_, f) => m.shapeAt({keyframes: arg}, f));",
        keys,
    )
    for frame, shape in enumerate(got):
        expected = track.shape_at(frame)
        assert shape == (None if expected is None else expected.to_dict()), frame


def test_auto_range_and_paint_match_render(module_page: sync_api.Page) -> None:
    rng = np.random.default_rng(5)
    celsius = (rng.normal(35, 6, (96, 128)) + np.linspace(0, 20, 128)).astype(np.float32)
    celsius[0, :4] = np.nan
    low, high = auto_range(celsius) or (0.0, 1.0)
    out = run(
        module_page,
        "thermal.js",
        """const {palette} = await import('/js/palettes.js');
           const c = Float32Array.from(arg.c, (v) => v === null ? NaN : v);
           const frame = {width: 128, height: 96, celsius: c};
           const [low, high] = m.autoRange(frame);
           const out = new Uint32Array(c.length);
           m.paint(c, out, palette('iron'), low, high);
           return {low, high, rgba: Array.from(new Uint8Array(out.buffer))};""",
        {"c": [None if np.isnan(v) else float(v) for v in celsius.ravel()]},
    )
    assert out["low"] == pytest.approx(low, abs=1e-9)
    assert out["high"] == pytest.approx(high, abs=1e-9)
    rgb = np.array(out["rgba"], np.uint8).reshape(96, 128, 4)[..., :3]
    expected = render(celsius, palette="iron", range=(low, high))
    # rounding of exact half steps may differ by one palette entry
    differs = np.abs(rgb.astype(int) - expected.astype(int)).max(axis=2) > 0
    assert differs.mean() < 0.002
    assert np.abs(rgb.astype(int) - expected.astype(int)).max() <= 8
