"""Inspection overlays: a thermogram with its regions, findings and hot/cold spots drawn on it.

Each region is outlined in the colour of its worst finding's verdict (green OK, amber WARN, red
NG; light grey when no finding names it) and tagged with its name. Each finding that carries an
extreme pixel ``(x, y)`` gets a marker there, a crosshair for a hot spot (the pixel is at least
as warm as its region's median) or a downward triangle for a cold one, with a short label of the
measured value ("78.2 °C"). Lines have a dark halo so they stay visible on every palette.

Small frames are enlarged by a whole factor, exactly as ``render`` does for its colour bar, so
labels stay readable on 160x120 sensors; every coordinate is mapped through the same scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.core import Finding, Inspection, Region, ThermalFrame, Verdict
from thermoscope.render import auto_range, palette_lut, render
from thermoscope.render.colorbar import draw_colorbar
from thermoscope.render.palettes import RGB
from thermoscope.render.thermogram import MAX_UPSCALE, MIN_BAR_HEIGHT

#: Outline and marker colour of each verdict (sRGB).
VERDICT_COLORS: Mapping[Verdict, RGB] = {
    Verdict.OK: (46, 204, 64),
    Verdict.WARN: (255, 176, 0),
    Verdict.NG: (240, 36, 36),
    Verdict.RETAKE: (90, 140, 255),
}
#: Outline colour of a region that no finding refers to.
UNCHECKED_COLOR: RGB = (215, 215, 215)

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_HALO: RGB = (0, 0, 0)
_LABEL_BG: RGB = (16, 16, 16)
_LABEL_ALPHA = 0.72
_WHITE: RGB = (255, 255, 255)


class _Marker(NamedTuple):
    """A finding's extreme as drawn: overlay pixel, worst verdict, hot or cold, value label."""

    cx: int
    cy: int
    verdict: Verdict
    hot: bool
    label: str


@dataclass(frozen=True, slots=True)
class _Style:
    """Sizes (output pixels) of everything drawn, derived from the output image size."""

    font_scale: float
    text_thickness: int
    line: int
    marker: int
    pad: int

    @classmethod
    def for_size(cls, width: int, height: int) -> _Style:
        font_scale = min(max(min(width, height * 1.25) / 900.0, 0.36), 0.9)
        text_h = _text_size("0", font_scale, 1)[1]
        return cls(
            font_scale=font_scale,
            text_thickness=1,
            line=2 if min(width, height) >= 300 else 1,
            marker=max(5, round(text_h * 0.9)),
            pad=max(2, round(text_h * 0.3)),
        )


def overlay_scale(shape: tuple[int, int], *, width: int | None = None) -> float:
    """The factor from frame pixels to overlay pixels for a (H, W) frame.

    ``width`` ``None``: a whole factor enlarging frames shorter than ``MIN_BAR_HEIGHT`` pixels
    (at most ``MAX_UPSCALE``), the same as ``render(colorbar=True)``; else ``width / W``.
    """
    height, frame_width = shape
    if width is None:
        return float(max(1, min(math.ceil(MIN_BAR_HEIGHT / height), MAX_UPSCALE)))
    if width < 1:
        raise ValueError(f"overlay width must be at least 1 pixel, got {width}")
    return width / frame_width


def to_overlay_pixel(x: int, y: int, scale: float) -> tuple[int, int]:
    """The overlay pixel (column, row) holding the centre of frame pixel ``(x, y)``."""
    return math.floor((x + 0.5) * scale), math.floor((y + 0.5) * scale)


