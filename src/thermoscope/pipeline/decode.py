"""Decode a part's file once: its frames, their content ids and the facts a record keeps.

``decode_bytes`` (a file received: the server's ingest, the edge's camera folder) and
``decode_path`` (a file on disk: the CLI) index a radiometric file within ``DecodeLimits``
(checked from its headers before any pixel is decoded), then decode its frames one at a time
for their content ids and °C range, keeping frame 0 decoded and, when the caller says which
(``keep``, e.g. ``Pipeline.frames_needed``), the frames it is about to inspect, so each frame is
decoded once. Every failure is a ``PipelineError`` naming the file; ``too_large`` marks a file
beyond the limits.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

import numpy as np

import thermoscope.io as tio
from thermoscope.core import ThermalFrame, ThermalSequence, ThermoscopeError
from thermoscope.pipeline.errors import PipelineError
from thermoscope.storage.identity import frame_id, sequence_id

#: Exceptions a reader may let through on malformed data besides its own error types.
_DECODE_ERRORS = (ValueError, IndexError, KeyError, OverflowError, MemoryError)

#: Which frames to keep decoded, given a part's frame count: their indices (0 is always kept).
FrameKeep = Callable[[int], Collection[int]]


@dataclass(frozen=True, slots=True)
class DecodedPart:
    """A part's file, decoded once: what is stored and inspected about it.

    Attributes:
        sequence: the file's frames, decoded again on access (left open: close it, or use the
            part as a context manager).
        first: frame 0, decoded.
        kept: the frames kept decoded by index (frame 0 and those ``keep`` named).
        frame_ids: content id of each frame (``storage.identity.frame_id``).
        content_id: content id of the whole part (the frame's id, or the sequence id).
        format: the reader's name for the file's format (``flir-csq`` for a CSQ).
        source: the part's name (the file name or path given).
        width, height: frame size, pixels.
        camera: the camera's facts (``CameraInfo`` as a dict).
        parameters: the object parameters as a dict, ``None`` when the file has none.
        capture_time: when frame 0 was taken, if the file says.
        timestamps_s: each frame's time stamp in s, ``None`` unless every frame has one.
        min_c, max_c: the °C range over every finite pixel of every frame (``None`` when none).
        issues: problems that did not stop the readable frames (a truncated last frame).
    """

    sequence: ThermalSequence
    first: ThermalFrame
    kept: Mapping[int, ThermalFrame]
    frame_ids: tuple[str, ...]
    content_id: str
    format: str
    source: str
    width: int
    height: int
    camera: dict[str, Any]
    parameters: dict[str, Any] | None
    capture_time: datetime | None
    timestamps_s: tuple[float, ...] | None
    min_c: float | None
    max_c: float | None
    issues: tuple[str, ...]

    @property
    def frame_count(self) -> int:
        """Frames of the part."""
        return len(self.frame_ids)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of each frame, pixels."""
        return (self.height, self.width)

    def frame(self, index: int) -> ThermalFrame:
        """Frame ``index`` (negative: from the end): a kept frame, else decoded again."""
        kept = self.kept.get(index % self.frame_count if index < 0 else index)
        return kept if kept is not None else self.sequence[index]

    def close(self) -> None:
        """Release the file behind ``sequence``."""
        self.sequence.close()

    def __enter__(self) -> DecodedPart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_bytes(
    data: bytes,
    filename: str,
    limits: tio.DecodeLimits = tio.DEFAULT_LIMITS,
    *,
    keep: FrameKeep | None = None,
) -> DecodedPart:
    """Decode a file held in memory (its format found from its first bytes and suffix).

    Args:
        data: the file's bytes.
        filename: its name (the suffix helps detection; errors and ``source`` name it).
        limits: bounds checked from the headers before any pixel is decoded.
        keep: which frames to keep decoded besides frame 0, given the frame count (the frames
            about to be inspected: ``Pipeline.frames_needed``); ``None``: frame 0 only.

    Raises:
        PipelineError: empty, unreadable, beyond ``limits`` (``too_large``), no frame, or
            frames of different sizes.
    """
    if not data:
        raise PipelineError(filename, "the file is empty")
    suffix = PurePath(filename).suffix.lower()
    try:
        reader = tio.detect(data[: tio.registry.SNIFF_BYTES], suffix)
        seq = reader.parse(data, limits)
    except (ThermoscopeError, *_DECODE_ERRORS) as exc:
        raise _unreadable(filename, exc) from None
    return _summarise_or_close(seq, filename, keep)


def decode_path(
    path: str | os.PathLike[str],
    limits: tio.DecodeLimits = tio.DEFAULT_LIMITS,
    *,
    keep: FrameKeep | None = None,
) -> DecodedPart:
    """Decode a file on disk (read lazily by its reader); ``source`` is the path as given;
    ``keep`` as in ``decode_bytes``.

    Raises:
        PipelineError: as ``decode_bytes``; also a file that cannot be opened.
    """
    name = str(path)
    try:
        seq = tio.open_path(Path(path), limits=limits)
    except (ThermoscopeError, *_DECODE_ERRORS) as exc:
        raise _unreadable(name, exc) from None
    return _summarise_or_close(seq, name, keep)


def _unreadable(filename: str, exc: BaseException) -> PipelineError:
    if isinstance(exc, tio.DecodeLimitError):
        return PipelineError(filename, f"beyond the decode limits: {exc.reason}", too_large=True)
    if isinstance(exc, tio.ThermoscopeFormatError):  # its reason, without the "<bytes>: " prefix
        return PipelineError(filename, exc.reason)
    if isinstance(exc, ThermoscopeError):
        return PipelineError(filename, f"not a radiometric file thermoscope reads: {exc}")
    return PipelineError(filename, f"cannot decode: {exc}")


def _summarise_or_close(seq: ThermalSequence, filename: str, keep: FrameKeep | None) -> DecodedPart:
    try:
        return _summarise(seq, filename, keep)
    except BaseException:
        seq.close()
        raise


def _summarise(seq: ThermalSequence, filename: str, keep: FrameKeep | None) -> DecodedPart:
    """One pass over the frames (each decoded once): ids, °C range, time stamps, and the frames
    ``keep`` names held on to."""
    if len(seq) == 0:
        raise PipelineError(filename, "the file holds no frame")
    wanted = {0} if keep is None else {0, *keep(len(seq))}
    kept: dict[int, ThermalFrame] = {}
    ids: list[str] = []
    low, high = math.inf, -math.inf
    timestamps: list[float | None] = []
    first: ThermalFrame | None = None
    for index in range(len(seq)):
        try:
            frame = seq[index]
        except (ThermoscopeError, *_DECODE_ERRORS) as exc:
            raise _unreadable(filename, exc) from None
        if first is None:
            first = frame
        elif frame.shape != first.shape:
            sizes = sorted({first.shape, frame.shape})
            raise PipelineError(filename, f"frames of different sizes {sizes}")
        if index in wanted:
            kept[index] = frame
        ids.append(frame_id(frame))
        low, high = _range(frame.celsius, low, high)
        timestamps.append(frame.metadata.timestamp_s)
    assert first is not None
    meta = first.metadata
    height, width = first.shape
    return DecodedPart(
        sequence=seq,
        first=first,
        kept=kept,
        frame_ids=tuple(ids),
        content_id=ids[0] if len(ids) == 1 else sequence_id(ids),
        format=meta.format,
        source=filename,
        width=width,
        height=height,
        camera=dataclasses.asdict(meta.camera),
        parameters=None if meta.parameters is None else dataclasses.asdict(meta.parameters),
        capture_time=meta.capture_time,
        timestamps_s=None
        if any(t is None for t in timestamps)
        else tuple(float(t) for t in timestamps if t is not None),
        min_c=low if math.isfinite(low) else None,
        max_c=high if math.isfinite(high) else None,
        issues=tuple(seq.issues),
    )


def _range(celsius: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """``(low, high)`` widened by the finite °C of a frame (no copy unless it holds NaN)."""
    lo, hi = float(celsius.min()), float(celsius.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = celsius[np.isfinite(celsius)]
        if not finite.size:
            return low, high
        lo, hi = float(finite.min()), float(finite.max())
    return min(low, lo), max(high, hi)
