"""Region measurements on one temperature image: extremes, percentiles, spots, ΔT, asymmetry,
gradients.

Every function takes ``values`` (a 2-D float array, usually °C; often the bounding-box crop of a
region) and an optional boolean ``mask`` of the same shape (True = inside the region; ``None`` =
every pixel). NaN pixels count as outside the region. Pixel locations are reported as column
``x`` and row ``y`` plus ``origin`` — pass the crop's top-left corner to get frame coordinates.
Inputs are never modified; options are keyword-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import ThermoscopeError

FloatImage = NDArray[np.floating[Any]]
BoolImage = NDArray[np.bool_]
Statistic = Literal["max", "min", "mean", "median"]
Mirror = Literal["none", "horizontal", "vertical"]


class AnalysisError(ThermoscopeError, ValueError):
    """An analysis function was given inputs it cannot measure (shapes, empty windows...)."""


class PixelValue(NamedTuple):
    """A measured value and the pixel it comes from (a named tuple: cheap, immutable).

    Attributes:
        value: the measurement in the function's unit (NaN when the region has no valid pixel).
        x: column of the pixel (``None`` for values no single pixel carries, such as a mean).
        y: row of the pixel (``None`` likewise).
    """

    value: float
    x: int | None = None
    y: int | None = None


@dataclass(frozen=True, slots=True)
class SpotArea:
    """The largest connected spot beyond a threshold.

    Attributes:
        area_px: pixels in the largest spot (0 when no pixel is beyond the threshold).
        x, y: the most extreme pixel of that spot (hottest for hot spots, coldest for cold
            spots), ``None`` when there is no spot.
        total_px: pixels beyond the threshold in all spots together.
        spots: number of separate spots (8-connected).
        threshold: the threshold used, °C (absolute even when given relative to the median).
    """

    area_px: int
    x: int | None
    y: int | None
    total_px: int
    spots: int
    threshold: float


_NO_PIXEL = PixelValue(float("nan"))


def _check(values: FloatImage, mask: BoolImage | None) -> None:
    if values.ndim != 2:
        raise AnalysisError(f"values must be 2-D, got shape {values.shape}")
    if mask is not None and mask.shape != values.shape:
        raise AnalysisError(f"mask shape {mask.shape} differs from values shape {values.shape}")


def _at(index: int, width: int, origin: tuple[int, int], value: float) -> PixelValue:
    row, col = divmod(index, width)
    return PixelValue(value, int(col) + origin[0], int(row) + origin[1])


def _extreme(
    values: FloatImage, mask: BoolImage | None, largest: bool, origin: tuple[int, int]
) -> PixelValue:
    fill = -np.inf if largest else np.inf
    work = values if mask is None else np.where(mask, values, fill)
    index = int(work.argmax() if largest else work.argmin())
    value = float(work[divmod(index, work.shape[1])])
    if value != value:  # NaN inside: argmax stops at the first one, so look again without them
        work = np.where(np.isnan(work), fill, work)
        index = int(work.argmax() if largest else work.argmin())
        value = float(work[divmod(index, work.shape[1])])
    if value == fill:
        return _NO_PIXEL
    return _at(index, values.shape[1], origin, value)


def region_max(
    values: FloatImage, mask: BoolImage | None = None, *, origin: tuple[int, int] = (0, 0)
) -> PixelValue:
    """Highest value in the region and its pixel (the first in row-major order on ties)."""
    _check(values, mask)
    return _extreme(values, mask, True, origin)


def region_min(
    values: FloatImage, mask: BoolImage | None = None, *, origin: tuple[int, int] = (0, 0)
) -> PixelValue:
    """Lowest value in the region and its pixel (the first in row-major order on ties)."""
    _check(values, mask)
    return _extreme(values, mask, False, origin)


def _pixels(values: FloatImage, mask: BoolImage | None) -> NDArray[np.floating[Any]]:
    """The region's valid (non-NaN) values, 1-D; may be a view of ``values``: do not modify."""
    flat = values.reshape(-1) if mask is None else values[mask]
    if flat.size and np.isnan(flat.max()):  # max propagates NaN and is the cheapest check
        flat = flat[~np.isnan(flat)]
    return flat


def _own_pixels(values: FloatImage, mask: BoolImage | None) -> NDArray[np.floating[Any]]:
    """Like :func:`_pixels`, but an array of its own that may be reordered."""
    flat = _pixels(values, mask)
    return flat.copy() if np.may_share_memory(flat, values) else flat


def _quantile(pixels: NDArray[np.floating[Any]], q: float) -> float:
    # NumPy's default ("linear") percentile, from a partial sort of ``pixels`` in place
    position = (pixels.size - 1) * (q / 100.0)
    lo = math.floor(position)
    hi = min(lo + 1, pixels.size - 1)
    pixels.partition(hi)
    b = float(pixels[hi])
    a = float(pixels[:hi].max()) if hi != lo else b  # the lo-th value: largest before hi
    t = position - lo
    return b - (b - a) * (1.0 - t) if t >= 0.5 else a + (b - a) * t