def render_overlay(
    frame_or_celsius: ThermalFrame | ArrayLike,
    inspection: Inspection | None,
    regions: Mapping[str, Region],
    *,
    palette: str = "iron",
    range: tuple[float, float] | None = None,
    colorbar: bool = True,
    width: int | None = None,
    labels: Literal["all", "flagged"] = "all",
) -> NDArray[np.uint8]:
    """The thermogram of a part with its regions and findings drawn on it.

    Args:
        frame_or_celsius: the part's frame, or its temperatures in °C, shape (H, W). Never
            modified.
        inspection: the part's inspection; ``None`` draws the regions only (light grey).
        regions: the recipe's regions by name, in frame pixel coordinates. A finding refers to
            a region by name, or to a pair as ``"a-b"``; both regions of a pair take its verdict.
        palette: a palette name from ``thermoscope.render.PALETTES``.
        range: (low, high) °C mapped to the palette's ends; ``None``: ``auto_range``.
        colorbar: append a vertical colour bar with °C labels on the right.
        width: width of the thermogram in the output (pixels, colour bar excluded); ``None``
            keeps the frame's size, enlarging frames shorter than ``MIN_BAR_HEIGHT`` pixels by
            a whole factor (see ``overlay_scale``).
        labels: ``"all"`` tags every region and marks every finding's extreme;
            ``"flagged"`` (for small thumbnails) only WARN and NG ones. Every region is
            outlined either way.

    Returns:
        uint8 RGB image (h, w [+ colour bar], 3) with h = round(H * s), w = round(W * s) for
        the scale s of ``overlay_scale``. Frame pixel ``(x, y)`` lands on overlay pixel
        ``to_overlay_pixel(x, y, s)``.

    Raises:
        RenderError: unknown palette, invalid range, or not a 2-D numeric array.
        RegionError: a region does not fit the frame.
    """
    value_range = auto_range(frame_or_celsius) if range is None else range
    base = render(frame_or_celsius, palette=palette, range=value_range)
    temps = np.asarray(
        frame_or_celsius.celsius if isinstance(frame_or_celsius, ThermalFrame) else frame_or_celsius
    )
    shape = (int(temps.shape[0]), int(temps.shape[1]))
    scale = overlay_scale(shape, width=width)
    out_w, out_h = max(1, round(shape[1] * scale)), max(1, round(shape[0] * scale))
    interpolation = cv2.INTER_NEAREST_EXACT if scale >= 1.0 else cv2.INTER_AREA
    resized = cv2.resize(base, (out_w, out_h), interpolation=interpolation)
    image = np.ascontiguousarray(resized, dtype=np.uint8)
    style = _Style.for_size(out_w, out_h)

    findings = inspection.findings if inspection is not None else ()
    masks = {name: region.mask(shape) for name, region in regions.items()}
    verdicts = _region_verdicts(findings, masks)
    colors = {n: VERDICT_COLORS[verdicts[n]] if n in verdicts else UNCHECKED_COLOR for n in masks}
    for name, mask in masks.items():
        _draw_outline(image, mask, colors[name], style)

    markers = []
    for (x, y), group in _findings_by_pixel(findings, shape).items():
        if labels == "flagged":
            group = [f for f in group if f.verdict is not Verdict.OK]
        if group:
            owners = [masks[n] for f in group for n in region_names(f.region, masks)]
            cx, cy = to_overlay_pixel(x, y, scale)
            markers.append(
                _Marker(
                    min(cx, out_w - 1),
                    min(cy, out_h - 1),
                    Verdict.worst([f.verdict for f in group]),
                    _is_hot(temps, x, y, owners),
                    ", ".join(dict.fromkeys(format_value(f.value, f.unit) for f in group)),
                )
            )
    r = style.marker
    placed = [(m.cx - r, m.cy - r, m.cx + r + 1, m.cy + r + 1) for m in markers]
    for m in markers:
        _draw_marker(image, m.cx, m.cy, m.hot, VERDICT_COLORS[m.verdict], style)
    for name in masks:
        if labels == "all" or verdicts.get(name, Verdict.OK) is not Verdict.OK:
            bounds = regions[name].bounds()
            placed.append(_draw_name_tag(image, name, bounds, scale, colors[name], placed, style))
    for m in markers:
        placed.append(_draw_value_label(image, m.label, m.cx, m.cy, placed, style))

    if not colorbar:
        return image
    bar = draw_colorbar(out_h, lut=palette_lut(palette), value_range=value_range)
    return np.concatenate((image, bar), axis=1)


def format_value(value: float, unit: str) -> str:
    """A short label of a measured value with its unit: "78.2 °C", "0.153 °C/s"."""
    return f"{format_number(value, unit)} {unit}".strip()


