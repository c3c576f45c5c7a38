"""Format registry: readers chosen by content signature (suffix breaks ties), writers by suffix."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from thermoscope.core import ThermalFrame, ThermalSequence
from thermoscope.io.errors import (
    ThermoscopeFormatError,
    TruncatedFileError,
    UnknownFormatError,
)
from thermoscope.io.jpeg_segments import is_jpeg, iter_segments
from thermoscope.io.limits import DEFAULT_LIMITS, DecodeLimits

_SOS = 0xDA  # JPEG start-of-scan: the image data follows
_EOI = b"\xff\xd9"

#: How many leading bytes a reader's ``sniff`` sees (JPEG APPn segments sit well inside this).
SNIFF_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class FormatReader:
    """A radiometric file format that thermoscope reads.

    Attributes:
        name: short identifier (``"flir-rjpeg"``).
        description: one line for users.
        suffixes: usual file name endings (lower case, with dot).
        sniff: ``(head, suffix) -> bool``; ``head`` is up to ``SNIFF_BYTES`` leading bytes.
        parse: pure ``(bytes, limits) -> ThermalSequence`` (single images are sequences of one
            frame); sizes declared beyond the ``DecodeLimits`` are refused before decoding.
        open: thin file wrapper ``(Path, limits) -> ThermalSequence``; may read frames lazily.
    """

    name: str
    description: str
    suffixes: tuple[str, ...]
    sniff: Callable[[bytes, str], bool]
    parse: Callable[[bytes, DecodeLimits], ThermalSequence]
    open: Callable[[Path, DecodeLimits], ThermalSequence]


@dataclass(frozen=True, slots=True)
class FormatWriter:
    """A format thermoscope writes: ``emit`` turns frames into the file's bytes."""

    name: str
    description: str
    suffixes: tuple[str, ...]
    emit: Callable[[Sequence[ThermalFrame]], bytes]


#: The registered formats, filled by ``thermoscope.formats`` (the one place above io and render
#: that knows every format) when the ``thermoscope`` package is imported.
_READERS: list[FormatReader] = []
_WRITERS: list[FormatWriter] = []
_Format = TypeVar("_Format", FormatReader, FormatWriter)


def register_reader(reader: FormatReader) -> None:
    """Add ``reader`` at the end of the sniffing order (one of the same name is replaced in
    place, so registering again is harmless)."""
    _register(_READERS, reader)


def register_writer(writer: FormatWriter) -> None:
    """Add ``writer`` (one of the same name is replaced in place)."""
    _register(_WRITERS, writer)


def _register(table: list[_Format], item: _Format) -> None:
    for i, known in enumerate(table):
        if known.name == item.name:
            table[i] = item
            return
    table.append(item)


def _readers() -> list[FormatReader]:
    return _READERS


def _writers() -> list[FormatWriter]:
    return _WRITERS


def readers() -> list[FormatReader]:
    """All registered readers, in sniffing order."""
    return list(_readers())


def writers() -> list[FormatWriter]:
    """All registered writers."""
    return list(_writers())


def detect(head: bytes, suffix: str = "") -> FormatReader:
    """The reader whose signature matches ``head`` (suffix consulted for signature-less formats)."""
    suffix = suffix.lower()
    for reader in _readers():
        if reader.sniff(head, suffix):
            return reader
    known = ", ".join(r.name for r in _readers())
    if is_jpeg(head):
        raise _unclaimed_jpeg(head, known)
    raise UnknownFormatError(f"unknown signature {head[:8].hex(' ')}; thermoscope reads: {known}")


def _unclaimed_jpeg(head: bytes, known: str) -> ThermoscopeFormatError:
    """Why no reader took a JPEG: cut short before its image data, or no radiometric segments.

    ``head`` is the whole file when it is shorter than ``SNIFF_BYTES``.
    """
    complete = len(head) < SNIFF_BYTES
    try:
        reached_image = any(seg.marker == _SOS for seg in iter_segments(head))
    except TruncatedFileError as exc:
        if not complete:  # header segments run past the sniffed bytes: nothing radiometric in them
            reached_image = True
        else:
            return TruncatedFileError(f"{exc.reason}, before its radiometric and image data")
    except ThermoscopeFormatError as exc:
        return type(exc)(f"damaged JPEG header: {exc.reason}")
    if complete and not reached_image and not head.endswith(_EOI):
        return TruncatedFileError(
            f"truncated JPEG: the file ends at byte {len(head)}, before its image data"
        )
    return UnknownFormatError(
        "a JPEG without radiometric data (no FLIR or DJI thermal segments in its header); "
        f"thermoscope reads: {known}"
    )


def open_path(
    path: str | os.PathLike[str], *, limits: DecodeLimits = DEFAULT_LIMITS
) -> ThermalSequence:
    """Open any supported file as a (lazy) sequence; a single image is a sequence of one.

    Raises:
        DecodeLimitError: the file declares more pixels, frames or bytes than ``limits``.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise ThermoscopeFormatError(f"cannot open: {exc.strerror or exc}", str(p)) from exc
    try:
        reader = detect(head, p.suffix)
        return reader.open(p, limits)
    except ThermoscopeFormatError as exc:
        if exc.source == str(p):
            raise
        raise exc.with_source(str(p)) from exc.__cause__


def parse_bytes(
    data: bytes, suffix: str = "", *, limits: DecodeLimits = DEFAULT_LIMITS
) -> ThermalSequence:
    """Parse in-memory file content of any supported format (within ``limits``)."""
    return detect(data[:SNIFF_BYTES], suffix).parse(data, limits)


def load(
    path: str | os.PathLike[str], frame: int = 0, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> ThermalFrame:
    """Read one frame (default the first) of any supported file (within ``limits``)."""
    with open_path(path, limits=limits) as seq:
        try:
            return seq[frame]
        except IndexError as exc:
            raise ThermoscopeFormatError(str(exc), str(path)) from exc


def writer_for(path: str | os.PathLike[str]) -> FormatWriter:
    """The writer chosen by the output file's suffix."""
    suffix = Path(path).suffix.lower()
    for w in _writers():
        if suffix in w.suffixes:
            return w
    known = ", ".join(s for w in _writers() for s in w.suffixes)
    raise UnknownFormatError(
        f"no writer for suffix {suffix!r}; thermoscope writes: {known}", str(path)
    )


def save(frames: ThermalFrame | Sequence[ThermalFrame], path: str | os.PathLike[str]) -> Path:
    """Write frames to ``path`` atomically (a temp file renamed into place); format by suffix."""
    items = [frames] if isinstance(frames, ThermalFrame) else list(frames)
    if not items:
        raise ThermoscopeFormatError("nothing to write: no frames", str(path))
    data = writer_for(path).emit(items)
    return write_atomic(Path(path), data)


def new_temp_file(path: Path) -> tuple[int, Path]:
    """A new, empty temp file beside ``path`` (same folder, hidden name), open for writing.

    Unlike ``tempfile.mkstemp`` (always 0600) it gets the mode a plain ``open`` would give a new
    file: 0666 minus the process umask. Returns the file descriptor and the temp file's path.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.open(tmp, flags, 0o666), tmp


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers never see a half-written file.

    The file gets the mode a plain ``open(path, "wb")`` would give it: an existing file keeps
    its mode, a new one gets 0666 minus the process umask.
    """
    fd, tmp = new_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
