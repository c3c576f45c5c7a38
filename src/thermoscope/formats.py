"""Every file format thermoscope reads and writes, registered with ``thermoscope.io`` in one place.

This module sits above both ``thermoscope.io`` (the readers, the registry) and
``thermoscope.render`` (the ``png`` writer's picture), so neither of those imports the other.
The ``thermoscope`` package imports it first thing, so the registry is complete whichever part
of thermoscope a program imports. Readers are listed in sniffing order, most specific signature
first.
"""

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
from thermoscope.io.registry import FormatReader, FormatWriter, register_reader, register_writer
from thermoscope.render.writer import emit_png

PNG_WRITER = FormatWriter(
    name="png",
    description="false-colour picture of the first frame (iron, °C colour bar); not radiometric",
    suffixes=(".png",),
    emit=emit_png,
)

READERS: tuple[FormatReader, ...] = (
    flir_rjpeg.READER,
    flir_seq.READER,
    dji.READER,
    tiff_format.READER,
    numpy_format.READER,
    csv_format.READER,
)
WRITERS: tuple[FormatWriter, ...] = (
    flir_writer.FFF_WRITER,
    flir_writer.SEQ_WRITER,
    flir_writer.CSQ_WRITER,
    PNG_WRITER,
    tiff_format.WRITER,
    numpy_format.WRITER,
    csv_format.WRITER,
)

for _reader in READERS:
    register_reader(_reader)
for _writer in WRITERS:
    register_writer(_writer)
