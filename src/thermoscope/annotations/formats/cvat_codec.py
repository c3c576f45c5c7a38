"""CVAT XML shared by its writer and reader: names, attribute input types, and the geometry
of each shape element (``box``, ``polygon``, ``polyline``, ``points``, ``mask``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from thermoscope.annotations import rle
from thermoscope.annotations.formats.records import (
    mask_bounds,
    normal_angle,
)
from thermoscope.annotations.formats.values import (
    number_text,
)
from thermoscope.annotations.schema import AttributeType
from thermoscope.annotations.shapes import (
    Box,
    Mask,
    Point,
    Polygon,
    Polyline,
    RotatedBox,
    Shape,
)
from thermoscope.annotations.tracks import Track

NAME = "cvat"
Mode = Literal["images", "video"]
ANNOTATION_FILE = "annotations.xml"
INPUT_TYPES = {
    AttributeType.ENUM: "select",
    AttributeType.BOOL: "checkbox",
    AttributeType.NUMBER: "number",
    AttributeType.TEXT: "text",
}
TYPES_OF_INPUT = {
    "select": AttributeType.ENUM,
    "radio": AttributeType.ENUM,
    "checkbox": AttributeType.BOOL,
    "number": AttributeType.NUMBER,
    "text": AttributeType.TEXT,
}
SHAPE_TAGS = ("box", "polygon", "polyline", "points", "mask")
MACHINE_SOURCES = ("auto", "semi-auto")


# ---------------------------------------------------------------------------------------------
# geometry codec


def points_text(points: Sequence[tuple[float, float]]) -> str:
    return ";".join(f"{number_text(x)},{number_text(y)}" for x, y in points)


def points_of(text: str) -> list[tuple[float, float]]:
    out = []
    for pair in text.strip().split(";"):
        x, y = pair.split(",")
        out.append((float(x), float(y)))
    return out


def mask_runs(mask: Mask) -> tuple[list[int], int, int, int, int]:
    """CVAT's run lengths of a mask and its box ``left, top, width, height`` (px)."""
    x0, y0, x1, y1 = (int(v) for v in mask_bounds(mask))
    crop = rle.decode(mask.counts, mask.height, mask.width)[y0:y1, x0:x1]
    return rle.encode(crop.T), x0, y0, x1 - x0, y1 - y0


def mask_of(
    runs: Sequence[int], left: int, top: int, w: int, h: int, width: int, height: int
) -> Mask:
    if left < 0 or top < 0 or w <= 0 or h <= 0 or left + w > width or top + h > height:
        raise ValueError(
            f"mask box {w}x{h} at ({left}, {top}) does not fit the {width}x{height} image"
        )
    crop = rle.decode(runs, w, h).T
    full = np.zeros((height, width), dtype=bool)
    full[top : top + h, left : left + w] = crop
    return Mask.from_array(full)


def shape_geometry(shape: Shape) -> tuple[str, dict[str, str]]:
    """The element tag and geometry attributes of a shape."""
    if isinstance(shape, Box):
        return "box", {
            "xtl": number_text(shape.x),
            "ytl": number_text(shape.y),
            "xbr": number_text(shape.x + shape.width),
            "ybr": number_text(shape.y + shape.height),
        }
    if isinstance(shape, RotatedBox):
        return "box", {
            "xtl": number_text(shape.cx - shape.width / 2),
            "ytl": number_text(shape.cy - shape.height / 2),
            "xbr": number_text(shape.cx + shape.width / 2),
            "ybr": number_text(shape.cy + shape.height / 2),
            "rotation": number_text(normal_angle(shape.angle_deg)),
        }
    if isinstance(shape, Polygon | Polyline):
        return shape.kind, {"points": points_text(shape.points)}
    if isinstance(shape, Point):
        return "points", {"points": points_text([(shape.x, shape.y)])}
    runs, left, top, w, h = mask_runs(shape)
    return "mask", {
        "rle": ", ".join(map(str, runs)),
        "left": str(left),
        "top": str(top),
        "width": str(w),
        "height": str(h),
    }


def shapes_of(tag: str, attrib: Mapping[str, str], width: int, height: int) -> list[Shape]:
    """The shapes of an element (several for a ``points`` element with several points)."""
    if tag == "box":
        x0, y0, x1, y1 = (float(attrib[k]) for k in ("xtl", "ytl", "xbr", "ybr"))
        if "rotation" in attrib:
            return [
                RotatedBox(
                    (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, float(attrib["rotation"])
                )
            ]
        return [Box(x0, y0, x1 - x0, y1 - y0)]
    if tag == "polygon":
        return [Polygon(tuple(points_of(attrib["points"])))]
    if tag == "polyline":
        return [Polyline(tuple(points_of(attrib["points"])))]
    if tag == "points":
        return [Point(x, y) for x, y in points_of(attrib["points"])]
    runs = [int(v) for v in re.split(r"\s*,\s*", attrib["rle"].strip())]
    left, top, w, h = (int(float(attrib[k])) for k in ("left", "top", "width", "height"))
    return [mask_of(runs, left, top, w, h, width, height)]


def codec(shape: Shape, width: int, height: int, coded: bool) -> Shape:
    """``shape`` after writing and reading it back (``coded``), or as it is (for ``emit``,
    which writes the original numbers)."""
    if not coded:
        return shape
    tag, attrib = shape_geometry(shape)
    return shapes_of(tag, attrib, width, height)[0]


def one_frame(track: Track, frame_count: int) -> int | None:
    """The frame of a track that shows a shape there only, as an annotation exported to CVAT
    for video looks (``None`` for any other track)."""
    keys = track.keyframes
    first = keys[0]
    if first.outside:
        return None
    if len(keys) == 1 and first.frame == frame_count - 1:
        return first.frame
    if len(keys) == 2 and keys[1].outside and keys[1].frame == first.frame + 1:
        return first.frame
    return None
