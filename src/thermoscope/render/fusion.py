"""Fused views of a thermal frame and its visual photo, already registered onto the frame's grid.

Three views, each a uint8 RGB array of the thermal frame's size (``encode_png`` makes PNG bytes):

- ``"pip"``: picture in picture: the thermogram inside a box, the visual photo around it;
- ``"blend"``: thermogram and photo mixed with a weight;
- ``"edges"``: the photo's edges drawn over the thermogram (the idea FLIR calls MSX): shape and
  labels from the photo, every pixel's colour still the temperature's.

The registration (``analysis.fusion_registration``) resamples the photo first; this module only
composes images. Inputs are never modified.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.render.errors import RenderError
from thermoscope.render.thermogram import render

Mode = Literal["pip", "blend", "edges"]
MODES: tuple[Mode, ...] = ("pip", "blend", "edges")


def _checked_visual(visual: ArrayLike, shape: tuple[int, int]) -> NDArray[np.uint8]:
    arr = np.asarray(visual)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[:2] != shape:
        raise RenderError(
            f"visual image must be (H, W) or (H, W, 3) of the frame's {shape}, got {arr.shape}"
        )
    if arr.dtype != np.uint8:
        arr = np.clip(np.nan_to_num(arr.astype(np.float32)), 0, 255).astype(np.uint8)
    return arr


def visual_edges(visual: ArrayLike, *, strength: float = 1.0) -> NDArray[np.float32]:
    """Edge strength 0..1 (H, W) of a photo: Sobel magnitude of its luma, scaled so that its
    99th percentile is ``strength``."""
    arr = np.asarray(visual, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey = cv2.GaussianBlur(np.asarray(arr, dtype=np.float32), (0, 0), 0.7)
    magnitude = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    top = float(np.percentile(magnitude, 99.0))
    if top <= 0:
        return np.zeros(grey.shape, np.float32)
    return np.asarray(np.clip(magnitude / top * strength, 0.0, 1.0), dtype=np.float32)


def fuse(
    celsius: ArrayLike,
    visual: ArrayLike,
    *,
    mode: Mode = "edges",
    covered: ArrayLike | None = None,
    palette: str = "iron",
    range: tuple[float, float] | None = None,
    alpha: float = 0.5,
    pip_box: tuple[int, int, int, int] | None = None,
) -> NDArray[np.uint8]:
    """A fused RGB view (H, W, 3) of a thermal frame and its registered visual photo.

    Args:
        celsius: temperatures (H, W), °C.
        visual: the photo on the frame's grid, (H, W) or (H, W, 3), uint8 (0..255).
        mode: ``"pip"``, ``"blend"`` or ``"edges"``.
        covered: boolean (H, W), where the photo has pixels; elsewhere the thermogram alone is
            shown. Default: everywhere.
        palette: palette name for the thermogram.
        range: °C mapped to the palette's ends (default: automatic).
        alpha: weight of the photo, 0..1, in ``"blend"``; edge strength in ``"edges"``.
        pip_box: (x1, y1, x2, y2) thermal pixels, end-inclusive, where ``"pip"`` shows the
            thermogram; default the central half of the frame.

    Raises:
        RenderError: unknown mode, misshapen inputs or an ``alpha`` outside 0..1.
    """
    thermo = render(celsius, palette=palette, range=range)
    h, w = thermo.shape[:2]
    photo = _checked_visual(visual, (h, w))
    mask = np.ones((h, w), bool) if covered is None else np.asarray(covered, bool)
    if mask.shape != (h, w):
        raise RenderError(f"covered mask must be {(h, w)}, got {mask.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise RenderError(f"alpha must be within 0..1, got {alpha!r}")
    if mode == "blend":
        mixed = cv2.addWeighted(photo, alpha, thermo, 1.0 - alpha, 0.0)
    elif mode == "edges":
        edges = visual_edges(photo, strength=1.0)[..., None] * alpha
        # brighten the thermogram along the photo's edges, keeping its hue
        mixed = np.clip(thermo.astype(np.float32) * (1.0 - edges) + 255.0 * edges, 0, 255)
        mixed = mixed.astype(np.uint8)
    elif mode == "pip":
        default = (w // 4, h // 4, w - w // 4 - 1, h - h // 4 - 1)
        x1, y1, x2, y2 = pip_box if pip_box is not None else default
        if not (0 <= x1 <= x2 < w and 0 <= y1 <= y2 < h):
            raise RenderError(f"pip_box {pip_box} does not fit the {w}x{h} frame")
        mixed = photo.copy()
        mixed[y1 : y2 + 1, x1 : x2 + 1] = thermo[y1 : y2 + 1, x1 : x2 + 1]
    else:
        raise RenderError(f"unknown fusion mode {mode!r} (known: {', '.join(MODES)})")
    return np.where(mask[..., None], mixed, thermo).astype(np.uint8)
