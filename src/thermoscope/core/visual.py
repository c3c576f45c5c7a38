"""``VisualImage``: a visual (RGB) photo of the part, beside its thermal frame.

A radiometric camera with a second, visual camera stores the photo in the same file (FLIR's
embedded image record) together with the camera's own alignment of the two
(:class:`CameraAlignment`); a separate visual camera gives a plain JPEG or PNG. Both become a
``VisualImage``; registration onto the thermal frame lives in ``analysis``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.frame import MAX_SIDE

#: Largest digital zoom a camera states; more means a damaged record.
MAX_ZOOM = 64.0


class VisualImageError(ThermoscopeError, ValueError):
    """A visual image or its alignment was built from inconsistent data."""


@dataclass(frozen=True, slots=True)
class CameraAlignment:
    """The camera's own placement of its visual photo on its thermal frame (FLIR's "PiP" record).

    Attributes:
        real_to_ir: ``Real2IR``: how many times wider the visual photo is than the thermal
            image the camera showed (the frame zoomed by ``digital_zoom``), both seen at the
            same scale (> 0).
        offset_x, offset_y: ``OffsetX``/``OffsetY``: where the thermal frame's centre lies from
            the visual photo's centre, visual pixels (x = columns, y = rows).
        pip_x1, pip_x2, pip_y1, pip_y2: the picture-in-picture box the camera shows the thermal
            image in, thermal pixels (``x1 <= x2``, ``y1 <= y2``).
        digital_zoom: the camera's digital zoom when the picture was taken (1 = none): the
            shown thermal image is the frame's central ``1/digital_zoom`` part (FLIR camera-info
            float at byte 0x36C).
    """

    real_to_ir: float
    offset_x: int = 0
    offset_y: int = 0
    pip_x1: int = 0
    pip_x2: int = 0
    pip_y1: int = 0
    pip_y2: int = 0
    digital_zoom: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.real_to_ir) and 0.05 <= self.real_to_ir <= 100.0):
            raise VisualImageError(f"real_to_ir must be in 0.05..100, got {self.real_to_ir!r}")
        if not (math.isfinite(self.digital_zoom) and 1.0 <= self.digital_zoom <= MAX_ZOOM):
            raise VisualImageError(
                f"digital_zoom must be in 1..{MAX_ZOOM:g}, got {self.digital_zoom!r}"
            )
        if self.pip_x1 > self.pip_x2 or self.pip_y1 > self.pip_y2:
            raise VisualImageError(
                f"picture-in-picture box x {self.pip_x1}..{self.pip_x2}, "
                f"y {self.pip_y1}..{self.pip_y2} is inverted"
            )


@dataclass(frozen=True, slots=True, eq=False)
class VisualImage:
    """A visual photo.

    Attributes:
        rgb: uint8 RGB pixels, shape (H, W, 3).
        source: file name or other origin label.
        alignment: the camera's own alignment to the thermal frame it was taken with, when the
            file stores one.
        camera: the visual camera's identification (serial or station label), ``""`` if unknown.
    """

    rgb: NDArray[np.uint8]
    source: str = ""
    alignment: CameraAlignment | None = None
    camera: str = ""

    def __post_init__(self) -> None:
        rgb = np.asarray(self.rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise VisualImageError(
                f"{self.source or 'visual image'}: rgb must be uint8 (H, W, 3), "
                f"got {rgb.dtype} {rgb.shape}"
            )
        if not (0 < rgb.shape[0] <= MAX_SIDE and 0 < rgb.shape[1] <= MAX_SIDE):
            raise VisualImageError(
                f"{self.source or 'visual image'}: size {rgb.shape[:2]} outside 1..{MAX_SIDE}"
            )
        if self.alignment is not None and not isinstance(self.alignment, CameraAlignment):
            raise VisualImageError("alignment must be a CameraAlignment")
        object.__setattr__(self, "rgb", np.ascontiguousarray(rgb))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        h, w = self.rgb.shape[:2]
        return int(h), int(w)

    def grey(self) -> NDArray[np.float32]:
        """Luma (ITU-R BT.601 weights) as float32 0..255, shape (H, W)."""
        weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.asarray(self.rgb.astype(np.float32) @ weights, dtype=np.float32)
