"""The colour bar drawn beside a thermogram: the palette as a vertical strip with °C tick labels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.render.isotherms import Isotherm
from thermoscope.render.palettes import LUT_SIZE, RGB

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK: RGB = (255, 255, 255)
_FRAME: RGB = (160, 160, 160)
#: Layout uses nominal glyph metrics (pixels at font scale 1; generous for every OpenCV
#: version's font), so the bar's size and strip position do not depend on how text is drawn.
_GLYPH_H = 22.0
_GLYPH_W = 20.0
#: Characters of label the bar reserves room for ("-000.0"), so frames keep the same width.
_LABEL_CHARS = 6
#: Most tick labels on a bar, however tall.
_MAX_TICKS = 8


def nice_ticks(lo: float, hi: float, *, max_count: int) -> tuple[list[float], int]:
    """Round tick values in [lo, hi] (°C), at most ``max_count`` of them, and their decimals.

    Steps are 1, 2, 2.5 or 5 times a power of ten; fewer than ``max_count`` ticks may result.
    """
    if max_count < 2 or not (hi - lo) / (max_count - 1) > 0:
        return [], 0
    raw = (hi - lo) / (max_count - 1)
    exponent = math.floor(math.log10(raw))
    mantissa = next(m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * 10.0**exponent >= raw)
    step = mantissa * 10.0**exponent
    decimals = max(0, -exponent + (1 if mantissa == 2.5 else 0) - (1 if mantissa == 10.0 else 0))
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    # ``+ 0.0`` turns a rounded -0.0 into 0.0 so no label reads "-0".
    ticks = [round(k * step, decimals) + 0.0 for k in range(first, last + 1)]
    return ticks, decimals


def draw_colorbar(
    height: int,
    *,
    lut: NDArray[np.uint8],
    value_range: tuple[float, float] | None,
    isotherms: Sequence[Isotherm] = (),
) -> NDArray[np.uint8]:
    """A (height, width, 3) uint8 RGB colour bar for an image ``height`` pixels tall.

    The strip runs from ``value_range[1]`` °C at the top to ``value_range[0]`` °C at the bottom,
    with isotherm bands painted in their colours. ``value_range`` ``None`` (nothing to scale,
    e.g. an all-NaN frame) draws the strip without labels. Text size follows ``height``.
    """
    font_scale = min(max(height / 750.0, 0.4), 1.5)
    thickness = 1 if font_scale < 0.8 else 2
    text_h = math.ceil(_GLYPH_H * font_scale)
    pad = max(3, round(text_h * 0.6))
    strip_w = max(6, round(text_h * 1.2))
    tick_len = max(2, round(text_h * 0.4))
    half = math.ceil(text_h / 2)

    top = pad + text_h + pad + half  # room for the unit title and half of the top label
    bottom = height - 1 - pad - half
    labelled = value_range if bottom - top >= 2 * text_h else None
    if labelled is not None:
        ticks, decimals = nice_ticks(
            *labelled, max_count=min(_MAX_TICKS, (bottom - top) // (2 * text_h) + 1)
        )
    else:
        top, bottom, ticks, decimals = 0, height - 1, [], 0
    labels = [f"{t:.{decimals}f}" for t in ticks]
    sizes = [cv2.getTextSize(s, _FONT, font_scale, thickness)[0] for s in labels]
    label_w = max([math.ceil(_LABEL_CHARS * _GLYPH_W * font_scale)] + [w for w, _ in sizes])

    x0 = pad
    x1 = x0 + strip_w
    label_x = x1 + tick_len + pad // 2
    width = label_x + label_w + pad
    bar = np.zeros((height, width, 3), dtype=np.uint8)  # black background

    # Strip: row ``top`` is the hottest colour, row ``bottom`` the coldest.
    span_rows = max(bottom - top, 1)
    frac = (bottom - np.arange(top, bottom + 1)) / span_rows
    colors = lut[np.rint(frac * (LUT_SIZE - 1)).astype(np.intp)]
    if value_range is not None:
        values = value_range[0] + frac * (value_range[1] - value_range[0])
        for iso in isotherms:
            colors[(values >= iso.lo_c) & (values <= iso.hi_c)] = iso.color
    bar[top : bottom + 1, x0:x1] = colors[:, None, :]

    if labelled is not None:
        cv2.rectangle(bar, (x0 - 1, top - 1), (x1, bottom + 1), _FRAME, 1)
        _draw_unit(bar, x0, pad + text_h, text_h, font_scale, thickness)
        lo, hi = labelled
        for tick, label, (_, label_h) in zip(ticks, labels, sizes, strict=True):
            y = round(bottom - (tick - lo) / (hi - lo) * (bottom - top))
            cv2.line(bar, (x1, y), (x1 + tick_len - 1, y), _INK, 1)
            baseline = y + label_h // 2  # centre the digits on the tick
            cv2.putText(
                bar, label, (label_x, baseline), _FONT, font_scale, _INK, thickness, cv2.LINE_AA
            )
    return bar


def _draw_unit(
    bar: NDArray[np.uint8], x: int, baseline: int, text_h: int, font_scale: float, thickness: int
) -> None:
    """Write "°C" with its baseline at ``baseline`` (a drawn ring: Hershey fonts lack "°")."""
    radius = max(2, round(text_h * 0.2))
    center = (x + radius, baseline - text_h + radius)
    cv2.circle(bar, center, radius, _INK, thickness, cv2.LINE_AA)
    cv2.putText(
        bar,
        "C",
        (x + 2 * radius + max(2, radius), baseline),
        _FONT,
        font_scale,
        _INK,
        thickness,
        cv2.LINE_AA,
    )
