"""Temperature grids as CSV text, as FLIR Tools, FLIR Thermal Studio and Research Studio export.

Reading: the text (UTF-8, UTF-16 with a byte-order mark, or Latin-1) is split into lines, and
the dialect is found from the lines themselves: comma, semicolon or tab separators, with a
decimal point, or a decimal comma where the separator is a semicolon or tab. Lines are then:

* grid rows: numbers only (``nan`` allowed), optionally after a first label column that is
  empty or a frame label (``Frame 3``, ``Image 1``), optionally with trailing separators;
* frame labels alone on a line (``Frame 2``): the next rows start a new frame;
* text (``File:,IR_0001.jpg``, ``Parameters:,Emissivity:,0.95``...): before the first grid it is
  the header, kept in ``metadata.extra["csv_header"]``; after a grid it ends that frame, and a
  later block of rows starts the next frame;
* blank lines (or only separators): ignored, also inside a grid.

All rows of a frame must have the same number of values and all frames the same size; anything
else is a `CorruptDataError` naming the line. Values are taken as °C (the unit of the export is
not checked); ``inf`` is refused, NaN is kept.

Writing (`emit`): comma-separated °C with 3 decimals (``nan`` for undefined pixels), one line
per row; several frames (all the same size) each follow a ``Frame N`` line (N from 1).

What CSV loses: everything but the temperatures — raw counts, camera, parameters,
calibration, timestamps, all other metadata — and precision beyond 0.0005 °C.
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from thermoscope.core import FrameMetadata, ThermalFrame, ThermalSequence
from thermoscope.core.frame import MAX_SIDE
from thermoscope.io.errors import (
    AbsurdSizeError,
    CorruptDataError,
    ThermoscopeFormatError,
    TruncatedFileError,
    UnknownFormatError,
    format_errors,
)
from thermoscope.io.limits import DEFAULT_LIMITS, DecodeLimitError, DecodeLimits
from thermoscope.io.registry import FormatReader, FormatWriter

NAME = "csv"
#: Decimals the writer keeps: values are exact to half of the last one (0.0005 °C).
DECIMALS = 3

_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)",
    re.IGNORECASE,
)
_NUMBER_CHARS = frozenset("0123456789.+-eEnNaAiIfFtTyY \t")
_FRAME_LABEL = re.compile(r"(?:frame|image)\s*[#:]?\s*([0-9]{1,9})\s*:?", re.IGNORECASE)
# (separator, decimal mark), in order of preference when several read the same cells
_DIALECTS = ((",", "."), (";", "."), (";", ","), ("\t", "."), ("\t", ","))
# lines looked at to choose the dialect: the first ones that look like grid rows
_SAMPLE_LINES = 20
_GRID_CHARS = re.compile(r"(?:Frame|Image)?[0-9.,;\t +\-eEnaNA]*", re.IGNORECASE)
_MAX_HEADER_LINES = 100


class _Kind(Enum):
    BLANK = "blank"
    ROW = "row"
    LABEL = "label"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class _Line:
    """One classified line: its values (rows) and whether it starts a new frame."""

    kind: _Kind
    values: NDArray[np.float64] | None = None
    fields: tuple[str, ...] = ()
    starts_frame: bool = False


def _sniff(head: bytes, suffix: str) -> bool:
    if suffix != ".csv":
        return False
    return head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" not in head


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise CorruptDataError(f"invalid UTF-16 text: {exc.reason}") from exc
    nul = data.find(b"\x00")
    if nul >= 0:
        raise UnknownFormatError(f"binary data, not CSV text (NUL byte at offset {nul})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _numbers(fields: list[str]) -> NDArray[np.float64] | None:
    """The fields as numbers, or ``None`` when one is not a plain decimal number or nan/inf."""
    if not _NUMBER_CHARS.issuperset("".join(fields)):
        return None
    try:
        return np.array(fields, dtype=np.float64)
    except ValueError:
        return None


def _classify(line: str, separator: str, decimal: str) -> _Line:
    """What ``line`` is under one dialect (pure: no errors, bad rows are TEXT)."""
    if decimal == ",":
        line = line.replace(",", ".")
    fields = line.split(separator)
    while fields and not fields[-1].strip():
        fields.pop()
    if not fields:
        return _Line(_Kind.BLANK)
    first = fields[0].strip()
    label = _FRAME_LABEL.fullmatch(first)
    if label is not None or not first:
        fields = fields[1:]
        if not fields:
            return _Line(_Kind.LABEL, starts_frame=True) if label else _Line(_Kind.BLANK)
    values = _numbers(fields)
    if values is None:
        return _Line(_Kind.TEXT)
    return _Line(_Kind.ROW, values, tuple(fields), starts_frame=label is not None)


def _dialect(lines: list[str]) -> tuple[str, str]:
    """The dialect reading the most numbers from the first grid-like lines (ties: the earlier)."""
    gridlike = (line for line in lines if len(line) > 0 and _GRID_CHARS.fullmatch(line[:200]))
    sample = list(itertools.islice(gridlike, _SAMPLE_LINES))
    if not sample:
        sample = [line for line in lines[: _SAMPLE_LINES * 4] if line.strip()]
    best, best_cells = _DIALECTS[0], -1
    for separator, decimal in _DIALECTS:
        cells = 0
        for line in sample:
            classified = _classify(line, separator, decimal)
            if classified.values is not None:
                cells += classified.values.size
        if cells > best_cells:
            best, best_cells = (separator, decimal), cells
    return best


def _bad_row_reason(line: str, separator: str, decimal: str) -> str | None:
    """Why a text line looks like a damaged grid row (mostly numbers), else ``None``."""
    if decimal == ",":
        line = line.replace(",", ".")
    fields = [f.strip() for f in line.split(separator)]
    while fields and not fields[-1]:
        fields.pop()
    numeric = [bool(_NUMBER.fullmatch(f)) for f in fields]
    if sum(numeric) >= 2 and sum(numeric) * 2 > len(fields):
        column = numeric.index(False)
        return f"value {column + 1} is {fields[column]!r:.40}, not a number"
    return None


class _Frames:
    """Collects grid rows into frames, checking sizes as it goes."""

    def __init__(self, limits: DecodeLimits) -> None:
        self.limits = limits
        self.pixels = 0
        self.frames: list[NDArray[np.float32]] = []
        self.first_lines: list[int] = []
        self._rows: list[NDArray[np.float64]] = []
        self._width_line = 0

    @property
    def open(self) -> bool:
        return bool(self._rows)

    def add(self, values: NDArray[np.float64], fields: tuple[str, ...], line_no: int) -> None:
        if values.size > MAX_SIDE:
            raise AbsurdSizeError(f"line {line_no}: {values.size} values (at most {MAX_SIDE})")
        if self._rows and values.size != self._rows[0].size:
            raise CorruptDataError(
                f"line {line_no}: {values.size} values, expected {self._rows[0].size} "
                f"as on line {self._width_line}"
            )
        infinite = np.isinf(values)
        if infinite.any():
            column = int(np.argmax(infinite))
            raise CorruptDataError(
                f"line {line_no}, value {column + 1}: {fields[column].strip()!r:.40} is not a "
                "finite temperature (NaN marks undefined pixels)"
            )
        if not self._rows:
            self._width_line = line_no
        if len(self._rows) == MAX_SIDE:
            raise AbsurdSizeError(f"line {line_no}: more than {MAX_SIDE} rows in one frame")
        rows = len(self._rows) + 1
        try:
            self.limits.check_frame(values.size, rows, index=len(self.frames))
            self.limits.check_total(self.pixels + values.size * rows)
        except DecodeLimitError as exc:
            raise DecodeLimitError(f"line {line_no}: {exc.reason}") from None
        self._rows.append(values)

    def close(self) -> None:
        if not self._rows:
            return
        self.limits.check_count(len(self.frames) + 1)
        with np.errstate(over="ignore"):
            frame = np.vstack(self._rows).astype(np.float32)
        if np.isinf(frame).any():
            raise CorruptDataError(
                f"frame starting on line {self._width_line} has values beyond the float32 range"
            )
        if self.frames and frame.shape != self.frames[0].shape:
            h, w = frame.shape
            h0, w0 = self.frames[0].shape
            raise CorruptDataError(
                f"the grid starting on line {self._width_line} is {w}x{h}, the first one "
                f"(line {self.first_lines[0]}) is {w0}x{h0}; frames must be the same size"
            )
        self.frames.append(frame)
        self.pixels += frame.size
        self.first_lines.append(self._width_line)
        self._rows = []


@format_errors
def parse_grids(
    data: bytes, limits: DecodeLimits = DEFAULT_LIMITS
) -> tuple[list[NDArray[np.float32]], list[str]]:
    """The temperature grids (float32 °C, one per frame) and the header lines of CSV text.

    Rows are checked against ``limits`` as they are read, before a frame is assembled.

    Raises:
        TruncatedFileError: empty input.
        UnknownFormatError: binary data.
        AbsurdSizeError: a grid wider or taller than a frame may be.
        DecodeLimitError: more pixels, frames or decoded bytes than ``limits`` allow.
        CorruptDataError: no grid, ragged rows, frames of different sizes, ``inf`` values.
    """
    if not data:
        raise TruncatedFileError("empty file")
    lines = _decode(data).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    separator, decimal = _dialect(lines)
    collector = _Frames(limits)
    header: list[str] = []
    label_line: int | None = None
    for number, line in enumerate(lines, start=1):
        item = _classify(line, separator, decimal)
        if item.kind is _Kind.BLANK:
            continue
        if item.kind is _Kind.TEXT:
            if collector.open:
                reason = _bad_row_reason(line, separator, decimal)
                if reason is not None:
                    raise CorruptDataError(f"line {number}: {reason}")
                collector.close()
            elif not collector.frames and label_line is None and len(header) < _MAX_HEADER_LINES:
                header.append(line.strip())
            continue
        if item.starts_frame:
            if label_line is not None and not collector.open:
                raise CorruptDataError(f"line {label_line}: frame label without data")
            collector.close()
            label_line = number
        if item.values is not None:
            collector.add(item.values, item.fields, number)
            label_line = None
    if label_line is not None and not collector.open:
        raise CorruptDataError(f"line {label_line}: frame label without data")
    collector.close()
    if not collector.frames:
        raise CorruptDataError("no grid of numbers found")
    return collector.frames, header


def _sequence(data: bytes, source: str, limits: DecodeLimits) -> ThermalSequence:
    grids, header = parse_grids(data, limits)
    extra = {"csv_header": header} if header else {}
    multi = len(grids) > 1
    frames = [
        ThermalFrame(
            grid,
            metadata=FrameMetadata(
                source=source, format=NAME, frame_index=i if multi else None, extra=extra
            ),
        )
        for i, grid in enumerate(grids)
    ]
    return ThermalSequence.of(frames, source=source)


def parse(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> ThermalSequence:
    """Frames from CSV text in memory (all parsed now: text has no random access).

    Raises:
        ThermoscopeFormatError: see `parse_grids`.
    """
    return _sequence(data, "<bytes>", limits)


def open_file(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> ThermalSequence:
    """Read a CSV temperature file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CorruptDataError(f"cannot read: {exc.strerror or exc}", str(p)) from exc
    try:
        return _sequence(data, str(p), limits)
    except ThermoscopeFormatError as exc:
        raise exc.with_source(str(p)) from exc


