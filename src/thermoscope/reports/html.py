"""Batch HTML report: one self-contained file (inline CSS, PNG data URIs, inline SVG charts).

The report holds, in this order: a summary (parts, OK / WARN / NG counts, yield); a table of
every part with NG parts first, then WARN, then OK (run order within each), each with a
thumbnail of its overlay where it has one and its findings; per-rule distributions (histograms
with their limits); and control charts when given. A few lines of plain JavaScript filter the table
by verdict or name and sort it; without JavaScript everything is still shown, NG first.

Only NG and WARN parts (at most ``max_thumbnails``) and an even sample of ``ok_thumbnails`` OK
parts get a thumbnail, so the file grows by a few kilobytes per part plus some 50 kB per
thumbnail: a 1,000-part run of the synthetic PCB (9 rules, 5 % defective) makes 6 MB.
Thumbnails are rendered when the report is built, from the part's frame and regions, unless the part
brings its own PNG. All text from the inputs is HTML-escaped.
"""

from __future__ import annotations

import base64
import math
import struct
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

import thermoscope
from thermoscope.analysis.fusion_registration import (
    VisualRegistration,
    fused_view,
    registration_for,
)
from thermoscope.core import Finding, Inspection, Region, ThermalFrame, ThermoscopeError, Verdict
from thermoscope.core.visual import VisualImage
from thermoscope.render import encode_png
from thermoscope.reports.charts import (
    ControlChart,
    LimitLine,
    control_chart_svg,
    histogram_svg,
)
from thermoscope.reports.errors import ReportError
from thermoscope.reports.overlay import format_number, format_value, render_overlay

#: Default widest thumbnail, in pixels.
THUMBNAIL_WIDTH = 240
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Most limit lines drawn on one rule's histogram (the most frequent limits).
_MAX_LIMIT_LINES = 4
#: Most region names listed on a rule's card.
_MAX_REGION_NAMES = 3


@dataclass(frozen=True, slots=True, eq=False)
class ReportPart:
    """One inspected part of a batch and what its thumbnail is made from.

    Attributes:
        inspection: the part's inspection (its source and frame index name the part).
        overlay_png: a ready thumbnail (PNG file bytes), used as is; takes precedence.
        celsius: the part's frame, or its temperatures in °C (H, W), to render the overlay
            from when the part gets a thumbnail.
        regions: the recipe's regions by name, drawn on the rendered overlay.
        visual: the part's visual photo; with ``celsius`` and a registration (the photo's own
            camera alignment, or ``visual_registration``) a fused view (visual edges over the
            thermogram) is shown beside the overlay.
        visual_registration: the camera pair's calibration, when the photo has no alignment.
    """

    inspection: Inspection
    overlay_png: bytes | None = None
    celsius: ThermalFrame | ArrayLike | None = None
    regions: Mapping[str, Region] = field(default_factory=dict)
    visual: VisualImage | None = None
    visual_registration: VisualRegistration | None = None

    @property
    def source(self) -> str:
        """The part's file or serial, from its inspection."""
        return self.inspection.source

    @property
    def frame_index(self) -> int | None:
        """The frame of ``source`` the part was inspected in (``None`` for a whole file)."""
        return self.inspection.frame

    def thumbnail(
        self, *, width: int, palette: str, range: tuple[float, float] | None
    ) -> bytes | None:
        """The PNG thumbnail: ``overlay_png``, else the overlay rendered ``width`` pixels wide
        (labels on WARN/NG findings only, no colour bar), else ``None``."""
        if self.overlay_png is not None:
            return self.overlay_png
        if self.celsius is None:
            return None
        rgb = render_overlay(
            self.celsius,
            self.inspection,
            self.regions,
            palette=palette,
            range=range,
            colorbar=False,
            width=width,
            labels="flagged",
        )
        return encode_png(rgb)

    def fused_thumbnail(self, *, palette: str) -> bytes | None:
        """The fused view (visual edges over the thermogram) as PNG, when the part has a photo,
        a frame and a registration; ``None`` otherwise (also when the registration does not fit
        the photo and frame sizes)."""
        if self.visual is None or self.celsius is None:
            return None
        frame = self.celsius
        temps = np.asarray(frame.celsius if isinstance(frame, ThermalFrame) else frame)
        try:
            registration = registration_for(
                self.visual,
                (int(temps.shape[1]), int(temps.shape[0])),
                calibration=self.visual_registration,
            )
            return encode_png(fused_view(temps, self.visual, registration, palette=palette))
        except ThermoscopeError:
            return None


