"""Palettes and rendering: turn °C arrays into false-colour RGB thermograms and PNG files.

``thermoscope.render.writer`` makes the ``png`` output format's bytes; ``thermoscope.formats``
registers it with the io layer (render does not import io).
"""

from thermoscope.render.errors import RenderError
from thermoscope.render.isotherms import Isotherm
from thermoscope.render.palettes import PALETTES, Palette, get_palette, palette_lut
from thermoscope.render.png import encode_png
from thermoscope.render.thermogram import auto_range, render

__all__ = [
    "PALETTES",
    "Isotherm",
    "Palette",
    "RenderError",
    "auto_range",
    "encode_png",
    "get_palette",
    "palette_lut",
    "render",
]
