"""Inline SVG charts of a model evaluation: confusion heat map, ROC, PR, reliability diagram.

Same approach as ``charts.py`` (whose plot frame and axes they reuse): each function returns
one ``<svg>`` string sized by its ``viewBox``, colours from CSS classes, all text escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from thermoscope.models.evaluation import Calibration, Curve, OperatingPoint
from thermoscope.reports.charts import _axes, _Frame, _svg_open

#: Most points a drawn curve keeps (longer curves are thinned evenly, ends kept).
MAX_CURVE_POINTS = 400


def _thin(xs: Sequence[float], ys: Sequence[float]) -> list[tuple[float, float]]:
    points = list(zip(xs, ys, strict=True))
    if len(points) <= MAX_CURVE_POINTS:
        return points
    step = (len(points) - 1) / (MAX_CURVE_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_CURVE_POINTS)]


def _path(frame: _Frame, points: list[tuple[float, float]], css: str) -> str:
    coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in points)
    return f'<polyline class="{css}" points="{coords}"/>'


def _unit_frame(width: int, height: int) -> _Frame:
    return _Frame(width, height, 46, 14, 26, 34, (0.0, 1.0), (0.0, 1.0))


def _legend_text(frame: _Frame, text: str) -> str:
    return (
        f'<text class="legend" x="{frame.width - frame.right:.1f}" y="{frame.top - 10:.1f}" '
        f'text-anchor="end">{escape(text)}</text>'
    )


def _operating_dot(frame: _Frame, x: float, y: float, point: OperatingPoint) -> str:
    return (
        f'<circle class="operating" cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="4">'
        f"<title>threshold {point.threshold:.4g}: recall {point.recall:.3f}, precision "
        f"{point.precision:.3f}, false-positive rate {point.false_positive_rate:.3f}</title>"
        "</circle>"
    )


def roc_svg(
    curve: Curve,
    *,
    auroc: float | None,
    operating: OperatingPoint | None = None,
    width: int = 360,
    height: int = 320,
) -> str:
    """ROC curve (true- vs false-positive rate) with the chance diagonal and the operating
    point; the AUROC in the legend."""
    frame = _unit_frame(width, height)
    parts = [_svg_open(width, height, "roc"), _axes(frame, "TPR", y_integer=False, x_label="FPR")]
    parts.append(_path(frame, [(0.0, 0.0), (1.0, 1.0)], "chance"))
    parts.append(_path(frame, _thin(curve.x, curve.y), "curve"))
    if operating is not None:
        parts.append(
            _operating_dot(frame, operating.false_positive_rate, operating.recall, operating)
        )
    parts.append(_legend_text(frame, "AUROC " + ("-" if auroc is None else f"{auroc:.4f}")))
    parts.append("</svg>")
    return "".join(parts)


def pr_svg(
    curve: Curve,
    *,
    average_precision: float | None,
    operating: OperatingPoint | None = None,
    width: int = 360,
    height: int = 320,
) -> str:
    """Precision-recall curve drawn as steps, with the operating point; AP in the legend."""
    frame = _unit_frame(width, height)
    parts = [
        _svg_open(width, height, "pr"),
        _axes(frame, "precision", y_integer=False, x_label="recall"),
    ]
    steps: list[tuple[float, float]] = []
    previous = 0.0
    for r, p in _thin(curve.x, curve.y):
        steps += [(previous, p), (r, p)]
        previous = r
    if steps:
        parts.append(_path(frame, steps, "curve"))
    if operating is not None:
        parts.append(_operating_dot(frame, operating.recall, operating.precision, operating))
    ap = "-" if average_precision is None else f"{average_precision:.4f}"
    parts.append(_legend_text(frame, f"AP {ap}"))
    parts.append("</svg>")
    return "".join(parts)


def reliability_svg(cal: Calibration, *, width: int = 360, height: int = 320) -> str:
    """Reliability diagram: per confidence bin, the share right (bar) against the diagonal of
    perfect calibration; each bar's tooltip gives its count; the ECE in the legend."""
    frame = _unit_frame(width, height)
    parts = [
        _svg_open(width, height, "reliability"),
        _axes(frame, "accuracy", y_integer=False, x_label="confidence"),
    ]
    for i, (n, acc, conf) in enumerate(zip(cal.count, cal.accuracy, cal.confidence, strict=True)):
        if acc is None or conf is None:
            continue
        x0, x1 = frame.x(cal.edges[i]), frame.x(cal.edges[i + 1])
        y_top, y_bottom = frame.y(acc), frame.y(0.0)
        bar_w = max(x1 - x0 - 2, 0.5)
        parts.append(
            f'<rect class="bin" x="{x0 + 1:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" '
            f'height="{y_bottom - y_top:.1f}"><title>{cal.edges[i]:.2f} to {cal.edges[i + 1]:.2f}: '
            f"{n} samples, mean confidence {conf:.3f}, right {acc:.3f}</title></rect>"
        )
    parts.append(_path(frame, [(0.0, 0.0), (1.0, 1.0)], "chance"))
    parts.append(_legend_text(frame, f"ECE {cal.ece:.4f}"))
    parts.append("</svg>")
    return "".join(parts)


