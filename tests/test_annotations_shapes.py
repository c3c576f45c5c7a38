"""Annotation shapes: validation, geometry, rasterisation, dict forms and COCO RLE."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thermoscope.annotations import (
    AnnotationError,
    Box,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    rle,
    shape_from_dict,
)
from thermoscope.annotations.shapes import fill_polygon

NAN = math.nan


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Box(0, 0, 0, 5), "positive size"),
        (lambda: Box(0, 0, 5, -1), "positive size"),
        (lambda: Box(NAN, 0, 5, 5), "finite"),
        (lambda: Box(0, math.inf, 5, 5), "finite"),
        (lambda: RotatedBox(5, 5, 0, 3, 10), "positive size"),
        (lambda: RotatedBox(5, 5, 3, 3, NAN), "finite"),
        (lambda: Polygon(((0, 0), (1, 1))), "at least 3"),
        (lambda: Polygon(((0, 0), (1, 1), (2, 2))), "zero area"),
        (lambda: Polygon(((0, 0), (1, NAN), (2, 0))), "finite"),
        (lambda: Polygon(((0, 0, 1), (1, 1), (2, 0))), "pairs"),
        (lambda: Polyline(((0, 0),)), "at least 2"),
        (lambda: Polyline(((3, 3), (3, 3))), "zero length"),
        (lambda: Point(NAN, 1), "finite"),
        (lambda: Mask(2, 2, (4,)), "no pixel"),
        (lambda: Mask(2, 2, (1, 2)), "sum to 3"),
        (lambda: Mask(2, 2, (1, -1, 4)), "non-negative"),
        (lambda: Mask(0, 2, ()), "positive size"),
    ],
)
def test_invalid_shapes_are_rejected(build: object, message: str) -> None:
    with pytest.raises(AnnotationError, match=message):
        build()  # type: ignore[operator]


def test_annotation_error_is_a_thermoscope_value_error() -> None:
    from thermoscope.core import ThermoscopeError

    assert issubclass(AnnotationError, ThermoscopeError)
    assert issubclass(AnnotationError, ValueError)


def test_box_geometry_and_mask() -> None:
    box = Box(10, 20, 5, 4)
    assert box.bounds() == (10.0, 20.0, 15.0, 24.0)
    assert box.area == 20.0
    mask = box.to_mask((30, 40))
    assert mask.sum() == 20
    assert mask[20:24, 10:15].all()
    assert box.inside(15, 24)
    assert not box.inside(14.9, 24)
    assert not Box(-0.5, 0, 2, 2).inside(10, 10)


def test_box_and_its_polygon_select_the_same_pixels() -> None:
    for box in (Box(10, 20, 5, 4), Box(3.3, 1.7, 6.2, 2.9), Box(0, 0, 40, 30)):
        poly = Polygon(box.corners())
        assert np.array_equal(box.to_mask((30, 40)), poly.to_mask((30, 40)))
        assert poly.area == pytest.approx(box.area)


def test_pixel_centre_rule() -> None:
    # a box from 0.4 to 1.6 contains the centres 0.5 and 1.5 -> two columns
    assert Box(0.4, 0.4, 1.2, 1.2).to_mask((4, 4)).sum() == 4
    # a box from 0.6 to 1.4 contains no centre
    assert Box(0.6, 0.6, 0.8, 0.8).to_mask((4, 4)).sum() == 0


def test_rotated_box() -> None:
    flat = RotatedBox(20, 15, 10, 4, 0)
    assert flat.bounds() == pytest.approx((15, 13, 25, 17))
    assert np.array_equal(flat.to_mask((30, 40)), Box(15, 13, 10, 4).to_mask((30, 40)))
    turned = RotatedBox(20, 15, 10, 4, 90)
    assert turned.bounds() == pytest.approx((18, 10, 22, 20))
    assert np.array_equal(turned.to_mask((30, 40)), Box(18, 10, 4, 10).to_mask((30, 40)))
    # positive angles turn clockwise on screen: the first corner (top-left at 0°) goes top-right
    x, y = RotatedBox(0, 0, 2, 2, 90).corners()[0]
    assert (x, y) == pytest.approx((1, -1))
    diamond = RotatedBox(30, 30, 30, 30, 45)
    assert diamond.area == 900.0
    assert diamond.to_mask((60, 60)).sum() == pytest.approx(900, rel=0.05)
    assert diamond.inside(60, 60)
    assert RotatedBox(3, 3, 4, 4, 0).inside(40, 30)
    assert not RotatedBox(2, 2, 4, 4, 45).inside(40, 30)  # corners reach x = -0.83


def test_polygon_area_bounds_mask() -> None:
    tri = Polygon(((0, 0), (20, 0), (0, 10)))
    assert tri.area == 100.0
    assert tri.bounds() == (0, 0, 20, 10)
    assert tri.to_mask((10, 20)).sum() == pytest.approx(100, abs=10)
    assert tri.perimeter() == pytest.approx(30 + math.hypot(20, 10))
    # edge exactly on the frame border is inside
    assert tri.inside(20, 10)
    assert not tri.inside(19, 10)


def test_self_intersecting_polygon_uses_even_odd_rule() -> None:
    bowtie = Polygon(((0, 0), (10, 10), (10, 0), (0, 10)))
    mask = bowtie.to_mask((10, 10))
    assert mask[5, 1]
    assert mask[5, 8]
    assert not mask[1, 5]
    assert not mask[8, 5]
    assert bowtie.area == 0  # shoelace: the two lobes cancel


def test_polyline_and_point() -> None:
    line = Polyline(((0.5, 0.5), (9.5, 0.5), (9.5, 5.5)))
    assert line.length() == pytest.approx(14)
    assert line.area == 0
    mask = line.to_mask((10, 10))
    assert mask[0, :].all()
    assert mask[:6, 9].all()
    assert mask.sum() == 15
    point = Point(3.7, 2.2)
    assert point.to_mask((5, 5)).nonzero() == (np.array([2]), np.array([3]))
    assert Point(5, 5).to_mask((5, 5))[4, 4]  # on the far corner: the last pixel
    assert Point(6, 5).to_mask((5, 5)).sum() == 0
    assert Point(5, 5).inside(5, 5)
    assert not Point(5.1, 5).inside(5, 5)


def test_mask_shape() -> None:
    arr = np.zeros((6, 8), dtype=bool)
    arr[1:3, 2:7] = True
    mask = Mask.from_array(arr)
    assert mask.area == 10
    assert mask.bounds() == (2, 1, 7, 3)
    assert np.array_equal(mask.to_mask((6, 8)), arr)
    assert mask.inside(8, 6)
    assert not mask.inside(6, 8)
    with pytest.raises(AnnotationError, match="asked for"):
        mask.to_mask((8, 6))


def test_fill_polygon_clips_to_the_frame() -> None:
    out = fill_polygon(((-5, -5), (5, -5), (5, 5), (-5, 5)), (4, 4))
    assert out.sum() == 16


SHAPES = [
    Box(1, 2, 3, 4),
    RotatedBox(5.5, 6.25, 3, 2, -30),
    Polygon(((0, 0), (4, 0), (2, 3.5))),
    Polyline(((0, 0), (4, 1))),
    Point(0.1, 0.2),
    Mask.from_array(np.eye(5, dtype=bool)),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.kind)
def test_shape_dict_round_trip(shape: object) -> None:
    import json

    data = shape.to_dict()  # type: ignore[attr-defined]
    assert shape_from_dict(json.loads(json.dumps(data))) == shape


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "circle"}, "unknown shape type"),
        ({"type": "box", "x": 1, "y": 1, "width": 2}, "missing 'height'"),
        ({"type": "box", "x": 1, "y": 1, "width": 2, "height": 2, "z": 0}, "unknown key"),
        ({"type": "box", "x": "1", "y": 1, "width": 2, "height": 2}, r"shape\.x"),
        ({"type": "box", "x": 1, "y": 1, "width": 0, "height": 2}, "positive size"),
        ({"type": "polygon", "points": [[0, 0], [1]]}, r"points\[1\]"),
        ({"type": "mask", "size": [2, 2], "counts": "0"}, "sum to 0"),
        ({"type": "mask", "size": [2, 2], "counts": [1, True, 2]}, "integer"),
        ({"type": "point", "x": True, "y": 1}, "number"),
    ],
)
def test_shape_from_dict_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(AnnotationError, match=message):
        shape_from_dict(data)


def test_mask_from_dict_accepts_uncompressed_counts() -> None:
    arr = np.zeros((3, 4), dtype=bool)
    arr[0, 1] = True
    counts = rle.encode(arr)
    assert shape_from_dict({"type": "mask", "size": [3, 4], "counts": counts}) == Mask(3, 4, counts)


def test_rle_known_values() -> None:
    arr = np.array([[0, 1], [1, 1]], dtype=bool)  # column-major: 0, 1, 1, 1
    assert rle.encode(arr) == [1, 3]
    assert rle.encode(np.ones((2, 2), dtype=bool)) == [0, 4]
    assert rle.encode(np.zeros((2, 3), dtype=bool)) == [6]
    assert rle.area([1, 3]) == 3


@pytest.mark.parametrize(
    ("counts", "text"),
    [
        ([6], "6"),
        ([1, 3], "13"),
        ([0, 4], "04"),
        ([32], "P1"),  # two 5-bit groups, the first flagged with 0x20
        ([5, 5, 5, 5], "5550"),  # the fourth count is stored as the difference (0)
        ([3, 1, 10, 2, 4], "31:1J"),  # differences 1 (2 - 1) and -6 (4 - 10)
    ],
)
def test_rle_string_known_encodings(counts: list[int], text: str) -> None:
    assert rle.to_string(counts) == text
    assert rle.from_string(text) == counts


@pytest.mark.parametrize("text", ["1x\x7f", "P"])
def test_rle_string_errors(text: str) -> None:
    with pytest.raises(AnnotationError, match="RLE string"):
        rle.from_string(text)


masks = hnp.arrays(
    dtype=np.bool_,
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
)


@settings(max_examples=200, deadline=None)
@given(masks)
def test_rle_round_trip(mask: np.ndarray) -> None:
    counts = rle.encode(mask)
    assert sum(counts) == mask.size
    assert rle.area(counts) == mask.sum()
    assert np.array_equal(rle.decode(counts, *mask.shape), mask)
    text = rle.to_string(counts)
    assert rle.from_string(text) == counts
    assert all(48 <= ord(c) < 48 + 64 for c in text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=30))
def test_rle_string_round_trip_of_any_counts(counts: list[int]) -> None:
    assert rle.from_string(rle.to_string(counts)) == counts


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
@settings(max_examples=100, deadline=None)
@given(masks)
def test_pycocotools_reads_and_writes_the_same_rle(mask: np.ndarray) -> None:
    coco = pytest.importorskip("pycocotools.mask")
    h, w = mask.shape
    ours = rle.to_string(rle.encode(mask))
    theirs = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert theirs["counts"].decode("ascii") == ours
    assert np.array_equal(coco.decode({"size": [h, w], "counts": ours.encode()}), mask)
    if mask.any():
        assert coco.area({"size": [h, w], "counts": ours.encode()}) == Mask.from_array(mask).area
