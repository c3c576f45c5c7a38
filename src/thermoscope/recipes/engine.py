"""The inspection engine: a recipe compiled once, then applied to frames or sequences.

``compile_recipe`` turns a :class:`~thermoscope.recipes.schema.Recipe` into an
:class:`InspectionPlan`: each region becomes its bounding box in the frame and, when it does not
fill that box, a mask of the box's size; limits become plain numbers; mask and golden files are
read and the alignment reference is loaded. Per frame only the regions' crops are touched.
``inspect`` applies a plan (or a recipe, compiled on first use and remembered) and returns a
:class:`~thermoscope.core.findings.Inspection` with one finding per rule.

A rule's finding carries the measured value (°C; °C/s for rates; s for times; px or mm² for
areas; °C/px or °C/mm for gradients), the NG limit it was held against (the one crossed, else
the nearest), the margin to that limit (positive = inside tolerance), the pixel of the extreme
that decided it, and a one-line explanation. A value the engine cannot measure (no valid pixel,
a temperature never reached, too few frames in a window) is NG and says why. When alignment is
configured and the part cannot be registered within its bounds, the inspection holds a single
NG finding ``alignment`` and no rule is evaluated.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.analysis import registration, spatial, temporal
from thermoscope.analysis.spatial import AnalysisError, PixelValue, Statistic
from thermoscope.core.errors import RadiometryError, ThermoscopeError
from thermoscope.core.findings import Finding, Inspection, Verdict
from thermoscope.core.frame import ThermalFrame
from thermoscope.core.sequence import ThermalSequence
from thermoscope.recipes import schema
from thermoscope.recipes.schema import AMBIENT, SEQUENCE_RULES, Recipe, RecipeError

FloatImage = NDArray[np.float32]
BoolImage = NDArray[np.bool_]
#: Reads a reference frame file into a 2-D °C array (the CLI passes one built on the readers).
FrameLoader = Callable[[Path], NDArray[Any]]

#: Lowest normalised correlation at which a fiducial counts as found.
_FIDUCIAL_MIN_SCORE = 0.5
#: Decimals shown per unit in explanations.
_DECIMALS = {"°C": 1, "°C/s": 2, "s": 2, "px": 0, "mm²": 2, "°C/px": 2, "°C/mm": 2}


class InspectionError(ThermoscopeError, ValueError):
    """A frame or sequence cannot be inspected with this recipe (wrong size, no calibration for
    the recipe's emissivity, no timestamps...)."""


# --------------------------------------------------------------------------- compiled parts


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
    def of(cls, limits: schema.Limits) -> Band:
        """The band of a recipe's limits."""
        return cls(limits.min, limits.max, limits.warn_min, limits.warn_max)


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


class _Context:
    """What rules read from one part: the frame to measure, the sequence, the ambient."""

    __slots__ = ("_cache", "ambient_c", "celsius", "frames", "plan", "times_s")

    def __init__(
        self,
        plan: InspectionPlan,
        celsius: FloatImage,
        ambient_c: float | None,
        frames: Sequence[FloatImage] = (),
        times_s: NDArray[np.float64] | None = None,
    ) -> None:
        self.plan = plan
        self.celsius = celsius
        self.ambient_c = ambient_c
        self.frames = frames
        self.times_s = times_s
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
        source = self.plan.ambient
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


class _Check:
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

    def measure(self, ctx: _Context) -> _Measure:
        raise NotImplementedError

    def evaluate(self, ctx: _Context) -> Finding:
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


class _StatCheck(_Check):
    __slots__ = ("statistic", "target")

    def __init__(self, target: CompiledRegion, statistic: Statistic, **kw: Any) -> None:
        super().__init__(**kw)
        self.target = target
        self.statistic = statistic

    def measure(self, ctx: _Context) -> _Measure:
        p = ctx.stat(self.target, self.statistic)
        return _Measure(p.value, p.x, p.y)


class _PercentileCheck(_Check):
    __slots__ = ("q", "target")

    def __init__(self, target: CompiledRegion, q: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.target = target
        self.q = q

    def measure(self, ctx: _Context) -> _Measure:
        t = self.target
        p = spatial.region_percentile(t.crop(ctx.celsius), t.mask, q=self.q, origin=t.origin)
        return _Measure(p.value, p.x, p.y)


class _DeltaCheck(_Check):
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

    def measure(self, ctx: _Context) -> _Measure:
        own = ctx.stat(self.target, self.statistic)
        if self.reference is None:
            ref = ctx.ambient()
            detail = f"ambient {_number(ref, '°C')}"
        else:
            ref = ctx.stat(self.reference, self.reference_statistic).value
            detail = f"{self.reference.name} {self.reference_statistic} {_number(ref, '°C')}"
        return _Measure(own.value - ref, own.x, own.y, detail, extra={"reference_c": ref})


class _SpotCheck(_Check):
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

    def measure(self, ctx: _Context) -> _Measure:
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


class _AsymmetryCheck(_Check):
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

    def measure(self, ctx: _Context) -> _Measure:
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


class _GradientCheck(_Check):
    __slots__ = ("pitch", "target")

    def __init__(self, target: CompiledRegion, pitch: float | None, **kw: Any) -> None:
        super().__init__(**kw)
        self.target = target
        self.pitch = pitch

    def measure(self, ctx: _Context) -> _Measure:
        t = self.target
        p = spatial.max_gradient(
            t.crop(ctx.celsius), t.mask, pixel_pitch_mm=self.pitch, origin=t.origin
        )
        return _Measure(p.value, p.x, p.y)


class _RateCheck(_Check):
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

    def measure(self, ctx: _Context) -> _Measure:
        assert ctx.times_s is not None
        fit = temporal.heating_rate(
            ctx.times_s, ctx.series(self.target, self.statistic), window_s=self.window
        )
        detail = "" if self.window is None else f"{self.window[0]:g}-{self.window[1]:g} s"
        extra = {"intercept_c": fit.intercept, "points": fit.points}
        return _Measure(self.sign * fit.slope, detail=detail, extra=extra)


class _ReachCheck(_Check):
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

    def measure(self, ctx: _Context) -> _Measure:
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


class _CurveCheck(_Check):
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

    def measure(self, ctx: _Context) -> _Measure:
        assert ctx.times_s is not None
        d = temporal.curve_deviation(
            ctx.times_s, ctx.series(self.target, self.statistic), self.golden_t, self.golden_c
        )
        return _Measure(
            d.value, detail=f"at t = {d.time_s:.2f} s", extra={"time_s": d.time_s, "frame": d.index}
        )


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True, slots=True, eq=False)
class _Fiducial:
    name: str
    template: NDArray[np.float32]
    corner: tuple[int, int]
    centre: tuple[float, float]


@dataclass(frozen=True, slots=True, eq=False)
class CompiledAlignment:
    """Alignment settings with the reference loaded and fiducial templates cut from it."""

    reference: NDArray[np.float32]
    fiducials: tuple[_Fiducial, ...]
    rigid: bool
    max_shift_px: float
    max_rotation_deg: float
    search_px: int


@dataclass(frozen=True, slots=True, eq=False)
class InspectionPlan:
    """A recipe compiled for frames of one size: regions as crops and masks, rules as checks.

    Build it with :func:`compile_recipe`; apply it with :func:`inspect` (or its methods).
    """

    name: str
    shape: tuple[int, int]
    regions: dict[str, CompiledRegion]
    checks: tuple[_Check, ...]
    sequence_rules: tuple[str, ...]
    ambient: float | tuple[CompiledRegion, Statistic] | None
    object_parameters: dict[str, float]
    alignment: CompiledAlignment | None
    sequence: schema.SequenceSettings

    def inspect_frame(
        self, frame: ThermalFrame, *, ambient_c: float | None = None, source: str | None = None
    ) -> Inspection:
        """Inspect one frame (the recipe must have no sequence rules)."""
        if self.sequence_rules:
            names = ", ".join(self.sequence_rules)
            raise InspectionError(
                f"recipe {self.name!r} has sequence rules ({names}); "
                "inspect a sequence of frames, not a single frame"
            )
        label = frame.metadata.source if source is None else source
        self._check_shape(frame.shape, label)
        failed, images = self._prepare([frame], 0, label)
        if failed is not None:
            return Inspection.of(label, frame.metadata.frame_index, [failed])
        ctx = _Context(self, images[0], ambient_c)
        findings = [check.evaluate(ctx) for check in self.checks]
        return Inspection.of(label, frame.metadata.frame_index, findings)

    def inspect_sequence(
        self,
        frames: ThermalSequence | Sequence[ThermalFrame],
        *,
        ambient_c: float | None = None,
        source: str | None = None,
    ) -> Inspection:
        """Inspect a part's sequence: sequence rules on every frame, single-frame rules on the
        frame the recipe's ``sequence.frame`` names. ``Inspection.frame`` is that frame's index.
        Alignment is estimated on that frame and applied to all.
        """
        items = list(frames)
        if not items:
            raise InspectionError("the sequence has no frames")
        for item in items:
            if not isinstance(item, ThermalFrame):
                raise InspectionError(
                    f"inspect takes a ThermalFrame or a sequence of them, not {type(item).__name__}"
                )
        if source is not None:
            label = source
        elif isinstance(frames, ThermalSequence) and frames.source:
            label = frames.source
        else:
            label = items[0].metadata.source
        for item in items:
            self._check_shape(item.shape, label)
        index = self.sequence.frame
        if not -len(items) <= index < len(items):
            raise InspectionError(
                f"sequence.frame {index} is outside the {len(items)} frames of {label or 'input'}"
            )
        index %= len(items)
        times = self._times(items, label) if self.sequence_rules else None
        failed, images = self._prepare(items, index, label)
        if failed is not None:
            return Inspection.of(label, index, [failed])
        ctx = _Context(self, images[index], ambient_c, images, times)
        findings = [check.evaluate(ctx) for check in self.checks]
        return Inspection.of(label, index, findings)

    # ---------------------------------------------------------------- per part

    def _check_shape(self, shape: tuple[int, int], label: str) -> None:
        if shape != self.shape:
            raise InspectionError(
                f"{label or 'frame'} is {shape[1]}x{shape[0]} pixels but recipe "
                f"{self.name!r} expects {self.shape[1]}x{self.shape[0]}"
            )

    def _prepare(
        self, frames: list[ThermalFrame], index: int, label: str
    ) -> tuple[Finding | None, list[FloatImage]]:
        """Temperatures of every frame in reference coordinates: registered (on frame
        ``index``), recomputed with the recipe's parameters, warped back onto the reference."""
        motion = None
        if self.alignment is not None:
            failed, motion = self._register(frames[index].celsius)
            if failed is not None:
                return failed, []
        masks = self._emissivity_masks(motion)
        images = [self._temperatures(f, label, masks) for f in frames]
        if motion is not None:
            images = [registration.warp_to_reference(image, motion) for image in images]
        return None, images

    def _emissivity_masks(
        self, motion: registration.Motion | None
    ) -> list[tuple[BoolImage, float]]:
        """Full-frame masks of the regions with their own emissivity, moved with the part."""
        out = []
        for region in self.regions.values():
            if region.emissivity is None or region.frame_mask is None:
                continue
            mask = region.frame_mask
            if motion is not None:
                moved = cv2.warpAffine(
                    mask.view(np.uint8),
                    motion.matrix(),
                    (self.shape[1], self.shape[0]),
                    flags=cv2.INTER_NEAREST,
                )
                mask = np.asarray(moved, dtype=bool)
            out.append((mask, region.emissivity))
        return out

    def _temperatures(
        self, frame: ThermalFrame, label: str, masks: list[tuple[BoolImage, float]]
    ) -> FloatImage:
        try:
            if self.object_parameters:
                frame = frame.with_parameters(mask=None, **self.object_parameters)
            for mask, emissivity in masks:
                frame = frame.with_parameters(mask=mask, emissivity=emissivity)
        except RadiometryError as exc:
            raise InspectionError(
                f"recipe {self.name!r} sets measurement parameters (emissivity...) but "
                f"{label or 'the frame'} cannot be recomputed: {exc}"
            ) from None
        return frame.celsius

    def _times(self, items: list[ThermalFrame], label: str) -> NDArray[np.float64]:
        stamps = [f.metadata.timestamp_s for f in items]
        if all(s is not None for s in stamps):
            times = np.array(stamps, dtype=np.float64)
            times -= times[0]
            if len(times) > 1 and not bool(np.all(np.diff(times) > 0)):
                raise InspectionError(f"the frame timestamps of {label or 'input'} do not increase")
            return times
        rate = self.sequence.frame_rate_hz
        if rate is None:
            raise InspectionError(
                f"the frames of {label or 'input'} carry no timestamps; "
                "set sequence.frame_rate_hz in the recipe"
            )
        return np.arange(len(items), dtype=np.float64) / rate

    def _register(self, celsius: FloatImage) -> tuple[Finding | None, registration.Motion | None]:
        """The part's motion against the reference; ``None`` when it is below a pixel, and a
        failed finding when it cannot be found or exceeds the recipe's bounds."""
        a = self.alignment
        assert a is not None
        try:
            motion = _estimate(a, celsius)
        except AnalysisError as exc:
            return _alignment_failure(f"the part could not be registered: {exc}"), None
        if motion.shift_px > a.max_shift_px:
            text = (
                f"the part moved {motion.shift_px:.1f} px, more than the "
                f"{a.max_shift_px:g} px alignment allows"
            )
            return _alignment_failure(text, motion.shift_px, a.max_shift_px), None
        if abs(motion.angle_deg) > a.max_rotation_deg:
            text = (
                f"the part turned {motion.angle_deg:.1f}°, more than the "
                f"{a.max_rotation_deg:g}° alignment allows"
            )
            return _alignment_failure(text, abs(motion.angle_deg), a.max_rotation_deg, "°"), None
        if round(motion.dx) == 0 and round(motion.dy) == 0 and abs(motion.angle_deg) < 0.05:
            return None, None
        return None, motion


def _alignment_failure(
    text: str, value: float = float("nan"), limit: float | None = None, unit: str = "px"
) -> Finding:
    return Finding("alignment", "", value, limit, Verdict.NG, text, unit=unit)


def _estimate(a: CompiledAlignment, celsius: FloatImage) -> registration.Motion:
    if not a.fiducials:
        if a.rigid:
            return registration.estimate_rigid(
                a.reference, celsius, max_shift_px=2.0 * a.max_shift_px + 4.0
            )
        return registration.estimate_translation(
            a.reference, celsius, max_shift_px=2.0 * a.max_shift_px + 4.0
        )
    found, scores = [], []
    for fid in a.fiducials:
        x, y, score = registration.locate_template(
            celsius, fid.template, near=fid.corner, search_px=a.search_px
        )
        if score < _FIDUCIAL_MIN_SCORE:
            raise AnalysisError(
                f"fiducial {fid.name} not found (best correlation {score:.2f} "
                f"within {a.search_px} px)"
            )
        found.append((x - fid.corner[0] + fid.centre[0], y - fid.corner[1] + fid.centre[1]))
        scores.append(score)
    return registration.fit_rigid(
        [f.centre for f in a.fiducials], found, rotation=a.rigid, score=float(np.mean(scores))
    )


# --------------------------------------------------------------------------- compile


def read_reference_frame(path: Path) -> NDArray[np.float32]:
    """A reference frame from ``.npy``, ``.npz`` (array ``celsius``) or a single-channel image.

    Raises:
        RecipeError: the file cannot be read as a 2-D array.
    """
    arr: Any
    try:
        if path.suffix.lower() == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arr = data["celsius"]
        else:
            arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except (OSError, ValueError, KeyError) as exc:
        raise RecipeError([("alignment.reference", f"cannot read {path}: {exc}")]) from None
    if arr is None or np.asarray(arr).ndim != 2:
        raise RecipeError(
            [("alignment.reference", f"{path} is not a single-channel 2-D image or array")]
        )
    return np.asarray(arr, dtype=np.float32)


def _compile_region(spec: schema.RegionSpec, shape: tuple[int, int]) -> CompiledRegion:
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


def _compile_alignment(
    spec: schema.AlignmentSpec,
    regions: dict[str, CompiledRegion],
    shape: tuple[int, int],
    load_frame: FrameLoader,
) -> CompiledAlignment:
    try:
        reference = np.asarray(load_frame(spec.reference), dtype=np.float32)
    except ThermoscopeError as exc:
        raise RecipeError([("alignment.reference", str(exc))]) from None
    if reference.shape != shape:
        raise RecipeError(
            [
                (
                    "alignment.reference",
                    f"{spec.reference} is {reference.shape[1]}x{reference.shape[0]}, "
                    f"the recipe's frame {shape[1]}x{shape[0]}",
                )
            ]
        )
    fiducials = []
    reach = 0.0
    centre = ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
    for name in spec.fiducials:
        r = regions[name]
        fiducials.append(
            _Fiducial(
                name,
                np.ascontiguousarray(r.crop(reference)),
                (r.x0, r.y0),
                ((r.x0 + r.x1 - 1) / 2.0, (r.y0 + r.y1 - 1) / 2.0),
            )
        )
        reach = max(reach, math.dist(fiducials[-1].centre, centre))
    turn = reach * math.sin(math.radians(spec.max_rotation_deg)) if spec.motion == "rigid" else 0
    return CompiledAlignment(
        reference,
        tuple(fiducials),
        spec.motion == "rigid",
        spec.max_shift_px,
        spec.max_rotation_deg,
        # search twice the allowed motion, so a part beyond it is found and refused
        math.ceil(2.0 * (spec.max_shift_px + turn)) + 4,
    )


def _compile_check(rule: schema.Rule, regions: dict[str, CompiledRegion], recipe: Recipe) -> _Check:
    target = regions[rule.region]
    r = rule.region
    common: dict[str, Any] = {"rule": rule.label, "label": r, "band": Band.of(rule.limits)}
    pitch = recipe.camera.pixel_pitch_mm
    if isinstance(rule, (schema.MaxRule, schema.MinRule, schema.MeanRule)):
        return _StatCheck(target, rule.type, subject=f"{r} {rule.type}", unit="°C", **common)
    if isinstance(rule, schema.PercentileRule):
        return _PercentileCheck(
            target, rule.percentile, subject=f"{r} p{rule.percentile:g}", unit="°C", **common
        )
    if isinstance(rule, schema.DeltaTRule):
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
    if isinstance(rule, (schema.HotSpotAreaRule, schema.ColdSpotAreaRule)):
        hot = isinstance(rule, schema.HotSpotAreaRule)
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
    if isinstance(rule, schema.AsymmetryRule):
        partner_name = rule.pair or recipe.pair_of(r)
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
    if isinstance(rule, schema.GradientRule):
        per_mm = rule.unit == "mm"
        return _GradientCheck(
            target,
            pitch if per_mm else None,
            subject=f"{r} gradient",
            unit="°C/mm" if per_mm else "°C/px",
            **common,
        )
    if isinstance(rule, (schema.HeatingRateRule, schema.CoolingRateRule)):
        heating = isinstance(rule, schema.HeatingRateRule)
        return _RateCheck(
            target,
            rule.statistic,
            rule.window_s,
            1.0 if heating else -1.0,
            subject=f"{r} {'heating' if heating else 'cooling'} rate",
            unit="°C/s",
            **common,
        )
    if isinstance(rule, schema.TimeToReachRule):
        return _ReachCheck(
            target,
            rule.statistic,
            rule.temperature_c,
            rule.direction,
            subject=f"{r} time to {_limit(rule.temperature_c, '°C')}",
            unit="s",
            **common,
        )
    assert isinstance(rule, schema.CurveShapeRule)
    return _CurveCheck(
        target,
        rule.statistic,
        rule.golden_points,
        subject=f"{r} curve deviation",
        unit="°C",
        **common,
    )


def compile_recipe(
    recipe: Recipe,
    shape: tuple[int, int] | None = None,
    *,
    load_frame: FrameLoader | None = None,
) -> InspectionPlan:
    """Prepare a recipe for fast inspection of frames of one size.

    Args:
        recipe: a validated recipe.
        shape: (height, width) of the frames to come; must be the recipe's frame size (default).
        load_frame: reads the alignment reference file into a 2-D °C array (default
            :func:`read_reference_frame`; pass one built on ``thermoscope.io`` for camera files).

    Raises:
        InspectionError: ``shape`` is not the recipe's frame size.
        RecipeError: a file the recipe names cannot be used.
    """
    expected = (recipe.frame.height, recipe.frame.width)
    if shape is not None and tuple(shape) != expected:
        raise InspectionError(
            f"recipe {recipe.name!r} is drawn for {expected[1]}x{expected[0]} frames, "
            f"not {shape[1]}x{shape[0]}"
        )
    regions = {spec.name: _compile_region(spec, expected) for spec in recipe.regions}
    checks = [_compile_check(rule, regions, recipe) for rule in recipe.rules]
    ambient: float | tuple[CompiledRegion, Statistic] | None = None
    if recipe.ambient is not None:
        if recipe.ambient.value_c is not None:
            ambient = float(recipe.ambient.value_c)
        else:
            assert recipe.ambient.region is not None
            ambient = (regions[recipe.ambient.region], recipe.ambient.statistic)
    alignment = None
    if recipe.alignment is not None:
        alignment = _compile_alignment(
            recipe.alignment, regions, expected, load_frame or read_reference_frame
        )
    return InspectionPlan(
        recipe.name,
        expected,
        regions,
        tuple(checks),
        tuple(rule.label for rule in recipe.rules if rule.type in SEQUENCE_RULES),
        ambient,
        recipe.camera.object_parameters(),
        alignment,
        recipe.sequence,
    )


_PLANS: dict[int, InspectionPlan] = {}


def _plan_for(recipe: Recipe) -> InspectionPlan:
    # a plan holds no reference to its recipe, and an entry leaves with its recipe, so an id
    # found here is the live recipe's
    plan = _PLANS.get(id(recipe))
    if plan is None:
        plan = compile_recipe(recipe)
        _PLANS[id(recipe)] = plan
        weakref.finalize(recipe, _PLANS.pop, id(recipe), None)
    return plan


def inspect(
    subject: ThermalFrame | ThermalSequence | Sequence[ThermalFrame],
    recipe: Recipe | InspectionPlan,
    *,
    ambient_c: float | None = None,
    source: str | None = None,
) -> Inspection:
    """Inspect a part: one frame, or a sequence of frames (for recipes with sequence rules).

    Args:
        subject: a frame, or the part's frames in time order.
        recipe: a recipe (compiled on first use and remembered while it lives) or a plan from
            :func:`compile_recipe`.
        ambient_c: an ambient reading, °C, overriding the recipe's ambient.
        source: the part's name in the result (default: the frame's or sequence's source).

    Raises:
        InspectionError: the input does not fit the recipe (frame size, calibration, timing).
    """
    plan = recipe if isinstance(recipe, InspectionPlan) else _plan_for(recipe)
    if isinstance(subject, np.ndarray):
        raise InspectionError("inspect takes a ThermalFrame or a sequence of them, not an array")
    if isinstance(subject, ThermalFrame):
        return plan.inspect_frame(subject, ambient_c=ambient_c, source=source)
    return plan.inspect_sequence(subject, ambient_c=ambient_c, source=source)
