"""The digital twin of a line: its model, each part's values against the expected ones, exports."""

from thermoscope.twin.model import (
    Camera,
    Line,
    PartValue,
    Sensor,
    Site,
    Station,
    TwinError,
    compare,
    load_site,
    parse_site,
)

__all__ = [
    "Camera",
    "Line",
    "PartValue",
    "Sensor",
    "Site",
    "Station",
    "TwinError",
    "compare",
    "load_site",
    "parse_site",
]
