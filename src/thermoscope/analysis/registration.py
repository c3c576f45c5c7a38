"""Registering a part that shifted or turned a little onto a reference image.

A :class:`Motion` maps reference coordinates to image coordinates: a point ``p`` of the reference
appears in the image at ``R(angle) @ (p - centre) + centre + (dx, dy)``. :func:`warp_to_reference`
undoes it, so regions drawn on the reference apply to the warped image. Pixel coordinates are
(x = column, y = row); angles in degrees, counter-clockwise as seen on screen (y down).
Inputs are never modified.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.analysis.spatial import AnalysisError

FloatImage = NDArray[np.floating[Any]]


@dataclass(frozen=True, slots=True)
class Motion:
    """A rigid motion of the part: shift (pixels) and rotation (degrees) about ``centre``.

    Attributes:
        dx, dy: shift in pixels (x = columns, y = rows).
        angle_deg: rotation in degrees.
        centre: (x, y) the rotation is about, pixels.
        score: how well the images matched, higher is better (ECC correlation or mean template
            correlation, 0..1; the phase-correlation peak height).
    """

    dx: float
    dy: float
    angle_deg: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)
    score: float = 1.0

    @property
    def shift_px(self) -> float:
        """Length of the shift, pixels."""
        return math.hypot(self.dx, self.dy)

    def matrix(self) -> NDArray[np.float64]:
        """The 2x3 affine matrix from reference to image coordinates."""
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        cx, cy = self.centre
        return np.array(
            [
                [c, s, cx - c * cx - s * cy + self.dx],
                [-s, c, cy + s * cx - c * cy + self.dy],
            ]
        )


def _finite(image: FloatImage) -> NDArray[np.float32]:
    out = np.asarray(image, dtype=np.float32)
    if out.ndim != 2:
        raise AnalysisError(f"images must be 2-D, got shape {out.shape}")
    bad = ~np.isfinite(out)
    if bad.any():
        fill = float(np.nanmean(np.where(bad, np.nan, out))) if not bad.all() else 0.0
        out = np.where(bad, np.float32(fill), out)
    return out


def estimate_translation(
    reference: FloatImage, image: FloatImage, *, max_shift_px: float | None = None
) -> Motion:
    """Shift of ``image`` against ``reference`` by phase correlation, sub-pixel.

    Both are 2-D of one shape; NaN pixels are replaced by the image mean. The cross-power
    spectrum is normalised with a floor (so smooth thermal scenes, whose high frequencies are
    mostly noise, still correlate), and the peak is searched within ``max_shift_px`` when given.
    """
    ref, img = _finite(reference), _finite(image)
    if ref.shape != img.shape:
        raise AnalysisError(f"shapes differ: {ref.shape} and {img.shape}")
    h, w = ref.shape
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    fa = np.fft.rfft2((ref - ref.mean()) * window)
    fb = np.fft.rfft2((img - img.mean()) * window)
    cross = fb * np.conj(fa)
    magnitude = np.abs(cross)
    cross /= magnitude + 1e-3 * float(magnitude.max()) + 1e-30
    surface = np.fft.fftshift(np.fft.irfft2(cross, s=(h, w)))
    cy, cx = h // 2, w // 2
    if max_shift_px is not None:
        yy, xx = np.ogrid[0:h, 0:w]
        reach = (yy - cy) ** 2 + (xx - cx) ** 2 > (max_shift_px + 1.0) ** 2
        surface = np.where(reach, -np.inf, surface)
    iy, ix = np.unravel_index(int(surface.argmax()), surface.shape)
    fx = ix + _peak_offset(surface[iy, ix - 1 : ix + 2]) if 0 < ix < w - 1 else ix
    fy = iy + _peak_offset(surface[iy - 1 : iy + 2, ix]) if 0 < iy < h - 1 else iy
    return Motion(float(fx - cx), float(fy - cy), score=float(surface[iy, ix]))


def estimate_rigid(
    reference: FloatImage,
    image: FloatImage,
    *,
    max_shift_px: float | None = None,
    iterations: int = 100,
) -> Motion:
    """Shift and rotation of ``image`` against ``reference`` (ECC maximisation, started from
    the phase-correlation shift), rotation about the image centre.

    Raises:
        AnalysisError: the optimisation did not converge.
    """
    ref, img = _finite(reference), _finite(image)
    start = estimate_translation(ref, img, max_shift_px=max_shift_px)
    warp = np.array([[1, 0, start.dx], [0, 1, start.dy]], dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-5)
    try:
        score, found = cv2.findTransformECC(
            ref, img, warp, cv2.MOTION_EUCLIDEAN, criteria, np.ones(ref.shape, np.uint8), 5
        )
    except cv2.error as exc:
        raise AnalysisError(f"rigid registration did not converge: {exc.msg}") from None
    return _from_matrix(np.asarray(found, dtype=np.float64), ref.shape, float(score))


def _from_matrix(m: NDArray[np.float64], shape: tuple[int, ...], score: float) -> Motion:
    # m maps reference -> image: x' = c x + s y + tx ; express as rotation about the centre
    angle = math.degrees(math.atan2(m[0, 1], m[0, 0]))
    cx, cy = (shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0
    moved = m @ np.array([cx, cy, 1.0])
    return Motion(float(moved[0] - cx), float(moved[1] - cy), angle, (cx, cy), score)


def locate_template(
    image: FloatImage,
    template: FloatImage,
    *,
    near: tuple[int, int],
    search_px: int,
) -> tuple[float, float, float]:
    """Where ``template`` matches ``image`` best within ``search_px`` of ``near``.

    Args:
        image: the image to search.
        template: a patch cut from the reference.
        near: (x, y) top-left corner the template had in the reference.
        search_px: how far (pixels) from ``near`` to look, in each direction.

    Returns:
        ``(x, y, score)``: the template's top-left corner in ``image`` (sub-pixel, from a
        parabola through the correlation peak) and the normalised correlation (-1..1).
    """
    img, tpl = _finite(image), _finite(template)
    th, tw = tpl.shape
    x0 = max(near[0] - search_px, 0)
    y0 = max(near[1] - search_px, 0)
    x1 = min(near[0] + search_px + tw, img.shape[1])
    y1 = min(near[1] + search_px + th, img.shape[0])
    if x1 - x0 < tw or y1 - y0 < th:
        raise AnalysisError("the template does not fit inside the search window")
    scores = cv2.matchTemplate(img[y0:y1, x0:x1], tpl, cv2.TM_CCOEFF_NORMED)
    scores = np.nan_to_num(scores, nan=-1.0)
    iy, ix = np.unravel_index(int(scores.argmax()), scores.shape)
    fx = ix + _parabola(scores[iy, ix - 1 : ix + 2]) if 0 < ix < scores.shape[1] - 1 else ix
    fy = iy + _parabola(scores[iy - 1 : iy + 2, ix]) if 0 < iy < scores.shape[0] - 1 else iy
    return float(x0 + fx), float(y0 + fy), float(scores[iy, ix])


def _peak_offset(three: NDArray[Any]) -> float:
    """Sub-pixel offset of a sharp peak: a Gaussian through three samples (else a parabola)."""
    a, b, c = (float(v) for v in three)
    if min(a, b, c) > 0.0:
        la, lb, lc = math.log(a), math.log(b), math.log(c)
        denominator = la - 2.0 * lb + lc
        if denominator < 0.0:
            return 0.5 * (la - lc) / denominator
    return _parabola(three)


def _parabola(three: NDArray[Any]) -> float:
    a, b, c = (float(v) for v in three)
    denominator = a - 2.0 * b + c
    return 0.0 if denominator == 0.0 else 0.5 * (a - c) / denominator


def fit_rigid(
    reference_points: Sequence[tuple[float, float]],
    image_points: Sequence[tuple[float, float]],
    *,
    rotation: bool = True,
    score: float = 1.0,
) -> Motion:
    """The rigid motion (least squares) taking ``reference_points`` onto ``image_points``.

    With one point, or ``rotation=False``, only the mean shift; otherwise shift and rotation
    about the centroid of the reference points.
    """
    src = np.asarray(reference_points, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(image_points, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) == 0:
        raise AnalysisError("need the same, non-zero number of reference and image points")
    cs, cd = src.mean(axis=0), dst.mean(axis=0)
    shift = cd - cs
    if not rotation or len(src) == 1:
        return Motion(float(shift[0]), float(shift[1]), 0.0, (float(cs[0]), float(cs[1])), score)
    a, b = src - cs, dst - cd
    # image y points down: a positive angle turns x towards -y, matching Motion.matrix()
    angle = math.atan2(
        float(np.sum(a[:, 1] * b[:, 0] - a[:, 0] * b[:, 1])),
        float(np.sum(a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1])),
    )
    return Motion(
        float(shift[0]), float(shift[1]), math.degrees(angle), (float(cs[0]), float(cs[1])), score
    )


def warp_to_reference(image: FloatImage, motion: Motion) -> NDArray[np.float32]:
    """The image resampled into reference coordinates (nearest pixel, so every value is one
    the camera measured; NaN where the reference lies outside the image)."""
    src = np.asarray(image, dtype=np.float32)
    if src.ndim != 2:
        raise AnalysisError(f"image must be 2-D, got shape {src.shape}")
    warped = cv2.warpAffine(
        src,
        motion.matrix(),
        (src.shape[1], src.shape[0]),
        flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float("nan"),
    )
    return np.asarray(warped, dtype=np.float32)