def region_mean(values: FloatImage, mask: BoolImage | None = None) -> float:
    """Mean of the region's valid values (computed in float64; NaN when there is none)."""
    _check(values, mask)
    if mask is None:
        # what ndarray.mean(dtype=float64) computes, without its Python wrapper
        mean = float(np.add.reduce(values, axis=None, dtype=np.float64)) / values.size
        if mean == mean:
            return mean
    pixels = _pixels(values, mask)
    return float(pixels.mean(dtype=np.float64)) if pixels.size else float("nan")


def region_percentile(
    values: FloatImage,
    mask: BoolImage | None = None,
    *,
    q: float,
    origin: tuple[int, int] = (0, 0),
) -> PixelValue:
    """The ``q``-th percentile (0..100, linear interpolation) and the pixel closest to it."""
    _check(values, mask)
    if not 0.0 <= q <= 100.0:
        raise AnalysisError(f"percentile must be in 0..100, got {q}")
    pixels = _own_pixels(values, mask)
    if pixels.size == 0:
        return _NO_PIXEL
    value = _quantile(pixels, q)
    distance = np.abs(values - value)
    nearest = _extreme(distance, mask, False, (0, 0))
    assert nearest.x is not None
    assert nearest.y is not None
    return PixelValue(value, nearest.x + origin[0], nearest.y + origin[1])


def region_median(values: FloatImage, mask: BoolImage | None = None) -> float:
    """Median of the region's valid values (NaN when there is none)."""
    _check(values, mask)
    pixels = _own_pixels(values, mask)
    return _quantile(pixels, 50.0) if pixels.size else float("nan")


def region_statistic(
    values: FloatImage,
    mask: BoolImage | None = None,
    *,
    statistic: Statistic,
    origin: tuple[int, int] = (0, 0),
) -> PixelValue:
    """One statistic of the region; max and min carry their pixel, mean and median none."""
    if statistic == "max":
        return region_max(values, mask, origin=origin)
    if statistic == "min":
        return region_min(values, mask, origin=origin)
    if statistic == "mean":
        return PixelValue(region_mean(values, mask))
    if statistic == "median":
        return PixelValue(region_median(values, mask))
    raise AnalysisError(f"unknown statistic {statistic!r}")


def delta_t(
    values: FloatImage,
    reference: FloatImage | float,
    *,
    mask: BoolImage | None = None,
    reference_mask: BoolImage | None = None,
    statistic: Statistic = "max",
    reference_statistic: Statistic | None = None,
    origin: tuple[int, int] = (0, 0),
) -> PixelValue:
    """Temperature difference: ``statistic`` of the region minus that of a reference, °C.

    Args:
        values, mask: the region.
        reference: another region's values (with ``reference_mask``), or a temperature in °C
            (an ambient reading).
        statistic: statistic of the region; its pixel is reported for max and min.
        reference_statistic: statistic of the reference region (default: ``statistic``).
    """
    own = region_statistic(values, mask, statistic=statistic, origin=origin)
    if isinstance(reference, np.ndarray):
        ref = region_statistic(
            reference, reference_mask, statistic=reference_statistic or statistic
        ).value
    else:
        ref = float(reference)
    return PixelValue(own.value - ref, own.x, own.y)


def _spots(
    values: FloatImage,
    mask: BoolImage | None,
    threshold: float,
    hot: bool,
    origin: tuple[int, int],
) -> SpotArea:
    beyond = values > threshold if hot else values < threshold  # NaN compares False
    if mask is not None:
        beyond &= mask
    if not beyond.any():
        return SpotArea(0, None, None, 0, 0, threshold)
    count, labels = cv2.connectedComponents(beyond.view(np.uint8), connectivity=8)
    if count == 2:
        # one spot: it holds every pixel beyond the threshold, so also the region's extreme
        total = int(np.count_nonzero(beyond))
        peak = _extreme(values, mask, hot, origin)
        return SpotArea(total, peak.x, peak.y, total, 1, float(threshold))
    sizes = np.bincount(labels.ravel(), minlength=count)
    sizes[0] = 0
    largest = int(sizes.argmax())
    peak = _extreme(values, labels == largest, hot, origin)
    return SpotArea(
        int(sizes[largest]), peak.x, peak.y, int(sizes.sum()), count - 1, float(threshold)
    )


def hot_spot_area(
    values: FloatImage,
    mask: BoolImage | None = None,
    *,
    threshold: float | None = None,
    above_median: float | None = None,
    origin: tuple[int, int] = (0, 0),
) -> SpotArea:
    """The largest 8-connected spot hotter than a threshold.

    Args:
        threshold: absolute threshold, °C (pixels strictly above it are hot).
        above_median: or a threshold this many °C above the region's median.
    """
    _check(values, mask)
    limit = _threshold(values, mask, threshold, above_median, 1.0)
    return _spots(values, mask, limit, True, origin)


