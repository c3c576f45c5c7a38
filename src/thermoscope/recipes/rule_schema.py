"""The recipe's rule types: one pydantic model per ``type`` (temperature rules over a region,
sequence rules, the ``sensor`` rule and the ``all_of`` / ``any_of`` combinations), the
discriminated :data:`Rule` union and :data:`RULE_TYPES`. See :mod:`thermoscope.recipes.schema`
for the format and docs/recipes.md for every field.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from thermoscope.recipes.capture import SensorRule
from thermoscope.recipes.schema_base import (
    _T_HI,
    _T_LO,
    FilePath,
    Limits,
    Name,
    Statistic,
    Temperature,
    _fmt,
    _resolve,
    _Strict,
)

#: Name a rule's ``reference`` takes to mean the recipe's ambient; no region may use it.
AMBIENT = "ambient"

#: The rule types that need a sequence of frames.
SEQUENCE_RULES = frozenset({"heating_rate", "cooling_rate", "time_to_reach", "curve_shape"})

# --------------------------------------------------------------------------- limits


# --------------------------------------------------------------------------- rules


class _Rule(_Strict):
    type: str = Field(description="rule type")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description='rule name (default "<region> <type>")',
    )
    region: Name = Field(description="the region the rule measures")
    limits: Limits = Field(description="tolerance band, in the rule's unit")
    description: str = Field(default="", max_length=1000, description="free text")

    @property
    def label(self) -> str:
        """The rule's name, or the default ``"<region> <type>"``."""
        return self.name if self.name is not None else f"{self.region} {self.type}"


class MaxRule(_Rule):
    """Highest temperature in the region, °C."""

    type: Literal["max"] = Field(description="rule type")


class MinRule(_Rule):
    """Lowest temperature in the region, °C."""

    type: Literal["min"] = Field(description="rule type")


class MeanRule(_Rule):
    """Mean temperature of the region, °C."""

    type: Literal["mean"] = Field(description="rule type")


class PercentileRule(_Rule):
    """A percentile of the region's temperatures, °C (linear interpolation)."""

    type: Literal["percentile"] = Field(description="rule type")
    percentile: float = Field(ge=0.0, le=100.0, description="the percentile, 0..100")


class DeltaTRule(_Rule):
    """Temperature difference: region statistic minus reference statistic, °C."""

    type: Literal["delta_t"] = Field(description="rule type")
    reference: Name = Field(description=f"another region, or {AMBIENT!r}")
    statistic: Statistic = Field(default="max", description="statistic of the region")
    reference_statistic: Statistic | None = Field(
        default=None, description="statistic of the reference region (default: the same)"
    )


class HotSpotAreaRule(_Rule):
    """Area of the largest connected blob hotter than a threshold (px or mm²)."""

    type: Literal["hot_spot_area"] = Field(description="rule type")
    threshold_c: Temperature | None = Field(default=None, description="absolute threshold, °C")
    above_median_c: float | None = Field(
        default=None,
        ge=0.0,
        le=1000.0,
        description="threshold relative to the region median, °C above",
    )
    unit: Literal["px", "mm2"] = Field(default="px", description="area in pixels or mm²")

    @model_validator(mode="after")
    def _one_threshold(self) -> HotSpotAreaRule:
        if (self.threshold_c is None) == (self.above_median_c is None):
            raise ValueError("give exactly one of threshold_c or above_median_c")
        return self


class ColdSpotAreaRule(_Rule):
    """Area of the largest connected blob colder than a threshold (px or mm²)."""

    type: Literal["cold_spot_area"] = Field(description="rule type")
    threshold_c: Temperature | None = Field(default=None, description="absolute threshold, °C")
    below_median_c: float | None = Field(
        default=None,
        ge=0.0,
        le=1000.0,
        description="threshold relative to the region median, °C below",
    )
    unit: Literal["px", "mm2"] = Field(default="px", description="area in pixels or mm²")

    @model_validator(mode="after")
    def _one_threshold(self) -> ColdSpotAreaRule:
        if (self.threshold_c is None) == (self.below_median_c is None):
            raise ValueError("give exactly one of threshold_c or below_median_c")
        return self


class AsymmetryRule(_Rule):
    """Difference between a region and its mirror-image partner, °C."""

    type: Literal["asymmetry"] = Field(description="rule type")
    pair: Name | None = Field(
        default=None, description="the partner region (default: the region's pair)"
    )
    statistic: Statistic = Field(default="mean", description="statistic compared (without mirror)")
    mirror: Literal["none", "horizontal", "vertical"] = Field(
        default="none",
        description="compare pixel by pixel against the partner flipped left-right or upside-down",
    )


class GradientRule(_Rule):
    """Largest temperature gradient magnitude in the region, °C/px or °C/mm."""

    type: Literal["gradient"] = Field(description="rule type")
    unit: Literal["px", "mm"] = Field(default="px", description="per pixel or per millimetre")


class _CurveRule(_Rule):
    statistic: Statistic = Field(default="mean", description="statistic of the region per frame")


Window = tuple[
    Annotated[float, Field(ge=0.0, le=1e6)],
    Annotated[float, Field(ge=0.0, le=1e6)],
]


