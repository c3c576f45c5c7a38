"""FLIR FFF, SEQ and CSQ files: FFF record sets back to back, one per frame.

A frame ends where its last record ends; the next ``FFF\\0`` header follows (CSQ recorders may
pad, so the next header is searched from there). Opening a file memory-maps it and walks only
the headers, so any frame can be decoded by index without reading the others, and a 10 GB
recording costs its index, not its size. CSQ frames hold JPEG-LS compressed raw data.
"""

from __future__ import annotations

import mmap
from dataclasses import replace
from pathlib import Path

from thermoscope.core import ThermalFrame, ThermalSequence
from thermoscope.io.errors import (
    CorruptDataError,
    ThermoscopeFormatError,
    TruncatedFileError,
    UnknownFormatError,
    format_errors,
)
from thermoscope.io.flir_fff import (
    MAGIC,
    Directory,
    parse_camera_info,
    parse_frame,
    raw_is_jpeg,
    raw_size,
    read_directory,
)
from thermoscope.io.limits import DEFAULT_LIMITS, DecodeLimits
from thermoscope.io.registry import FormatReader

NAME = "flir-seq"
#: The format name of recordings whose frames are JPEG-LS compressed.
CSQ_NAME = "flir-csq"


@format_errors
def index_frames(
    view: memoryview, limits: DecodeLimits = DEFAULT_LIMITS
) -> tuple[list[tuple[int, Directory]], tuple[str, ...]]:
    """Walk the FFF headers: ``(base offset, directory)`` per complete frame, and issues found.

    A frame that runs past the end of the data (a recording cut short) ends the walk and is
    reported in the issues; the frames before it stay readable. Frame count, each frame's size
    and their total are checked against ``limits`` from the headers, before any pixel decodes.

    Raises:
        ThermoscopeFormatError: the first frame itself is unreadable.
        DecodeLimitError: the headers declare more than ``limits`` allow.
    """
    frames: list[tuple[int, Directory]] = []
    issues: list[str] = []
    base = 0
    size = len(view)
    pixels = 0
    while base < size:
        try:
            directory = read_directory(view, base)
        except ThermoscopeFormatError as exc:
            if not frames:
                raise
            issues.append(f"frame {len(frames)} at byte {base} is unreadable: {exc.reason}")
            break
        limits.check_count(len(frames) + 1)
        declared = raw_size(view, base, directory)
        if declared is not None:
            limits.check_frame(*declared, index=len(frames))
            pixels += declared[0] * declared[1]
            limits.check_total(pixels)
        frames.append((base, directory))
        end = base + directory.end
        if bytes(view[end : end + 4]) == MAGIC:
            base = end
            continue
        found = bytes(view[end:]).find(MAGIC) if end < size else -1
        if found < 0:
            break
        base = end + found
    return frames, tuple(issues)


def _timestamps(view: memoryview, frames: list[tuple[int, Directory]]) -> float | None:
    """Capture time of the first frame in POSIX seconds (``None`` if it has none)."""
    base, directory = frames[0]
    entry = directory.find(0x20)
    if entry is None:
        return None
    record = view[base + entry.offset : base + entry.offset + entry.length]
    moment = parse_camera_info(record, directory.byte_order).capture_time
    return moment.timestamp() if moment is not None else None


def _sequence(
    view: memoryview, source: str, limits: DecodeLimits, close: object = None
) -> ThermalSequence:
    if bytes(view[:4]) != MAGIC:
        raise UnknownFormatError("not a FLIR FFF/SEQ/CSQ file (no FFF\\0 magic)")
    frames, issues = index_frames(view, limits)
    start = _timestamps(view, frames)
    fmt = CSQ_NAME if raw_is_jpeg(view, *frames[0]) else NAME

    def read(i: int) -> ThermalFrame:
        base, directory = frames[i]
        try:
            frame = parse_frame(
                view, base, source=source, fmt=fmt, frame_index=i, directory=directory
            )
        except ThermoscopeFormatError as exc:
            raise type(exc)(f"frame {i}: {exc.reason}", source) from exc
        moment = frame.metadata.capture_time
        if start is None or moment is None:
            return frame
        meta = replace(frame.metadata, timestamp_s=moment.timestamp() - start)
        return replace(frame, metadata=meta)

    closer = close if callable(close) else None
    return ThermalSequence(len(frames), read, source=source, close=closer, issues=issues)


def parse(data: bytes | memoryview, limits: DecodeLimits = DEFAULT_LIMITS) -> ThermalSequence:
    """A sequence over FFF/SEQ/CSQ content in memory (frames decode on access).

    Raises:
        DecodeLimitError: the headers declare more than ``limits`` allow.
    """
    return _sequence(memoryview(data), "<bytes>", limits)


def open_file(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> ThermalSequence:
    """Memory-map an FFF/SEQ/CSQ file and index its frames; decode each frame on access."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            if p.stat().st_size == 0:
                raise TruncatedFileError("empty file", str(p))
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise CorruptDataError(f"cannot read: {exc}", str(p)) from exc
    view = memoryview(mapped)

    def close() -> None:
        view.release()
        mapped.close()

    try:
        return _sequence(view, str(p), limits, close)
    except ThermoscopeFormatError as exc:
        close()
        raise exc.with_source(str(p)) from exc
    except BaseException:
        close()
        raise


READER = FormatReader(
    name=NAME,
    description="FLIR FFF, SEQ and CSQ (FFF records back to back; raw, PNG or JPEG-LS frames)",
    suffixes=(".fff", ".seq", ".csq"),
    sniff=lambda head, suffix: head[:4] == MAGIC,
    parse=parse,
    open=open_file,
)
