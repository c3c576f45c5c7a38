"""Run-long drift watch: control charts on every rule value, part after part.

A :class:`RunWatch` takes each part's :class:`~thermoscope.core.Inspection` as it comes (and, when
there is one, the ambient temperature at that part) and keeps one chart state per
``(rule, region)`` finding. It learns each series' baseline from its first parts (the in-control
centre and sigma, and how much the value follows the ambient), then runs an EWMA chart, a tabular
CUSUM and Nelson's rules on the ambient-compensated value, and raises a :class:`DriftAlarm` when a
chart leaves its limits: tool wear, a failing heater or a weak cooling fan show up while the
parts are still OK. One alarm per drift episode and direction: a series that has raised an
alarm upwards does not raise another one upwards until its EWMA has come back to the centre line
(and likewise downwards).

The computations are those of :mod:`thermoscope.analysis.control_charts`, done one point at a
time: ``ewma`` and ``cusum(restart=True)`` (the sums start again from 0 after each signal), both
with ``margin=ambient_margin(...)`` when a fitted ambient slope is used. Each part costs O(1) per
series; :meth:`RunWatch.history` returns a series' values, statistics, limits and alarms as
arrays for plotting.

A finding marked ``extra["camera_drift"]`` (the reference emitter's offset, see
:mod:`thermoscope.recipes.record`) is charted like any other value, but its alarms are of kind
``"camera"`` and say that the camera drifts, not the product. Parts judged RETAKE are treated
like NG parts (``skip_ng``), and their protocol findings are not charted at all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from thermoscope.analysis.control_charts import (
    ALTERNATING_RUN,
    FOUR_OF_FIVE,
    HUGGING_RUN,
    MIXTURE_RUN,
    NELSON_RULES,
    SAME_SIDE_RUN,
    TREND_RUN,
    TWO_OF_THREE,
    BaselineMethod,
    compensate_ambient,
    estimate_baseline,
    ewma_decay_horizon,
    fit_ambient,
)
from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.findings import Finding, Inspection, Verdict

AlarmSource = Literal["ewma", "cusum", "nelson1", "nelson2", "nelson3", "nelson5", "nelson6"]
Direction = Literal["up", "down"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class WatchError(ThermoscopeError, ValueError):
    """The watch was fed something it cannot chart (e.g. one rule twice in one part)."""


class WatchSettings(BaseModel):
    """How the drift watch learns its baselines and when it raises an alarm.

    The defaults keep a 1,000-part run of an in-control value quiet (about 1 % of runs raise a
    false alarm per charted value with a 100-part baseline) while a drift of 0.01 sigma per
    part is flagged about 100 parts after it starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    baseline_parts: int = Field(
        default=100,
        ge=10,
        le=100_000,
        description="Parts per value used to learn its in-control centre, sigma and ambient "
        "slope before charting starts (NG parts are not counted).",
    )
    baseline_method: BaselineMethod = Field(
        default="mean_std",
        description="Baseline estimator: mean_std (mean, standard deviation), median_mad "
        "(median, scaled median absolute deviation; robust to outliers) or moving_range (mean, "
        "mean moving range / 1.128; short-term sigma, insensitive to a slow trend).",
    )
    ewma_lambda: float = Field(
        default=0.1,
        gt=0.0,
        le=1.0,
        description="EWMA weight of the newest part (smaller: longer memory, finer drifts).",
    )
    ewma_width: float = Field(
        default=5.0,
        gt=0.0,
        le=10.0,
        description="EWMA control limits' distance from the centre, in units of the EWMA's "
        "own sigma (L); wide because the baseline is estimated, not known.",
    )
    cusum_k: float = Field(
        default=1.0,
        ge=0.0,
        le=5.0,
        description="CUSUM allowance k in sigma: deviations smaller than k sigma do not "
        "accumulate (about half the shift to detect).",
    )
    cusum_h: float = Field(
        default=7.0,
        gt=0.0,
        le=50.0,
        description="CUSUM decision interval h in sigma: the cumulative excess that raises an "
        "alarm.",
    )
    alarm_on: tuple[AlarmSource, ...] = Field(
        default=("ewma", "cusum"),
        max_length=7,
        description="Charts whose signal raises a drift alarm: ewma, cusum, and the directional "
        "Nelson rules nelson1, nelson2, nelson3, nelson5, nelson6 (every rule is still recorded "
        "in the history). Empty: record only.",
    )
    ambient_compensation: bool = Field(
        default=True,
        description="Remove the part of each value that follows the ambient temperature, so a "
        "warm afternoon is not reported as drift (needs ambient readings).",
    )
    ambient_slope: float | None = Field(
        default=None,
        ge=-10.0,
        le=10.0,
        description="Fixed ambient slope (value unit per °C) for every value; none: fit each "
        "value's slope over its baseline.",
    )
    ambient_min_t: float = Field(
        default=3.0,
        ge=0.0,
        le=100.0,
        description="A fitted ambient slope is used only when it is at least this many standard "
        "errors from zero; otherwise the value is not compensated.",
    )
    ambient_coverage: float = Field(
        default=3.0,
        ge=0.0,
        le=10.0,
        description="Standard errors of a fitted ambient slope the EWMA limits allow for: they "
        "widen as the ambient moves away from the baseline's, by what an error that large "
        "would leave in the compensated values.",
    )
    skip_ng: bool = Field(
        default=True,
        description="Leave NG parts out of the baselines and charts: a defective part is not "
        "drift, and any of its values may carry the defect (a hot cell warms the whole module); "
        "they still appear in the history.",
    )
    history_limit: int = Field(
        default=10_000,
        ge=100,
        le=10_000_000,
        description="Most recent parts per value kept for history() (older ones are dropped; "
        "the charts themselves keep running).",
    )

    @field_validator("alarm_on")
    @classmethod
    def _distinct(cls, value: tuple[AlarmSource, ...]) -> tuple[AlarmSource, ...]:
        if len(set(value)) != len(value):
            raise ValueError("alarm_on lists a chart twice")
        return value


