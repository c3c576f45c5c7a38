"""Hand-made FLIR FFF record sets (as our writer lays them out) whose raw record declares any size:
decompression bombs and header-only frames for the decode-limit tests."""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np

from synthetic_frames import planck_frame
from thermoscope.io.flir_fff import (
    CAMERA_INFO,
    ENTRY_SIZE,
    HEADER_SIZE,
    MAGIC,
    RAW_DATA,
    read_directory,
)
from thermoscope.io.flir_writer import emit_fff


def _camera_record() -> bytes:
    """The camera-info record our writer makes for a small Planck frame."""
    data = emit_fff(planck_frame(4, 4))
    entry = read_directory(memoryview(data)).find(CAMERA_INFO)
    assert entry is not None
    return data[entry.offset : entry.offset + entry.length]


CAMERA = _camera_record()


def record_set(width: int, height: int, payload: bytes) -> bytes:
    """One FFF record set whose raw record declares ``width`` x ``height`` and holds ``payload``
    (JPEG-LS in a CSQ)."""
    raw = struct.pack(">3H", 2, width, height) + bytes(26) + payload
    records = [(RAW_DATA, raw), (CAMERA_INFO, CAMERA)]
    header = bytearray(HEADER_SIZE)
    header[:4] = MAGIC
    header[4:8] = b"CAP\x00"
    struct.pack_into(">III", header, 20, 100, HEADER_SIZE, len(records))
    offset = HEADER_SIZE + ENTRY_SIZE * len(records)
    index = b""
    for number, (kind, body) in enumerate(records, start=1):
        index += struct.pack(">HHIIIIIII", kind, 0, 100, number, offset, len(body), 0, 0, 0)
        offset += len(body)
    return bytes(header) + index + raw + CAMERA


def constant_csq(side: int, frames: int, counts: int = 7000) -> bytes:
    """A CSQ of ``frames`` valid JPEG-LS frames of a constant ``side`` x ``side`` image (each
    frame a different constant, so that the frames differ): a few KB that decode to
    ``6 * side**2 * frames`` bytes."""
    parts = []
    for i in range(frames):
        image = np.full((side, side), counts + i, np.uint16)
        parts.append(record_set(side, side, bytes(imagecodecs.jpegls_encode(image, level=0))))
    return b"".join(parts)