@dataclass(slots=True)
class _RuleStats:
    """Everything a rule's card shows, gathered over the parts."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    regions: dict[str, None] = field(default_factory=dict)
    limits: Counter[float] = field(default_factory=Counter)
    limit_verdicts: dict[float, Verdict] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        self.values.append(float(finding.value))
        self.verdicts.append(finding.verdict)
        if finding.region:
            self.regions[finding.region] = None
        if finding.limit is not None and math.isfinite(finding.limit):
            limit = round(float(finding.limit), 6)
            self.limits[limit] += 1
            seen = self.limit_verdicts.get(limit, Verdict.OK)
            self.limit_verdicts[limit] = Verdict.worst([seen, _limit_kind(finding)])

    def count(self, verdict: Verdict) -> int:
        return sum(v is verdict for v in self.verdicts)

    def limit_lines(self) -> list[LimitLine]:
        common = self.limits.most_common(_MAX_LIMIT_LINES)
        return [LimitLine(value, self.limit_verdicts[value]) for value, _ in common]


def _limit_kind(finding: Finding) -> Verdict:
    """Which limit ``finding.limit`` is: NG (the NG limit), WARN (a warning limit), or OK
    (unknown: the nearest limit of an OK finding without a margin).

    With a margin (the distance to the NG limit) the limit is the NG limit when it lies that
    far from the value; without one, the finding's verdict says which limit it crossed.
    """
    if finding.margin is not None and finding.limit is not None:
        gap = abs(finding.value - finding.limit)
        is_ng = math.isclose(gap, abs(finding.margin), rel_tol=1e-6, abs_tol=1e-4)
        return Verdict.NG if is_ng else Verdict.WARN
    return finding.verdict


def build_html_report(
    parts: Sequence[ReportPart],
    *,
    title: str,
    rule_series: Mapping[str, ArrayLike] | None = None,
    control_charts: Sequence[ControlChart] | None = None,
    meta: Mapping[str, str] | None = None,
    palette: str = "iron",
    range: tuple[float, float] | None = None,
    thumbnail_width: int = THUMBNAIL_WIDTH,
    ok_thumbnails: int = 12,
    max_thumbnails: int = 100,
    ok_findings: bool = True,
) -> str:
    """The report as one HTML document (see the module docstring for its content).

    Args:
        parts: the inspected parts, in run order.
        title: the report's heading and window title.
        rule_series: values of rules over the whole run, by rule name, for the distributions,
            when ``parts`` holds only some of the run's parts (e.g. the flagged ones and a
            sample); those histograms are not split by verdict. Default: the values of the
            parts' findings.
        control_charts: control charts to draw, e.g. the drift watch's charts per rule.
        meta: a few facts shown under the title (recipe, line, shift, generated at ...).
        palette: palette of rendered thumbnails (a name from ``thermoscope.render.PALETTES``).
        range: (low, high) °C of rendered thumbnails, the same for every part so that colours
            compare across parts; ``None``: each part's own automatic range.
        thumbnail_width: width of rendered thumbnails in pixels; given PNGs are shown at most
            this wide, and at their full size when clicked.
        ok_thumbnails: how many OK parts get a thumbnail, spread evenly over the run.
        max_thumbnails: how many NG and WARN parts get a thumbnail at most (NG first).
            Both choose among the parts with a frame or a PNG only, so a caller may keep the
            frames of just the parts it wants shown, to save memory on long runs.
        ok_findings: list the OK findings of each part too (folded away under the others).

    Raises:
        ReportError: a negative thumbnail count, a thumbnail width below 16 pixels, or an
            ``overlay_png`` that is not a PNG file.
        RenderError, RegionError: a part's overlay cannot be rendered.
    """
    if ok_thumbnails < 0 or max_thumbnails < 0 or thumbnail_width < 16:
        raise ReportError(
            "thumbnail counts must be >= 0 and thumbnail_width >= 16, got "
            f"{ok_thumbnails}, {max_thumbnails}, {thumbnail_width}"
        )
    order = _report_order(parts)
    with_thumbnail = _thumbnail_choice(parts, order, ok_thumbnails, max_thumbnails)
    body = [
        _header(title, meta or {}, charts=bool(control_charts)),
        "<main>",
        _summary(parts),
        _parts_section(
            parts,
            order,
            with_thumbnail,
            palette=palette,
            range=range,
            width=thumbnail_width,
            ok_findings=ok_findings,
        ),
        _rules_section(parts, rule_series or {}),
        _charts_section(control_charts or ()),
        "</main>",
        f"<footer>thermoscope {escape(thermoscope.__version__)}</footer>",
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}<script>{_JS}</script></body></html>\n"
    )


def write_html_report(
    path: str | Path,
    parts: Sequence[ReportPart],
    *,
    title: str,
    rule_series: Mapping[str, ArrayLike] | None = None,
    control_charts: Sequence[ControlChart] | None = None,
    meta: Mapping[str, str] | None = None,
    palette: str = "iron",
    range: tuple[float, float] | None = None,
    thumbnail_width: int = THUMBNAIL_WIDTH,
    ok_thumbnails: int = 12,
    max_thumbnails: int = 100,
    ok_findings: bool = True,
) -> Path:
    """Write ``build_html_report(...)`` to ``path`` (UTF-8) and return the path.

    Arguments as for ``build_html_report``.
    """
    document = build_html_report(
        parts,
        title=title,
        rule_series=rule_series,
        control_charts=control_charts,
        meta=meta,
        palette=palette,
        range=range,
        thumbnail_width=thumbnail_width,
        ok_thumbnails=ok_thumbnails,
        max_thumbnails=max_thumbnails,
        ok_findings=ok_findings,
    )
    out = Path(path)
    out.write_text(document, encoding="utf-8")
    return out


def _report_order(parts: Sequence[ReportPart]) -> list[int]:
    """Indices of ``parts``: NG, then WARN, then OK, in run order within each."""
    return sorted(range(len(parts)), key=lambda i: -parts[i].inspection.verdict.severity)


def _thumbnail_choice(
    parts: Sequence[ReportPart], order: list[int], ok_count: int, flagged_count: int
) -> set[int]:
    """Indices of the parts that get a thumbnail: NG, then WARN, then an even OK sample, all
    among the parts that bring a frame or a PNG to make one from."""
    able = [i for i in order if parts[i].overlay_png is not None or parts[i].celsius is not None]
    flagged = [i for i in able if parts[i].inspection.verdict is not Verdict.OK]
    ok = sorted(i for i in able if parts[i].inspection.verdict is Verdict.OK)
    chosen = set(flagged[:flagged_count])
    if ok and ok_count:
        picks = np.linspace(0, len(ok) - 1, min(ok_count, len(ok)))
        chosen.update(ok[int(k)] for k in np.rint(picks))
    return chosen


def _header(title: str, meta: Mapping[str, str], *, charts: bool) -> str:
    facts = "".join(
        f"<div><dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd></div>" for k, v in meta.items()
    )
    links = [("summary", "Summary"), ("parts", "Parts"), ("rules", "Rules")]
    if charts:
        links.append(("charts", "Control charts"))
    nav = "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in links)
    return (
        f'<header><div class="brand">thermoscope · inspection report</div>'
        f"<h1>{escape(title)}</h1>{f'<dl>{facts}</dl>' if facts else ''}<nav>{nav}</nav></header>"
    )


def _summary(parts: Sequence[ReportPart]) -> str:
    total = len(parts)
    counts = Counter(p.inspection.verdict for p in parts)
    passed = counts[Verdict.OK] + counts[Verdict.WARN]  # RETAKE parts were not judged
    yield_text = f"{100.0 * passed / total:.1f} %" if total else "-"

    def card(css: str, label: str, value: str, note: str = "") -> str:
        note_html = f'<div class="note">{escape(note)}</div>' if note else ""
        return (
            f'<div class="card stat {css}"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(value)}</div>{note_html}</div>'
        )

    def share(n: int) -> str:
        return f"{100.0 * n / total:.1f} % of parts" if total else ""

    cards = [
        card("parts", "Parts", str(total), "inspected"),
        card("ok", "OK", str(counts[Verdict.OK]), share(counts[Verdict.OK])),
        card("warn", "WARN", str(counts[Verdict.WARN]), share(counts[Verdict.WARN])),
        card("ng", "NG", str(counts[Verdict.NG]), share(counts[Verdict.NG])),
        card("retake", "RETAKE", str(counts[Verdict.RETAKE]), share(counts[Verdict.RETAKE])),
        card("yield", "Yield", yield_text, "parts not NG (OK + WARN)"),
    ]
    return f'<section id="summary"><div class="stats">{"".join(cards)}</div></section>'


def _rule_stats(
    parts: Sequence[ReportPart], rule_series: Mapping[str, ArrayLike]
) -> list[_RuleStats]:
    """Per rule: its findings' values, verdicts, regions and limits, problems first."""
    stats: dict[str, _RuleStats] = {}
    for part in parts:
        for finding in part.inspection.findings:
            rule = stats.setdefault(finding.rule, _RuleStats(finding.rule, finding.unit))
            rule.add(finding)
    for name in rule_series:
        stats.setdefault(name, _RuleStats(name, "°C"))
    rank = {name: i for i, name in enumerate(stats)}
    return sorted(
        stats.values(),
        key=lambda s: (-s.count(Verdict.NG), -s.count(Verdict.WARN), rank[s.name]),
    )


