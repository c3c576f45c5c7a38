"""Render °C arrays as false-colour RGB thermograms: scale to a range, look up a palette."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.core import ThermalFrame
from thermoscope.render.colorbar import draw_colorbar
from thermoscope.render.errors import RenderError
from thermoscope.render.isotherms import Isotherm
from thermoscope.render.palettes import LUT_SIZE, RGB, checked_rgb, get_palette

#: Automatic ranges look at about this many pixels at most (an even grid over larger frames).
STATS_PIXELS = 1 << 17
#: With a colour bar, shorter frames are enlarged by a whole factor (at most ``MAX_UPSCALE``)
#: so that the tick labels fit; the output is then that factor larger.
MIN_BAR_HEIGHT = 256
MAX_UPSCALE = 8
#: Narrowest range (°C) rendered with contrast: 1 mK, far below any camera's resolution.
MIN_SPAN_C = 1e-3
#: Half the span (°C) given to a frame flatter than ``MIN_SPAN_C``, e.g. a constant frame.
FLAT_HALF_SPAN_C = 0.5
#: Largest magnitude a range end may have (°C): the largest float32, the type of temperatures.
_LIMIT_C = float(np.finfo(np.float32).max)


def render(
    celsius: ArrayLike | ThermalFrame,
    *,
    palette: str = "iron",
    range: tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    isotherms: Sequence[Isotherm] = (),
    colorbar: bool = False,
    nan_color: RGB | None = None,
) -> NDArray[np.uint8]:
    """A false-colour RGB image of a temperature array.

    Args:
        celsius: temperatures in °C, shape (H, W), NaN where undefined (or a ``ThermalFrame``).
            Never modified.
        palette: a name from ``PALETTES``.
        range: (low, high) °C mapped to the palette's ends; colder and hotter pixels take the
            end colours. ``None``: ``auto_range(celsius, percentiles=percentiles)``.
        percentiles: (low, high) percentiles, 0..100, of the finite pixels that set an
            automatic range.
        isotherms: bands painted over the image in their solid colours, later ones on top.
        colorbar: append a vertical colour bar with °C tick labels on the right. Frames shorter
            than ``MIN_BAR_HEIGHT`` pixels are then enlarged by a whole factor (nearest
            neighbour) so the labels stay readable.
        nan_color: colour of NaN pixels; default the palette's neutral ``nan_color``.

    Returns:
        uint8 RGB array (H, W, 3); with a colour bar (k*H, k*W + bar width, 3) for the
        enlargement factor k (1 for frames at least ``MIN_BAR_HEIGHT`` pixels tall).

    Raises:
        RenderError: unknown palette, invalid range, percentiles or isotherms, or an input that
            is not a 2-D numeric array.
    """
    temps = _as_temperatures(celsius)
    pal = get_palette(palette)
    nan_rgb = pal.nan_color if nan_color is None else checked_rgb(nan_color, "nan_color")
    for iso in isotherms:
        if not isinstance(iso, Isotherm):
            raise RenderError(f"isotherms must be Isotherm objects, got {type(iso).__name__}")
    value_range = (
        auto_range(temps, percentiles=percentiles) if range is None else _checked_range(range)
    )
    # No finite pixel at all: any scale will do, only NaN and +-inf are left to colour.
    lo, hi = value_range if value_range is not None else (0.0, 1.0)

    scale = (LUT_SIZE - 1) / (hi - lo)
    clipped = np.clip(temps, lo, hi)  # also pins +-inf to the ends
    index = cv2.addWeighted(clipped, scale, clipped, 0.0, -lo * scale, dtype=cv2.CV_8U)
    rgb = np.asarray(cv2.applyColorMap(index, pal.lut.reshape(LUT_SIZE, 1, 3)), dtype=np.uint8)
    nan = np.isnan(temps)
    if nan.any():
        _paint(rgb, nan, nan_rgb)
    for iso in isotherms:
        _paint(rgb, (temps >= iso.lo_c) & (temps <= iso.hi_c), iso.color)
    if not colorbar:
        return rgb

    height, width = temps.shape
    factor = max(1, min(math.ceil(MIN_BAR_HEIGHT / height), MAX_UPSCALE))
    if factor > 1:
        size = (width * factor, height * factor)
        rgb = np.asarray(
            cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST_EXACT), dtype=np.uint8
        )
    bar = draw_colorbar(rgb.shape[0], lut=pal.lut, value_range=value_range, isotherms=isotherms)
    return np.concatenate((rgb, bar), axis=1)


def auto_range(
    celsius: ArrayLike | ThermalFrame, *, percentiles: tuple[float, float] = (1.0, 99.0)
) -> tuple[float, float] | None:
    """The display range (low, high) in °C: percentiles of the finite pixels.

    Frames larger than ``STATS_PIXELS`` are sampled on an even grid (every k-th row and
    column): the cost stays flat, and on real 640x512 scenes the ends move by at most about 2 %
    of the span (a few of the palette's 256 steps). When both percentiles coincide (a constant
    frame, or one flatter than ``MIN_SPAN_C``), the range is ``FLAT_HALF_SPAN_C`` either side
    of their mean. ``None`` when no pixel is finite.

    Raises:
        RenderError: percentiles outside 0..100 or not increasing; input not a 2-D array.
    """
    temps = _as_temperatures(celsius)
    p_lo, p_hi = (float(p) for p in percentiles)
    if not 0.0 <= p_lo < p_hi <= 100.0:
        raise RenderError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    stride = math.ceil(math.sqrt(temps.size / STATS_PIXELS))
    sample = temps[::stride, ::stride]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0 and stride > 1:  # finite pixels may all sit off the sampling grid
        finite = temps[np.isfinite(temps)]
    if finite.size == 0:
        return None
    lo, hi = (float(v) for v in np.percentile(finite.astype(np.float64), (p_lo, p_hi)))
    if hi - lo < MIN_SPAN_C:
        centre = (lo + hi) / 2.0
        half = max(FLAT_HALF_SPAN_C, abs(centre) * 1e-6)  # a real span for huge values too
        return max(centre - half, -_LIMIT_C), min(centre + half, _LIMIT_C)
    return lo, hi


def _paint(rgb: NDArray[np.uint8], mask: NDArray[np.bool_], color: RGB) -> None:
    """Set the ``mask`` pixels of ``rgb`` (our own fresh image) to ``color``, in place.

    Two masked OpenCV operations (clear, then add) instead of ``rgb[mask] = color``, which is
    several times slower on large masks.
    """
    m = mask.view(np.uint8)
    cv2.subtract(rgb, rgb, dst=rgb, mask=m)
    cv2.add(rgb, np.array((*color, 0), dtype=np.float64), dst=rgb, mask=m)


def _checked_range(value_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in value_range)
    if not (lo >= -_LIMIT_C and hi <= _LIMIT_C and hi - lo >= MIN_SPAN_C):
        raise RenderError(
            f"range must be finite (low, high) °C with high - low >= {MIN_SPAN_C}, "
            f"got {value_range}"
        )
    return lo, hi


def _as_temperatures(celsius: ArrayLike | ThermalFrame) -> NDArray[np.float32]:
    """The input as a C-contiguous float32 (H, W) array; a view where possible, never altered."""
    arr = np.asarray(celsius.celsius if isinstance(celsius, ThermalFrame) else celsius)
    if arr.ndim != 2 or arr.size == 0 or arr.dtype.kind not in "fiu":
        raise RenderError(
            f"expected a non-empty 2-D numeric array of °C, got {arr.dtype} of shape {arr.shape}"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)