def cold_spot_area(
    values: FloatImage,
    mask: BoolImage | None = None,
    *,
    threshold: float | None = None,
    below_median: float | None = None,
    origin: tuple[int, int] = (0, 0),
) -> SpotArea:
    """The largest 8-connected spot colder than a threshold.

    Args:
        threshold: absolute threshold, °C (pixels strictly below it are cold).
        below_median: or a threshold this many °C below the region's median.
    """
    _check(values, mask)
    limit = _threshold(values, mask, threshold, below_median, -1.0)
    return _spots(values, mask, limit, False, origin)


def _threshold(
    values: FloatImage,
    mask: BoolImage | None,
    absolute: float | None,
    relative: float | None,
    sign: float,
) -> float:
    if (absolute is None) == (relative is None):
        raise AnalysisError("give exactly one threshold: absolute or relative to the median")
    if absolute is not None:
        return float(absolute)
    assert relative is not None
    return region_median(values, mask) + sign * float(relative)


def asymmetry(
    values: FloatImage,
    partner: FloatImage,
    *,
    mask: BoolImage | None = None,
    partner_mask: BoolImage | None = None,
    statistic: Statistic = "mean",
    mirror: Mirror = "none",
    origin: tuple[int, int] = (0, 0),
) -> PixelValue:
    """How a region differs from its mirror-image partner, °C.

    Without ``mirror``: ``statistic`` of the region minus that of the partner (the region's pixel
    reported for max and min). With ``mirror`` (``"horizontal"`` flips the partner left-right,
    ``"vertical"`` upside-down): the pixel-wise difference region - flipped partner with the
    largest magnitude, signed, at its pixel in the region; both must have the same shape and
    only pixels inside both masks count.
    """
    _check(values, mask)
    _check(partner, partner_mask)
    if mirror == "none":
        own = region_statistic(values, mask, statistic=statistic, origin=origin)
        other = region_statistic(partner, partner_mask, statistic=statistic).value
        return PixelValue(own.value - other, own.x, own.y)
    if partner.shape != values.shape:
        raise AnalysisError(
            f"mirrored comparison needs equal shapes, got {values.shape} and {partner.shape}"
        )
    axis = 1 if mirror == "horizontal" else 0
    diff = values - np.flip(partner, axis=axis)
    both = mask
    if partner_mask is not None:
        flipped = np.flip(partner_mask, axis=axis)
        both = flipped if mask is None else mask & flipped
    peak = _extreme(np.abs(diff), both, True, (0, 0))
    if peak.x is None or peak.y is None:
        return _NO_PIXEL
    return PixelValue(float(diff[peak.y, peak.x]), peak.x + origin[0], peak.y + origin[1])


def max_gradient(
    values: FloatImage,
    mask: BoolImage | None = None,
    *,
    pixel_pitch_mm: float | None = None,
    origin: tuple[int, int] = (0, 0),
) -> PixelValue:
    """Largest temperature gradient magnitude in the region and its pixel.

    The gradient is ``hypot(dT/dx, dT/dy)`` from central differences (one-sided at the array's
    edges, so a region's neighbours inside ``values`` count); °C/pixel, or °C/mm when
    ``pixel_pitch_mm`` (the size of a pixel on the part) is given.
    """
    _check(values, mask)
    image = np.asarray(values, dtype=np.float32)
    magnitude = np.asarray(cv2.magnitude(_central(image, 1), _central(image, 0)), np.float32)
    peak = _extreme(magnitude, mask, True, origin)
    if pixel_pitch_mm is not None:
        if not pixel_pitch_mm > 0.0:
            raise AnalysisError(f"pixel pitch must be positive, got {pixel_pitch_mm}")
        return PixelValue(peak.value / pixel_pitch_mm, peak.x, peak.y)
    return peak


def _central(image: NDArray[np.float32], axis: int) -> NDArray[np.float32]:
    """``np.gradient`` along one axis (central inside, one-sided at the edges), float32."""
    if image.shape[axis] < 2:
        return np.zeros_like(image)
    dx, dy = (1, 0) if axis == 1 else (0, 1)
    out = np.asarray(
        cv2.Sobel(image, cv2.CV_32F, dx, dy, ksize=1, scale=0.5, borderType=cv2.BORDER_REPLICATE),
        dtype=np.float32,
    )
    if axis == 1:
        out[:, 0] = image[:, 1] - image[:, 0]
        out[:, -1] = image[:, -1] - image[:, -2]
    else:
        out[0] = image[1] - image[0]
        out[-1] = image[-1] - image[-2]
    return out
