"""NumPy ``.npy`` arrays of temperatures: H x W (one frame) or frames x H x W (a sequence), in °C.

Reading: float16/32/64 arrays, any byte order, C or Fortran order, are °C; NaN marks undefined
pixels and ±inf (also values beyond the float32 range) is refused. Integer arrays are refused
with `TemperatureUnavailableError`: they hold counts whose scale to °C the file cannot say.
Pickled (object) arrays are never loaded: the header is read as a literal and checked
(element type, shape, sizes against the file) before any data is touched, and the writer uses
``allow_pickle=False``. Files are memory-mapped read-only with that checked header (what
``np.load(mmap_mode="r")`` does), so frame *i* of a large recording is read from disk only when
asked for.

Writing (`emit`): float32 °C, little-endian, C order; one frame as H x W, several (all the same
size) as frames x H x W.

What ``.npy`` loses: everything but the temperatures — raw counts, camera, parameters,
calibration, timestamps and all other metadata. Frames read back carry only ``source``,
``format="npy"`` and, for sequences, ``frame_index``.
"""

from __future__ import annotations

import ast
import io
import math
import os
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from thermoscope.core import FrameMetadata, ThermalFrame, ThermalSequence
from thermoscope.core.frame import MAX_SIDE
from thermoscope.io.errors import (
    AbsurdSizeError,
    CorruptDataError,
    TemperatureUnavailableError,
    ThermoscopeFormatError,
    TruncatedFileError,
    UnknownFormatError,
    format_errors,
)
from thermoscope.io.limits import DEFAULT_LIMITS, DecodeLimits
from thermoscope.io.registry import FormatReader, FormatWriter

NAME = "npy"
MAGIC = b"\x93NUMPY"
# numpy's own default limit on the header dictionary's length (bytes); real ones are ~100
_MAX_HEADER = 10000
# a plain element type such as '<f4' (no structured, sub-array or comma-string types)
_SIMPLE_DESCR = re.compile(r"[<>|=]?[A-Za-z][0-9]{0,2}")


@dataclass(frozen=True, slots=True)
class _Header:
    """A checked ``.npy`` header: ``frames`` x ``height`` x ``width`` values from ``offset``."""

    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int

    @property
    def frames(self) -> int:
        return self.shape[0] if len(self.shape) == 3 else 1


def _sniff(head: bytes, suffix: str) -> bool:
    return head.startswith(MAGIC)


def _literal(text: str) -> dict[str, Any]:
    """The header dictionary, evaluated as a literal (never as code)."""
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as exc:
        raise CorruptDataError(f"unreadable .npy header {text[:60]!r}: {exc}") from exc
    if not isinstance(value, dict) or set(value) != {"descr", "fortran_order", "shape"}:
        raise CorruptDataError("the .npy header is not a descr/fortran_order/shape dictionary")
    return value


@format_errors
def _read_header(fh: BinaryIO, size: int) -> _Header:
    """Read and check the header at the start of ``fh`` (``size`` bytes in all).

    Raises:
        UnknownFormatError: no ``.npy`` magic.
        TemperatureUnavailableError: an integer array (counts, not °C).
        AbsurdSizeError: a side is longer than a frame may be.
        TruncatedFileError: the data is shorter than the header announces.
        CorruptDataError: anything else that makes it no temperature array.
    """
    head = fh.read(len(MAGIC) + 2)
    if not head.startswith(MAGIC):
        raise UnknownFormatError(f"not a .npy file (starts with {head[:6]!r})")
    if len(head) < len(MAGIC) + 2:
        raise TruncatedFileError("the .npy header is cut short")
    major, minor = head[-2], head[-1]
    if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
        raise CorruptDataError(f".npy format version {major}.{minor} is not supported")
    length_format = "<H" if major == 1 else "<I"
    length_bytes = fh.read(struct.calcsize(length_format))
    if len(length_bytes) < struct.calcsize(length_format):
        raise TruncatedFileError("the .npy header is cut short")
    (length,) = struct.unpack(length_format, length_bytes)
    if length > _MAX_HEADER:
        raise AbsurdSizeError(f".npy header of {length} bytes (at most {_MAX_HEADER})")
    raw = fh.read(length)
    if len(raw) < length:
        raise TruncatedFileError(f"the .npy header needs {length} bytes, {len(raw)} remain")
    offset = fh.tell()
    doc = _literal(raw.decode("utf-8" if major == 3 else "latin-1", errors="replace"))
    descr, fortran_order, shape = doc["descr"], doc["fortran_order"], doc["shape"]
    if not isinstance(descr, str):
        raise CorruptDataError(f"a structured array ({descr!r:.60}) holds no temperatures")
    if not isinstance(fortran_order, bool):
        raise CorruptDataError(f"fortran_order is not True/False: {fortran_order!r:.20}")
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise CorruptDataError(f"shape is not a tuple of sizes: {shape!r:.60}")
    if not _SIMPLE_DESCR.fullmatch(descr):
        raise CorruptDataError(f"element type {descr!r:.20} holds no temperatures")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError) as exc:
        raise CorruptDataError(f"unknown element type {descr!r:.20}") from exc
    if dtype.hasobject:
        raise CorruptDataError("an object array needs pickle, which is never loaded")
    if dtype.kind in "iu":
        raise TemperatureUnavailableError(
            f"{dtype} array holds counts, not °C; the scale to °C is unknown "
            "(save temperatures as float, °C = counts * scale + offset)"
        )
    if dtype.kind != "f" or dtype.shape:
        raise CorruptDataError(f"a {dtype} array holds no temperatures")
    if len(shape) not in (2, 3):
        raise CorruptDataError(f"shape {shape} is neither H x W nor frames x H x W")
    if 0 in shape:
        raise CorruptDataError(f"empty array of shape {shape}")
    height, width = shape[-2:]
    if height > MAX_SIDE or width > MAX_SIDE:
        raise AbsurdSizeError(f"frame size {width}x{height} exceeds {MAX_SIDE} pixels per side")
    needed = math.prod(shape) * dtype.itemsize
    if offset + needed > size:
        raise TruncatedFileError(
            f"shape {shape} of {dtype} needs {needed} bytes after the header, "
            f"the file has {size - offset}"
        )
    return _Header(dtype, shape, fortran_order, offset)


