"""thermoscope: thermal-imaging quality control for production lines."""

from thermoscope.core import (
    ObjectParameters,
    ThermalFrame,
    ThermalSequence,
    ThermoscopeError,
)

__all__ = ["ObjectParameters", "ThermalFrame", "ThermalSequence", "ThermoscopeError"]
__version__ = "0.1.0"