def _rules_section(parts: Sequence[ReportPart], rule_series: Mapping[str, ArrayLike]) -> str:
    stats = _rule_stats(parts, rule_series)
    if not stats:
        return '<section id="rules"><h2>Rules</h2><p class="empty">No findings.</p></section>'
    cards = []
    for rule in stats:
        if rule.name in rule_series:
            values = np.asarray(rule_series[rule.name], dtype=np.float64).ravel()
            svg = histogram_svg(values, limits=rule.limit_lines(), unit=rule.unit)
        else:
            values = np.asarray(rule.values, dtype=np.float64)
            svg = histogram_svg(
                values, verdicts=rule.verdicts, limits=rule.limit_lines(), unit=rule.unit
            )
        finite = values[np.isfinite(values)]
        regions = list(rule.regions)
        shown = ", ".join(regions[:_MAX_REGION_NAMES])
        if len(regions) > _MAX_REGION_NAMES:
            shown += f" +{len(regions) - _MAX_REGION_NAMES}"
        numbers = (
            f"n {finite.size} · mean {format_value(float(finite.mean()), rule.unit)} · "
            f"range {format_number(float(finite.min()), rule.unit)} … "
            f"{format_value(float(finite.max()), rule.unit)}"
            if finite.size
            else "no values"
        )
        badges = "".join(
            f'<span class="badge {v.value.lower()}">{rule.count(v)} {v.value}</span>'
            for v in (Verdict.NG, Verdict.WARN)
            if rule.count(v)
        )
        cards.append(
            f'<div class="card rule"><div class="rule-head"><h3>{escape(rule.name)}</h3>'
            f"{badges}</div>"
            f'<div class="rule-meta">{escape(shown) or "whole frame"} · {escape(numbers)}</div>'
            f"{svg}</div>"
        )
    return (
        '<section id="rules"><h2>Rules <span class="hint">distribution of each rule\'s value '
        "over the parts; dashed lines: NG limits red, warning limits amber</span></h2>"
        f'<div class="rules">{"".join(cards)}</div></section>'
    )


