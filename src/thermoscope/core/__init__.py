"""Core data types: frames, sequences, radiometric parameters and calibration."""

from thermoscope.core.errors import RadiometryError, ThermoscopeError
from thermoscope.core.findings import ContractError, Finding, Inspection, Verdict
from thermoscope.core.frame import (
    CameraInfo,
    FrameError,
    FrameMetadata,
    GpsPosition,
    ThermalFrame,
)
from thermoscope.core.parameters import AtmosphereConstants, ObjectParameters, PlanckConstants
from thermoscope.core.part_record import (
    CaptureConditions,
    PartRecord,
    PartRecordError,
    SensorSeries,
    View,
)
from thermoscope.core.radiometry import Calibration, PlanckCalibration, atmospheric_transmission
from thermoscope.core.regions import Box, MaskRegion, Polygon, Region, RegionError
from thermoscope.core.sequence import ThermalSequence
from thermoscope.core.visual import CameraAlignment, VisualImage, VisualImageError

__all__ = [
    "AtmosphereConstants",
    "Box",
    "Calibration",
    "CameraAlignment",
    "CameraInfo",
    "CaptureConditions",
    "ContractError",
    "Finding",
    "FrameError",
    "FrameMetadata",
    "GpsPosition",
    "Inspection",
    "MaskRegion",
    "ObjectParameters",
    "PartRecord",
    "PartRecordError",
    "PlanckCalibration",
    "PlanckConstants",
    "Polygon",
    "RadiometryError",
    "Region",
    "RegionError",
    "SensorSeries",
    "ThermalFrame",
    "ThermalSequence",
    "ThermoscopeError",
    "Verdict",
    "View",
    "VisualImage",
    "VisualImageError",
    "atmospheric_transmission",
]
