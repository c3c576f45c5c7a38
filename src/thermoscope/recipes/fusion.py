"""Checks beyond the thermal frame: a sensor feature held against limits, and rules that combine
other rules (``all_of``, ``any_of``) across sensors. ``compile_rule`` compiles any rule of a
recipe, handing temperature rules to :func:`thermoscope.recipes.checks.compile_check`.

A ``sensor`` finding's region is the sensor's name and its unit the feature's: the series' unit
``u`` for rms and peak, ``u²`` for band_energy, ``ratio`` for crest_factor, ``Hz`` for
spectral_centroid. A combined finding counts the members at NG (``value``, unit ``rules``;
``limit`` is how many must be NG: all of them, or one), takes the verdict of its least severe
member (``all_of``) or its most severe one (``any_of``), names in its explanation the sensors
that agreed, and keeps every member's finding in ``extra["members"]`` with the agreeing
sources in ``extra["agreed"]``.
"""

from __future__ import annotations

import math
from typing import Any

from thermoscope.analysis import sensor_features
from thermoscope.core.findings import Finding, Verdict
from thermoscope.recipes import rule_schema, schema
from thermoscope.recipes.capture import SensorRule
from thermoscope.recipes.checks import Band, Check, CompiledRegion, Context, _Measure, compile_check

#: The source a temperature member is attributed to in a combined rule's explanation.
THERMAL = "thermal"


class SensorCheck(Check):
    """A feature of one sensor series against its band."""

    __slots__ = ("band_hz", "feature", "sensor")

    def __init__(
        self, sensor: str, feature: str, band_hz: tuple[float, float] | None, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.sensor = sensor
        self.feature = feature
        self.band_hz = band_hz
        self.decimals = 4

    def measure(self, ctx: Context) -> _Measure:
        series = ctx.sensors.get(self.sensor)
        if series is None:
            return _Measure(
                math.nan, failure=f"{self.subject}: the part has no sensor {self.sensor!r}"
            )
        values, rate = series.values, series.sample_rate_hz
        if self.feature == "rms":
            value = sensor_features.rms(values)
        elif self.feature == "peak":
            value = sensor_features.peak(values)
        elif self.feature == "crest_factor":
            value = sensor_features.crest_factor(values)
        elif self.feature == "band_energy":
            assert self.band_hz is not None
            lo, hi = self.band_hz
            value = sensor_features.band_energy(values, rate, low_hz=lo, high_hz=hi)
        else:
            value = sensor_features.spectral_centroid(values, rate)
        extra: dict[str, Any] = {"sensor": self.sensor, "feature": self.feature}
        if self.band_hz is not None:
            extra["band_hz"] = list(self.band_hz)
        detail = "" if self.band_hz is None else f"{self.band_hz[0]:g}-{self.band_hz[1]:g} Hz"
        return _Measure(value, detail=detail, extra=extra)


class CombinedCheck(Check):
    """``all_of`` / ``any_of`` over member checks."""

    __slots__ = ("every", "members", "sources")

    def __init__(
        self, members: list[Check], sources: list[str], every: bool, rule: str, label: str
    ) -> None:
        need = float(len(members)) if every else 1.0
        super().__init__(rule, label, rule, "rules", Band(None, need, None, None))
        self.members = members
        self.sources = sources
        self.every = every

    def evaluate(self, ctx: Context) -> Finding:
        found = [m.evaluate(ctx) for m in self.members]
        pick = min if self.every else max
        verdict = pick((f.verdict for f in found), key=lambda v: v.severity)
        agreed = [s for s, f in zip(self.sources, found, strict=True) if f.verdict is Verdict.NG]
        need = len(found) if self.every else 1
        flagged = [f for f in found if f.verdict is not Verdict.OK] or found
        said = "; ".join(f.explanation for f in flagged)
        if verdict is Verdict.NG:
            head = f"{self.rule}: {' and '.join(dict.fromkeys(agreed))} agree"
        elif agreed:
            head = f"{self.rule}: only {', '.join(agreed)} at NG (of {', '.join(self.sources)})"
        else:
            head = f"{self.rule}: none of {', '.join(self.sources)} at NG"
        x = y = None
        for f in found:
            if f.verdict is not Verdict.OK and f.x is not None:
                x, y = f.x, f.y
                break
        extra = {
            "members": [f.to_json() for f in found],
            "agreed": agreed,
            "sources": list(self.sources),
            "mode": "all_of" if self.every else "any_of",
        }
        return Finding(
            self.rule, self.label, float(len(agreed)), float(need), verdict, f"{head}: {said}",
            x, y, None, self.unit, extra,
        )  # fmt: skip


def compile_rule(
    rule: rule_schema.Rule,
    regions: dict[str, CompiledRegion],
    recipe: schema.Recipe,
    pair_of: dict[str, str] | None = None,
) -> Check:
    """The check of any recipe rule: temperature, sensor or combined."""
    if isinstance(rule, SensorRule):
        unit = next(s.unit for s in recipe.sensors if s.name == rule.sensor)
        feature_unit = {
            "rms": unit,
            "peak": unit,
            "band_energy": f"{unit}²",
            "crest_factor": "ratio",
            "spectral_centroid": "Hz",
        }[rule.feature]
        subject = f"{rule.sensor} {rule.feature.replace('_', ' ')}"
        return SensorCheck(
            rule.sensor,
            rule.feature,
            rule.band_hz,
            rule=rule.label,
            label=rule.sensor,
            subject=subject,
            unit=feature_unit,
            band=Band.of(rule.limits),
        )
    if isinstance(rule, (rule_schema.AllOfRule, rule_schema.AnyOfRule)):
        members = [compile_rule(m, regions, recipe, pair_of) for m in rule.rules]
        sources = [_source(m) for m in rule.rules]
        return CombinedCheck(members, sources, rule.type == "all_of", rule.label, "")
    return compile_check(rule, regions, recipe, pair_of)


def _source(rule: rule_schema.Rule) -> str:
    if isinstance(rule, SensorRule):
        return rule.sensor
    if isinstance(rule, (rule_schema.AllOfRule, rule_schema.AnyOfRule)):
        return rule.label
    return THERMAL
