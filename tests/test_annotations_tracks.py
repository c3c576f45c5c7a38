"""Tracks: keyframes, interpolation of every shape type, visibility and temperature curves."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from thermoscope.annotations import (
    AnnotatedItem,
    AnnotationError,
    Box,
    Keyframe,
    Mask,
    Point,
    Polygon,
    Polyline,
    Provenance,
    RotatedBox,
    Track,
    interpolate,
)
from thermoscope.annotations.shapes import polygon_area
from thermoscope.annotations.tracks import resample_pair
from thermoscope.core import ThermalFrame, ThermalSequence
from thermoscope.datasets.synthetic import ProductLine

ANNA = Provenance.human("anna", created=datetime(2026, 3, 1, tzinfo=UTC))


def track(*keyframes: Keyframe) -> Track:
    return Track(id="t1", label="component", keyframes=keyframes, provenance=ANNA)


def test_keyframe_validation() -> None:
    with pytest.raises(AnnotationError, match="two keyframes at frame 3"):
        track(Keyframe(3, Point(1, 1)), Keyframe(3, Point(2, 2)))
    with pytest.raises(AnnotationError, match="mix shape types"):
        track(Keyframe(0, Point(1, 1)), Keyframe(3, Box(0, 0, 1, 1)))
    with pytest.raises(AnnotationError, match="at least one keyframe"):
        track()
    with pytest.raises(AnnotationError, match="frame must be an integer >= 0"):
        Keyframe(-1, Point(1, 1))
    with pytest.raises(AnnotationError, match="outside must be a bool"):
        Keyframe(0, Point(1, 1), 1)  # type: ignore[arg-type]


def test_keyframes_are_sorted() -> None:
    t = track(Keyframe(9, Point(9, 9)), Keyframe(2, Point(2, 2)))
    assert [k.frame for k in t.keyframes] == [2, 9]


def test_box_midpoint_and_visibility() -> None:
    t = track(Keyframe(2, Box(0, 0, 10, 10)), Keyframe(12, Box(20, 10, 30, 20)))
    assert t.shape_at(1) is None  # before the first keyframe
    assert t.shape_at(2) == Box(0, 0, 10, 10)
    assert t.shape_at(7) == Box(10, 5, 20, 15)
    assert t.shape_at(12) == Box(20, 10, 30, 20)
    assert t.shape_at(50) == Box(20, 10, 30, 20)  # persists after the last keyframe


def test_outside_keyframes_hide_the_object() -> None:
    t = track(
        Keyframe(0, Point(0, 0)),
        Keyframe(4, Point(8, 8), outside=True),
        Keyframe(6, Point(10, 10)),
        Keyframe(10, Point(20, 10)),
    )
    assert t.shape_at(2) == Point(0, 0)  # held toward an outside keyframe
    assert t.shape_at(4) is None
    assert t.shape_at(5) is None
    assert t.shape_at(6) == Point(10, 10)
    assert t.shape_at(8) == Point(15, 10)
    assert t.visible_frames(12) == [0, 1, 2, 3, 6, 7, 8, 9, 10, 11]


def test_rotated_box_turns_along_the_shorter_arc() -> None:
    a = RotatedBox(10, 10, 4, 2, 350)
    b = RotatedBox(20, 10, 8, 2, 10)
    mid = interpolate(a, b, 0.5)
    assert isinstance(mid, RotatedBox)
    assert (mid.cx, mid.cy, mid.width, mid.height) == (15, 10, 6, 2)
    assert mid.angle_deg % 360 == pytest.approx(0)
    quarter = interpolate(RotatedBox(0, 0, 2, 2, 0), RotatedBox(0, 0, 2, 2, -90), 0.25)
    assert isinstance(quarter, RotatedBox)
    assert quarter.angle_deg == pytest.approx(-22.5)


def test_mask_is_held() -> None:
    a = Mask.from_array(np.eye(4, dtype=bool))
    b = Mask.from_array(~np.eye(4, dtype=bool))
    t = track(Keyframe(0, a), Keyframe(4, b))
    assert t.shape_at(3) == a
    assert t.shape_at(4) == b


def test_interpolate_rejects_different_types() -> None:
    with pytest.raises(AnnotationError, match="cannot interpolate a box to a point"):
        interpolate(Box(0, 0, 1, 1), Point(0, 0), 0.5)


def test_polygon_resampling_aligns_start_and_direction() -> None:
    square = ((10, 10), (20, 10), (20, 20), (10, 20))
    # the same square moved 20 px right, listed from another vertex and in the other direction
    moved = ((40, 20), (40, 10), (30, 10), (30, 20))
    mid = interpolate(Polygon(square), Polygon(moved), 0.5)
    assert isinstance(mid, Polygon)
    assert mid.area == pytest.approx(100)
    assert mid.bounds() == pytest.approx((20, 10, 30, 20))


def test_polygon_resampling_keeps_every_vertex_and_roughly_the_area() -> None:
    tri = ((0.0, 0.0), (30.0, 0.0), (0.0, 30.0))
    hexagon = tuple(
        (15 + 12 * math.cos(k * math.pi / 3), 15 + 12 * math.sin(k * math.pi / 3)) for k in range(6)
    )
    pa, pb = resample_pair(tri, hexagon, closed=True)
    assert len(pa) == len(pb) >= 6
    for vertex in tri:
        assert np.min(np.hypot(*(pa - vertex).T)) < 1e-9
    for vertex in hexagon:
        assert np.min(np.hypot(*(pb - vertex).T)) < 1e-9
    assert polygon_area(pa) == pytest.approx(polygon_area(tri))
    assert polygon_area(pb) == pytest.approx(polygon_area(hexagon))
    t = track(Keyframe(0, Polygon(tri)), Keyframe(10, Polygon(hexagon)))
    areas = [t.shape_at(f).area for f in range(11)]  # type: ignore[union-attr]
    lo, hi = sorted((Polygon(tri).area, Polygon(hexagon).area))
    assert all(0.8 * lo <= a <= 1.05 * hi for a in areas)
    assert t.shape_at(0) == Polygon(tri)
    assert t.shape_at(10) == Polygon(hexagon)


def test_polyline_direction_is_aligned() -> None:
    a = Polyline(((0, 0), (10, 0)))
    b = Polyline(((10, 6), (0, 6)))  # drawn the other way
    mid = interpolate(a, b, 0.5)
    assert isinstance(mid, Polyline)
    assert mid.points == ((0, 3), (10, 3))


def test_item_checks_keyframes_inside() -> None:
    t = track(Keyframe(0, Box(0, 0, 10, 10)), Keyframe(5, Box(30, 0, 10, 10)))
    with pytest.raises(AnnotationError, match=r"tracks\[0\] \(id 't1'\) keyframe 1: box spans"):
        AnnotatedItem(item_id="x", width=32, height=24, frame_count=6, tracks=(t,))
    with pytest.raises(AnnotationError, match=r"frame 5 out of range 0\.\.4"):
        AnnotatedItem(item_id="x", width=64, height=24, frame_count=5, tracks=(t,))


def test_track_dict_round_trip() -> None:
    t = track(
        Keyframe(0, Polygon(((0, 0), (5, 0), (0, 5)))),
        Keyframe(3, Polygon(((1, 1), (6, 1), (1, 6))), True),
    )
    assert Track.from_dict(t.to_dict()) == t


@pytest.fixture(scope="module")
def heating() -> list[ThermalFrame]:
    line = ProductLine("pcb", rng=np.random.default_rng(11), jitter_px=0, jitter_deg=0)
    return list(line.part(0, sequence=True).frames)


def test_temperature_curve_matches_numpy_on_the_interpolated_mask(
    heating: list[ThermalFrame],
) -> None:
    height, width = heating[0].shape
    last = len(heating) - 1
    # a box sliding over the board and a polygon growing: both interpolated on most frames
    moving = Track(
        id="u1",
        label="component",
        keyframes=(Keyframe(2, Box(20.3, 20.7, 30, 26)), Keyframe(last, Box(60.5, 40.2, 20, 18))),
        provenance=ANNA,
    )
    growing = Track(
        id="q1",
        label="component",
        keyframes=(
            Keyframe(0, Polygon(((105, 20), (125, 20), (115, 40)))),
            Keyframe(last - 3, Polygon(((100, 60), (130, 60), (130, 90), (100, 90))), True),
        ),
        provenance=ANNA,
    )
    AnnotatedItem(
        item_id="seq",
        width=width,
        height=height,
        frame_count=len(heating),
        tracks=(moving, growing),
    )
    for t in (moving, growing):
        curve = t.temperature_curve(heating)
        assert [p.frame for p in curve] == t.visible_frames(len(heating))
        for point in curve:
            shape = t.shape_at(point.frame)
            assert shape is not None
            values = heating[point.frame].celsius[shape.to_mask((height, width))]
            assert point.stats.pixels == values.size > 0
            assert point.max_c == pytest.approx(float(values.max()))
            assert point.min_c == pytest.approx(float(values.min()))
            assert point.mean_c == pytest.approx(float(values.astype(np.float64).mean()))
            assert point.timestamp_s == heating[point.frame].metadata.timestamp_s
    assert moving.temperature_curve(heating)[0].frame == 2
    u1 = track(Keyframe(0, Box(26, 24, 28, 24)))  # the layout's U1, held over the sequence
    curve = u1.temperature_curve(heating)
    assert len(curve) == len(heating)
    assert curve[-1].max_c > curve[0].max_c + 5  # U1 heats up after power-on


def test_temperature_curve_reads_only_visible_frames(heating: list[ThermalFrame]) -> None:
    read: list[int] = []

    def read_frame(i: int) -> ThermalFrame:
        read.append(i)
        return heating[i]

    sequence = ThermalSequence(len(heating), read_frame)
    t = track(Keyframe(3, Point(50.5, 40.5)), Keyframe(6, Point(60.5, 40.5), outside=True))
    curve = t.temperature_curve(sequence)
    assert read == [3, 4, 5]
    assert [p.stats.pixels for p in curve] == [1, 1, 1]
    assert curve[0].max_c == pytest.approx(heating[3].temperature_at(50, 40))


def test_temperature_curve_skips_nan_pixels() -> None:
    celsius = np.full((4, 4), 30.0, dtype=np.float32)
    celsius[0, 0] = np.nan
    frames = [ThermalFrame(celsius), ThermalFrame(np.full((4, 4), np.nan, dtype=np.float32))]
    curve = track(Keyframe(0, Box(0, 0, 2, 2))).temperature_curve(frames)
    assert curve[0].stats.pixels == 3
    assert curve[0].mean_c == 30.0
    assert curve[1].stats.pixels == 0
    assert math.isnan(curve[1].max_c)
    assert curve[1].timestamp_s is None
