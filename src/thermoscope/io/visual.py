"""Visual photos: the one a radiometric file carries, and plain JPEG/PNG files of a visual camera.

Pure ``parse(bytes)`` / ``decode_image(bytes)`` plus thin ``load(path)``; every failure is a
:class:`~thermoscope.io.errors.ThermoscopeFormatError` naming the file and the reason. Declared
sizes are checked from the header before decoding, and a JPEG without its end-of-image marker
or a PNG that does not end with its ``IEND`` chunk is refused as truncated (decoders would
otherwise return a partly grey picture).

FLIR's embedded visual image (FFF record 0x0E, see ``flir_fff``) is a JPEG, or on some cameras
(the B60) a PNG whose three channels hold Y, Cb and Cr rather than R, G and B.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.core import ThermalFrame
from thermoscope.core.frame import MAX_SIDE
from thermoscope.core.visual import MAX_ZOOM, CameraAlignment, VisualImage, VisualImageError
from thermoscope.io.errors import (
    AbsurdSizeError,
    CorruptDataError,
    TruncatedFileError,
    UnknownFormatError,
    format_errors,
)
from thermoscope.io.jpeg_segments import is_jpeg, iter_segments

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Largest visual photo accepted, pixels (a 64-megapixel camera); more means corrupt input.
MAX_VISUAL_PIXELS = 64 * 1024 * 1024
# JPEG start-of-frame markers (C4 = DHT, C8 = JPG, CC = DAC are not frames)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a JPEG's start-of-frame segment."""
    for seg in iter_segments(data):
        if seg.marker in _SOF_MARKERS:
            if len(seg.payload) < 5:
                raise TruncatedFileError("JPEG frame header is cut short")
            height, width = struct.unpack_from(">HH", seg.payload, 1)
            return int(width), int(height)
    raise CorruptDataError("JPEG has no start-of-frame segment before its image data")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise TruncatedFileError("PNG ends before its IHDR header")
    width, height = struct.unpack_from(">II", data, 16)
    return int(width), int(height)


def _check_size(width: int, height: int, kind: str) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height > (
        MAX_VISUAL_PIXELS
    ):
        raise AbsurdSizeError(f"{kind} image claims {width}x{height} pixels")


@format_errors
def decode_image(data: bytes, *, ycbcr: bool = False) -> NDArray[np.uint8]:
    """Decode a JPEG or PNG into uint8 RGB (H, W, 3); grey images are repeated in 3 channels.

    Args:
        data: the file's bytes.
        ycbcr: the three channels hold Y, Cb, Cr (FLIR's embedded PNG) rather than R, G, B.

    Raises:
        UnknownFormatError: neither JPEG nor PNG.
        TruncatedFileError: the data ends early (no end-of-image marker / ``IEND`` chunk).
        AbsurdSizeError: the header declares an impossible size.
        CorruptDataError: the codec cannot decode it.
    """
    data = bytes(data)
    if is_jpeg(data):
        kind = "JPEG"
        width, height = _jpeg_size(data)
        if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
            raise TruncatedFileError("truncated JPEG: no end-of-image marker (FF D9) at the end")
    elif data.startswith(_PNG_MAGIC):
        kind = "PNG"
        width, height = _png_size(data)
        if data[-8:-4] != b"IEND":
            raise TruncatedFileError("truncated PNG: no IEND chunk at the end")
    else:
        raise UnknownFormatError("not a JPEG or PNG visual image")
    _check_size(width, height, kind)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != (height, width):
        raise CorruptDataError(f"{kind} image ({width}x{height}) does not decode")
    if ycbcr:
        # OpenCV hands the PNG's channels as B, G, R = Cr, Cb, Y; its converter wants Y, Cr, Cb
        ycrcb = np.ascontiguousarray(image[..., ::-1][..., [0, 2, 1]])
        return np.asarray(cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB), dtype=np.uint8)
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def parse(data: bytes, *, source: str = "<bytes>", camera: str = "") -> VisualImage:
    """A plain visual photo (JPEG or PNG) as a ``VisualImage`` (no alignment of its own).

    Raises:
        ThermoscopeFormatError: see :func:`decode_image`; the error names ``source``.
    """
    try:
        rgb = decode_image(data)
    except (UnknownFormatError, TruncatedFileError, AbsurdSizeError, CorruptDataError) as exc:
        raise exc.with_source(source) from exc
    return VisualImage(rgb, source=source, camera=camera)


def load(path: str | Path, *, camera: str = "") -> VisualImage:
    """Read a visual photo file (JPEG or PNG)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CorruptDataError(f"cannot read: {exc}", str(p)) from exc
    return parse(data, source=str(p), camera=camera)


def _digital_zoom(value: Any) -> float:
    """The camera's digital zoom; the field is undocumented, so a value outside 1..MAX_ZOOM
    (0 on cameras that do not write it) reads as no zoom."""
    if isinstance(value, float) and 1.0 <= value <= MAX_ZOOM:
        return value
    return 1.0


def _alignment(pip: Any, zoom: Any, source: str) -> CameraAlignment | None:
    if not isinstance(pip, dict):
        return None
    try:
        return CameraAlignment(
            digital_zoom=_digital_zoom(zoom),
            real_to_ir=float(pip["real2ir"]),
            offset_x=int(pip["offset_x"]),
            offset_y=int(pip["offset_y"]),
            pip_x1=int(pip["pip_x1"]),
            pip_x2=int(pip["pip_x2"]),
            pip_y1=int(pip["pip_y1"]),
            pip_y2=int(pip["pip_y2"]),
        )
    except (KeyError, TypeError, ValueError, VisualImageError) as exc:
        raise CorruptDataError(f"picture-in-picture record: {exc}", source) from exc


def embedded_visual(frame: ThermalFrame) -> VisualImage | None:
    """The visual photo a radiometric frame carries (FLIR's embedded image), with the camera's
    own alignment when the file stores one; ``None`` when the frame carries no photo.

    Raises:
        ThermoscopeFormatError: the embedded image or its alignment record is damaged.
    """
    extra = frame.metadata.extra
    source = frame.metadata.source or "<frame>"
    jpeg, png = extra.get("embedded_image_jpeg"), extra.get("embedded_image_png")
    if isinstance(jpeg, bytes):
        data, ycbcr = jpeg, False
    elif isinstance(png, bytes):
        data, ycbcr = png, True
    else:
        return None
    try:
        rgb = decode_image(data, ycbcr=ycbcr)
    except (UnknownFormatError, TruncatedFileError, AbsurdSizeError, CorruptDataError) as exc:
        raise type(exc)(f"embedded visual image: {exc.reason}", source) from exc
    return VisualImage(
        rgb,
        source=f"{source}#visual",
        alignment=_alignment(extra.get("pip"), extra.get("digital_zoom"), source),
        camera=frame.metadata.camera.serial,
    )