def _charts_section(charts: Sequence[ControlChart]) -> str:
    if not charts:
        return ""
    cards = "".join(
        f'<div class="card chart"><h3>{escape(c.title)}</h3>{control_chart_svg(c)}</div>'
        for c in charts
    )
    return (
        '<section id="charts"><h2>Control charts <span class="hint">each rule\'s value per '
        "part, in run order, with its chart statistic, control limits and alarms</span></h2>"
        f"{cards}</section>"
    )


def _parts_section(
    parts: Sequence[ReportPart],
    order: list[int],
    with_thumbnail: set[int],
    *,
    palette: str,
    range: tuple[float, float] | None,
    width: int,
    ok_findings: bool,
) -> str:
    counts = Counter(p.inspection.verdict for p in parts)
    buttons = [f'<button type="button" data-filter="all" class="on">All {len(parts)}</button>']
    buttons += [
        f'<button type="button" data-filter="{v.value}">{v.value} {counts[v]}</button>'
        for v in (Verdict.NG, Verdict.WARN, Verdict.OK)
    ]
    frames = any(p.frame_index is not None for p in parts)  # else no Frame column
    rows = []
    for i in order:
        part = parts[i]
        png = fused = None
        if i in with_thumbnail:
            png = part.thumbnail(width=width, palette=palette, range=range)
            fused = part.fused_thumbnail(palette=palette)
        rows.append(
            _part_row(
                part, i, png, width=width, frames=frames, ok_findings=ok_findings, fused=fused
            )
        )
    toolbar = (
        f'<div class="toolbar"><div class="filters">{"".join(buttons)}</div>'
        '<input type="search" id="part-search" placeholder="Filter by part name…" '
        'aria-label="Filter by part name"></div>'
    )
    frame_head = '<th data-sort="frame">Frame</th>' if frames else ""
    head = (
        '<thead><tr><th data-sort="severity">Verdict</th><th data-sort="source">Part</th>'
        f"{frame_head}<th>Overlay</th><th>Findings</th></tr></thead>"
    )
    return (
        '<section id="parts"><h2>Parts <span class="hint">NG first, then WARN, then OK; '
        "click a heading to sort, a reduced overlay to see it in full</span></h2>"
        f'{toolbar}<table class="parts">{head}<tbody>{"".join(rows)}</tbody></table></section>'
    )