@dataclass(frozen=True, slots=True)
class DriftAlarm:
    """A value drifting away from its baseline while the parts may still be OK.

    Attributes:
        rule: the rule's name in the recipe.
        region: the region it measures.
        part_index: the part (0-based, in the order given to the watch) where the alarm rose.
        chart: the chart that raised it (``"ewma"``, ``"cusum"``, ``"nelson2"``...).
        direction: ``"up"`` or ``"down"``.
        explanation: one line for a line operator.
        statistic: the chart's statistic at that part, in ``unit`` (EWMA value, cumulative sum,
            or the compensated value for a Nelson rule).
        limit: the limit it crossed, in ``unit`` (for a Nelson rule: the centre line).
        unit: the finding's unit (°C, °C/s...).
        kind: ``"camera"`` for the camera's own drift (a finding with ``extra["camera_drift"]``,
            the reference emitter's offset), ``"product"`` for every other value.
    """

    rule: str
    region: str
    part_index: int
    chart: AlarmSource
    direction: Direction
    explanation: str
    statistic: float
    limit: float
    unit: str
    kind: Literal["product", "camera"] = "product"


@dataclass(frozen=True, slots=True)
class ChartHistory:
    """Everything charted for one ``(rule, region)`` value, one entry per part that reported it.

    Arrays have one element per entry (``nelson``: 8 rows, rule ``r`` in row ``r - 1``);
    statistics are NaN where the part was not charted (baseline, NG part, non-finite value).

    Attributes:
        rule, region, unit: the series and the unit of every value below (°C, °C/s...).
        part_index: the part of each entry (0-based, as given to the watch).
        value: the value as measured.
        ambient: the ambient reading used for the entry, °C (NaN: none).
        compensated: the value at the reference ambient, also for entries not charted (NaN
            until the baseline is learnt, and for non-finite values).
        baseline: entries the baseline was learnt from.
        charted: entries fed to the charts.
        ewma, ewma_lower, ewma_upper: the EWMA statistic and its exact limits (widened by the
            ambient margin when a fitted slope is used).
        cusum_upper, cusum_lower: the upper and lower cumulative sums (≥ 0; both start again
            from 0 after an entry where one exceeds ``cusum_limit``).
        nelson: Nelson rules 1-8 flags per entry.
        center, sigma: the baseline (NaN until learnt).
        cusum_limit: the CUSUM decision interval ``h * sigma`` (NaN until learnt).
        ambient_slope: value unit per °C removed by the compensation (0: none).
        ambient_reference: the ambient compensated values refer to, °C (NaN: none).
        active: False while learning, or when the baseline had no spread (nothing to chart).
        alarms: the drift alarms of this series, oldest first.
    """

    rule: str
    region: str
    unit: str
    part_index: npt.NDArray[np.int64]
    value: FloatArray
    ambient: FloatArray
    compensated: FloatArray
    baseline: BoolArray
    charted: BoolArray
    ewma: FloatArray
    ewma_lower: FloatArray
    ewma_upper: FloatArray
    cusum_upper: FloatArray
    cusum_lower: FloatArray
    nelson: BoolArray
    center: float
    sigma: float
    cusum_limit: float
    ambient_slope: float
    ambient_reference: float
    active: bool
    alarms: tuple[DriftAlarm, ...]


