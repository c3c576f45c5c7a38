"""Inspecting a whole :class:`~thermoscope.core.PartRecord`: capture protocol, reference
emitter, every view's rules and the sensor rules, in one :class:`~thermoscope.core.Inspection`.

In order, for each part:

1. The record's sensors are checked against the recipe's ``sensors`` (present, unit, sample
   rate, duration) and, with ``around_frames_s``, cut to the main view's frame times (aligned
   by timestamp; a series that does not overlap them is an error): a mismatch is an
   :class:`~thermoscope.recipes.engine.InspectionError`, since it means the station is wired
   or configured wrongly, not that the part is bad.
2. The protocol is checked on each view's inspected frame: framing (the part's hot pixels:
   centroid within ``max_offset_px`` of ``center``, area within ``area_px``, clear of the
   frame edge), focus (variance of the Laplacian of the frame, °C², at least
   ``min_sharpness``) and the ambient conditions of the capture. Each breach is a RETAKE
   finding (rule ``protocol``, region ``<view> <check>``) saying what to fix.
3. The reference emitter is read in the main view: its finding (rule ``reference emitter``,
   value = reading minus known temperature, °C, ``extra["camera_drift"]`` true) is OK, WARN
   beyond ``warn_offset_c`` or RETAKE beyond ``max_offset_c``. With ``correct`` the offset is
   subtracted from the main view's temperatures before its rules.
4. When nothing asked for a retake, every view is inspected with its own rules (findings of
   views other than the main one are named ``<view>/<rule>``) and the sensor rules see the
   record's series. The part's verdict is the worst finding: NG when any view is NG, RETAKE
   when the capture must be repeated (then no rule is judged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from thermoscope.core.findings import Finding, Inspection, Verdict
from thermoscope.core.frame import ThermalFrame
from thermoscope.core.part_record import PartRecord, PartRecordError, SensorSeries, View
from thermoscope.recipes.capture import FramingSpec, ProtocolSpec, ReferenceEmitterSpec
from thermoscope.recipes.checks import CompiledRegion
from thermoscope.recipes.engine import InspectionError, InspectionPlan, compile_recipe
from thermoscope.recipes.schema import Recipe

#: Rule names of the findings this module adds.
PROTOCOL_RULE = "protocol"
EMITTER_RULE = "reference emitter"


def sharpness(celsius: np.ndarray) -> float:
    """Focus measure of a frame: variance of its 3x3 Laplacian, °C² (non-finite pixels read as
    the frame's median)."""
    image = np.asarray(celsius, dtype=np.float32)
    if not bool(np.isfinite(image).all()):
        fill = float(np.median(image[np.isfinite(image)])) if np.isfinite(image).any() else 0.0
        image = np.nan_to_num(image, nan=fill, posinf=fill, neginf=fill)
    lap = cv2.Laplacian(image, cv2.CV_32F, ksize=1)
    return float(np.var(lap[1:-1, 1:-1]))


@dataclass(frozen=True, slots=True)
class PartExtent:
    """Where the part's pixels lie: count (px), centroid (x, y px) and bounding box."""

    area_px: int
    cx: float
    cy: float
    x0: int
    y0: int
    x1: int
    y1: int


def part_extent(
    celsius: np.ndarray, *, threshold_c: float | None, above_background_c: float | None
) -> PartExtent | None:
    """The extent of the pixels hotter than ``threshold_c`` (or than the frame's 5th percentile
    plus ``above_background_c``); ``None`` when no pixel is."""
    if threshold_c is None:
        assert above_background_c is not None
        threshold_c = float(np.nanpercentile(celsius, 5.0)) + above_background_c
    rows, cols = np.nonzero(np.asarray(celsius) > threshold_c)
    if rows.size == 0:
        return None
    return PartExtent(
        int(rows.size),
        float(cols.mean()) + 0.5,
        float(rows.mean()) + 0.5,
        int(cols.min()),
        int(rows.min()),
        int(cols.max()) + 1,
        int(rows.max()) + 1,
    )


def _retake(
    view: str, check: str, value: float, limit: float | None, unit: str, why: str
) -> Finding:
    return Finding(
        PROTOCOL_RULE, f"{view} {check}", value, limit, Verdict.RETAKE, f"retake: {why}",
        unit=unit,
    )  # fmt: skip


def _framing(view: str, celsius: np.ndarray, spec: FramingSpec) -> list[Finding]:
    ext = part_extent(
        celsius, threshold_c=spec.threshold_c, above_background_c=spec.above_background_c
    )
    if ext is None:
        return [_retake(view, "framing", 0.0, None, "px", f"no part found in view {view!r}")]
    out = []
    h, w = np.asarray(celsius).shape
    m = spec.edge_margin_px
    if ext.x0 < m or ext.y0 < m or ext.x1 > w - m or ext.y1 > h - m:
        out.append(
            _retake(
                view,
                "edge",
                float(min(ext.x0, ext.y0, w - ext.x1, h - ext.y1)),
                float(m),
                "px",
                f"the part is cut off at the frame edge in view {view!r} (box {ext.x0},{ext.y0}"
                f"-{ext.x1},{ext.y1} in {w}x{h})",
            )
        )
    dist = math.hypot(ext.cx - spec.center[0], ext.cy - spec.center[1])
    if dist > spec.max_offset_px:
        out.append(
            _retake(
                view,
                "position",
                dist,
                spec.max_offset_px,
                "px",
                f"the part sits {dist:.0f} px from its place in view {view!r} (centre "
                f"{ext.cx:.0f},{ext.cy:.0f}, expected {spec.center[0]:g},{spec.center[1]:g}; "
                f"tolerance {spec.max_offset_px:g} px)",
            )
        )
    if spec.area_px is not None and not spec.area_px[0] <= ext.area_px <= spec.area_px[1]:
        lo, hi = spec.area_px
        out.append(
            _retake(
                view,
                "area",
                float(ext.area_px),
                hi if ext.area_px > hi else lo,
                "px",
                f"the part covers {ext.area_px} px in view {view!r}, expected {lo:g}..{hi:g} "
                "(wrong pose or distance)",
            )
        )
    return out


def check_protocol(
    view: str, frame: ThermalFrame, record: PartRecord, spec: ProtocolSpec
) -> list[Finding]:
    """RETAKE findings for every way the view's frame breaks the protocol (empty: it keeps it)."""
    out: list[Finding] = []
    if spec.framing is not None:
        out += _framing(view, frame.celsius, spec.framing)
    if spec.min_sharpness is not None:
        focus = sharpness(frame.celsius)
        if focus < spec.min_sharpness:
            out.append(
                _retake(
                    view,
                    "focus",
                    focus,
                    spec.min_sharpness,
                    "°C²",
                    f"view {view!r} is out of focus (sharpness {focus:.3g} °C² under its "
                    f"floor {spec.min_sharpness:g})",
                )
            )
    for field, rng, unit in (
        ("temperature_c", spec.ambient_c, "°C"),
        ("relative_humidity_pct", spec.relative_humidity_pct, "%"),
    ):
        if rng is None:
            continue
        value = getattr(record.ambient, field)
        what = "ambient" if field == "temperature_c" else "humidity"
        if value is None:
            out.append(
                _retake(view, what, math.nan, None, unit, f"the capture has no {what} reading")
            )
        elif not rng[0] <= value <= rng[1]:
            out.append(
                _retake(
                    view,
                    what,
                    float(value),
                    rng[1] if value > rng[1] else rng[0],
                    unit,
                    f"{what} {value:g} {unit} is outside the protocol's {rng[0]:g}..{rng[1]:g}",
                )
            )
    return out


def read_emitter(
    frame: ThermalFrame, region: CompiledRegion, spec: ReferenceEmitterSpec
) -> Finding:
    """The reference emitter's finding: its offset (reading minus known temperature), °C."""
    crop = region.crop(frame.celsius)
    values = crop[region.mask] if region.mask is not None else crop.ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Finding(
            EMITTER_RULE, region.name, math.nan, spec.max_offset_c, Verdict.RETAKE,
            "retake: the reference emitter shows no valid temperature",
            extra={"camera_drift": True},
        )  # fmt: skip
    reading = float(np.median(values) if spec.statistic == "median" else np.mean(values))
    offset = reading - spec.temperature_c
    margin = spec.max_offset_c - abs(offset)
    extra = {"camera_drift": True, "reading_c": reading, "known_c": spec.temperature_c}
    said = (
        f"reference emitter reads {reading:.2f} °C for {spec.temperature_c:g} °C "
        f"(camera offset {offset:+.2f} °C"
    )
    if margin < 0:
        return Finding(
            EMITTER_RULE, region.name, offset, spec.max_offset_c, Verdict.RETAKE,
            f"retake: camera drift: {said}, beyond ±{spec.max_offset_c:g} °C); recalibrate",
            margin=margin, extra=extra,
        )  # fmt: skip
    verdict = Verdict.OK
    if spec.warn_offset_c is not None and abs(offset) > spec.warn_offset_c:
        verdict = Verdict.WARN
        said = f"camera drift: {said}, beyond the ±{spec.warn_offset_c:g} °C warning"
    text = said + (", corrected)" if spec.correct else ")")
    return Finding(
        EMITTER_RULE, region.name, offset, spec.max_offset_c, verdict, text,
        margin=margin, extra=extra,
    )  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class RecordPlan:
    """A recipe compiled for part records: one plan per view."""

    recipe: Recipe
    plans: dict[str, InspectionPlan]

    def inspect(self, record: PartRecord) -> Inspection:
        """Inspect one part record (see the module docstring)."""
        if not isinstance(record, PartRecord):
            raise InspectionError(f"inspect a PartRecord, not a {type(record).__name__}")
        recipe = self.recipe
        sensors = self._sensors(record)
        views = self._views(record)
        findings: list[Finding] = []
        if recipe.protocol is not None:
            for name, view in views.items():
                findings += check_protocol(name, self._inspected(view), record, recipe.protocol)
        offset = 0.0
        spec = recipe.reference_emitter
        if spec is not None:
            main = self.plans[recipe.view]
            emitter = read_emitter(
                self._inspected(views[recipe.view]), main.regions[spec.region], spec
            )
            findings.insert(0, emitter)
            if spec.correct and math.isfinite(emitter.value):
                offset = emitter.value
        if any(f.verdict is Verdict.RETAKE for f in findings):
            return Inspection.of(record.part_id, None, findings)
        frame_index: int | None = None
        for name, view in views.items():
            plan = self.plans[name]
            is_main = name == recipe.view
            shift = offset if is_main else 0.0
            if len(view.frames) == 1 and not plan.sequence_rules:
                result = plan.inspect_frame(
                    view.frames[0], source=record.part_id, sensors=sensors, offset_c=shift
                )
            else:
                result = plan.inspect_sequence(
                    view.frames, source=record.part_id, sensors=sensors, offset_c=shift
                )
            if is_main:
                frame_index = result.frame
                findings += result.findings
            else:
                findings += [replace(f, rule=f"{name}/{f.rule}") for f in result.findings]
        return Inspection.of(record.part_id, frame_index, findings)

    def _inspected(self, view: View) -> ThermalFrame:
        index = self.recipe.sequence.frame
        frames = view.frames
        return frames[index % len(frames)] if -len(frames) <= index < len(frames) else frames[-1]

    def _views(self, record: PartRecord) -> dict[str, View]:
        names = list(self.plans)
        if len(names) == 1 and len(record.views) == 1:
            return {names[0]: record.views[0]}
        out = {}
        for name in names:
            found = [v for v in record.views if v.name == name]
            if not found:
                have = ", ".join(v.name for v in record.views)
                raise InspectionError(
                    f"part {record.part_id!r} has no view {name!r} that recipe "
                    f"{self.recipe.name!r} inspects (it has: {have})"
                )
            out[name] = found[0]
        return out

    def _sensors(self, record: PartRecord) -> dict[str, SensorSeries]:
        have = {s.name: s for s in record.sensors}
        for spec in self.recipe.sensors:
            series = have.get(spec.name)
            where = f"part {record.part_id!r} sensor {spec.name!r}"
            if series is None:
                known = ", ".join(have) or "none"
                raise InspectionError(f"{where} is missing (the record has: {known})")
            if series.unit != spec.unit:
                raise InspectionError(
                    f"{where} is in {series.unit!r}, the recipe expects {spec.unit!r}"
                )
            rate = spec.sample_rate_hz
            if rate is not None and abs(series.sample_rate_hz - rate) > 1e-3 * rate:
                raise InspectionError(
                    f"{where} is sampled at {series.sample_rate_hz:g} Hz, "
                    f"the recipe expects {rate:g} Hz"
                )
            if spec.around_frames_s is not None:
                view = self._views(record)[self.recipe.view]
                span = view.time_span_s
                if span is None:
                    raise InspectionError(
                        f"{where}: the frames of view {view.name!r} carry no timestamps to "
                        "align the sensor to"
                    )
                try:
                    series = series.window(
                        span[0] - spec.around_frames_s, span[1] + spec.around_frames_s
                    )
                except PartRecordError as exc:
                    raise InspectionError(f"part {record.part_id!r}: {exc}") from None
                have[spec.name] = series
            if series.duration_s < spec.min_duration_s:
                raise InspectionError(
                    f"{where} covers {series.duration_s:g} s, "
                    f"the recipe needs {spec.min_duration_s:g} s"
                )
        return have


def compile_record(recipe: Recipe) -> RecordPlan:
    """Compile a recipe for part records: the main view and each of its ``views``."""
    plans = {recipe.view: compile_recipe(recipe)}
    for view in recipe.views:
        plans[view.name] = compile_recipe(recipe, view=view.name)
    return RecordPlan(recipe, plans)


def inspect_record(record: PartRecord, recipe: Recipe | RecordPlan) -> Inspection:
    """Inspect a part record with a recipe (compile it once with :func:`compile_record` when
    inspecting many parts).

    Raises:
        InspectionError: the record does not fit the recipe (a view or sensor missing, a sensor
            in another unit or rate, a frame of another size).
    """
    plan = recipe if isinstance(recipe, RecordPlan) else compile_record(recipe)
    return plan.inspect(record)
