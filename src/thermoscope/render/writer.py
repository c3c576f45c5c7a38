"""The ``png`` output format's bytes: a false-colour picture of a frame, for people, not for
analysis.

Render does not import io: ``thermoscope.formats`` wraps ``emit_png`` in io's ``FormatWriter``
and registers it with the other formats.
"""

from __future__ import annotations

from collections.abc import Sequence

from thermoscope.core import ThermalFrame
from thermoscope.render.errors import RenderError
from thermoscope.render.png import encode_png
from thermoscope.render.thermogram import render


def emit_png(frames: Sequence[ThermalFrame]) -> bytes:
    """PNG bytes of the first frame: iron palette, automatic range, colour bar in °C."""
    if not frames:
        raise RenderError("nothing to render: no frames")
    return encode_png(render(frames[0].celsius, colorbar=True))
