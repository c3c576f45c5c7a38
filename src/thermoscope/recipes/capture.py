"""Recipe sections for the capture and for other sensors: the capture protocol (framing, focus,
ambient range), the reference emitter that watches the camera, the sensors a part record
carries, and the ``sensor`` rule over a sensor feature.

A frame outside the protocol, or a reference emitter reading beyond ``max_offset_c``, makes the
part RETAKE: the capture is repeated instead of the part being judged. See docs/recipes.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from thermoscope.recipes.schema_base import Limits, Name, Temperature, _Strict

#: Features a ``sensor`` rule can hold against its limits.
SensorFeature = Literal["rms", "peak", "crest_factor", "band_energy", "spectral_centroid"]

Range = tuple[
    Annotated[float, Field(ge=-1e6, le=1e6)],
    Annotated[float, Field(ge=-1e6, le=1e6)],
]
Pixel = Annotated[float, Field(ge=0.0, le=16384.0)]


def _ordered(value: tuple[float, float] | None, what: str) -> None:
    if value is not None and value[0] > value[1]:
        raise ValueError(f"inverted {what}: {value[0]:g} > {value[1]:g}")


class FramingSpec(_Strict):
    """Where the part must sit in the frame: its hot pixels' centroid, area and margins."""

    threshold_c: Temperature | None = Field(
        default=None, description="part pixels are hotter than this, °C"
    )
    above_background_c: float | None = Field(
        default=None,
        gt=0.0,
        le=1000.0,
        description="part pixels are this much hotter than the frame's 5th percentile, °C",
    )
    center: tuple[Pixel, Pixel] = Field(description="expected centroid of the part, [x, y] px")
    max_offset_px: float = Field(
        gt=0.0, le=16384.0, description="largest distance of the centroid from center, px"
    )
    area_px: Range | None = Field(
        default=None, description="[min, max] area of the part's pixels, px (pose, scale)"
    )
    edge_margin_px: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="the part's pixels must stay this far from the frame edge (cut-off part), px",
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> FramingSpec:
        if (self.threshold_c is None) == (self.above_background_c is None):
            raise ValueError("give exactly one of threshold_c or above_background_c")
        _ordered(self.area_px, "area_px")
        return self


class ProtocolSpec(_Strict):
    """The capture protocol: a frame that breaks it is RETAKE, not OK or NG."""

    framing: FramingSpec | None = Field(default=None, description="expected framing and pose")
    min_sharpness: float | None = Field(
        default=None,
        ge=0.0,
        le=1e9,
        description="floor of the frame's focus measure (variance of its Laplacian), °C²",
    )
    ambient_c: Range | None = Field(
        default=None, description="[min, max] ambient temperature of the capture, °C"
    )
    relative_humidity_pct: Range | None = Field(
        default=None, description="[min, max] relative humidity of the capture, percent"
    )

    @model_validator(mode="after")
    def _ranges(self) -> ProtocolSpec:
        _ordered(self.ambient_c, "ambient_c")
        _ordered(self.relative_humidity_pct, "relative_humidity_pct")
        return self


class ReferenceEmitterSpec(_Strict):
    """A patch of known temperature in view (a blackbody), read on every part.

    Its offset (reading minus ``temperature_c``) is the camera's own error: a finding
    ``reference emitter`` the drift watch charts as camera drift. Beyond ``warn_offset_c`` the
    finding is WARN, beyond ``max_offset_c`` the part is RETAKE; with ``correct`` the offset is
    subtracted from the view's temperatures before the rules.
    """

    region: Name = Field(description="the region the emitter fills (of the recipe's main view)")
    temperature_c: Temperature = Field(description="the emitter's known temperature, °C")
    statistic: Literal["mean", "median"] = Field(
        default="median", description="how the region is read"
    )
    warn_offset_c: float | None = Field(
        default=None, gt=0.0, le=1000.0, description="an offset beyond ± this is WARN, °C"
    )
    max_offset_c: float = Field(
        gt=0.0, le=1000.0, description="an offset beyond ± this makes the part RETAKE, °C"
    )
    correct: bool = Field(
        default=False, description="subtract the offset from the view's temperatures"
    )

    @model_validator(mode="after")
    def _warn_inside(self) -> ReferenceEmitterSpec:
        if self.warn_offset_c is not None and self.warn_offset_c > self.max_offset_c:
            raise ValueError(
                f"warn_offset_c {self.warn_offset_c:g} is above max_offset_c {self.max_offset_c:g}"
            )
        return self


class SensorSpec(_Strict):
    """A sensor series the part record must carry, with its unit and sample rate."""

    name: Name = Field(description="the series' name in the part record")
    unit: str = Field(min_length=1, max_length=20, description="the unit of its samples")
    sample_rate_hz: float | None = Field(
        default=None, gt=0.0, le=1e7, description="its sample rate, Hz (checked when given)"
    )
    min_duration_s: float = Field(
        default=0.0, ge=0.0, le=1e6, description="shortest series accepted, s"
    )
    around_frames_s: float | None = Field(
        default=None,
        ge=0.0,
        le=1e6,
        description="cut the series to the main view's frame times ± this, s (none: all of it)",
    )


class SensorRule(_Strict):
    """A feature of a sensor series held against limits, like a temperature rule."""

    type: Literal["sensor"] = Field(description="rule type")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description='rule name (default "<sensor> <feature>")',
    )
    sensor: Name = Field(description="the sensor series (one of the recipe's sensors)")
    feature: SensorFeature = Field(description="what is measured on the series")
    band_hz: Range | None = Field(
        default=None, description="[low, high] Hz, for band_energy (required there)"
    )
    limits: Limits = Field(description="tolerance band, in the feature's unit")
    description: str = Field(default="", max_length=1000, description="free text")

    @model_validator(mode="after")
    def _band(self) -> SensorRule:
        if (self.feature == "band_energy") != (self.band_hz is not None):
            raise ValueError("band_hz is required for band_energy and only there")
        if self.band_hz is not None and not 0.0 <= self.band_hz[0] < self.band_hz[1]:
            raise ValueError(f"band_hz [{self.band_hz[0]:g}, {self.band_hz[1]:g}] is not a band")
        return self

    @property
    def label(self) -> str:
        """The rule's name, or the default ``"<sensor> <feature>"``."""
        return self.name if self.name is not None else f"{self.sensor} {self.feature}"