def format_number(value: float, unit: str) -> str:
    """``value`` as a short number: one decimal for °C, three significant digits otherwise."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.1f}" if unit == "°C" else f"{value:.3g}"


def region_names(finding_region: str, names: Iterable[str]) -> tuple[str, ...]:
    """The region names a finding's ``region`` refers to: itself, or both halves of ``"a-b"``.

    Names are matched exactly first, so regions whose own names contain "-" still work; a
    finding naming no known region (e.g. ``""``, the whole frame) refers to none.
    """
    known = set(names)
    if finding_region in known:
        return (finding_region,)
    parts = finding_region.split("-")
    for cut in range(1, len(parts)):
        left, right = "-".join(parts[:cut]), "-".join(parts[cut:])
        if left in known and right in known:
            return left, right
    return ()


def _region_verdicts(
    findings: Iterable[Finding], masks: Mapping[str, NDArray[np.bool_]]
) -> dict[str, Verdict]:
    """The worst verdict among the findings that refer to each region (absent: none does)."""
    out: dict[str, Verdict] = {}
    for finding in findings:
        for name in region_names(finding.region, masks):
            out[name] = Verdict.worst([out.get(name, Verdict.OK), finding.verdict])
    return out


def _findings_by_pixel(
    findings: Iterable[Finding], shape: tuple[int, int]
) -> dict[tuple[int, int], list[Finding]]:
    """Findings with an extreme pixel inside the frame, grouped by that pixel."""
    groups: dict[tuple[int, int], list[Finding]] = {}
    height, width = shape
    for finding in findings:
        if finding.x is None or finding.y is None:
            continue
        if 0 <= finding.x < width and 0 <= finding.y < height:
            groups.setdefault((finding.x, finding.y), []).append(finding)
    return groups


def _is_hot(temps: NDArray[np.generic], x: int, y: int, masks: list[NDArray[np.bool_]]) -> bool:
    """Whether pixel (x, y) is at least as warm as the median of its region (else the frame)."""
    values = temps[masks[0]] if masks else temps
    finite = values[np.isfinite(values)]
    value = float(temps[y, x])
    return finite.size == 0 or not math.isfinite(value) or value >= float(np.median(finite))


def _draw_outline(
    image: NDArray[np.uint8], mask: NDArray[np.bool_], color: RGB, style: _Style
) -> None:
    """Outline the region ``mask`` (frame pixels) on ``image``, scaled to its size."""
    height, width = image.shape[:2]
    scaled = cv2.resize(mask.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    contours, _ = cv2.findContours(scaled, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, _HALO, style.line + 2, cv2.LINE_8)
    cv2.drawContours(image, contours, -1, color, style.line, cv2.LINE_8)


def _draw_name_tag(
    image: NDArray[np.uint8],
    name: str,
    bounds: tuple[int, int, int, int],
    scale: float,
    color: RGB,
    placed: list[tuple[int, int, int, int]],
    style: _Style,
) -> tuple[int, int, int, int]:
    """A filled tag with the region's name at its top-left corner, above it where there is room.

    Tries above and inside the top-left corner, then the top-right one, then below and inside
    the bottom-left one, for a place that overlaps nothing in ``placed``.
    """
    text_w, text_h, baseline = _text_size(name, style.font_scale, style.text_thickness)
    box_w, box_h = text_w + 2 * style.pad, text_h + baseline + 2 * style.pad
    x0, y0 = math.floor(bounds[0] * scale), math.floor(bounds[1] * scale)
    x1 = math.floor(bounds[2] * scale)
    y1 = math.floor(bounds[3] * scale)
    candidates = [
        (x0, y0 - box_h),
        (x0, y0),
        (x1 - box_w, y0 - box_h),
        (x1 - box_w, y0),
        (x0, y1),
        (x0, y1 - box_h),
    ]
    rect = _place(candidates, box_w, box_h, image, placed)
    cv2.rectangle(image, rect[:2], (rect[2] - 1, rect[3] - 1), color, cv2.FILLED)
    _put_text(image, name, (rect[0] + style.pad, rect[3] - style.pad - baseline), _HALO, style)
    return rect


def _draw_marker(
    image: NDArray[np.uint8], cx: int, cy: int, hot: bool, color: RGB, style: _Style
) -> None:
    """A crosshair (hot spot) or a downward triangle (cold spot) centred on (cx, cy)."""
    r = style.marker
    for ink, thickness in ((_HALO, style.line + 2), (color, style.line)):
        if hot:  # a ring with four ticks outside it; the pixel itself stays visible
            inner = max(2, round(r * 0.5))
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                start = (cx + dx * inner, cy + dy * inner)
                end = (cx + dx * r, cy + dy * r)
                cv2.line(image, start, end, ink, thickness, cv2.LINE_8)
            cv2.circle(image, (cx, cy), inner, ink, thickness, cv2.LINE_AA)
        else:
            pts = np.array(
                [(cx - r, cy - round(r * 0.6)), (cx + r, cy - round(r * 0.6)), (cx, cy + r)],
                dtype=np.int32,
            )
            cv2.polylines(image, [pts], True, ink, thickness, cv2.LINE_AA)


def _draw_value_label(
    image: NDArray[np.uint8],
    text: str,
    cx: int,
    cy: int,
    placed: list[tuple[int, int, int, int]],
    style: _Style,
) -> tuple[int, int, int, int]:
    """A dark translucent label beside the marker at (cx, cy), avoiding labels already placed."""
    text_w, text_h, baseline = _text_size(text, style.font_scale, style.text_thickness)
    box_w, box_h = text_w + 2 * style.pad, text_h + baseline + 2 * style.pad
    d = style.marker + 2
    candidates = [
        (cx + d, cy - d - box_h + box_h // 2),
        (cx + d, cy + d - box_h // 2),
        (cx - d - box_w, cy - d - box_h + box_h // 2),
        (cx - d - box_w, cy + d - box_h // 2),
        (cx - box_w // 2, cy - d - box_h),
        (cx - box_w // 2, cy + d),
    ]
    x0, y0, x1, y1 = rect = _place(candidates, box_w, box_h, image, placed)
    patch = image[y0:y1, x0:x1].astype(np.float32)
    bg = np.array(_LABEL_BG, dtype=np.float32)
    image[y0:y1, x0:x1] = np.rint(patch * (1 - _LABEL_ALPHA) + bg * _LABEL_ALPHA).astype(np.uint8)
    _put_text(image, text, (x0 + style.pad, y1 - style.pad - baseline), _WHITE, style)
    return rect


def _place(
    candidates: list[tuple[int, int]],
    w: int,
    h: int,
    image: NDArray[np.uint8],
    placed: list[tuple[int, int, int, int]],
) -> tuple[int, int, int, int]:
    """The first candidate w x h box (moved inside ``image``) that overlaps nothing placed."""
    rects = [_clamp_rect(x, y, w, h, image) for x, y in candidates]
    return next((r for r in rects if not any(_overlap(r, p) for p in placed)), rects[0])


def _clamp_rect(
    x: int, y: int, w: int, h: int, image: NDArray[np.uint8]
) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of a w x h box at (x, y), shifted to lie inside ``image``."""
    height, width = image.shape[:2]
    x0 = min(max(x, 0), max(width - w, 0))
    y0 = min(max(y, 0), max(height - h, 0))
    return x0, y0, min(x0 + w, width), min(y0 + h, height)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _printable(text: str) -> str:
    """``text`` in what Hershey fonts can draw: ASCII plus "°" (drawn as a ring)."""
    return "".join(c if c == "°" or " " <= c <= "~" else "?" for c in text)