# Columns of the history buffer.
_PART, _VALUE, _AMBIENT, _COMPENSATED, _BASELINE, _CHARTED = range(6)
_EWMA, _EWMA_LOWER, _EWMA_UPPER, _CUSUM_UPPER, _CUSUM_LOWER = range(6, 11)
_NELSON = 11  # Nelson rules 1-8 as bits, rule r in bit r - 1
_COLUMNS = 12
_AMBIENT_NOTE = 1.0  # °C of ambient change an uncompensated alarm mentions
_WINDOW_MASK = (1 << MIXTURE_RUN) - 1  # the last 8 points, the longest zone window
_COUNT_5, _WINDOW_5, _ZONE_5 = TWO_OF_THREE
_COUNT_6, _WINDOW_6, _ZONE_6 = FOUR_OF_FIVE
_LAST_5, _LAST_6 = (1 << _WINDOW_5) - 1, (1 << _WINDOW_6) - 1


class _Rows:
    """The last ``limit`` rows of a float table, appended one at a time in amortised O(1)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = np.full((min(64, 2 * limit), _COLUMNS), np.nan)
        self._count = 0

    def append(self, row: list[float]) -> None:
        if self._count == self._data.shape[0]:
            if self._count < 2 * self._limit:
                grown = np.full((min(2 * self._count, 2 * self._limit), _COLUMNS), np.nan)
                grown[: self._count] = self._data
                self._data = grown
            else:
                keep = self._limit - 1
                self._data[:keep] = self._data[self._count - keep : self._count]
                self._data[keep:] = np.nan
                self._count = keep
        self._data[self._count] = row
        self._count += 1

    def view(self) -> FloatArray:
        """The kept rows (a view: do not modify)."""
        return self._data[max(0, self._count - self._limit) : self._count]

    def set_compensated(self, slope: float, reference: float) -> None:
        """Fill the compensated column of the rows so far that have a finite value."""
        rows = self._data[: self._count]
        finite = np.isfinite(rows[:, _VALUE])
        values = rows[finite, _VALUE]
        if slope:
            ambient = rows[finite, _AMBIENT]
            ambient = np.where(np.isnan(ambient), reference, ambient)
            values = compensate_ambient(values, ambient, slope=slope, reference=reference)
        rows[finite, _COMPENSATED] = values


class _Series:
    """The state of one ``(rule, region)`` value: baseline, charts, run counters, history."""

    def __init__(
        self,
        rule: str,
        region: str,
        unit: str,
        settings: WatchSettings,
        kind: Literal["product", "camera"] = "product",
    ) -> None:
        self.rule, self.region, self.unit, self.kind = rule, region, unit, kind
        self.settings = settings
        self.rows = _Rows(settings.history_limit)
        self.alarms: list[DriftAlarm] = []
        self.learn_values: list[float] = []
        self.learn_ambient: list[float] = []
        self.learnt = False
        self.active = False
        self.center = self.sigma = math.nan
        self.slope, self.reference = 0.0, math.nan
        self.slope_margin = 0.0  # ambient_coverage x the fitted slope's standard error
        self.ambient = math.nan  # the latest reading, °C
        self.limit_cusum = self.allowance = math.nan
        self.count = 0  # points charted so far
        self.horizon = ewma_decay_horizon(settings.ewma_lambda)
        self.ewma_dev = 0.0
        self.cusum_up = self.cusum_down = 0.0
        self.previous: float | None = None
        self.previous_step = 0.0
        self.run_above = self.run_below = self.run_rising = self.run_falling = 0
        self.run_alternating = self.run_within = 0
        self.above_1 = self.below_1 = self.above_2 = self.below_2 = 0
        self.episode: dict[Direction, bool] = {"up": False, "down": False}

    def observe(
        self, index: int, finding: Finding, ambient: float, ng_part: bool
    ) -> list[DriftAlarm]:
        value = float(finding.value)
        self.ambient = ambient
        admitted = math.isfinite(value) and not (self.settings.skip_ng and ng_part)
        row = [math.nan] * _COLUMNS
        row[_PART], row[_VALUE], row[_AMBIENT] = float(index), value, ambient
        row[_BASELINE] = row[_CHARTED] = 0.0
        alarms: list[DriftAlarm] = []
        if admitted and not self.learnt:
            row[_BASELINE] = 1.0
            self.learn_values.append(value)
            self.learn_ambient.append(ambient)
        elif self.learnt and math.isfinite(value):
            compensated, used = value, math.nan
            if self.slope:
                used = ambient if math.isfinite(ambient) else self.reference
                compensated = value - self.slope * (used - self.reference)
            row[_COMPENSATED] = compensated
            if admitted and self.active:
                row[_CHARTED] = 1.0
                alarms = self._chart(index, compensated, used, row)
        self.rows.append(row)
        if not self.learnt and len(self.learn_values) == self.settings.baseline_parts:
            self._learn()
        return alarms

    def _learn(self) -> None:
        settings = self.settings
        values = np.asarray(self.learn_values)
        ambient = np.asarray(self.learn_ambient)
        known = np.isfinite(ambient)
        if known.any():
            self.reference = float(np.mean(ambient[known]))
        if settings.ambient_compensation and known.sum() >= 3:
            fit = fit_ambient(values[known], ambient[known])
            if settings.ambient_slope is not None:
                self.slope = settings.ambient_slope
            elif fit.t_ratio >= settings.ambient_min_t and math.isfinite(fit.stderr):
                self.slope = fit.slope
                self.slope_margin = settings.ambient_coverage * fit.stderr
        if self.slope:
            filled = np.where(known, ambient, self.reference)
            values = compensate_ambient(values, filled, slope=self.slope, reference=self.reference)
        baseline = estimate_baseline(values, method=settings.baseline_method)
        self.center, self.sigma = baseline.center, baseline.sigma
        self.rows.set_compensated(self.slope, self.reference)
        self.learnt = True
        self.active = math.isfinite(self.sigma) and self.sigma > 0.0
        self.allowance = settings.cusum_k * self.sigma
        self.limit_cusum = settings.cusum_h * self.sigma
        self.learn_values, self.learn_ambient = [], []

    def _chart(self, index: int, x: float, ambient: float, row: list[float]) -> list[DriftAlarm]:
        settings = self.settings
        center, sigma = self.center, self.sigma
        lam = settings.ewma_lambda
        self.count += 1
        self.ewma_dev = lam * (x - center) + (1.0 - lam) * self.ewma_dev
        ewma = center + self.ewma_dev
        # As ewma_limit_factor(count, lam=lam), on one float.
        exponent = min(2.0 * self.count, self.horizon)
        factor = math.sqrt(lam / (2.0 - lam) * (1.0 - (1.0 - lam) ** exponent))
        # As ambient_margin(): what an error in the fitted slope may leave in x.
        margin = self.slope_margin * abs(ambient - self.reference) if self.slope_margin else 0.0
        half = settings.ewma_width * sigma * factor + margin
        lower, upper = center - half, center + half
        allowance = self.allowance + margin
        cusum_up = max(0.0, self.cusum_up + (x - (center + allowance)))
        cusum_down = max(0.0, self.cusum_down + ((center - allowance) - x))
        limit = self.limit_cusum
        # Restart both sums after a signal, as cusum(..., restart=True).
        restart = cusum_up > limit or cusum_down > limit
        self.cusum_up, self.cusum_down = (0.0, 0.0) if restart else (cusum_up, cusum_down)
        nelson = self._nelson(x, (x - center) / sigma)
        row[_EWMA], row[_EWMA_LOWER], row[_EWMA_UPPER] = ewma, lower, upper
        row[_CUSUM_UPPER], row[_CUSUM_LOWER], row[_NELSON] = cusum_up, cusum_down, nelson

        # An episode ends when the EWMA is back on the centre line, not at every dip below a limit.
        if self.ewma_dev <= 0.0:
            self.episode["up"] = False
        if self.ewma_dev >= 0.0:
            self.episode["down"] = False
        if not (nelson or restart or ewma > upper or ewma < lower):
            return []
        side: Direction = "up" if x > center else "down"
        signals: dict[str, tuple[Direction, float, float]] = {}
        if ewma > upper or ewma < lower:
            signals["ewma"] = ("up", ewma, upper) if ewma > upper else ("down", ewma, lower)
        if cusum_up > limit:
            signals["cusum"] = ("up", cusum_up, limit)
        elif cusum_down > limit:
            signals["cusum"] = ("down", cusum_down, limit)
        for number in (1, 2, 3, 5, 6):
            if nelson >> (number - 1) & 1:
                direction = side if number != 3 else "up" if self.run_rising else "down"
                signals[f"nelson{number}"] = (direction, x, center)
        raised: list[DriftAlarm] = []
        for direction in ("up", "down"):
            firing = [
                (source, signal)
                for source in settings.alarm_on
                if (signal := signals.get(source)) is not None and signal[0] == direction
            ]
            if firing and not self.episode[direction]:
                self.episode[direction] = True
                source, (way, statistic, crossed) = firing[0]
                alarm = DriftAlarm(
                    self.rule,
                    self.region,
                    index,
                    source,
                    way,
                    self._explain(source, way, statistic, crossed),
                    statistic,
                    crossed,
                    self.unit,
                    self.kind,
                )
                raised.append(alarm)
                self.alarms.append(alarm)
        return raised

    def _nelson(self, x: float, z: float) -> int:
        """Nelson rules 1-8 at this point as bits (rule r: bit r - 1); O(1) counter updates."""
        self.run_above = self.run_above + 1 if z > 0 else 0
        self.run_below = self.run_below + 1 if z < 0 else 0
        self.run_within = self.run_within + 1 if abs(z) < 1.0 else 0
        if self.previous is None:
            step = 0.0
        else:
            step = x - self.previous
            self.run_rising = self.run_rising + 1 if step > 0 else 0
            self.run_falling = self.run_falling + 1 if step < 0 else 0
            self.run_alternating = self.run_alternating + 1 if step * self.previous_step < 0 else 0
        self.previous, self.previous_step = x, step
        # Bit i of each mask: the point i parts ago was beyond that zone.
        self.above_1 = (self.above_1 << 1 | (z > _ZONE_6)) & _WINDOW_MASK
        self.below_1 = (self.below_1 << 1 | (z < -_ZONE_6)) & _WINDOW_MASK
        self.above_2 = (self.above_2 << 1 | (z > _ZONE_5)) & _WINDOW_MASK
        self.below_2 = (self.below_2 << 1 | (z < -_ZONE_5)) & _WINDOW_MASK
        return (
            (abs(z) > 3.0)
            | (self.run_above >= SAME_SIDE_RUN or self.run_below >= SAME_SIDE_RUN) << 1
            | (self.run_rising >= TREND_RUN - 1 or self.run_falling >= TREND_RUN - 1) << 2
            | (self.run_alternating >= ALTERNATING_RUN - 2) << 3
            | (
                (z > _ZONE_5 and (self.above_2 & _LAST_5).bit_count() >= _COUNT_5)
                or (z < -_ZONE_5 and (self.below_2 & _LAST_5).bit_count() >= _COUNT_5)
            )
            << 4
            | (
                (z > _ZONE_6 and (self.above_1 & _LAST_6).bit_count() >= _COUNT_6)
                or (z < -_ZONE_6 and (self.below_1 & _LAST_6).bit_count() >= _COUNT_6)
            )
            << 5
            | (self.run_within >= HUGGING_RUN) << 6
            | (
                (self.above_1 | self.below_1) == _WINDOW_MASK
                and self.above_1 != 0
                and self.below_1 != 0
            )
            << 7
        )

    def _explain(self, source: AlarmSource, direction: Direction, stat: float, limit: float) -> str:
        digits = min(4, max(1, -math.floor(math.log10(self.sigma))))
        while digits < 4 and f"{stat:.{digits}f}" == f"{limit:.{digits}f}":
            digits += 1  # show the crossing
        unit = self.unit

        def show(value: float) -> str:
            return f"{value:.{digits}f} {unit}"

        named = not self.region or re.search(rf"(?<!\w){re.escape(self.region)}(?!\w)", self.rule)
        name = self.rule if named else f"{self.region} {self.rule}"
        where = "above" if direction == "up" else "below"
        run = self.run_above if direction == "up" else self.run_below
        if source == "ewma":
            what = f"EWMA {show(stat)} {where} its {show(limit)} control limit"
        elif source == "cusum":
            excess = "excess" if direction == "up" else "shortfall"
            what = f"cumulative {excess} {show(stat)} beyond its {show(limit)} CUSUM limit"
        else:
            number = int(source.removeprefix("nelson"))
            what = f"{NELSON_RULES[number]} (Nelson rule {number})"
        text = f"{name} is drifting {direction}: {what} (baseline {show(self.center)}"
        if self.kind == "camera":
            text = "camera drift, not the product: " + text
        text += ", ambient-compensated)" if self.slope else ")"
        if run >= 2:
            text += f", {run} parts in a row {where} the centre line"
        if not self.slope and abs(self.ambient - self.reference) >= _AMBIENT_NOTE:
            # Not compensated: say so when the hall is not what it was while learning.
            text += (
                f"; ambient {self.ambient:.1f} °C, {self.reference:.1f} °C while learning "
                "(not compensated)"
            )
        return text

    def history(self) -> ChartHistory:
        rows = self.rows.view()
        bits = np.nan_to_num(rows[:, _NELSON]).astype(np.int64)
        nelson = (bits[None, :] >> np.arange(8)[:, None]) & 1 == 1
        return ChartHistory(
            rule=self.rule,
            region=self.region,
            unit=self.unit,
            part_index=rows[:, _PART].astype(np.int64),
            value=rows[:, _VALUE].copy(),
            ambient=rows[:, _AMBIENT].copy(),
            compensated=rows[:, _COMPENSATED].copy(),
            baseline=rows[:, _BASELINE] == 1.0,
            charted=rows[:, _CHARTED] == 1.0,
            ewma=rows[:, _EWMA].copy(),
            ewma_lower=rows[:, _EWMA_LOWER].copy(),
            ewma_upper=rows[:, _EWMA_UPPER].copy(),
            cusum_upper=rows[:, _CUSUM_UPPER].copy(),
            cusum_lower=rows[:, _CUSUM_LOWER].copy(),
            nelson=nelson,
            center=self.center,
            sigma=self.sigma,
            cusum_limit=self.limit_cusum,
            ambient_slope=self.slope,
            ambient_reference=self.reference,
            active=self.active,
            alarms=tuple(self.alarms),
        )


class RunWatch:
    """Watches every rule value of a production run for drift, one part at a time.

    Typical use, with ``parts`` an iterable of (inspection, ambient °C)::

        watch = RunWatch(WatchSettings(baseline_parts=50))
        for inspection, ambient in parts:
            for alarm in watch.update(inspection, ambient=ambient):
                print(alarm.explanation)
    """

    def __init__(self, settings: WatchSettings | None = None) -> None:
        self.settings = WatchSettings() if settings is None else settings
        self._series: dict[tuple[str, str], _Series] = {}
        self._alarms: list[DriftAlarm] = []
        self._parts = 0
        self._ambient = math.nan

    def update(self, inspection: Inspection, *, ambient: float | None = None) -> list[DriftAlarm]:
        """Chart one more part.

        Args:
            inspection: the part's findings; each ``(rule, region)`` is its own series.
            ambient: the ambient temperature at this part, °C; when missing, the last reading
                is used.

        Returns:
            The drift alarms this part raised (usually none).
        """
        if ambient is not None and math.isfinite(ambient):
            self._ambient = float(ambient)
        index = self._parts
        # a part whose capture must be retaken teaches the baseline nothing, like an NG part
        ng_part = inspection.verdict in (Verdict.NG, Verdict.RETAKE)
        seen: set[tuple[str, str]] = set()
        raised: list[DriftAlarm] = []
        for finding in inspection.findings:
            if finding.verdict is Verdict.RETAKE and finding.extra.get("camera_drift") is not True:
                continue  # a protocol breach (framing, focus...) is not a value of the part
            key = (finding.rule, finding.region)
            if key in seen:
                raise WatchError(
                    f"part {index} ({inspection.source}) reports rule {finding.rule!r} on region "
                    f"{finding.region!r} twice"
                )
            seen.add(key)
            series = self._series.get(key)
            if series is None:
                kind: Literal["product", "camera"] = (
                    "camera" if finding.extra.get("camera_drift") is True else "product"
                )
                series = _Series(finding.rule, finding.region, finding.unit, self.settings, kind)
                self._series[key] = series
            raised.extend(series.observe(index, finding, self._ambient, ng_part))
        self._parts += 1
        self._alarms.extend(raised)
        return raised

    @property
    def parts(self) -> int:
        """How many parts the watch has seen."""
        return self._parts

    @property
    def alarms(self) -> tuple[DriftAlarm, ...]:
        """Every drift alarm so far, in the order raised."""
        return tuple(self._alarms)

    def keys(self) -> list[tuple[str, str]]:
        """The ``(rule, region)`` series watched, in order of first appearance."""
        return list(self._series)

    def history(self, rule: str, region: str) -> ChartHistory:
        """The charted history of one series (the last ``history_limit`` parts)."""
        series = self._series.get((rule, region))
        if series is None:
            raise KeyError(f"no value of rule {rule!r} on region {region!r} has been watched")
        return series.history()
