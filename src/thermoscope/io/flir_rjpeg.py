"""FLIR radiometric JPEG: one FFF record set split across APP1 segments tagged ``FLIR\\0``.

Each such segment starts with an 8-byte chunk header: ``FLIR\\0``, a format byte, a spare byte,
the chunk index and the index of the last chunk. Chunks are joined in index order and the result
is parsed as FFF. The JPEG's own image is the palette rendering the camera saved.
"""

from __future__ import annotations

from pathlib import Path

from thermoscope.core import ThermalFrame, ThermalSequence
from thermoscope.io.errors import (
    CorruptDataError,
    TruncatedFileError,
    UnknownFormatError,
    format_errors,
)
from thermoscope.io.flir_fff import parse_frame, raw_size, read_directory
from thermoscope.io.jpeg_segments import is_jpeg, iter_segments
from thermoscope.io.limits import DEFAULT_LIMITS, DecodeLimits
from thermoscope.io.registry import FormatReader

FLIR_TAG = b"FLIR\x00"
_APP1 = 0xE1
_CHUNK_HEADER = 8
NAME = "flir-rjpeg"


def extract_fff(data: bytes | memoryview) -> bytes:
    """Join the FLIR APP1 chunks of an R-JPEG into the embedded FFF record set.

    Raises:
        UnknownFormatError: a JPEG without FLIR segments.
        TruncatedFileError: chunks are missing.
    """
    chunks: dict[int, memoryview] = {}
    last = -1
    for seg in iter_segments(data):
        if seg.marker != _APP1 or bytes(seg.payload[:5]) != FLIR_TAG:
            continue
        if len(seg.payload) < _CHUNK_HEADER:
            raise CorruptDataError(
                f"FLIR APP1 segment at byte {seg.offset} is shorter than its header"
            )
        index, final = seg.payload[6], seg.payload[7]
        if last >= 0 and final != last:
            raise CorruptDataError(
                f"FLIR chunk {index} says {final + 1} chunks, earlier ones said {last + 1}"
            )
        last = final
        if index in chunks:
            raise CorruptDataError(f"FLIR chunk {index} appears twice")
        chunks[index] = seg.payload[_CHUNK_HEADER:]
    if not chunks:
        raise UnknownFormatError("JPEG without FLIR radiometric segments")
    missing = [i for i in range(last + 1) if i not in chunks]
    if missing or len(chunks) != last + 1:
        raise TruncatedFileError(
            f"FLIR R-JPEG lacks chunk(s) {missing or 'beyond the last'} of {last + 1}"
        )
    return b"".join(chunks[i] for i in range(last + 1))


@format_errors
def parse(
    data: bytes | memoryview, *, source: str = "<bytes>", limits: DecodeLimits = DEFAULT_LIMITS
) -> ThermalFrame:
    """Decode a FLIR R-JPEG (°C, raw counts, metadata; the embedded visual JPEG in ``extra``).

    Raises:
        DecodeLimitError: the raw record declares a frame larger than ``limits`` allow.
    """
    fff = memoryview(extract_fff(data))
    directory = read_directory(fff)
    declared = raw_size(fff, 0, directory)
    if declared is not None:
        limits.check_uniform(*declared, frames=1)
    return parse_frame(fff, source=source, fmt=NAME, directory=directory)


def load(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> ThermalFrame:
    """Read a FLIR R-JPEG file."""
    p = Path(path)
    try:
        return parse(p.read_bytes(), source=str(p), limits=limits)
    except OSError as exc:
        raise CorruptDataError(f"cannot read: {exc}", str(p)) from exc


def _sniff(head: bytes, suffix: str) -> bool:
    if not is_jpeg(head):
        return False
    try:
        return any(
            seg.marker == _APP1 and bytes(seg.payload[:5]) == FLIR_TAG
            for seg in iter_segments(head)
        )
    except TruncatedFileError:
        # the head ends inside a segment: the FLIR tag near the start of an APP1 still tells
        return b"\xff\xe1" in head and FLIR_TAG in head
    except (CorruptDataError, UnknownFormatError):
        return False


READER = FormatReader(
    name=NAME,
    description="FLIR radiometric JPEG (FFF in APP1 segments; PNG or raw counts)",
    suffixes=(".jpg", ".jpeg"),
    sniff=_sniff,
    parse=lambda data, limits: ThermalSequence.of([parse(data, limits=limits)]),
    open=lambda path, limits: ThermalSequence.of([load(path, limits)], source=str(path)),
)
