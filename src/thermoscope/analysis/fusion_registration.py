"""Registering a visual photo onto its thermal frame, and measuring how well they agree.

A :class:`VisualRegistration` is a 3x3 homography from visual pixels to thermal pixels
(x = column, y = row, pixel centres at integer coordinates). It comes either

- from the camera's own alignment (:func:`from_camera_alignment`, FLIR's ``Real2IR``,
  ``OffsetX``/``OffsetY`` and digital zoom): the visual photo is ``Real2IR`` times as wide as
  the thermal image the camera showed (the frame's centre enlarged by the zoom), and the
  thermal frame's centre lies ``Offset`` visual pixels from the photo's centre; or
- from a calibration (:func:`fit_points`): an affine (>= 3 point pairs) or a homography (>= 4)
  fitted by least squares to matched points, e.g. the corners of a heated checkerboard found in
  both images (:func:`checkerboard_corners`), with the reprojection error reported.

Calibrations are stored per camera pair as JSON (:meth:`VisualRegistration.to_json`). Inputs
are never modified.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.analysis.spatial import AnalysisError
from thermoscope.core.visual import CameraAlignment, VisualImage
from thermoscope.render.fusion import Mode, fuse

Model = Literal["affine", "homography", "camera"]
#: Fewest point pairs each fitted model needs.
MIN_POINTS: dict[str, int] = {"affine": 3, "homography": 4}
#: Version of the JSON calibration format.
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class VisualRegistration:
    """Where visual pixels land on the thermal frame.

    Attributes:
        matrix: 3x3 homography, visual pixel (x, y, 1) -> thermal pixel (homogeneous).
        visual_size: (width, height) of the visual photo it was made for, pixels.
        thermal_size: (width, height) of the thermal frame, pixels.
        model: ``"camera"`` (the camera's own metadata), ``"affine"`` or ``"homography"``.
        rms_error_px: root-mean-square reprojection error of the fitted points, thermal pixels
            (``None`` for the camera's metadata, which has no points).
        max_error_px: largest reprojection error of the fitted points, thermal pixels.
        points: how many point pairs were fitted (0 for the camera's metadata).
        visual_camera, thermal_camera: the camera pair it belongs to (serials or labels).
    """

    matrix: NDArray[np.float64]
    visual_size: tuple[int, int]
    thermal_size: tuple[int, int]
    model: Model = "homography"
    rms_error_px: float | None = None
    max_error_px: float | None = None
    points: int = 0
    visual_camera: str = ""
    thermal_camera: str = ""

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        if m.shape != (3, 3) or not np.isfinite(m).all() or abs(np.linalg.det(m)) < 1e-12:
            raise AnalysisError(f"registration matrix must be a finite invertible 3x3, got {m}")
        object.__setattr__(self, "matrix", m / m[2, 2] if m[2, 2] != 0 else m)
        for name in ("visual_size", "thermal_size"):
            w, h = getattr(self, name)
            if not (int(w) > 0 and int(h) > 0):
                raise AnalysisError(f"{name} must be two positive pixel counts, got {(w, h)}")
            object.__setattr__(self, name, (int(w), int(h)))

    def apply(self, points: ArrayLike) -> NDArray[np.float64]:
        """Thermal pixel coordinates (N, 2) of visual pixel coordinates ``points`` (N, 2)."""
        pts = _points(points, "points")
        out = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), self.matrix)
        return np.asarray(out.reshape(-1, 2), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the calibration file format, see docs/fusion.md)."""
        return {
            "format": "thermoscope-visual-registration",
            "version": FORMAT_VERSION,
            "visual_camera": self.visual_camera,
            "thermal_camera": self.thermal_camera,
            "model": self.model,
            "visual_size": list(self.visual_size),
            "thermal_size": list(self.thermal_size),
            "matrix": self.matrix.tolist(),
            "rms_error_px": self.rms_error_px,
            "max_error_px": self.max_error_px,
            "points": self.points,
        }

    def to_json(self) -> str:
        """The calibration as JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> VisualRegistration:
        """Read the dict form back.

        Raises:
            AnalysisError: a field is missing or invalid (the error names it).
        """
        if not isinstance(data, dict) or data.get("format") != "thermoscope-visual-registration":
            raise AnalysisError("not a thermoscope visual registration (format field)")
        if data.get("version") != FORMAT_VERSION:
            raise AnalysisError(f"unsupported registration version {data.get('version')!r}")
        try:
            model = data["model"]
            if model not in ("affine", "homography", "camera"):
                raise AnalysisError(f"model must be affine, homography or camera, got {model!r}")
            rms, worst = data.get("rms_error_px"), data.get("max_error_px")
            return cls(
                matrix=np.asarray(data["matrix"], dtype=np.float64),
                visual_size=(int(data["visual_size"][0]), int(data["visual_size"][1])),
                thermal_size=(int(data["thermal_size"][0]), int(data["thermal_size"][1])),
                model=model,
                rms_error_px=None if rms is None else float(rms),
                max_error_px=None if worst is None else float(worst),
                points=int(data.get("points", 0)),
                visual_camera=str(data.get("visual_camera", "")),
                thermal_camera=str(data.get("thermal_camera", "")),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise AnalysisError(f"registration field missing or invalid: {exc!r}") from exc

    @classmethod
    def from_json(cls, text: str) -> VisualRegistration:
        """Parse :meth:`to_json`'s text.

        Raises:
            AnalysisError: not JSON, or a field is missing or invalid.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AnalysisError(f"registration is not JSON: {exc}") from exc
        return cls.from_dict(data)


def _points(points: ArrayLike, what: str) -> NDArray[np.float64]:
    try:
        pts = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"{what} must be numbers, (N, 2): {exc}") from exc
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise AnalysisError(f"{what} must have shape (N, 2), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise AnalysisError(f"{what} must all be finite")
    return pts


def from_camera_alignment(
    alignment: CameraAlignment,
    *,
    visual_size: tuple[int, int],
    thermal_size: tuple[int, int],
    visual_camera: str = "",
    thermal_camera: str = "",
) -> VisualRegistration:
    """The registration the camera's own metadata states (FLIR ``Real2IR``, offsets, zoom).

    The photo is ``Real2IR`` times as wide as the thermal image the camera showed, which is
    the frame's centre enlarged by ``digital_zoom``; so one visual pixel spans
    ``W_thermal * Real2IR / (digital_zoom * W_visual)`` thermal pixels. The thermal frame's
    centre lies (``OffsetX``, ``OffsetY``) visual pixels from the photo's centre.

    Args:
        alignment: the camera's alignment record.
        visual_size: (width, height) of the visual photo, pixels.
        thermal_size: (width, height) of the thermal frame, pixels.
    """
    vw, vh = visual_size
    tw, th = thermal_size
    scale = tw * alignment.real_to_ir / (alignment.digital_zoom * vw)  # thermal px / visual px
    # the visual point under the thermal centre (pixel centres at integer coordinates)
    cx_v = (vw - 1) / 2.0 + alignment.offset_x
    cy_v = (vh - 1) / 2.0 + alignment.offset_y
    matrix = np.array(
        [
            [scale, 0.0, (tw - 1) / 2.0 - scale * cx_v],
            [0.0, scale, (th - 1) / 2.0 - scale * cy_v],
            [0.0, 0.0, 1.0],
        ]
    )
    return VisualRegistration(
        matrix,
        visual_size=visual_size,
        thermal_size=thermal_size,
        model="camera",
        visual_camera=visual_camera,
        thermal_camera=thermal_camera,
    )


def plain_resize(
    *, visual_size: tuple[int, int], thermal_size: tuple[int, int]
) -> VisualRegistration:
    """The naive registration: the whole photo stretched onto the thermal frame."""
    vw, vh = visual_size
    tw, th = thermal_size
    sx, sy = tw / vw, th / vh
    matrix = np.array(
        [[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]], dtype=np.float64
    )
    return VisualRegistration(
        matrix, visual_size=visual_size, thermal_size=thermal_size, model="affine"
    )


def fit_points(
    visual_points: ArrayLike,
    thermal_points: ArrayLike,
    *,
    visual_size: tuple[int, int],
    thermal_size: tuple[int, int],
    model: Literal["affine", "homography"] = "homography",
    visual_camera: str = "",
    thermal_camera: str = "",
) -> VisualRegistration:
    """Fit a registration to matched points (least squares over all pairs, no outlier rejection).

    Args:
        visual_points: (N, 2) pixel coordinates in the visual photo.
        thermal_points: (N, 2) the same points in the thermal frame.
        model: ``"affine"`` (>= 3 pairs) or ``"homography"`` (>= 4 pairs).

    Returns:
        The registration with its RMS and largest reprojection error (thermal pixels).

    Raises:
        AnalysisError: too few or mismatched points, points on one line, or no fit.
    """
    if model not in MIN_POINTS:
        raise AnalysisError(f"model must be 'affine' or 'homography', got {model!r}")
    src = _points(visual_points, "visual points")
    dst = _points(thermal_points, "thermal points")
    if src.shape != dst.shape:
        raise AnalysisError(f"{len(src)} visual points but {len(dst)} thermal points")
    need = MIN_POINTS[model]
    if len(src) < need:
        raise AnalysisError(
            f"a {model} calibration needs at least {need} matched points, got {len(src)}"
        )
    for what, pts in (("visual", src), ("thermal", dst)):
        centred = pts - pts.mean(axis=0)
        singular = np.linalg.svd(centred, compute_uv=False)
        spread = float(singular[0]) if singular.size else 0.0
        if singular.size < 2 or singular[1] <= 1e-6 * max(spread, 1.0):
            raise AnalysisError(f"the {what} points lie on one line; they cannot fix a {model}")
    if model == "affine":
        design = np.hstack([src, np.ones((len(src), 1))])
        solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
        matrix = np.vstack([solution.T, [0.0, 0.0, 1.0]])
    else:
        found, _ = cv2.findHomography(src, dst, 0)
        if found is None:
            raise AnalysisError("no homography fits these points")
        matrix = np.asarray(found, dtype=np.float64)
    reg = VisualRegistration(
        matrix,
        visual_size=visual_size,
        thermal_size=thermal_size,
        model=model,
        points=len(src),
        visual_camera=visual_camera,
        thermal_camera=thermal_camera,
    )
    errors = np.linalg.norm(reg.apply(src) - dst, axis=1)
    return VisualRegistration(
        reg.matrix,
        visual_size=visual_size,
        thermal_size=thermal_size,
        model=model,
        rms_error_px=float(np.sqrt(np.mean(errors**2))),
        max_error_px=float(errors.max()),
        points=len(src),
        visual_camera=visual_camera,
        thermal_camera=thermal_camera,
    )


def checkerboard_corners(image: ArrayLike, pattern: tuple[int, int]) -> NDArray[np.float64]:
    """Inner corners (N, 2) of a checkerboard with ``pattern`` = (columns, rows) inner corners,
    found sub-pixel in a grey or RGB visual photo or a thermal frame (°C, any range).

    A heated checkerboard shows in both cameras; corners come in the same order in both, so
    ``fit_points(checkerboard_corners(visual, p), checkerboard_corners(thermal, p))`` calibrates.

    Raises:
        AnalysisError: the pattern is not found.
    """
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if arr.ndim != 2:
        raise AnalysisError(f"image must be (H, W) or (H, W, 3), got {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.any():
        raise AnalysisError("image has no finite pixel")
    lo, hi = float(arr[finite].min()), float(arr[finite].max())
    grey = np.where(finite, (arr - lo) * (255.0 / max(hi - lo, 1e-9)), 0.0).astype(np.uint8)
    found, corners = cv2.findChessboardCorners(grey, pattern)
    if not found or corners is None:
        raise AnalysisError(f"no {pattern[0]}x{pattern[1]} checkerboard found")
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
    refined = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1), criteria)
    return np.asarray(refined.reshape(-1, 2), dtype=np.float64)


#: Brightest value (0..255) a letterbox bar's pixels reach (JPEG ringing next to the picture).
BAR_LEVEL = 24


def picture_box(visual: ArrayLike) -> tuple[int, int, int, int]:
    """The part of a photo that holds picture: (x1, y1, x2, y2), end-exclusive pixels, without
    the black bars some cameras pad their photo with (the FLIR AX8 letterboxes its 640x480
    photo). A bar is a run of whole rows or columns at an edge no brighter than
    ``BAR_LEVEL``; the whole photo when trimming would leave less than half of either side
    (a dark scene, not bars)."""
    arr = np.asarray(visual)
    level = arr.max(axis=2) if arr.ndim == 3 else arr
    h, w = level.shape
    rows = np.flatnonzero(level.max(axis=1) > BAR_LEVEL)
    cols = np.flatnonzero(level.max(axis=0) > BAR_LEVEL)
    if rows.size == 0 or cols.size == 0:
        return 0, 0, w, h
    x1, x2, y1, y2 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    if 2 * (x2 - x1) < w or 2 * (y2 - y1) < h:
        return 0, 0, w, h
    return x1, y1, x2, y2


def warp_to_thermal(
    visual: ArrayLike, registration: VisualRegistration
) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """The visual photo resampled onto the thermal frame's pixel grid.

    Args:
        visual: (H, W) or (H, W, 3) photo of ``registration.visual_size``.

    Returns:
        The warped photo (thermal H, W[, 3], the input's dtype; 0 outside the photo) and a mask
        of the thermal pixels the photo's picture covers (its letterbox bars left out, see
        :func:`picture_box`).

    Raises:
        AnalysisError: the photo's size is not the one the registration was made for.
    """
    arr = np.asarray(visual)
    if arr.ndim not in (2, 3) or (arr.shape[1], arr.shape[0]) != registration.visual_size:
        raise AnalysisError(
            f"visual image is {arr.shape}, the registration was made for "
            f"{registration.visual_size[0]}x{registration.visual_size[1]}"
        )
    tw, th = registration.thermal_size
    m = registration.matrix
    # shrinking by a lot: pre-blur with area averaging so fine texture does not alias
    scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
    src = arr
    if scale < 0.5:
        k = max(scale * 2.0, 1e-3)
        size = (max(1, round(arr.shape[1] * k)), max(1, round(arr.shape[0] * k)))
        src = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
        sx, sy = arr.shape[1] / size[0], arr.shape[0] / size[1]
        m = m @ np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
    warped = cv2.warpPerspective(src, m, (tw, th), flags=cv2.INTER_LINEAR, borderValue=0)
    x1, y1, x2, y2 = picture_box(src)
    ones = np.zeros(src.shape[:2], dtype=np.uint8)
    ones[y1:y2, x1:x2] = 1
    covered = cv2.warpPerspective(ones, m, (tw, th), flags=cv2.INTER_NEAREST, borderValue=0) > 0
    return np.asarray(warped), np.asarray(covered)


def edge_map(image: ArrayLike, *, share: float = 0.08, sigma_px: float = 1.0) -> NDArray[np.bool_]:
    """The strongest-gradient ``share`` of the pixels (Sobel magnitude after a Gaussian blur of
    ``sigma_px``): a contrast-independent edge map for thermal °C and visual grey alike."""
    arr = np.asarray(image, dtype=np.float32)
    finite = np.isfinite(arr)
    arr = np.where(finite, arr, float(arr[finite].mean()) if finite.any() else 0.0)
    blurred = cv2.GaussianBlur(arr, (0, 0), sigma_px)
    magnitude = np.hypot(cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1))
    threshold = float(np.quantile(magnitude, 1.0 - share))
    return np.asarray(magnitude > threshold)


def edge_distance(
    thermal_c: ArrayLike, visual_grey: ArrayLike, mask: ArrayLike | None = None
) -> float:
    """Mean distance (thermal pixels) from each visual edge pixel to the nearest thermal edge,
    over the pixels in ``mask`` (an eroded mask keeps the photo's border out)."""
    t = np.asarray(thermal_c, dtype=np.float32)
    v = np.asarray(visual_grey, dtype=np.float32)
    if t.shape != v.shape:
        raise AnalysisError(f"shapes differ: {t.shape} and {v.shape}")
    keep = np.ones(t.shape, bool) if mask is None else np.asarray(mask, bool)
    keep = cv2.erode(keep.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    thermal_edges = edge_map(t)
    visual_edges = edge_map(v) & keep
    if not visual_edges.any():
        raise AnalysisError("no visual edges inside the covered area")
    distance = cv2.distanceTransform((~thermal_edges).astype(np.uint8), cv2.DIST_L2, 3)
    return float(distance[visual_edges].mean())


def mutual_information(
    a: ArrayLike, b: ArrayLike, mask: ArrayLike | None = None, *, bins: int = 32
) -> float:
    """Mutual information (nats) of two images' intensities over ``mask`` (joint histogram of
    ``bins`` x ``bins``); higher means one predicts the other better."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise AnalysisError(f"shapes differ: {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        keep &= np.asarray(mask, bool)
    if keep.sum() < bins:
        raise AnalysisError(f"{int(keep.sum())} common pixels are too few for {bins} bins")
    joint, _, _ = np.histogram2d(x[keep], y[keep], bins=bins)
    p = joint / joint.sum()
    outer = p.sum(axis=1, keepdims=True) @ p.sum(axis=0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / outer[nz])).sum())


def reprojection_errors(
    registration: VisualRegistration, visual_points: ArrayLike, thermal_points: ArrayLike
) -> NDArray[np.float64]:
    """Distance (thermal pixels) between where ``registration`` puts each visual point and
    where it really is in the thermal frame."""
    src = _points(visual_points, "visual points")
    dst = _points(thermal_points, "thermal points")
    if src.shape != dst.shape:
        raise AnalysisError(f"{len(src)} visual points but {len(dst)} thermal points")
    return np.asarray(np.linalg.norm(registration.apply(src) - dst, axis=1), dtype=np.float64)


def pair_key(visual_camera: str, thermal_camera: str) -> str:
    """The name a camera pair's calibration is stored under (``visual--thermal``)."""
    safe: Sequence[str] = [
        "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "unknown"
        for name in (visual_camera, thermal_camera)
    ]
    return f"{safe[0]}--{safe[1]}"


def registration_for(
    visual: VisualImage,
    thermal_size: tuple[int, int],
    *,
    calibration: VisualRegistration | None = None,
    thermal_camera: str = "",
) -> VisualRegistration:
    """The registration to use for ``visual`` on a thermal frame of ``thermal_size`` (W, H):
    a stored ``calibration`` when given, else the camera's own alignment.

    Raises:
        AnalysisError: neither is available, or the calibration was made for other sizes.
    """
    vh, vw = visual.shape
    if calibration is not None:
        if calibration.visual_size != (vw, vh) or calibration.thermal_size != thermal_size:
            raise AnalysisError(
                f"the calibration is for a {calibration.visual_size} photo on a "
                f"{calibration.thermal_size} frame, not {(vw, vh)} on {thermal_size}"
            )
        return calibration
    if visual.alignment is None:
        raise AnalysisError(
            f"{visual.source or 'the visual image'} carries no camera alignment; give a "
            "calibration (fit_points) for this camera pair"
        )
    return from_camera_alignment(
        visual.alignment,
        visual_size=(vw, vh),
        thermal_size=thermal_size,
        visual_camera=visual.camera,
        thermal_camera=thermal_camera,
    )


def fused_view(
    celsius: ArrayLike,
    visual: VisualImage,
    registration: VisualRegistration,
    *,
    mode: Mode = "edges",
    palette: str = "iron",
    alpha: float = 0.5,
) -> NDArray[np.uint8]:
    """Register ``visual`` onto the frame and compose a fused RGB view (see
    ``render.fusion.fuse``); ``"pip"`` uses the camera's picture-in-picture box when known."""
    warped, covered = warp_to_thermal(visual.rgb, registration)
    box = None
    a = visual.alignment
    if mode == "pip" and a is not None and registration.model == "camera":
        tw, th = registration.thermal_size
        box = (
            max(0, min(a.pip_x1, tw - 1)),
            max(0, min(a.pip_y1, th - 1)),
            max(0, min(a.pip_x2, tw - 1)),
            max(0, min(a.pip_y2, th - 1)),
        )
    return fuse(
        celsius, warped, mode=mode, covered=covered, palette=palette, alpha=alpha, pip_box=box
    )