def emit(frames: Sequence[ThermalFrame]) -> bytes:
    """CSV text (ASCII): °C with `DECIMALS` decimals; ``Frame N`` lines when several frames."""
    if not frames:
        raise ThermoscopeFormatError("nothing to write: no frames")
    shape = frames[0].shape
    out = io.StringIO()
    for i, frame in enumerate(frames):
        if frame.shape != shape:
            raise ThermoscopeFormatError(
                f"frame {i} is {frame.width}x{frame.height}, frame 0 is {shape[1]}x{shape[0]}: "
                "a CSV holds frames of one size"
            )
        if np.isinf(frame.celsius).any():
            raise ThermoscopeFormatError(
                f"frame {i} has ±inf temperatures; only finite values and NaN can be written"
            )
        if len(frames) > 1:
            out.write(f"Frame {i + 1}\n")
        np.savetxt(out, frame.celsius, fmt=f"%.{DECIMALS}f", delimiter=",")
    return out.getvalue().encode("ascii")


READER = FormatReader(
    name=NAME,
    description="CSV grid of °C (FLIR Tools / Thermal Studio export; , ; or tab, decimal comma)",
    suffixes=(".csv",),
    sniff=_sniff,
    parse=parse,
    open=open_file,
)
WRITER = FormatWriter(
    name=NAME,
    description="CSV grid of °C, 3 decimals, 'Frame N' lines between frames",
    suffixes=(".csv",),
    emit=emit,
)
