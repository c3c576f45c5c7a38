"""thermoscope: thermal-imaging quality control for production lines."""

import thermoscope.formats  # noqa: F401  (registers every file format with thermoscope.io)
from thermoscope.core import (
    ObjectParameters,
    ThermalFrame,
    ThermalSequence,
    ThermoscopeError,
)

__all__ = ["ObjectParameters", "ThermalFrame", "ThermalSequence", "ThermoscopeError"]
__version__ = "0.1.0"
