"""Alignment of a part onto the recipe's reference frame: the reference and fiducial templates
loaded once, and per part the motion (translation, or translation and a small rotation) found by
phase correlation or by locating the fiducials, refused beyond the recipe's bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.analysis import registration
from thermoscope.analysis.spatial import AnalysisError
from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.findings import Finding, Verdict
from thermoscope.recipes import schema
from thermoscope.recipes.checks import CompiledRegion, FloatImage
from thermoscope.recipes.schema import RecipeError

#: Reads a reference frame file into a 2-D °C array (the CLI passes one built on the readers).
FrameLoader = Callable[[Path], NDArray[Any]]

#: Lowest normalised correlation at which a fiducial counts as found.
_FIDUCIAL_MIN_SCORE = 0.5


@dataclass(frozen=True, slots=True, eq=False)
class _Fiducial:
    name: str
    template: NDArray[np.float32]
    corner: tuple[int, int]
    centre: tuple[float, float]


@dataclass(frozen=True, slots=True, eq=False)
class CompiledAlignment:
    """Alignment settings with the reference loaded and fiducial templates cut from it."""

    reference: NDArray[np.float32]
    fiducials: tuple[_Fiducial, ...]
    rigid: bool
    max_shift_px: float
    max_rotation_deg: float
    search_px: int


def register(
    a: CompiledAlignment, celsius: FloatImage
) -> tuple[Finding | None, registration.Motion | None]:
    """The part's motion against the reference; ``None`` when it is below a pixel, and a
    failed finding when it cannot be found or exceeds the recipe's bounds."""
    try:
        motion = _estimate(a, celsius)
    except AnalysisError as exc:
        return _alignment_failure(f"the part could not be registered: {exc}"), None
    if motion.shift_px > a.max_shift_px:
        text = (
            f"the part moved {motion.shift_px:.1f} px, more than the "
            f"{a.max_shift_px:g} px alignment allows"
        )
        return _alignment_failure(text, motion.shift_px, a.max_shift_px), None
    if abs(motion.angle_deg) > a.max_rotation_deg:
        text = (
            f"the part turned {motion.angle_deg:.1f}°, more than the "
            f"{a.max_rotation_deg:g}° alignment allows"
        )
        return _alignment_failure(text, abs(motion.angle_deg), a.max_rotation_deg, "°"), None
    if round(motion.dx) == 0 and round(motion.dy) == 0 and abs(motion.angle_deg) < 0.05:
        return None, None
    return None, motion


def _alignment_failure(
    text: str, value: float = float("nan"), limit: float | None = None, unit: str = "px"
) -> Finding:
    return Finding("alignment", "", value, limit, Verdict.NG, text, unit=unit)


def _estimate(a: CompiledAlignment, celsius: FloatImage) -> registration.Motion:
    if not a.fiducials:
        if a.rigid:
            return registration.estimate_rigid(
                a.reference, celsius, max_shift_px=2.0 * a.max_shift_px + 4.0
            )
        return registration.estimate_translation(
            a.reference, celsius, max_shift_px=2.0 * a.max_shift_px + 4.0
        )
    found, scores = [], []
    for fid in a.fiducials:
        x, y, score = registration.locate_template(
            celsius, fid.template, near=fid.corner, search_px=a.search_px
        )
        if score < _FIDUCIAL_MIN_SCORE:
            raise AnalysisError(
                f"fiducial {fid.name} not found (best correlation {score:.2f} "
                f"within {a.search_px} px)"
            )
        found.append((x - fid.corner[0] + fid.centre[0], y - fid.corner[1] + fid.centre[1]))
        scores.append(score)
    return registration.fit_rigid(
        [f.centre for f in a.fiducials], found, rotation=a.rigid, score=float(np.mean(scores))
    )


def read_reference_frame(path: Path) -> NDArray[np.float32]:
    """A reference frame from ``.npy``, ``.npz`` (array ``celsius``) or a single-channel image.

    Raises:
        RecipeError: the file cannot be read as a 2-D array.
    """
    arr: Any
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arr = data["celsius"]
        else:
            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError, KeyError) as exc:
        raise RecipeError([("alignment.reference", f"cannot read {path}: {exc}")]) from None
    if arr is None or np.asarray(arr).ndim != 2:
        raise RecipeError(
            [("alignment.reference", f"{path} is not a single-channel 2-D image or array")]
        )
    return np.asarray(arr, dtype=np.float32)


def compile_alignment(
    spec: schema.AlignmentSpec,
    regions: dict[str, CompiledRegion],
    shape: tuple[int, int],
    load_frame: FrameLoader,
) -> CompiledAlignment:
    try:
        reference = np.asarray(load_frame(spec.reference), dtype=np.float32)
    except ThermoscopeError as exc:
        raise RecipeError([("alignment.reference", str(exc))]) from None
    if reference.shape != shape:
        raise RecipeError(
            [
                (
                    "alignment.reference",
                    f"{spec.reference} is {reference.shape[1]}x{reference.shape[0]}, "
                    f"the recipe's frame {shape[1]}x{shape[0]}",
                )
            ]
        )
    fiducials = []
    reach = 0.0
    centre = ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
    for name in spec.fiducials:
        r = regions[name]
        fiducials.append(
            _Fiducial(
                name,
                np.ascontiguousarray(r.crop(reference)),
                (r.x0, r.y0),
                ((r.x0 + r.x1 - 1) / 2.0, (r.y0 + r.y1 - 1) / 2.0),
            )
        )
        reach = max(reach, math.dist(fiducials[-1].centre, centre))
    turn = reach * math.sin(math.radians(spec.max_rotation_deg)) if spec.motion == "rigid" else 0
    return CompiledAlignment(
        reference,
        tuple(fiducials),
        spec.motion == "rigid",
        spec.max_shift_px,
        spec.max_rotation_deg,
        # search twice the allowed motion, so a part beyond it is found and refused
        math.ceil(2.0 * (spec.max_shift_px + turn)) + 4,
    )
