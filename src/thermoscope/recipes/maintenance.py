"""Predictive maintenance on top of the drift watch: forecasts at drift alarms, precursors of NG.

:class:`MaintenanceWatch` runs a :class:`~thermoscope.recipes.watch.RunWatch` and, at each
product drift alarm, forecasts when the drifting value crosses its NG limit
(:func:`thermoscope.analysis.forecast.forecast_crossing`): the value is first corrected for the
environment readings given with each part (ambient °C, humidity %, airflow m/s...), fitted
over the series' baseline (:meth:`MaintenanceWatch.corrected`), and the station's
:class:`~thermoscope.analysis.forecast.WearSignature` (the shape, rate and step of its wear in
past runs) is the prior when one is known; a forecast is raised only when that wear explains the
points far better than no drift. The :class:`ForecastAlert` names the station, the value, the
forecast and the evidence.

Recurring micro-anomalies (WARN findings on parts that are not NG) that preceded past NG bursts
are learnt by :func:`learn_precursors` as a :class:`PrecursorSignature`; the watch raises a
:class:`PrecursorAlert` when as many of them recur within the learnt window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from thermoscope.analysis.forecast import (
    Forecast,
    WearSignature,
    correct_environment,
    forecast_crossing,
)
from thermoscope.core.errors import ThermoscopeError
from thermoscope.core.findings import Inspection, Verdict
from thermoscope.recipes.schema import Recipe
from thermoscope.recipes.watch import DriftAlarm, RunWatch, WatchSettings

#: ``(rule, region)``: one watched value.
SeriesKey = tuple[str, str]


class MaintenanceError(ThermoscopeError, ValueError):
    """Bad input to the maintenance watch (unknown limit, bad part rate, too short a history)."""


def rule_limits(recipe: Recipe) -> dict[str, tuple[float | None, float | None]]:
    """The NG limits ``(min, max)`` of every recipe rule that has limits, by rule name."""
    limits: dict[str, tuple[float | None, float | None]] = {}
    for rule in recipe.rules:
        band = getattr(rule, "limits", None)
        if band is not None and rule.name is not None:
            limits[rule.name] = (band.min, band.max)
    return limits


@dataclass(frozen=True, slots=True)
class ForecastAlert:
    """A drifting value and when it is expected to cross its NG limit.

    Attributes:
        station: the station watched.
        rule, region, unit: the value (unit of ``forecast.limit`` and the trend).
        part_index: the part at which the forecast was made (0-based, as given to the watch):
            the drift alarm's, or a later one when the points at the alarm did not yet show a
            drift heading to the limit (see :class:`MaintenanceWatch`).
        direction: ``"up"`` or ``"down"``.
        forecast: parts (and hours) to the limit with their interval.
        alarm: the drift alarm the forecast was made at.
        environment: the environment coefficients removed, unit per reading unit, by reading.
        evidence: one line: what the forecast rests on.
        explanation: one line for a line operator.
    """

    station: str
    rule: str
    region: str
    unit: str
    part_index: int
    direction: str
    forecast: Forecast
    alarm: DriftAlarm
    environment: dict[str, float]
    evidence: str
    explanation: str


@dataclass(frozen=True, slots=True)
class CorrectedSeries:
    """One watched value, corrected for the environment (see :meth:`MaintenanceWatch.corrected`).

    Attributes:
        values: the corrected value per watched part, in the value's unit.
        center, sigma: mean and standard deviation of the baseline's corrected values (unit).
        baseline: points at the start the watch learnt its baseline from.
        environment: the coefficients removed, unit per reading unit, by reading.
        part_index: the part index of each value.
    """

    values: npt.NDArray[np.float64]
    center: float
    sigma: float
    baseline: int
    environment: dict[str, float]
    part_index: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PrecursorSignature:
    """Micro-anomalies that preceded past NG bursts.

    Attributes:
        keys: the values whose WARN findings came before bursts far more often than elsewhere.
        window: parts before a burst the precursors were counted in.
        threshold: WARNs of ``keys`` within ``window`` parts that raise a precursor alert.
        bursts: NG bursts in the past runs.
        preceded: how many of them had at least ``threshold`` precursors.
        lift: per key, its WARN rate before bursts over its rate elsewhere.
    """

    keys: tuple[SeriesKey, ...]
    window: int
    threshold: int
    bursts: int
    preceded: int
    lift: dict[SeriesKey, float]


@dataclass(frozen=True, slots=True)
class PrecursorAlert:
    """Micro-anomalies recurring as they did before past NG bursts.

    Attributes:
        station: the station watched.
        part_index: the part that completed the pattern.
        count: precursors in the last ``signature.window`` parts.
        signature: the learnt pattern.
        explanation: one line for a line operator.
    """

    station: str
    part_index: int
    count: int
    signature: PrecursorSignature
    explanation: str


def _bursts(verdicts: Sequence[Verdict], parts: int, within: int) -> list[int]:
    """Indices where an NG burst starts: ``parts`` NG parts within ``within`` parts."""
    starts: list[int] = []
    ng = [i for i, v in enumerate(verdicts) if v is Verdict.NG]
    k = 0
    while k + parts - 1 < len(ng):
        if ng[k + parts - 1] - ng[k] < within:
            starts.append(ng[k])
            end = ng[k] + within
            while k < len(ng) and ng[k] < end:
                k += 1
        else:
            k += 1
    return starts


def _warns(inspection: Inspection) -> set[SeriesKey]:
    if inspection.verdict is Verdict.NG:
        return set()
    return {(f.rule, f.region) for f in inspection.findings if f.verdict is Verdict.WARN}


def learn_precursors(
    runs: Sequence[Sequence[Inspection]],
    *,
    window: int = 50,
    burst_parts: int = 3,
    burst_window: int = 10,
    min_lift: float = 3.0,
) -> PrecursorSignature | None:
    """Learn which WARN findings preceded NG bursts in past runs.

    A burst is ``burst_parts`` NG parts within ``burst_window`` parts. A value belongs to the
    signature when its WARN rate (on parts that are not NG) in the ``window`` parts before the
    bursts is at least ``min_lift`` times its rate elsewhere and it preceded at least half the
    bursts. The threshold is the fewest such WARNs seen before a burst (at least 2).

    Returns:
        The signature, or ``None`` when there was no burst or no value qualifies.
    """
    if window < 1 or burst_parts < 2 or burst_window < burst_parts or min_lift <= 1.0:
        raise MaintenanceError(
            "need window >= 1, burst_parts >= 2, burst_window >= burst_parts, min_lift > 1"
        )
    before: dict[SeriesKey, int] = {}
    elsewhere: dict[SeriesKey, int] = {}
    seen_before: dict[SeriesKey, int] = {}
    windows: list[list[set[SeriesKey]]] = []
    inside_parts = outside_parts = 0
    for run in runs:
        starts = _bursts([p.verdict for p in run], burst_parts, burst_window)
        mark = np.zeros(len(run), dtype=np.int8)  # 1: before a burst, 2: in a burst
        for start in starts:
            mark[max(0, start - window) : start] = np.maximum(
                mark[max(0, start - window) : start], 1
            )
            mark[start : start + burst_window] = 2
        for start in starts:
            windows.append([_warns(p) for p in run[max(0, start - window) : start]])
            for key in set().union(*windows[-1]):
                seen_before[key] = seen_before.get(key, 0) + 1
        for index, part in enumerate(run):
            target = before if mark[index] == 1 else elsewhere if mark[index] == 0 else None
            if target is None:
                continue
            if mark[index] == 1:
                inside_parts += 1
            else:
                outside_parts += 1
            for key in _warns(part):
                target[key] = target.get(key, 0) + 1
    if not windows:
        return None
    lift: dict[SeriesKey, float] = {}
    for key, count in before.items():
        rate_before = count / max(inside_parts, 1)
        rate_else = (elsewhere.get(key, 0) + 0.5) / max(outside_parts, 1)
        if rate_before / rate_else >= min_lift and 2 * seen_before.get(key, 0) >= len(windows):
            lift[key] = rate_before / rate_else
    if not lift:
        return None
    keys = tuple(sorted(lift))
    counts = [sum(len(warns & set(keys)) for warns in parts) for parts in windows]
    positive = [c for c in counts if c > 0]
    threshold = max(2, min(positive))
    preceded = sum(c >= threshold for c in counts)
    return PrecursorSignature(keys, window, threshold, len(windows), preceded, lift)


class MaintenanceWatch:
    """A drift watch that forecasts, and flags the precursors of NG bursts, part after part.

    Args:
        limits: NG ``(min, max)`` per rule name (see :func:`rule_limits`).
        station: the station's name, in every alert.
        settings: the drift watch's settings.
        signatures: the station's wear signature per value, the prior of its forecasts.
        precursors: the learnt precursor pattern, or ``None``.
        parts_per_hour: the line's rate, to give forecasts in hours too.
        confidence: coverage of the forecast interval.
        max_parts: a forecast further away than this many parts raises no alert.
        min_odds: with a wear signature, the odds of the station's wear over no drift a
            forecast needs to raise an alert (a drift alarm the wear does not explain is left
            to the drift watch); without one, the rate's interval must head to the limit.
        retry_every, retry_for: a drift alarm whose forecast raised no alert is forecast again
            every ``retry_every`` parts for ``retry_for`` parts (the drift watch raises one
            alarm per episode: a step that follows an ambient excursion raises none).
    """

    def __init__(
        self,
        limits: Mapping[str, tuple[float | None, float | None]],
        *,
        station: str,
        settings: WatchSettings | None = None,
        signatures: Mapping[SeriesKey, WearSignature] | None = None,
        precursors: PrecursorSignature | None = None,
        parts_per_hour: float | None = None,
        confidence: float = 0.9,
        max_parts: float = 100_000.0,
        min_odds: float = 100.0,
        retry_every: int = 10,
        retry_for: int = 300,
    ) -> None:
        if parts_per_hour is not None and not (
            math.isfinite(parts_per_hour) and parts_per_hour > 0
        ):
            raise MaintenanceError(f"parts_per_hour must be positive, got {parts_per_hour}")
        self.watch = RunWatch(settings)
        self.station = station
        self._limits = dict(limits)
        self._signatures = dict(signatures or {})
        self._precursors = precursors
        self._rate = parts_per_hour
        self._confidence = confidence
        self._max_parts = max_parts
        self._min_odds = min_odds
        self._retry_every = max(1, retry_every)
        self._retry_for = retry_for
        self._pending: dict[SeriesKey, DriftAlarm] = {}
        self._environment: list[dict[str, float]] = []
        self._recent: deque[int] = deque()
        self._precursor_armed = True

    def update(
        self,
        inspection: Inspection,
        *,
        ambient: float | None = None,
        environment: Mapping[str, float] | None = None,
    ) -> list[ForecastAlert | PrecursorAlert]:
        """Watch one more part; return the alerts it raised (usually none).

        Args:
            inspection: the part's findings.
            ambient: the ambient temperature at this part, °C.
            environment: other readings at this part by name (``"humidity"`` %,
                ``"airflow"`` m/s...); a reading missing at some parts counts as its baseline
                mean there.
        """
        readings = dict(environment or {})
        if ambient is not None:
            readings["ambient"] = float(ambient)
        self._environment.append(readings)
        index = self.watch.parts
        alerts: list[ForecastAlert | PrecursorAlert] = []
        for alarm in self.watch.update(inspection, ambient=ambient):
            if self._limit(alarm) is not None:
                self._pending[(alarm.rule, alarm.region)] = alarm
        for key, alarm in list(self._pending.items()):
            since = index - alarm.part_index
            if since % self._retry_every:
                continue
            alert = self._forecast(alarm, index)
            if alert is not None or since >= self._retry_for:
                del self._pending[key]
            if alert is not None:
                alerts.append(alert)
        precursor = self._precursor(index, inspection)
        if precursor is not None:
            alerts.append(precursor)
        return alerts

    def corrected(self, rule: str, region: str) -> CorrectedSeries:
        """One watched value's series corrected for the environment readings, as forecast.

        The readings given to :meth:`update` are fitted over the series' baseline (see
        :func:`~thermoscope.analysis.forecast.correct_environment`); a past run's corrected
        series is what :func:`~thermoscope.analysis.forecast.learn_wear_signature` learns from.

        Raises:
            KeyError: the value has not been watched.
            MaintenanceError: its baseline is not complete yet.
        """
        history = self.watch.history(rule, region)
        marked = np.flatnonzero(history.baseline)
        if marked.size < 2:
            raise MaintenanceError(f"{rule!r} on {region!r} has no baseline yet")
        baseline = int(marked[-1]) + 1
        names = sorted({name for part in self._environment for name in part})
        readings = {
            name: np.array(
                [self._environment[i].get(name, math.nan) for i in history.part_index],
                dtype=np.float64,
            )
            for name in names
        }
        values, used = correct_environment(
            history.value, readings, baseline=max(baseline, len(names) + 3)
        )
        base = values[:baseline][history.baseline[:baseline]]
        return CorrectedSeries(
            values,
            float(np.mean(base)),
            float(np.std(base, ddof=1)),
            baseline,
            used,
            history.part_index,
        )

    def _limit(self, alarm: DriftAlarm) -> float | None:
        """The NG limit a product drift alarm heads to (``None``: nothing to forecast)."""
        if alarm.kind != "product" or alarm.rule not in self._limits:
            return None
        low, high = self._limits[alarm.rule]
        return high if alarm.direction == "up" else low

    def _forecast(self, alarm: DriftAlarm, index: int) -> ForecastAlert | None:
        limit = self._limit(alarm)
        assert limit is not None
        series = self.corrected(alarm.rule, alarm.region)
        values, center, sigma = series.values, series.center, series.sigma
        baseline, used = series.baseline, series.environment
        key = (alarm.rule, alarm.region)
        signature = self._signatures.get(key)
        forecast = forecast_crossing(
            values,
            limit=limit,
            center=center,
            sigma=sigma,
            start=baseline,
            signature=signature,
            parts_per_hour=self._rate,
            confidence=self._confidence,
        )
        if not forecast.parts_to_limit <= self._max_parts:
            return None
        odds = forecast.drift_odds
        if not forecast.heading_to_limit or (odds is not None and odds < self._min_odds):
            return None
        trend = forecast.trend
        unit = alarm.unit
        first = min(trend.onset + 1, series.part_index.size - 1)
        onset = int(series.part_index[first])
        evidence = (
            f"{alarm.explanation}; drifting since part {onset} at {trend.slope:+.4g} {unit}/part "
            f"({self._confidence:.0%}: {trend.slope_low:+.4g} to {trend.slope_high:+.4g})"
        )
        if trend.step != 0.0:
            evidence += f" after a {trend.step:+.3g} {unit} step"
        if trend.curvature > 0.0:
            evidence += f", the rate doubling every {0.5 / trend.curvature:.0f} parts"
        evidence += f", now {trend.level:.2f} {unit} against the {limit:g} {unit} limit"
        if signature is not None:
            evidence += (
                f"; {signature.shape} wear signature of {signature.runs} past runs: "
                f"{signature.rate:+.4g} {unit}/part, odds {odds:.3g} to 1 over no drift"
            )
        if used:
            evidence += "; corrected for " + ", ".join(sorted(used))
        when = f"{forecast.parts_to_limit:.0f} parts"
        span = f"{forecast.parts_low:.0f}-{forecast.parts_high:.0f}"
        if forecast.hours_to_limit is not None:
            when += f" (~{forecast.hours_to_limit:.1f} h)"
        name = alarm.rule if alarm.region in alarm.rule else f"{alarm.region} {alarm.rule}"
        explanation = (
            f"station {self.station}: {name} reaches its {limit:g} {unit} limit in about {when}, "
            f"{self._confidence:.0%} interval {span} parts"
        )
        return ForecastAlert(
            self.station,
            alarm.rule,
            alarm.region,
            unit,
            index,
            alarm.direction,
            forecast,
            alarm,
            used,
            evidence,
            explanation,
        )

    def _precursor(self, index: int, inspection: Inspection) -> PrecursorAlert | None:
        signature = self._precursors
        if signature is None:
            return None
        hits = len(_warns(inspection) & set(signature.keys))
        self._recent.extend([index] * hits)
        while self._recent and self._recent[0] <= index - signature.window:
            self._recent.popleft()
        count = len(self._recent)
        if count == 0:
            self._precursor_armed = True
        if count < signature.threshold or not self._precursor_armed:
            return None
        self._precursor_armed = False
        names = ", ".join(
            f"{region} {rule}" if region not in rule else rule for rule, region in signature.keys
        )
        explanation = (
            f"station {self.station}: {count} WARN on {names} in the last {signature.window} "
            f"parts, the pattern that preceded {signature.preceded} of {signature.bursts} past "
            "NG bursts"
        )
        return PrecursorAlert(self.station, index, count, signature, explanation)
