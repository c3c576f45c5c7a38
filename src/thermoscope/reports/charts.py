"""Inline SVG charts for reports: per-rule histograms and control charts, no libraries.

Every function returns one ``<svg>`` element as a string, sized by its ``viewBox`` so that
CSS can scale it; all text in it is escaped. Colours come from CSS classes (see ``html.py``),
so the charts follow the report's style sheet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

import numpy as np
from numpy.typing import ArrayLike, NDArray

from thermoscope.core import Verdict
from thermoscope.render.colorbar import nice_ticks
from thermoscope.reports.errors import ReportError

#: Most bins a histogram is split into.
MAX_BINS = 40
#: Control charts draw a dot per value up to this many values (a line only beyond).
MAX_DOTS = 300

_FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Frame:
    """Plot area of a chart in SVG units and the data ranges it maps."""

    width: float
    height: float
    left: float
    right: float
    top: float
    bottom: float
    x_range: tuple[float, float]
    y_range: tuple[float, float]

    def x(self, value: float) -> float:
        lo, hi = self.x_range
        return self.left + (value - lo) / (hi - lo) * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        lo, hi = self.y_range
        return (
            self.height
            - self.bottom
            - (value - lo) / (hi - lo) * (self.height - self.top - self.bottom)
        )


@dataclass(frozen=True, slots=True)
class LimitLine:
    """A vertical limit drawn on a histogram, in the histogram's unit.

    ``verdict`` is its kind and colour: NG for an NG limit, WARN for a warning limit, OK for a
    limit of unknown kind (drawn grey).
    """

    value: float
    verdict: Verdict


@dataclass(frozen=True, slots=True, eq=False)
class ControlChart:
    """A rule's control chart over a production run, as plain data (one entry per part).

    The drift watch's history of a series maps onto it directly: ``values`` (as charted, e.g.
    ambient-compensated), ``statistic`` the EWMA, ``lower``/``upper`` its limits, ``alarms`` the
    alarms' part numbers, ``parts`` the entries' part numbers. NaN leaves a gap in a line.

    Attributes:
        title: heading, e.g. the rule's name.
        values: the rule's value per entry, in run order, in ``unit``.
        statistic: the chart statistic per entry (e.g. the EWMA), same unit; ``None`` for none.
        lower, upper: control limits, one per entry or one for all (``None``: no such limit).
        alarms: part numbers where the chart raised an alarm; those not in ``parts`` are not
            drawn (e.g. alarms older than the history shown).
        center: the centre line, in ``unit``; ``None`` for none.
        unit: unit of every value ("°C", "°C/s" ...).
        statistic_name: legend label of ``statistic``.
        parts: the part number of each entry (the x axis), increasing; default 0, 1, 2 ...
    """

    title: str
    values: ArrayLike
    statistic: ArrayLike | None = None
    lower: ArrayLike | None = None
    upper: ArrayLike | None = None
    alarms: Sequence[int] = field(default_factory=tuple)
    center: float | None = None
    unit: str = "°C"
    statistic_name: str = "EWMA"
    parts: ArrayLike | None = None

    def __post_init__(self) -> None:
        values = _series(self.values, "values", None)
        count = values.size
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "statistic", _optional_series(self.statistic, "statistic", count))
        object.__setattr__(self, "lower", _optional_series(self.lower, "lower", count))
        object.__setattr__(self, "upper", _optional_series(self.upper, "upper", count))
        parts = _series(np.arange(count) if self.parts is None else self.parts, "parts", count)
        if not (np.isfinite(parts).all() and (np.diff(parts) > 0).all()):
            raise ReportError(f"control chart {self.title!r}: parts must increase")
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "alarms", tuple(int(i) for i in self.alarms))


def _series(data: ArrayLike, name: str, count: int | None) -> _FloatArray:
    arr = np.asarray(data, dtype=np.float64)
    if count is not None and arr.ndim == 0:
        arr = np.full(count, float(arr))
    if arr.ndim != 1 or (count is not None and arr.size != count):
        want = "a 1-D series" if count is None else f"a number or {count} values"
        raise ReportError(f"control chart {name} must be {want}, got shape {arr.shape}")
    arr.flags.writeable = False
    return arr


def _optional_series(data: ArrayLike | None, name: str, count: int) -> _FloatArray | None:
    return None if data is None else _series(data, name, count)


def histogram_svg(
    values: ArrayLike,
    *,
    verdicts: Sequence[Verdict] | None = None,
    limits: Sequence[LimitLine] = (),
    unit: str = "°C",
    width: int = 420,
    height: int = 190,
) -> str:
    """A histogram of ``values`` (in ``unit``) with vertical lines at the limits.

    Bars are stacked by verdict (OK, WARN, NG from the bottom) when ``verdicts`` (one per
    value) is given. Non-finite values are left out. Each bar carries a tooltip.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    kinds = [Verdict.OK] * arr.size if verdicts is None else list(verdicts)
    if len(kinds) != arr.size:
        raise ReportError(f"{len(kinds)} verdicts for {arr.size} values")
    finite = np.isfinite(arr)
    arr = arr[finite]
    kinds = [k for k, ok in zip(kinds, finite, strict=True) if ok]
    limit_values = [line.value for line in limits if math.isfinite(line.value)]
    x_range = _padded_range(list(arr) + limit_values)
    if arr.size and float(arr.max() - arr.min()) > 1e-9 * max(1.0, float(abs(arr.min()))):
        data_range = (float(arr.min()), float(arr.max()))
        auto_bins = len(np.histogram_bin_edges(arr, bins="auto")) - 1
        bins = min(max(auto_bins, 5), MAX_BINS)
    else:  # nothing, or one value: five bins over the padded range
        data_range, bins = x_range, 5
    edges = np.linspace(*data_range, bins + 1)
    stacks = {v: np.histogram(arr[[k is v for k in kinds]], bins=edges)[0] for v in Verdict}
    total = np.sum(np.stack(list(stacks.values())), axis=0)
    frame = _Frame(width, height, 44, 12, 18, 34, x_range, (0.0, max(float(np.max(total)), 1.0)))

    parts = [_svg_open(width, height, "histogram")]
    parts.append(_axes(frame, unit, y_integer=True))
    for i in range(bins):
        x0, x1 = frame.x(float(edges[i])), frame.x(float(edges[i + 1]))
        base = 0.0
        tip = [f"{edges[i]:.4g} to {edges[i + 1]:.4g} {unit}: {int(total[i])} parts"]
        tip += [
            f"{int(stacks[v][i])} {v.value}" for v in (Verdict.NG, Verdict.WARN) if stacks[v][i]
        ]
        for v in Verdict:
            count = float(stacks[v][i])
            if not count:
                continue
            y_top, y_bottom = frame.y(base + count), frame.y(base)
            parts.append(
                f'<rect class="bar {v.value.lower()}" x="{x0 + 0.5:.1f}" y="{y_top:.1f}" '
                f'width="{max(x1 - x0 - 1.0, 0.5):.1f}" height="{y_bottom - y_top:.1f}">'
                f"<title>{escape(', '.join(tip))}</title></rect>"
            )
            base += count
    for line in limits:
        if not math.isfinite(line.value):
            continue
        x = frame.x(line.value)
        parts.append(
            f'<line class="limit {line.verdict.value.lower()}" x1="{x:.1f}" y1="{frame.top:.1f}" '
            f'x2="{x:.1f}" y2="{height - frame.bottom:.1f}"><title>limit '
            f"{escape(_fmt(line.value))} {escape(unit)}</title></line>"
            f'<text class="limit-label {line.verdict.value.lower()}" x="{x:.1f}" '
            f'y="{frame.top - 5:.1f}" text-anchor="middle">{escape(_fmt(line.value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def control_chart_svg(chart: ControlChart, *, width: int = 960, height: int = 260) -> str:
    """A control chart: values, the chart statistic, its limits, the centre line and alarms."""
    values = np.asarray(chart.values, dtype=np.float64)
    count = values.size
    statistic = None if chart.statistic is None else np.asarray(chart.statistic, np.float64)
    lower = None if chart.lower is None else np.asarray(chart.lower, np.float64)
    upper = None if chart.upper is None else np.asarray(chart.upper, np.float64)
    series = [s for s in (values, statistic, lower, upper) if s is not None]
    ys = [float(v) for s in series for v in s[np.isfinite(s)]]
    if chart.center is not None:
        ys.append(chart.center)
    index = np.asarray(chart.parts, dtype=np.float64)
    x_ends = [float(index[0]), float(index[-1])] if count else [0.0, 1.0]
    frame = _Frame(
        width, height, 56, 16, 30, 34, _padded_range(x_ends, pad=0.01), _padded_range(ys)
    )
    parts = [_svg_open(width, height, "control-chart")]
    parts.append(_axes(frame, chart.unit, y_integer=False, x_label="part"))
    if chart.center is not None:
        y = frame.y(chart.center)
        parts.append(
            f'<line class="center" x1="{frame.left:.1f}" y1="{y:.1f}" '
            f'x2="{width - frame.right:.1f}" y2="{y:.1f}"/>'
        )
    for name, data in (("limit-line", lower), ("limit-line", upper)):
        if data is not None:
            parts.append(_polyline(frame, index, data, name))
    parts.append(_polyline(frame, index, values, "values"))
    if count <= MAX_DOTS:
        parts.extend(
            f'<circle class="value-dot" cx="{frame.x(float(i)):.1f}" cy="{frame.y(float(v)):.1f}" '
            'r="1.8"/>'
            for i, v in zip(index, values, strict=True)
            if math.isfinite(v)
        )
    if statistic is not None:
        parts.append(_polyline(frame, index, statistic, "statistic"))
    marked = statistic if statistic is not None else values
    alarms = _drawn_alarms(chart, index, marked)
    for part, y in alarms:
        parts.append(
            f'<circle class="alarm" cx="{frame.x(part):.1f}" cy="{frame.y(y):.1f}" r="3.5">'
            f"<title>alarm at part {part:g}: {escape(_fmt(y))} {escape(chart.unit)}</title>"
            "</circle>"
        )
    parts.append(_legend(chart, frame, [part for part, _ in alarms]))
    parts.append("</svg>")
    return "".join(parts)


def _drawn_alarms(
    chart: ControlChart, index: _FloatArray, marked: _FloatArray
) -> list[tuple[float, float]]:
    """(part, y) of each alarm whose part is charted with a finite ``marked`` value."""
    position = {float(p): i for i, p in enumerate(index)}
    out = []
    for part in chart.alarms:
        i = position.get(float(part))
        if i is not None and math.isfinite(marked[i]):
            out.append((float(part), float(marked[i])))
    return out


def _legend(chart: ControlChart, frame: _Frame, alarms: list[float]) -> str:
    entries = [("values", "value")]
    if chart.statistic is not None:
        entries.append(("statistic", chart.statistic_name))
    if chart.lower is not None or chart.upper is not None:
        entries.append(("limit-line", "control limits"))
    if chart.center is not None:
        entries.append(("center", "centre"))
    out = []
    x = frame.left
    for css, label in entries:
        out.append(
            f'<line class="{css}" x1="{x:.1f}" y1="12" x2="{x + 18:.1f}" y2="12"/>'
            f'<text class="legend" x="{x + 23:.1f}" y="16">{escape(label)}</text>'
        )
        x += 44 + 7.0 * len(label)
    if alarms:
        count = f"{len(alarms)} alarm{'s' if len(alarms) != 1 else ''}"
        out.append(
            f'<circle class="alarm" cx="{x + 4:.1f}" cy="12" r="3.5"/>'
            f'<text class="legend" x="{x + 12:.1f}" y="16">{count}, '
            f"first at part {min(alarms):g}</text>"
        )
    return "".join(out)


def _polyline(frame: _Frame, xs: _FloatArray, ys: _FloatArray, css: str) -> str:
    """One ``<polyline>`` per run of finite values (gaps where a value is NaN)."""
    out = []
    run: list[str] = []
    for x, y in zip(xs, ys, strict=True):
        if math.isfinite(y):
            run.append(f"{frame.x(float(x)):.1f},{frame.y(float(y)):.1f}")
            continue
        if run:
            out.append(run)
        run = []
    if run:
        out.append(run)
    return "".join(f'<polyline class="{css}" points="{" ".join(r)}"/>' for r in out)


def _axes(frame: _Frame, unit: str, *, y_integer: bool, x_label: str | None = None) -> str:
    """Grid lines, tick labels and the unit of both axes."""
    out = []
    x_left, x_right = frame.left, frame.width - frame.right
    y_top, y_bottom = frame.top, frame.height - frame.bottom
    y_lo, y_hi = frame.y_range
    y_ticks, y_dec = nice_ticks(y_lo, y_hi, max_count=6)
    if y_integer:
        y_ticks = [t for t in y_ticks if float(t).is_integer()]
        y_dec = 0
    for t in y_ticks:
        y = frame.y(t)
        out.append(
            f'<line class="grid" x1="{x_left:.1f}" y1="{y:.1f}" x2="{x_right:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{x_left - 5:.1f}" y="{y + 3.5:.1f}" text-anchor="end">'
            f"{t:.{y_dec}f}</text>"
        )
    x_lo, x_hi = frame.x_range
    x_ticks, x_dec = nice_ticks(x_lo, x_hi, max_count=7)
    for t in x_ticks:
        x = frame.x(t)
        out.append(
            f'<line class="tick-mark" x1="{x:.1f}" y1="{y_bottom:.1f}" x2="{x:.1f}" '
            f'y2="{y_bottom + 4:.1f}"/><text class="tick" x="{x:.1f}" y="{y_bottom + 15:.1f}" '
            f'text-anchor="middle">{t:.{x_dec}f}</text>'
        )
    out.append(
        f'<line class="axis" x1="{x_left:.1f}" y1="{y_bottom:.1f}" x2="{x_right:.1f}" '
        f'y2="{y_bottom:.1f}"/><line class="axis" x1="{x_left:.1f}" y1="{y_top:.1f}" '
        f'x2="{x_left:.1f}" y2="{y_bottom:.1f}"/>'
    )
    x_title = unit if x_label is None else x_label
    y_title = "parts" if x_label is None else unit
    out.append(
        f'<text class="axis-title" x="{x_right:.1f}" y="{frame.height - 4:.1f}" '
        f'text-anchor="end">{escape(x_title)}</text>'
        f'<text class="axis-title" x="4" y="{y_top - 8:.1f}">{escape(y_title)}</text>'
    )
    return "".join(out)


def _svg_open(width: int, height: int, css: str) -> str:
    return (
        f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" preserveAspectRatio="xMidYMid meet">'
    )


def _padded_range(values: Sequence[float], *, pad: float = 0.06) -> tuple[float, float]:
    """(low, high) spanning ``values`` with a margin; a unit span around a single value."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if hi - lo <= 1e-9 * max(1.0, abs(lo)):
        half = max(0.5, abs(lo) * 0.01)
        return lo - half, hi + half
    margin = (hi - lo) * pad
    return lo - margin, hi + margin


def _fmt(value: float) -> str:
    """A compact number for chart labels."""
    return f"{value:.4g}"
