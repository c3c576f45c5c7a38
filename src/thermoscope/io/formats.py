"""The list of registered formats, in sniffing order (most specific signature first)."""

from __future__ import annotations

from thermoscope.io.registry import FormatReader, FormatWriter

READERS: list[FormatReader] = []
WRITERS: list[FormatWriter] = []
