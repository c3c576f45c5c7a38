"""The ``png`` output format: a false-colour picture of a frame, for people, not for analysis.

Kept apart from the rest of ``thermoscope.render`` because it is the one module that uses the io
layer (for ``FormatWriter``); rendering itself needs only ``thermoscope.core``.
"""

from __future__ import annotations

from collections.abc import Sequence

from thermoscope.core import ThermalFrame
from thermoscope.io.registry import FormatWriter
from thermoscope.render.errors import RenderError
from thermoscope.render.png import encode_png
from thermoscope.render.thermogram import render


def emit_png(frames: Sequence[ThermalFrame]) -> bytes:
    """PNG bytes of the first frame: iron palette, automatic range, colour bar in °C."""
    if not frames:
        raise RenderError("nothing to render: no frames")
    return encode_png(render(frames[0].celsius, colorbar=True))


PNG_WRITER = FormatWriter(
    name="png",
    description="false-colour picture of the first frame (iron, °C colour bar); not radiometric",
    suffixes=(".png",),
    emit=emit_png,
)