def _part_row(
    part: ReportPart,
    index: int,
    png: bytes | None,
    *,
    width: int,
    frames: bool,
    ok_findings: bool,
    fused: bytes | None = None,
) -> str:
    """One row of the parts table (``index``: the part's place in the run; ``fused``: a fused
    visual + thermal view shown after the overlay)."""
    verdict = part.inspection.verdict
    css = verdict.value.lower()
    frame = "" if part.frame_index is None else str(part.frame_index)
    frame_cell = f'<td class="frame">{escape(frame)}</td>' if frames else ""
    if png is not None:
        w, h = _png_size(png)
        data = base64.b64encode(png).decode("ascii")
        shown_w = min(w, width)
        shown_h = max(1, round(h * shown_w / w))
        zoom = " zoomable" if w > shown_w else ""
        image = (
            f'<img class="overlay{zoom}" src="data:image/png;base64,{data}" width="{shown_w}" '
            f'height="{shown_h}" alt="overlay of {escape(part.source)}" decoding="async">'
        )
    else:
        image = '<span class="no-image">&ndash;</span>'
    if fused is not None:
        fw, fh = _png_size(fused)
        shown = min(fw, width)
        image += (
            f'<img class="overlay fused" src="data:image/png;base64,'
            f'{base64.b64encode(fused).decode("ascii")}" width="{shown}" '
            f'height="{max(1, round(fh * shown / fw))}" '
            f'alt="visual + thermal view of {escape(part.source)}" decoding="async">'
        )
    return (
        f'<tr class="part {css}" data-verdict="{verdict.value}" data-severity="{verdict.severity}" '
        f'data-source="{escape(part.source)}" data-frame="{escape(frame)}" data-order="{index}">'
        f'<td><span class="badge {css}">{verdict.value}</span></td>'
        f'<td class="source">{escape(part.source)}</td>'
        f"{frame_cell}"
        f'<td class="thumb">{image}</td>'
        f"<td>{_findings_table(part.inspection.findings, ok_findings)}</td></tr>"
    )


