"""Readers and writers for radiometric formats, chosen by content signature."""

from thermoscope.io.errors import (
    AbsurdSizeError,
    CorruptDataError,
    TemperatureUnavailableError,
    ThermoscopeFormatError,
    TruncatedFileError,
    UnknownFormatError,
    UnsupportedCompressionError,
)
from thermoscope.io.limits import DEFAULT_LIMITS, DecodeLimitError, DecodeLimits
from thermoscope.io.registry import (
    FormatReader,
    FormatWriter,
    detect,
    load,
    open_path,
    parse_bytes,
    readers,
    save,
    writers,
)

__all__ = [
    "DEFAULT_LIMITS",
    "AbsurdSizeError",
    "CorruptDataError",
    "DecodeLimitError",
    "DecodeLimits",
    "FormatReader",
    "FormatWriter",
    "TemperatureUnavailableError",
    "ThermoscopeFormatError",
    "TruncatedFileError",
    "UnknownFormatError",
    "UnsupportedCompressionError",
    "detect",
    "load",
    "open_path",
    "parse_bytes",
    "readers",
    "save",
    "writers",
]