def _as_frames(array: NDArray[Any], header: _Header) -> NDArray[Any]:
    return array if len(header.shape) == 3 else array[np.newaxis]


def _frame(values: NDArray[Any], index: int, header: _Header, source: str) -> ThermalFrame:
    """Copy one frame out (the source array may be a read-only map of a file) and check it."""
    with np.errstate(over="ignore"):
        celsius = np.array(values, dtype=np.float32, order="C", copy=True)
    infinite = int(np.isinf(celsius).sum())
    if infinite:
        raise CorruptDataError(
            f"frame {index}: {infinite} pixels are ±inf or beyond the float32 range "
            "(NaN marks undefined pixels)",
            source,
        )
    frame_index = index if len(header.shape) == 3 else None
    return ThermalFrame(
        celsius, metadata=FrameMetadata(source=source, format=NAME, frame_index=frame_index)
    )


def _sequence(
    frames: Callable[[], NDArray[Any]],
    header: _Header,
    source: str,
    close: Callable[[], None] | None,
) -> ThermalSequence:
    @format_errors
    def read(i: int) -> ThermalFrame:
        return _frame(frames()[i], i, header, source)

    return ThermalSequence(header.frames, read, source=source, close=close)


def _check_limits(header: _Header, limits: DecodeLimits) -> None:
    height, width = header.shape[-2:]
    limits.check_uniform(width, height, header.frames)


@format_errors
def parse(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> ThermalSequence:
    """A sequence over ``.npy`` content in memory (each frame copied out and checked on access).

    Raises:
        UnknownFormatError: no ``.npy`` magic.
        TemperatureUnavailableError: an integer array (counts, not °C).
        AbsurdSizeError: a side is longer than a frame may be.
        DecodeLimitError: the shape declares more than ``limits`` allow.
        TruncatedFileError: the data is shorter than the header announces.
        CorruptDataError: anything else that makes it no float temperature array, or (on
            access) ±inf values.
    """
    header = _read_header(io.BytesIO(data), len(data))
    _check_limits(header, limits)
    count = math.prod(header.shape)
    array = np.frombuffer(data, dtype=header.dtype, count=count, offset=header.offset)
    shaped = _as_frames(
        array.reshape(header.shape, order="F" if header.fortran_order else "C"), header
    )
    return _sequence(lambda: shaped, header, "<bytes>", None)


def open_file(
    path: str | os.PathLike[str], limits: DecodeLimits = DEFAULT_LIMITS
) -> ThermalSequence:
    """Memory-map a ``.npy`` file; frames are read from disk only when accessed.

    Close the sequence (or use ``with``) to release the map.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            header = _read_header(fh, os.fstat(fh.fileno()).st_size)
        _check_limits(header, limits)
        mapped = np.memmap(
            p,
            dtype=header.dtype,
            mode="r",
            offset=header.offset,
            shape=header.shape,
            order="F" if header.fortran_order else "C",
        )
    except OSError as exc:
        raise CorruptDataError(f"cannot read: {exc.strerror or exc}", str(p)) from exc
    except ThermoscopeFormatError as exc:
        raise exc.with_source(str(p)) from exc
    except ValueError as exc:  # the file shrank between the header check and the map
        raise CorruptDataError(f"cannot map the array: {exc}", str(p)) from exc
    holder: list[NDArray[Any]] = [_as_frames(mapped, header)]

    def frames() -> NDArray[Any]:
        if not holder:
            raise ThermoscopeFormatError("the sequence is closed", str(p))
        return holder[0]

    return _sequence(frames, header, str(p), holder.clear)


def emit(frames: Sequence[ThermalFrame]) -> bytes:
    """``.npy`` bytes: float32 °C, H x W for one frame, frames x H x W for several of one size."""
    if not frames:
        raise ThermoscopeFormatError("nothing to write: no frames")
    shape = frames[0].shape
    for i, frame in enumerate(frames):
        if frame.shape != shape:
            raise ThermoscopeFormatError(
                f"frame {i} is {frame.width}x{frame.height}, frame 0 is {shape[1]}x{shape[0]}: "
                ".npy holds frames of one size"
            )
        if np.isinf(frame.celsius).any():
            raise ThermoscopeFormatError(
                f"frame {i} has ±inf temperatures; only finite values and NaN can be written"
            )
    array = frames[0].celsius if len(frames) == 1 else np.stack([f.celsius for f in frames])
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array, dtype="<f4"), allow_pickle=False)
    return buffer.getvalue()


READER = FormatReader(
    name=NAME,
    description="NumPy .npy float array of °C: H x W, or frames x H x W (memory-mapped)",
    suffixes=(".npy",),
    sniff=_sniff,
    parse=parse,
    open=open_file,
)
WRITER = FormatWriter(
    name=NAME,
    description="NumPy .npy float32 °C (frames x H x W for several frames)",
    suffixes=(".npy",),
    emit=emit,
)
