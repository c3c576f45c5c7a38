"""PNG encoding of rendered RGB images."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.render.errors import RenderError


def encode_png(rgb: NDArray[np.uint8]) -> bytes:
    """The PNG file bytes of a uint8 RGB image of shape (H, W, 3); ``rgb`` is not modified.

    Raises:
        RenderError: not a uint8 (H, W, 3) array, or the encoder failed.
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or arr.size == 0:
        raise RenderError(f"expected a uint8 RGB image (H, W, 3), got {arr.dtype} {arr.shape}")
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RenderError(f"PNG encoding failed for an image of shape {arr.shape}")
    return encoded.tobytes()
