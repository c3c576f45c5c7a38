"""The inspection engine's compiled parts: regions as crops with masks, tolerance bands, and one
check per rule type that measures its value on a part and judges it (verdict, limit, margin and a
one-line explanation). ``thermoscope.recipes.engine`` builds them into a plan; nothing here is
public API.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from thermoscope.analysis import spatial, temporal
from thermoscope.analysis.spatial import AnalysisError, PixelValue, Statistic
from thermoscope.core.findings import Finding, Verdict
from thermoscope.core.part_record import SensorSeries
from thermoscope.recipes import rule_schema, schema
from thermoscope.recipes.schema import AMBIENT, Recipe, RecipeError
from thermoscope.recipes.schema_base import Limits

FloatImage = NDArray[np.float32]
BoolImage = NDArray[np.bool_]

#: Decimals shown per unit in explanations.
_DECIMALS = {"°C": 1, "°C/s": 2, "s": 2, "px": 0, "mm²": 2, "°C/px": 2, "°C/mm": 2}


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRegion:
    """A region as the engine uses it.

    Attributes:
        name: the region's name.
        x0, y0, x1, y1: its bounding box in the frame (x1, y1 exclusive), pixels.
        mask: boolean mask of the box's shape, ``None`` when the region fills its box.
        frame_mask: full-frame mask, kept only for regions with their own emissivity.
        emissivity: the region's own emissivity, if any.
    """

    name: str
    x0: int
    y0: int
    x1: int
    y1: int
    mask: BoolImage | None
    frame_mask: BoolImage | None
    emissivity: float | None

    @property
    def origin(self) -> tuple[int, int]:
        """(x, y) of the box's top-left pixel."""
        return self.x0, self.y0

    def crop(self, celsius: NDArray[Any]) -> NDArray[Any]:
        """The region's bounding box of an (H, W) image (a view)."""
        return celsius[..., self.y0 : self.y1, self.x0 : self.x1]


@dataclass(frozen=True, slots=True)
class Band:
    """Plain-number tolerance band: NG outside [lo, hi], WARN outside [warn_lo, warn_hi]."""

    lo: float | None
    hi: float | None
    warn_lo: float | None
    warn_hi: float | None

    @classmethod
    def of(cls, limits: Limits) -> Band:
        """The band of a recipe's limits."""
        return cls(limits.min, limits.max, limits.warn_min, limits.warn_max)


#: Where the ambient comes from: a fixed reading (°C), a region's statistic, or nothing.
AmbientSource = float | tuple[CompiledRegion, Statistic] | None