class _RateRule(_CurveRule):
    window_s: Window | None = Field(
        default=None, description="[t0, t1] seconds from the first frame (default: all frames)"
    )

    @field_validator("window_s")
    @classmethod
    def _ordered(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and value[0] >= value[1]:
            raise ValueError(f"inverted window: {_fmt(value[0])} >= {_fmt(value[1])}")
        return value


class HeatingRateRule(_RateRule):
    """Robust slope of the region's temperature over a time window, °C/s."""

    type: Literal["heating_rate"] = Field(description="rule type")


class CoolingRateRule(_RateRule):
    """Robust cooling speed (minus the slope) over a time window, °C/s."""

    type: Literal["cooling_rate"] = Field(description="rule type")


class TimeToReachRule(_CurveRule):
    """Seconds until the region's statistic first crosses a temperature (interpolated)."""

    type: Literal["time_to_reach"] = Field(description="rule type")
    temperature_c: Temperature = Field(description="the temperature to reach, °C")
    direction: Literal["rising", "falling"] = Field(
        default="rising", description="cross upwards (heating) or downwards (cooling)"
    )


GoldenPoint = tuple[
    Annotated[float, Field(ge=0.0, le=1e6)],
    Annotated[float, Field(ge=_T_LO, le=_T_HI)],
]


def _check_golden(points: list[tuple[float, float]]) -> None:
    if len(points) < 2:
        raise ValueError(f"a golden curve needs at least 2 points, got {len(points)}")
    times = [t for t, _ in points]
    for i in range(1, len(times)):
        if times[i] <= times[i - 1]:
            raise ValueError(f"golden curve times must increase: point {i} at t = {times[i]:g} s")


def read_golden_csv(path: Path) -> list[tuple[float, float]]:
    """``(t_s, °C)`` points from a CSV of two columns (a header line is allowed)."""
    points: list[tuple[float, float]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read golden curve {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        cells = [c.strip() for c in re.split(r"[,;\t]", line)]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            t, c = (float(v) for v in cells)
        except ValueError:
            if not points and number == 1:
                continue  # header
            raise ValueError(
                f"{path} line {number}: expected 't_s, celsius', got {line!r}"
            ) from None
        if not (math.isfinite(t) and math.isfinite(c)):
            raise ValueError(f"{path} line {number}: values must be finite")
        points.append((t, c))
    _check_golden(points)
    return points


class CurveShapeRule(_CurveRule):
    """Signed deviation (largest magnitude) of the region's curve from a golden curve, °C."""

    type: Literal["curve_shape"] = Field(description="rule type")
    golden: list[GoldenPoint] | None = Field(
        default=None, max_length=100000, description="golden curve, [[t_s, °C], ...]"
    )
    golden_file: FilePath | None = Field(default=None, description="CSV with columns t_s, °C")
    _points: tuple[tuple[float, float], ...] = PrivateAttr(())

    @field_validator("golden_file")
    @classmethod
    def _exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @model_validator(mode="after")
    def _one_curve(self) -> CurveShapeRule:
        if (self.golden is None) == (self.golden_file is None):
            raise ValueError("give exactly one of golden or golden_file")
        if self.golden is not None:
            _check_golden(self.golden)
            self._points = tuple(self.golden)
        else:
            assert self.golden_file is not None
            self._points = tuple(read_golden_csv(self.golden_file))
        return self

    @property
    def golden_points(self) -> tuple[tuple[float, float], ...]:
        """The golden curve as ``(t_s, °C)`` points, from the recipe or its file."""
        return self._points


class _CombinedRule(_Strict):
    name: str = Field(min_length=1, max_length=100, description="rule name")
    rules: list[Rule] = Field(
        min_length=2,
        max_length=20,
        description="the member rules (temperature or sensor rules; no sequence rules)",
    )
    description: str = Field(default="", max_length=1000, description="free text")

    @property
    def label(self) -> str:
        """The rule's name."""
        return self.name


class AllOfRule(_CombinedRule):
    """NG only when every member is NG: the verdict of the least severe member."""

    type: Literal["all_of"] = Field(description="rule type")


class AnyOfRule(_CombinedRule):
    """NG when any member is NG: the verdict of the most severe member."""

    type: Literal["any_of"] = Field(description="rule type")


Rule = Annotated[
    MaxRule
    | MinRule
    | MeanRule
    | PercentileRule
    | DeltaTRule
    | HotSpotAreaRule
    | ColdSpotAreaRule
    | AsymmetryRule
    | GradientRule
    | HeatingRateRule
    | CoolingRateRule
    | TimeToReachRule
    | CurveShapeRule
    | SensorRule
    | AllOfRule
    | AnyOfRule,
    Field(discriminator="type"),
]


AllOfRule.model_rebuild()
AnyOfRule.model_rebuild()

#: Every rule type and its model.
RULE_TYPES: dict[str, type[_Strict]] = {
    "max": MaxRule,
    "min": MinRule,
    "mean": MeanRule,
    "percentile": PercentileRule,
    "delta_t": DeltaTRule,
    "hot_spot_area": HotSpotAreaRule,
    "cold_spot_area": ColdSpotAreaRule,
    "asymmetry": AsymmetryRule,
    "gradient": GradientRule,
    "heating_rate": HeatingRateRule,
    "cooling_rate": CoolingRateRule,
    "time_to_reach": TimeToReachRule,
    "curve_shape": CurveShapeRule,
    "sensor": SensorRule,
    "all_of": AllOfRule,
    "any_of": AnyOfRule,
}