def confusion_svg(classes: Sequence[str], confusion: Sequence[Sequence[int]]) -> str:
    """Heat map of the confusion matrix: rows true class, columns predicted; each cell shaded
    by its share of its row (the class's recall on the diagonal) and labelled with its count."""
    k = len(classes)
    cell = max(22, min(56, 560 // max(k, 1)))
    label_w = 12 + 7 * max((len(c) for c in classes), default=1)
    left, top = label_w + 18, label_w + 20
    width, height = left + k * cell + 10, top + k * cell + 28
    # drawn at its own size (not stretched to the card) so that labels keep their size
    parts = [
        _svg_open(width, height, "confusion").replace(" xmlns=", f' width="{width}" xmlns=', 1)
    ]
    for i, name in enumerate(classes):
        y = top + i * cell + cell / 2 + 4
        x = left + i * cell + cell / 2 + 4
        parts.append(
            f'<text class="tick" x="{left - 6}" y="{y:.1f}" text-anchor="end">{escape(name)}</text>'
            f'<text class="tick" x="{x:.1f}" y="{top - 6}" text-anchor="start" '
            f'transform="rotate(-60 {x:.1f} {top - 6})">{escape(name)}</text>'
        )
    for i, row in enumerate(confusion):
        total = sum(row)
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            css = "cell hit" if i == j else "cell miss"
            x, y = left + j * cell, top + i * cell
            text_css = "count dark" if share > 0.55 else "count"
            parts.append(
                f'<rect class="{css}" x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill-opacity="{0.06 + 0.94 * share:.3f}"><title>true {escape(classes[i])}, '
                f"predicted {escape(classes[j])}: {count} ({100 * share:.1f} % of the row)"
                f"</title></rect>"
            )
            if count:
                parts.append(
                    f'<text class="{text_css}" x="{x + cell / 2:.1f}" y="{y + cell / 2 + 4:.1f}" '
                    f'text-anchor="middle">{count}</text>'
                )
    parts.append(
        f'<text class="axis-title" x="{left}" y="{height - 8}">rows: true · columns: '
        "predicted</text></svg>"
    )
    return "".join(parts)


#: Most curves one overlay distinguishes by colour (CSS classes ``s0`` .. ``s5``).
SERIES = 6


def roc_overlay_svg(
    curves: Sequence[tuple[str, Curve, float | None]], *, width: int = 420, height: int = 360
) -> str:
    """Several ROC curves on one plot (``(label, curve, auroc)`` each), with a legend; colours
    repeat after ``SERIES`` curves."""
    frame = _Frame(width, height, 46, 14, 26 + 14 * len(curves), 34, (0.0, 1.0), (0.0, 1.0))
    parts = [
        _svg_open(width, height, "roc-overlay"),
        _axes(frame, "TPR", y_integer=False, x_label="FPR"),
        _path(frame, [(0.0, 0.0), (1.0, 1.0)], "chance"),
    ]
    for k, (label, curve, auroc) in enumerate(curves):
        css = f"curve s{k % SERIES}"
        parts.append(_path(frame, _thin(curve.x, curve.y), css))
        y = 14 + 14 * k
        value = "-" if auroc is None else f"{auroc:.4f}"
        parts.append(
            f'<line class="{css}" x1="{frame.left:.1f}" y1="{y - 4}" x2="{frame.left + 18:.1f}" '
            f'y2="{y - 4}"/><text class="legend" x="{frame.left + 24:.1f}" y="{y}">'
            f"{escape(label)} · AUROC {value}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