def _findings_table(findings: Sequence[Finding], show_ok: bool) -> str:
    flagged = sorted(
        (f for f in findings if f.verdict is not Verdict.OK), key=lambda f: -f.verdict.severity
    )
    passed = [f for f in findings if f.verdict is Verdict.OK]
    head = (
        "<thead><tr><th>Rule</th><th>Region</th><th>Value</th><th>Limit</th><th>Verdict</th>"
        "<th>Explanation</th></tr></thead>"
    )
    out = []
    if flagged:
        out.append(f'<table class="findings">{head}<tbody>')
        out.extend(_finding_row(f) for f in flagged)
        out.append("</tbody></table>")
    if passed and show_ok:
        rows = "".join(_finding_row(f) for f in passed)
        label = f"{len(passed)} rule{'s' if len(passed) != 1 else ''} OK"
        out.append(
            f'<details><summary>{label}</summary><table class="findings">{head}'
            f"<tbody>{rows}</tbody></table></details>"
        )
    elif passed:
        out.append(f'<div class="all-ok">{len(passed)} rules OK</div>')
    if not findings:
        out.append('<div class="all-ok">no findings</div>')
    return "".join(out)


def _finding_row(finding: Finding) -> str:
    css = finding.verdict.value.lower()
    limit = "-" if finding.limit is None else format_value(finding.limit, finding.unit)
    return (
        f'<tr class="{css}"><td>{escape(finding.rule)}</td><td>{escape(finding.region)}</td>'
        f'<td class="num">{escape(format_value(finding.value, finding.unit))}</td>'
        f'<td class="num">{escape(limit)}</td>'
        f'<td><span class="badge small {css}">{finding.verdict.value}</span></td>'
        f'<td class="why">{escape(finding.explanation)}</td></tr>'
    )


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; ``ReportError`` when it is not a PNG."""
    if len(png) < 24 or not png.startswith(_PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ReportError("overlay_png is not a PNG file")
    width, height = struct.unpack(">II", png[16:24])
    if width == 0 or height == 0:
        raise ReportError("overlay_png has a zero size")
    return int(width), int(height)


_CSS = """
:root{--ok:#1e8e3e;--warn:#c77c02;--ng:#d93025;--ink:#1d2329;--muted:#5f6b7a;--line:#e3e7ec;
--bg:#f3f5f8;--card:#fff;--accent:#1f6feb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",Arial,sans-serif}
header{background:#17202b;color:#fff;padding:18px 32px 0}
header .brand{font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:#9fb3c8}
header h1{margin:4px 0 8px;font-size:24px;font-weight:600}
header dl{display:flex;flex-wrap:wrap;gap:6px 24px;margin:0 0 12px;font-size:13px}
header dl div{display:flex;gap:6px}header dt{color:#9fb3c8}header dd{margin:0}
nav{display:flex;gap:4px;margin-top:6px}
nav a{color:#cfe0f1;text-decoration:none;padding:8px 12px;border-bottom:3px solid transparent}
nav a:hover{color:#fff;border-bottom-color:var(--accent)}
main{max-width:1400px;margin:0 auto;padding:20px 32px 40px}
section{margin-bottom:28px}
h2{font-size:18px;margin:0 0 12px;font-weight:600}
h2 .hint{font-size:12px;font-weight:400;color:var(--muted);margin-left:8px}
h3{font-size:15px;margin:0;font-weight:600}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;
box-shadow:0 1px 2px rgba(16,24,40,.05)}
.stats{display:grid;grid-template-columns:repeat(5,minmax(0,1fr));gap:12px}
.stat{padding:14px 18px;border-top:4px solid #8895a7}
.stat .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.06em}
.stat .value{font-size:30px;font-weight:650;line-height:1.2}
.stat .note{font-size:12px;color:var(--muted)}
.stat.ok{border-top-color:var(--ok)}.stat.ok .value{color:var(--ok)}
.stat.warn{border-top-color:var(--warn)}.stat.warn .value{color:var(--warn)}
.stat.ng{border-top-color:var(--ng)}.stat.ng .value{color:var(--ng)}
.stat.retake{border-top-color:#5a8cff}.stat.retake .value{color:#3b6fd8}
.stat.yield{border-top-color:var(--accent)}
.rules{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
.rule{padding:12px 14px 6px}
.rule-head{display:flex;align-items:center;gap:8px}
.rule-meta{font-size:12px;color:var(--muted);margin:2px 0 4px}
.chart{padding:12px 14px;margin-bottom:12px}
svg{width:100%;height:auto;display:block;font-family:inherit}
svg .grid{stroke:#edf0f3}svg .axis,svg .tick-mark{stroke:#9aa5b1}
svg .tick{font-size:10px;fill:var(--muted)}svg .axis-title{font-size:10px;fill:var(--muted)}
svg .bar.ok{fill:#8fcf9c}svg .bar.warn{fill:#f4c152}svg .bar.ng{fill:#e8625c}
svg .limit{stroke-width:1.5;stroke-dasharray:5 3}svg .limit.ok{stroke:#5f6b7a}
svg .limit.warn{stroke:var(--warn)}svg .limit.ng{stroke:var(--ng)}
svg .limit-label{font-size:10px;font-weight:600}svg .limit-label.ok{fill:#5f6b7a}
svg .limit-label.warn{fill:var(--warn)}svg .limit-label.ng{fill:var(--ng)}
svg .values{fill:none;stroke:#a9b4c0;stroke-width:1}svg .value-dot{fill:#a9b4c0}
svg .statistic{fill:none;stroke:var(--accent);stroke-width:2}
svg .limit-line{fill:none;stroke:var(--ng);stroke-width:1.3;stroke-dasharray:6 4}
svg .center{stroke:#5f6b7a;stroke-width:1;stroke-dasharray:2 3}
svg .alarm{fill:var(--ng);stroke:#fff;stroke-width:1}svg .legend{font-size:11px;fill:var(--ink)}
.badge{display:inline-block;min-width:38px;text-align:center;padding:2px 8px;border-radius:10px;
font-size:12px;font-weight:650;color:#fff;background:#8895a7}
.badge.small{min-width:0;padding:0 6px;font-size:11px}
.badge.ok{background:var(--ok)}.badge.warn{background:var(--warn)}.badge.ng{background:var(--ng)}
.toolbar{display:flex;justify-content:space-between;align-items:center;gap:12px;margin-bottom:8px}
.filters button{font:inherit;border:1px solid var(--line);background:#fff;padding:5px 12px;
border-radius:6px;cursor:pointer;margin-right:4px}
.filters button.on{background:var(--ink);color:#fff;border-color:var(--ink)}
#part-search{font:inherit;padding:5px 10px;border:1px solid var(--line);border-radius:6px;
width:260px}
table.parts{width:100%;border-collapse:separate;border-spacing:0;background:var(--card);
border:1px solid var(--line);border-radius:8px;overflow:hidden}
table.parts>thead th{position:sticky;top:0;background:#eef1f5;text-align:left;font-size:12px;
text-transform:uppercase;letter-spacing:.05em;color:var(--muted);padding:8px 10px;z-index:1}
table.parts>thead th[data-sort]{cursor:pointer}
table.parts>thead th[data-sort]:hover{color:var(--ink)}
table.parts>tbody>tr>td{padding:10px;border-top:1px solid var(--line);vertical-align:top}
tr.part>td:first-child{box-shadow:inset 4px 0 0 #c3ccd6}
tr.part.ng>td:first-child{box-shadow:inset 4px 0 0 var(--ng)}
tr.part.warn>td:first-child{box-shadow:inset 4px 0 0 var(--warn)}
tr.part.ng{background:#fff8f7}
td.source{font-weight:600;overflow-wrap:anywhere;min-width:170px;max-width:280px}
td.frame{color:var(--muted)}
td.thumb{width:1%}
img.overlay{display:block;border-radius:4px;background:#000;height:auto}
img.zoomable{cursor:zoom-in}
img.overlay.zoomed{max-width:none!important;width:auto!important;cursor:zoom-out}
.no-image{color:var(--muted)}
table.findings{border-collapse:collapse;width:100%;font-size:13px}
table.findings th{text-align:left;font-weight:600;color:var(--muted);font-size:11px;
text-transform:uppercase;letter-spacing:.04em;padding:2px 8px 4px 0;
border-bottom:1px solid var(--line)}
table.findings td{padding:3px 8px 3px 0;border-bottom:1px solid #f0f2f5;vertical-align:top}
table.findings td{white-space:nowrap}table.findings td.why{white-space:normal}
table.findings td.num{text-align:right;font-variant-numeric:tabular-nums}
table.findings tr.ng td:last-child{color:#8a1c15}
details{margin-top:4px}summary{cursor:pointer;color:var(--muted);font-size:12px}
.all-ok{color:var(--muted);font-size:12px}
.empty{color:var(--muted)}
footer{text-align:center;color:var(--muted);font-size:12px;padding:0 0 24px}
@media (max-width:900px){.stats{grid-template-columns:repeat(2,minmax(0,1fr))}
main{padding:12px}}
@media print{nav,.toolbar{display:none}table.parts>thead th{position:static}}
"""

_JS = """
(function(){
var body=document.querySelector('table.parts tbody');if(!body)return;
var rows=Array.prototype.slice.call(body.rows),verdict='all',text='';
function apply(){rows.forEach(function(r){var v=verdict==='all'||r.dataset.verdict===verdict;
var t=!text||r.dataset.source.toLowerCase().indexOf(text)>=0;r.hidden=!(v&&t);});}
document.querySelectorAll('.filters button').forEach(function(b){b.onclick=function(){
document.querySelectorAll('.filters button').forEach(function(o){o.classList.remove('on');});
b.classList.add('on');verdict=b.dataset.filter;apply();};});
document.getElementById('part-search').oninput=function(e){text=e.target.value.toLowerCase();
apply();};
var dir={severity:-1};
document.querySelectorAll('table.parts>thead th[data-sort]').forEach(function(th){
th.onclick=function(){var k=th.dataset.sort,d=dir[k]=dir[k]===1?-1:1;
rows.sort(function(a,b){var x=a.dataset[k],y=b.dataset[k],c;
if(k==='source'){c=x.localeCompare(y,undefined,{numeric:true});}
else{c=(x===''?-1:Number(x))-(y===''?-1:Number(y));}
return d*c||Number(a.dataset.order)-Number(b.dataset.order);});
rows.forEach(function(r){body.appendChild(r);});};});
document.querySelectorAll('img.zoomable').forEach(function(img){img.onclick=function(){
img.classList.toggle('zoomed');};});
})();
"""
