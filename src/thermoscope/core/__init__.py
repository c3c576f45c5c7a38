"""Core data types: frames, sequences, radiometric parameters and calibration."""

from thermoscope.core.errors import RadiometryError, ThermoscopeError
from thermoscope.core.frame import (
    CameraInfo,
    FrameError,
    FrameMetadata,
    GpsPosition,
    ThermalFrame,
)
from thermoscope.core.parameters import AtmosphereConstants, ObjectParameters, PlanckConstants
from thermoscope.core.radiometry import Calibration, PlanckCalibration, atmospheric_transmission
from thermoscope.core.sequence import ThermalSequence

__all__ = [
    "AtmosphereConstants",
    "Calibration",
    "CameraInfo",
    "FrameError",
    "FrameMetadata",
    "GpsPosition",
    "ObjectParameters",
    "PlanckCalibration",
    "PlanckConstants",
    "RadiometryError",
    "ThermalFrame",
    "ThermalSequence",
    "ThermoscopeError",
    "atmospheric_transmission",
]