class _Measure:
    """What a check measured (a plain slotted class: built once per rule per frame)."""

    __slots__ = ("detail", "extra", "failure", "value", "x", "y")

    def __init__(
        self,
        value: float,
        x: int | None = None,
        y: int | None = None,
        detail: str = "",
        failure: str = "",
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.value = value
        self.x = x
        self.y = y
        self.detail = detail
        self.failure = failure
        self.extra = {} if extra is None else extra


def _shown(value: float, decimals: int, unit: str) -> str:
    return f"{round(value, decimals) + 0.0:.{decimals}f} {unit}"  # + 0.0: no "-0.0"


def _number(value: float, unit: str) -> str:
    return _shown(value, _DECIMALS.get(unit, 2), unit)


def _gap(value: float, decimals: int, unit: str) -> str:
    """A distance to a limit, with enough decimals that a non-zero gap never reads as zero."""
    while decimals < 4 and value != 0 and round(value, decimals) == 0:
        decimals += 1
    return _shown(value, decimals, unit)


def _limit(value: float | None, unit: str) -> str:
    return "" if value is None else f"{value:g} {unit}"


class Context:
    """What rules read from one part: the frame to measure, the sequence, the ambient, and
    the sensor series of its part record."""

    __slots__ = (
        "_cache", "ambient_c", "ambient_source", "celsius", "frames", "sensors", "times_s",
    )  # fmt: skip

    def __init__(
        self,
        ambient_source: AmbientSource,
        celsius: FloatImage,
        ambient_c: float | None,
        frames: Sequence[FloatImage] = (),
        times_s: NDArray[np.float64] | None = None,
        sensors: Mapping[str, SensorSeries] | None = None,
    ) -> None:
        self.ambient_source = ambient_source
        self.celsius = celsius
        self.ambient_c = ambient_c
        self.frames = frames
        self.times_s = times_s
        #: the part's sensor series by name (empty for a frame inspected on its own)
        self.sensors: Mapping[str, SensorSeries] = {} if sensors is None else sensors
        self._cache: dict[tuple[str, str], Any] = {}

    def stat(self, region: CompiledRegion, statistic: Statistic) -> PixelValue:
        """A statistic of a region in the inspected frame (computed once per frame)."""
        key = (region.name, statistic)
        found: PixelValue | None = self._cache.get(key)
        if found is None:
            found = spatial.region_statistic(
                region.crop(self.celsius),
                region.mask,
                statistic=statistic,
                origin=region.origin,
            )
            self._cache[key] = found
        return found

    def ambient(self) -> float:
        """The ambient temperature, °C: the reading given to ``inspect``, or the recipe's."""
        if self.ambient_c is not None:
            return self.ambient_c
        source = self.ambient_source
        if isinstance(source, float):
            return source
        assert source is not None
        region, statistic = source
        return self.stat(region, statistic).value

    def series(self, region: CompiledRegion, statistic: Statistic) -> NDArray[np.float64]:
        """The region's statistic in every frame of the sequence, °C."""
        key = (region.name, "series:" + statistic)
        found: NDArray[np.float64] | None = self._cache.get(key)
        if found is None:
            stack = np.stack([region.crop(f) for f in self.frames])
            found = temporal.series_statistic(stack, region.mask, statistic=statistic)
            self._cache[key] = found
        return found


class Check:
    """A compiled rule: measures one value, judges it against its band and says so."""

    __slots__ = (
        "band", "decimals", "hi_text", "label", "lo_text", "rule", "subject", "unit",
        "warn_hi_text", "warn_lo_text",
    )  # fmt: skip

    def __init__(self, rule: str, label: str, subject: str, unit: str, band: Band) -> None:
        self.rule = rule
        self.label = label
        self.subject = subject
        self.unit = unit
        self.band = band
        self.decimals = _DECIMALS.get(unit, 2)
        self.hi_text = _limit(band.hi, unit)
        self.lo_text = _limit(band.lo, unit)
        self.warn_hi_text = _limit(band.warn_hi, unit)
        self.warn_lo_text = _limit(band.warn_lo, unit)

    def measure(self, ctx: Context) -> _Measure:
        raise NotImplementedError

    def evaluate(self, ctx: Context) -> Finding:
        try:
            m = self.measure(ctx)
        except AnalysisError as exc:
            m = _Measure(float("nan"), failure=f"{self.subject}: cannot be measured ({exc})")
        value = m.value
        if m.failure or value != value:
            limit = self.band.hi if self.band.hi is not None else self.band.lo
            text = m.failure or f"{self.subject}: no valid temperature in the region"
            return Finding(
                self.rule, self.label, value, limit, Verdict.NG, text, m.x, m.y, None, self.unit,
                m.extra,
            )  # fmt: skip
        verdict, limit, margin, text = self.judge(value, m.detail)
        return Finding(
            self.rule, self.label, value, limit, verdict, text, m.x, m.y, margin, self.unit,
            m.extra,
        )  # fmt: skip

    def judge(self, value: float, detail: str = "") -> tuple[Verdict, float | None, float, str]:
        """``(verdict, limit, margin, explanation)`` of a finite value.

        The limit is the NG limit crossed, else the nearest; the margin is the distance to it,
        positive inside tolerance; the explanation is one line for an operator, e.g.
        ``"U3 max 78.2 °C is 8.2 °C over its 70 °C limit"``.
        """
        band, unit, decimals = self.band, self.unit, self.decimals
        up = None if band.hi is None else band.hi - value
        down = None if band.lo is None else value - band.lo
        if down is None or (up is not None and up <= down):
            assert up is not None
            limit, margin, limit_text, side, beyond = band.hi, up, self.hi_text, "below", "over"
        else:
            limit, margin, limit_text, side, beyond = band.lo, down, self.lo_text, "above", "under"
        shown = _shown(value, decimals, unit)
        tail = f" ({detail})" if detail else ""
        if margin < 0:
            gap = _gap(-margin, decimals, unit)
            text = f"{self.subject} {shown} is {gap} {beyond} its {limit_text} limit{tail}"
            return Verdict.NG, limit, margin, text
        nearest = f"{_gap(margin, decimals, unit)} {side} its {limit_text} limit"
        if band.warn_hi is not None and value > band.warn_hi:
            warned = f"over its {self.warn_hi_text} warning limit"
        elif band.warn_lo is not None and value < band.warn_lo:
            warned = f"under its {self.warn_lo_text} warning limit"
        else:
            return Verdict.OK, limit, margin, f"{self.subject} {shown}, {nearest}{tail}"
        return Verdict.WARN, limit, margin, f"{self.subject} {shown} is {warned}, {nearest}{tail}"


class _StatCheck(Check):
    __slots__ = ("statistic", "target")

    def __init__(self, target: CompiledRegion, statistic: Statistic, **kw: Any) -> None:
        super().__init__(**kw)
        self.target = target
        self.statistic = statistic

    def measure(self, ctx: Context) -> _Measure:
        p = ctx.stat(self.target, self.statistic)
        return _Measure(p.value, p.x, p.y)


class _PercentileCheck(Check):
    __slots__ = ("q", "target")

    def __init__(self, target: CompiledRegion, q: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.target = target
        self.q = q

    def measure(self, ctx: Context) -> _Measure:
        t = self.target
        p = spatial.region_percentile(t.crop(ctx.celsius), t.mask, q=self.q, origin=t.origin)
        return _Measure(p.value, p.x, p.y)


class _DeltaCheck(Check):
    __slots__ = ("reference", "reference_statistic", "statistic", "target")

    def __init__(
        self,
        target: CompiledRegion,
        reference: CompiledRegion | None,
        statistic: Statistic,
        reference_statistic: Statistic,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.target = target
        self.reference = reference
        self.statistic = statistic
        self.reference_statistic = reference_statistic

    def measure(self, ctx: Context) -> _Measure:
        own = ctx.stat(self.target, self.statistic)
        if self.reference is None:
            ref = ctx.ambient()
            detail = f"ambient {_number(ref, '°C')}"
        else:
            ref = ctx.stat(self.reference, self.reference_statistic).value
            detail = f"{self.reference.name} {self.reference_statistic} {_number(ref, '°C')}"
        return _Measure(own.value - ref, own.x, own.y, detail, extra={"reference_c": ref})


class _SpotCheck(Check):
    __slots__ = ("absolute", "area_scale", "hot", "relative", "target")

    def __init__(
        self,
        target: CompiledRegion,
        hot: bool,
        absolute: float | None,
        relative: float | None,
        area_scale: float,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.target = target
        self.hot = hot
        self.absolute = absolute
        self.relative = relative
        self.area_scale = area_scale

    def measure(self, ctx: Context) -> _Measure:
        t = self.target
        crop = t.crop(ctx.celsius)
        if self.hot:
            s = spatial.hot_spot_area(
                crop, t.mask, threshold=self.absolute, above_median=self.relative, origin=t.origin
            )
        else:
            s = spatial.cold_spot_area(
                crop, t.mask, threshold=self.absolute, below_median=self.relative, origin=t.origin
            )
        if s.threshold != s.threshold:
            return _Measure(float("nan"))
        side = "above" if self.hot else "below"
        detail = f"pixels {side} {_number(s.threshold, '°C')}"
        extra = {"threshold_c": s.threshold, "total_px": s.total_px, "spots": s.spots}
        return _Measure(s.area_px * self.area_scale, s.x, s.y, detail, extra=extra)


class _AsymmetryCheck(Check):
    __slots__ = ("mirror", "partner", "statistic", "target")

    def __init__(
        self,
        target: CompiledRegion,
        partner: CompiledRegion,
        statistic: Statistic,
        mirror: spatial.Mirror,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.target = target
        self.partner = partner
        self.statistic = statistic
        self.mirror = mirror

    def measure(self, ctx: Context) -> _Measure:
        a, b = self.target, self.partner
        if self.mirror == "none":
            own = ctx.stat(a, self.statistic)
            other = ctx.stat(b, self.statistic).value
            return _Measure(own.value - other, own.x, own.y)
        p = spatial.asymmetry(
            a.crop(ctx.celsius),
            b.crop(ctx.celsius),
            mask=a.mask,
            partner_mask=b.mask,
            mirror=self.mirror,
            origin=a.origin,
        )
        return _Measure(p.value, p.x, p.y, f"pixel-wise against {b.name} mirrored")


class _GradientCheck(Check):
    __slots__ = ("pitch", "target")

    def __init__(self, target: CompiledRegion, pitch: float | None, **kw: Any) -> None:
        super().__init__(**kw)
        self.target = target
        self.pitch = pitch

    def measure(self, ctx: Context) -> _Measure:
        t = self.target
        p = spatial.max_gradient(
            t.crop(ctx.celsius), t.mask, pixel_pitch_mm=self.pitch, origin=t.origin
        )
        return _Measure(p.value, p.x, p.y)


class _RateCheck(Check):
    __slots__ = ("sign", "statistic", "target", "window")

    def __init__(
        self,
        target: CompiledRegion,
        statistic: Statistic,
        window: tuple[float, float] | None,
        sign: float,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.target = target
        self.statistic = statistic
        self.window = window
        self.sign = sign

    def measure(self, ctx: Context) -> _Measure:
        assert ctx.times_s is not None
        fit = temporal.heating_rate(
            ctx.times_s, ctx.series(self.target, self.statistic), window_s=self.window
        )
        detail = "" if self.window is None else f"{self.window[0]:g}-{self.window[1]:g} s"
        extra = {"intercept_c": fit.intercept, "points": fit.points}
        return _Measure(self.sign * fit.slope, detail=detail, extra=extra)


class _ReachCheck(Check):
    __slots__ = ("direction", "statistic", "target", "temperature")

    def __init__(
        self,
        target: CompiledRegion,
        statistic: Statistic,
        temperature: float,
        direction: str,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.target = target
        self.statistic = statistic
        self.temperature = temperature
        self.direction = direction

    def measure(self, ctx: Context) -> _Measure:
        assert ctx.times_s is not None
        rising = self.direction == "rising"
        found = temporal.time_to_reach(
            ctx.times_s,
            ctx.series(self.target, self.statistic),
            self.temperature,
            direction="rising" if rising else "falling",
        )
        if found is None:
            verb = "rose to" if rising else "fell to"
            span = _number(float(ctx.times_s[-1] - ctx.times_s[0]), "s")
            return _Measure(
                float("nan"),
                failure=f"{self.target.name} {self.statistic} never {verb} "
                f"{_limit(self.temperature, '°C')} within {span}",
            )
        return _Measure(found)


class _CurveCheck(Check):
    __slots__ = ("golden_c", "golden_t", "statistic", "target")

    def __init__(
        self,
        target: CompiledRegion,
        statistic: Statistic,
        golden: Sequence[tuple[float, float]],
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.target = target
        self.statistic = statistic
        points = np.asarray(golden, dtype=np.float64)
        self.golden_t = points[:, 0]
        self.golden_c = points[:, 1]

    def measure(self, ctx: Context) -> _Measure:
        assert ctx.times_s is not None
        d = temporal.curve_deviation(
            ctx.times_s, ctx.series(self.target, self.statistic), self.golden_t, self.golden_c
        )
        return _Measure(
            d.value, detail=f"at t = {d.time_s:.2f} s", extra={"time_s": d.time_s, "frame": d.index}
        )


def compile_region(spec: schema.RegionSpec, shape: tuple[int, int]) -> CompiledRegion:
    full = spec.to_region().mask(shape)
    rows = np.flatnonzero(full.any(axis=1))
    cols = np.flatnonzero(full.any(axis=0))
    if rows.size == 0:
        raise RecipeError([(f"region {spec.name}", "covers no pixel of the frame")])
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    box = full[y0:y1, x0:x1]
    mask = None if bool(box.all()) else np.ascontiguousarray(box)
    frame_mask = full if spec.emissivity is not None else None
    return CompiledRegion(spec.name, x0, y0, x1, y1, mask, frame_mask, spec.emissivity)


def compile_check(
    rule: rule_schema._Rule,
    regions: dict[str, CompiledRegion],
    recipe: Recipe,
    pair_of: dict[str, str] | None = None,
) -> Check:
    """The check of a temperature rule (``pair_of``: the view's declared pairs, default the
    main view's)."""
    target = regions[rule.region]
    r = rule.region
    common: dict[str, Any] = {"rule": rule.label, "label": r, "band": Band.of(rule.limits)}
    pitch = recipe.camera.pixel_pitch_mm
    if isinstance(rule, (rule_schema.MaxRule, rule_schema.MinRule, rule_schema.MeanRule)):
        return _StatCheck(target, rule.type, subject=f"{r} {rule.type}", unit="°C", **common)
    if isinstance(rule, rule_schema.PercentileRule):
        return _PercentileCheck(
            target, rule.percentile, subject=f"{r} p{rule.percentile:g}", unit="°C", **common
        )
    if isinstance(rule, rule_schema.DeltaTRule):
        if rule.reference == AMBIENT:
            reference, subject = None, f"{r} ΔT to ambient"
        else:
            reference, subject = regions[rule.reference], f"{r} ΔT to {rule.reference}"
            common["label"] = f"{r}-{rule.reference}"
        return _DeltaCheck(
            target,
            reference,
            rule.statistic,
            rule.reference_statistic or rule.statistic,
            subject=subject,
            unit="°C",
            **common,
        )
    if isinstance(rule, (rule_schema.HotSpotAreaRule, rule_schema.ColdSpotAreaRule)):
        hot = isinstance(rule, rule_schema.HotSpotAreaRule)
        relative = rule.above_median_c if hot else rule.below_median_c  # type: ignore[union-attr]
        mm = rule.unit == "mm2"
        assert not mm or pitch is not None
        return _SpotCheck(
            target,
            hot,
            rule.threshold_c,
            relative,
            pitch * pitch if mm and pitch is not None else 1.0,
            subject=f"{r} {'hot' if hot else 'cold'} spot",
            unit="mm²" if mm else "px",
            **common,
        )
    if isinstance(rule, rule_schema.AsymmetryRule):
        partner_name = rule.pair or (recipe.pair_of(r) if pair_of is None else pair_of.get(r))
        assert partner_name is not None
        common["label"] = f"{r}-{partner_name}"
        return _AsymmetryCheck(
            target,
            regions[partner_name],
            rule.statistic,
            rule.mirror,
            subject=f"{r}/{partner_name} asymmetry",
            unit="°C",
            **common,
        )
    if isinstance(rule, rule_schema.GradientRule):
        per_mm = rule.unit == "mm"
        return _GradientCheck(
            target,
            pitch if per_mm else None,
            subject=f"{r} gradient",
            unit="°C/mm" if per_mm else "°C/px",
            **common,
        )
    if isinstance(rule, (rule_schema.HeatingRateRule, rule_schema.CoolingRateRule)):
        heating = isinstance(rule, rule_schema.HeatingRateRule)
        return _RateCheck(
            target,
            rule.statistic,
            rule.window_s,
            1.0 if heating else -1.0,
            subject=f"{r} {'heating' if heating else 'cooling'} rate",
            unit="°C/s",
            **common,
        )
    if isinstance(rule, rule_schema.TimeToReachRule):
        return _ReachCheck(
            target,
            rule.statistic,
            rule.temperature_c,
            rule.direction,
            subject=f"{r} time to {_limit(rule.temperature_c, '°C')}",
            unit="s",
            **common,
        )
    assert isinstance(rule, rule_schema.CurveShapeRule)
    return _CurveCheck(
        target,
        rule.statistic,
        rule.golden_points,
        subject=f"{r} curve deviation",
        unit="°C",
        **common,
    )
