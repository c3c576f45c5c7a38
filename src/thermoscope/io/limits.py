"""Decode limits: how much a file may make a reader decode, checked from its headers first.

A few kilobytes of compressed data can declare gigabytes of pixels (a CSQ of constant 8192x8192
JPEG-LS frames is 28 KB). Every reader checks the sizes its headers declare against a
``DecodeLimits`` before it decodes any pixel, and refuses with ``DecodeLimitError`` naming the
file, the size and the limit. The library's defaults (``DEFAULT_LIMITS``) admit any real
thermal recording; a server passes its own, tighter ones (its settings).

Decoded bytes are counted as ``DECODED_BYTES_PER_PIXEL`` per pixel of every frame: what a
decoded ``ThermalFrame`` holds (float32 °C and uint16 counts). Sequences decode one frame at a
time, so the total bounds the work a file can cause, the per-frame limit the memory.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from thermoscope.io.errors import AbsurdSizeError
from thermoscope.io.jpeg_segments import iter_segments

#: Bytes a decoded pixel holds: float32 °C plus uint16 raw counts.
DECODED_BYTES_PER_PIXEL = 6
_MI = 1 << 20
_GI = 1 << 30
#: JPEG start-of-frame markers (every coding process; 0xC4, 0xC8 and 0xCC are other markers).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class DecodeLimitError(AbsurdSizeError):
    """The file declares more pixels, frames or decoded bytes than the limits allow."""


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what one file may decode to.

    Attributes:
        max_frame_pixels: pixels (width x height) of one frame, at most.
        max_frames: frames of one file, at most.
        max_decoded_bytes: bytes all frames of a file decode to, at most
            (``DECODED_BYTES_PER_PIXEL`` per pixel).
    """

    max_frame_pixels: int = 64 * _MI
    max_frames: int = 1_000_000
    max_decoded_bytes: int = 256 * _GI

    def __post_init__(self) -> None:
        for name in ("max_frame_pixels", "max_frames", "max_decoded_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")

    def check_frame(self, width: int, height: int, index: int | None = None) -> None:
        """Refuse one frame of ``width`` x ``height`` pixels beyond ``max_frame_pixels``."""
        pixels = width * height
        if pixels > self.max_frame_pixels:
            where = "" if index is None else f"frame {index}: "
            raise DecodeLimitError(
                f"{where}{width}x{height} = {pixels} pixels exceed the limit of "
                f"{self.max_frame_pixels} pixels per frame"
            )

    def check_count(self, frames: int) -> None:
        """Refuse more than ``max_frames`` frames."""
        if frames > self.max_frames:
            raise DecodeLimitError(
                f"{frames} frames exceed the limit of {self.max_frames} frames per file"
            )

    def check_total(self, pixels: int) -> None:
        """Refuse ``pixels`` (all frames together) decoding to more than ``max_decoded_bytes``."""
        decoded = pixels * DECODED_BYTES_PER_PIXEL
        if decoded > self.max_decoded_bytes:
            raise DecodeLimitError(
                f"the frames decode to {decoded} bytes, beyond the limit of "
                f"{self.max_decoded_bytes} bytes per file"
            )

    def check_uniform(self, width: int, height: int, frames: int) -> None:
        """Check ``frames`` frames of ``width`` x ``height`` pixels against every limit."""
        self.check_count(frames)
        self.check_frame(width, height)
        self.check_total(width * height * frames)

    def check_sizes(self, sizes: list[tuple[int, int]]) -> None:
        """Check frames of the given ``(width, height)`` sizes against every limit."""
        self.check_count(len(sizes))
        for index, (width, height) in enumerate(sizes):
            self.check_frame(width, height, index if len(sizes) > 1 else None)
        self.check_total(sum(w * h for w, h in sizes))


def jpeg_within(data: bytes, limits: DecodeLimits) -> bytes:
    """``data`` unchanged, after checking the frame size its JPEG start-of-frame header declares
    (for single-frame JPEG readers whose raw data follows that size).

    Raises:
        DecodeLimitError: the declared frame is larger than ``limits`` allow.
    """
    for seg in iter_segments(data):
        if seg.marker in _JPEG_SOF and len(seg.payload) >= 5:
            height, width = struct.unpack_from(">HH", seg.payload, 1)
            limits.check_uniform(width, height, 1)
            break
    return data


def jpeg_file_within(path: Path, limits: DecodeLimits) -> Path:
    """``path`` unchanged, after `jpeg_within` on its content (an unreadable file is left to
    the reader to report)."""
    try:
        data = path.read_bytes()
    except OSError:
        return path
    jpeg_within(data, limits)
    return path


#: The library's limits (CLI, edge, ``thermoscope.io.load``): any real recording passes.
DEFAULT_LIMITS = DecodeLimits()