def _text_size(text: str, font_scale: float, thickness: int) -> tuple[int, int, int]:
    """(width, height, baseline) in pixels of ``text`` as ``_put_text`` draws it."""
    pieces = _printable(text).split("°")
    height = cv2.getTextSize("0", _FONT, font_scale, thickness)[0][1]
    baseline = cv2.getTextSize("g", _FONT, font_scale, thickness)[1]
    width = sum(cv2.getTextSize(p, _FONT, font_scale, thickness)[0][0] for p in pieces if p)
    width += (len(pieces) - 1) * _ring_advance(height)
    return width, height, baseline


def _ring_advance(text_h: int) -> int:
    return 2 * _ring_radius(text_h) + 2


def _ring_radius(text_h: int) -> int:
    return max(1, round(text_h * 0.16))


def _put_text(
    image: NDArray[np.uint8], text: str, origin: tuple[int, int], color: RGB, style: _Style
) -> None:
    """Draw ``text`` with its baseline at ``origin``; each "°" is drawn as a small ring."""
    x, y = origin
    text_h = _text_size("0", style.font_scale, style.text_thickness)[1]
    for i, piece in enumerate(_printable(text).split("°")):
        if i:
            radius = _ring_radius(text_h)
            cv2.circle(image, (x + 1 + radius, y - text_h + radius), radius, color, 1, cv2.LINE_AA)
            x += _ring_advance(text_h)
        if piece:
            cv2.putText(
                image,
                piece,
                (x, y),
                _FONT,
                style.font_scale,
                color,
                style.text_thickness,
                cv2.LINE_AA,
            )
            x += cv2.getTextSize(piece, _FONT, style.font_scale, style.text_thickness)[0][0]
