"""The list of registered formats, in sniffing order (most specific signature first)."""

from __future__ import annotations

from thermoscope.io import (
    csv_format,
    dji,
    flir_rjpeg,
    flir_seq,
    flir_writer,
    numpy_format,
    tiff_format,
)
from thermoscope.io.registry import FormatReader, FormatWriter
from thermoscope.render.writer import PNG_WRITER

READERS: list[FormatReader] = [
    flir_rjpeg.READER,
    flir_seq.READER,
    dji.READER,
    tiff_format.READER,
    numpy_format.READER,
    csv_format.READER,
]
WRITERS: list[FormatWriter] = [
    flir_writer.FFF_WRITER,
    flir_writer.SEQ_WRITER,
    flir_writer.CSQ_WRITER,
    PNG_WRITER,
    tiff_format.WRITER,
    numpy_format.WRITER,
    csv_format.WRITER,
]
