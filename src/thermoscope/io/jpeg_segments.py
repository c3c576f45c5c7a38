"""Walk the marker segments of a JPEG file (the APPn payloads carry the radiometric data)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from thermoscope.io.errors import CorruptDataError, TruncatedFileError, UnknownFormatError

_SOS = 0xDA
_EOI = 0xD9
# markers without a length field
_STANDALONE = {0x01, *range(0xD0, 0xD8)}


@dataclass(frozen=True, slots=True)
class Segment:
    """One marker segment: ``marker`` byte (0xE1 = APP1...) and the payload after the length."""

    marker: int
    offset: int
    payload: memoryview


def is_jpeg(data: bytes | memoryview) -> bool:
    """True when the data starts with a JPEG start-of-image marker."""
    return bytes(data[:3]) == b"\xff\xd8\xff"


def iter_segments(data: bytes | memoryview) -> Iterator[Segment]:
    """Yield the header segments up to start-of-scan (image data is not walked).

    Raises:
        UnknownFormatError: not a JPEG.
        TruncatedFileError: a segment runs past the end of the data.
    """
    view = memoryview(data)
    if not is_jpeg(view):
        raise UnknownFormatError("not a JPEG (no FF D8 start-of-image marker)")
    pos = 2
    end = len(view)
    while pos < end:
        if view[pos] != 0xFF:
            raise CorruptDataError(f"expected a JPEG marker at byte {pos}, found 0x{view[pos]:02x}")
        while pos < end and view[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            break
        marker = view[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker == _EOI:
            return
        if pos + 2 > end:
            raise TruncatedFileError(
                f"truncated JPEG: the data ends at byte {end}, inside segment 0x{marker:02x}'s "
                "length"
            )
        length = (view[pos] << 8) | view[pos + 1]
        if length < 2:
            raise CorruptDataError(f"JPEG segment 0x{marker:02x} at byte {pos} has length {length}")
        if pos + length > end:
            raise TruncatedFileError(
                f"truncated JPEG: segment 0x{marker:02x} at byte {pos} needs {length} bytes, "
                f"the data ends at byte {end}"
            )
        yield Segment(marker, pos + 2, view[pos + 2 : pos + length])
        pos += length
        if marker == _SOS:
            return
