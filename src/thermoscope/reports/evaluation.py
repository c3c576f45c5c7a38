"""A model's evaluation as one self-contained HTML page and JSON, and its model card.

The page has the inspection report's look (its style sheet, header and cards) and, in this
order: summary figures (samples, accuracy, macro-F1, defect-vs-normal accuracy, AUROC, average
precision, expected calibration error, the threshold picked for the target recall); per-class
precision / recall / F1; the confusion matrix as a heat map; ROC, precision-recall and
reliability diagrams as inline SVG; and the model card (what was trained on which dataset
version, by which code, with which settings). The same figures are embedded as JSON and
written beside the page, so machines read exactly what people see. No script, no request
leaves the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import thermoscope
from thermoscope.io.registry import write_atomic
from thermoscope.models.evaluation import Evaluation
from thermoscope.reports.errors import ReportError
from thermoscope.reports.evaluation_charts import (
    confusion_svg,
    pr_svg,
    reliability_svg,
    roc_overlay_svg,
    roc_svg,
)
from thermoscope.reports.html import _CSS

#: File names a written evaluation report has in its folder.
HTML_NAME, JSON_NAME, CARD_NAME = "evaluation.html", "evaluation.json", "model_card.md"
#: File names of a written comparison of several models.
COMPARISON_HTML, COMPARISON_JSON = "comparison.html", "comparison.json"

_CARD_KEYS = (
    "name",
    "version",
    "kind",
    "created",
    "expires",
    "classes",
    "thresholds",
    "dataset_hash",
    "code_version",
    "training",
    "contract",
)


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What a model is and where it comes from, tied to its data and code.

    Attributes:
        name, version, kind: the release's identity ("classifier", "anomaly", ...).
        dataset_hash: the hash of the dataset version it was trained on.
        code_version: thermoscope's version and, where known, the git commit it ran from.
        training: the training settings (seed, epochs, learning rate, augmentation, ...).
        classes: the class names, in the model's order.
        thresholds: decision thresholds by name.
        contract: the input contract (window in °C or intensity, channels, size, crop).
        created, expires: UTC ISO-8601 times of the release ("" when unknown).
        metrics: headline figures of the release's own evaluation.
    """

    name: str
    version: str
    kind: str
    dataset_hash: str
    code_version: str
    training: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    contract: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    expires: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> ModelCard:
        """The card of a release from its manifest's fields (``Manifest.to_dict()``).

        Raises:
            ReportError: a field the card needs is missing.
        """
        missing = [
            k
            for k in ("name", "version", "kind", "dataset_hash", "code_version")
            if k not in manifest
        ]
        if missing:
            raise ReportError(f"model card: manifest lacks {', '.join(missing)}")
        values = {k: manifest[k] for k in _CARD_KEYS if k in manifest}
        values["version"] = str(values["version"])
        return cls(**values, metrics=dict(manifest.get("metrics", {})))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)

    def to_markdown(self) -> str:
        """The card as Markdown: identity, provenance, settings, input contract, figures."""
        lines = [
            f"# Model card: {self.name} v{self.version}",
            "",
            f"- kind: {self.kind}",
            f"- classes: {', '.join(self.classes) or '-'}",
            f"- dataset version hash: `{self.dataset_hash}`",
            f"- code version: `{self.code_version}`",
            f"- created: {self.created or '-'}; expires: {self.expires or '-'}",
            f"- thresholds: {_inline(self.thresholds)}",
            "",
            "## Training settings",
            "",
            *[f"- {k}: {_inline(v)}" for k, v in sorted(self.training.items())],
            "",
            "## Input contract",
            "",
            *[f"- {k}: {_inline(v)}" for k, v in sorted(self.contract.items())],
        ]
        if self.metrics:
            lines += [
                "",
                "## Figures",
                "",
                *[f"- {k}: {_inline(v)}" for k, v in self.metrics.items()],
            ]
        return "\n".join(lines) + "\n"


def _inline(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


@dataclass(frozen=True, slots=True)
class EvaluationFiles:
    """Where ``write_evaluation_report`` put the page, the JSON and the model card."""

    html: Path
    json: Path
    card: Path | None


def evaluation_document(
    evaluation: Evaluation,
    *,
    card: ModelCard | None = None,
    meta: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON document of a report: {"evaluation", "model_card", "meta", "thermoscope"}."""
    return {
        "evaluation": evaluation.to_dict(),
        "model_card": None if card is None else card.to_dict(),
        "meta": dict(meta or {}),
        "thermoscope": thermoscope.__version__,
    }


def build_evaluation_page(
    evaluation: Evaluation,
    *,
    title: str,
    card: ModelCard | None = None,
    meta: Mapping[str, str] | None = None,
) -> str:
    """The evaluation as one HTML document (see the module docstring)."""
    data = json.dumps(evaluation_document(evaluation, card=card, meta=meta), allow_nan=False)
    body = [
        _header(title, meta or {}, card=card is not None),
        "<main>",
        _summary(evaluation),
        _classes_section(evaluation),
        _curves_section(evaluation),
        _card_section(card),
        "</main>",
        f"<footer>thermoscope {escape(thermoscope.__version__)}</footer>",
        # inert data block (not executed), so the page carries its own figures
        f'<script type="application/json" id="evaluation-data">{_json_in_html(data)}</script>',
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_evaluation_report(
    folder: str | Path,
    evaluation: Evaluation,
    *,
    title: str,
    card: ModelCard | None = None,
    meta: Mapping[str, str] | None = None,
) -> EvaluationFiles:
    """Write ``evaluation.html``, ``evaluation.json`` and (with a card) ``model_card.md`` into
    ``folder`` (created if needed); each file is written whole or not at all."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    document = evaluation_document(evaluation, card=card, meta=meta)
    page = build_evaluation_page(evaluation, title=title, card=card, meta=meta)
    json_path = write_atomic(
        out / JSON_NAME, (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
    )
    html_path = write_atomic(out / HTML_NAME, page.encode("utf-8"))
    card_path = None
    if card is not None:
        card_path = write_atomic(out / CARD_NAME, card.to_markdown().encode("utf-8"))
    return EvaluationFiles(html_path, json_path, card_path)


@dataclass(frozen=True, slots=True)
class Compared:
    """One model in a side-by-side comparison (e.g. pretrained vs from scratch).

    Attributes:
        label: how the comparison names it ("solar v3 (pretrained)").
        evaluation: its figures on the shared data.
        card: its model card, if known.
        page: a link to its own evaluation page, relative to the comparison's folder.
    """

    label: str
    evaluation: Evaluation
    card: ModelCard | None = None
    page: str | None = None


_COLUMNS = (
    ("samples", "Samples"),
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("binary_accuracy", "Defect vs normal"),
    ("auroc", "AUROC"),
    ("average_precision", "AP"),
    ("ece", "ECE"),
    ("threshold", "Threshold"),
    ("threshold_fpr", "FPR there"),
)
#: Columns where lower is better (the rest: higher is better; samples and threshold: neither).
_LOWER_BETTER = frozenset({"ece", "threshold_fpr"})


def _figures(ev: Evaluation) -> dict[str, float | None]:
    b = ev.binary
    point = None if b is None else b.operating
    return {
        "samples": float(ev.count),
        "accuracy": ev.accuracy,
        "macro_f1": ev.macro_f1,
        "binary_accuracy": None if b is None else b.accuracy,
        "auroc": None if b is None else b.auroc,
        "average_precision": None if b is None else b.average_precision,
        "ece": ev.calibration.ece,
        "threshold": None if point is None else point.threshold,
        "threshold_fpr": None if point is None else point.false_positive_rate,
    }


def comparison_document(
    rows: Sequence[Compared], *, meta: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The JSON of a comparison: per model its label, headline figures, card and evaluation."""
    return {
        "models": [
            {
                "label": r.label,
                "figures": _figures(r.evaluation),
                "model_card": None if r.card is None else r.card.to_dict(),
                "evaluation": r.evaluation.to_dict(),
            }
            for r in rows
        ],
        "meta": dict(meta or {}),
        "thermoscope": thermoscope.__version__,
    }


def build_comparison_page(
    rows: Sequence[Compared], *, title: str, meta: Mapping[str, str] | None = None
) -> str:
    """Several models side by side: a table of their headline figures (the best of each
    column in bold) and their ROC curves on one plot; each row links to its own page."""
    if not rows:
        raise ReportError("a comparison needs at least one model")
    figures = [_figures(r.evaluation) for r in rows]
    best: dict[str, float] = {}
    for key, _ in _COLUMNS:
        if key in ("samples", "threshold"):
            continue
        values = [v for f in figures if (v := f[key]) is not None]
        if len(values) > 1:
            best[key] = min(values) if key in _LOWER_BETTER else max(values)
    head = "".join(f"<th>{escape(text)}</th>" for _, text in _COLUMNS)
    body = []
    for row, fig in zip(rows, figures, strict=True):
        name = escape(row.label)
        if row.page:
            name = f'<a href="{escape(row.page)}">{name}</a>'
        cells = []
        for key, _ in _COLUMNS:
            value = fig[key]
            text = "-" if value is None else _cell(key, value)
            strong = value is not None and best.get(key) == value
            cells.append(f'<td class="num">{"<b>" + text + "</b>" if strong else text}</td>')
        body.append(f'<tr><td class="source">{name}</td>{"".join(cells)}</tr>')
    table = (
        f'<table class="findings per-class"><thead><tr><th>Model</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    curves = [
        (r.label, r.evaluation.binary.roc, r.evaluation.binary.auroc)
        for r in rows
        if r.evaluation.binary is not None
    ]
    plot = f'<div class="card chart">{roc_overlay_svg(curves)}</div>' if curves else ""
    data = json.dumps(comparison_document(rows, meta=meta), allow_nan=False)
    facts = "".join(
        f"<div><dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd></div>"
        for k, v in (meta or {}).items()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body>"
        '<header><div class="brand">thermoscope · model comparison</div>'
        f"<h1>{escape(title)}</h1>{f'<dl>{facts}</dl>' if facts else ''}</header><main>"
        '<section id="comparison"><h2>Side by side <span class="hint">the same data for every '
        "model; bold: the best of a column; threshold: picked for the target recall</span></h2>"
        f'<div class="card chart table-wrap">{table}</div><div class="curves">{plot}</div>'
        "</section>"
        f"</main><footer>thermoscope {escape(thermoscope.__version__)}</footer>"
        f'<script type="application/json" id="comparison-data">{_json_in_html(data)}</script>'
        "</body></html>\n"
    )


def _cell(key: str, value: float) -> str:
    if key == "samples":
        return str(int(value))
    if key in ("accuracy", "binary_accuracy"):
        return _pct(value)
    return _num(value)


def write_comparison_report(
    folder: str | Path,
    rows: Sequence[Compared],
    *,
    title: str,
    meta: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """Write ``comparison.html`` and ``comparison.json`` into ``folder``; returns both paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    document = comparison_document(rows, meta=meta)
    page = build_comparison_page(rows, title=title, meta=meta)
    json_path = write_atomic(
        out / COMPARISON_JSON, (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
    )
    return write_atomic(out / COMPARISON_HTML, page.encode("utf-8")), json_path


def _json_in_html(text: str) -> str:
    """JSON safe inside a <script> element (no closing tag, no comment opener)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _header(title: str, meta: Mapping[str, str], *, card: bool) -> str:
    facts = "".join(
        f"<div><dt>{escape(str(k))}</dt><dd>{escape(str(v))}</dd></div>" for k, v in meta.items()
    )
    links = [("summary", "Summary"), ("classes", "Classes"), ("curves", "Curves")]
    if card:
        links.append(("card", "Model card"))
    nav = "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in links)
    return (
        f'<header><div class="brand">thermoscope · evaluation report</div>'
        f"<h1>{escape(title)}</h1>{f'<dl>{facts}</dl>' if facts else ''}<nav>{nav}</nav></header>"
    )


def _card(css: str, label: str, value: str, note: str = "") -> str:
    note_html = f'<div class="note">{escape(note)}</div>' if note else ""
    return (
        f'<div class="card stat {css}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div>{note_html}</div>'
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _summary(ev: Evaluation) -> str:
    cards = [
        _card("parts", "Samples", str(ev.count), f"{len(ev.classes)} classes"),
        _card("ok", "Accuracy", _pct(ev.accuracy), "top class right"),
        _card("yield", "Macro-F1", _num(ev.macro_f1), "mean F1 over classes present"),
        _card("warn", "ECE", _num(ev.calibration.ece), "expected calibration error"),
    ]
    binary = ev.binary
    if binary is not None:
        cards += [
            _card(
                "ok",
                "Defect vs normal",
                _pct(binary.accuracy),
                f"{binary.positives} {binary.positive}, {binary.negatives} normal",
            ),
            _card("yield", "AUROC", _num(binary.auroc), f"{binary.positive} vs normal"),
            _card("yield", "Average precision", _num(binary.average_precision)),
        ]
        point = binary.operating
        if point is not None:
            cards.append(
                _card(
                    "ng",
                    f"Threshold for recall ≥ {point.target_recall:g}",
                    f"{point.threshold:.4g}",
                    f"recall {point.recall:.3f} · precision {point.precision:.3f} · "
                    f"FPR {point.false_positive_rate:.3f}",
                )
            )
    return f'<section id="summary"><div class="stats">{"".join(cards)}</div></section>'


def _classes_section(ev: Evaluation) -> str:
    rows = "".join(
        f'<tr><td class="source">{escape(c.name)}</td><td class="num">{c.precision:.4f}</td>'
        f'<td class="num">{c.recall:.4f}</td><td class="num">{c.f1:.4f}</td>'
        f'<td class="num">{c.support}</td></tr>'
        for c in ev.per_class
    )
    table = (
        '<table class="findings per-class"><thead><tr><th>Class</th><th>Precision</th>'
        f"<th>Recall</th><th>F1</th><th>Support</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return (
        '<section id="classes"><h2>Classes <span class="hint">precision, recall and F1 per '
        "class; confusion matrix rows are true classes</span></h2>"
        f'<div class="eval-grid"><div class="card chart">{table}</div>'
        f'<div class="card chart">{confusion_svg(ev.classes, ev.confusion)}</div></div></section>'
    )


def _curves_section(ev: Evaluation) -> str:
    cards = []
    binary = ev.binary
    if binary is not None:
        point = binary.operating
        pr = pr_svg(binary.pr, average_precision=binary.average_precision, operating=point)
        cards += [
            f'<div class="card chart"><h3>ROC · {escape(binary.positive)} vs normal</h3>'
            f"{roc_svg(binary.roc, auroc=binary.auroc, operating=point)}</div>",
            f'<div class="card chart"><h3>Precision-recall</h3>{pr}</div>',
        ]
    cards.append(
        '<div class="card chart"><h3>Reliability of the top-class confidence</h3>'
        f"{reliability_svg(ev.calibration)}</div>"
    )
    return (
        '<section id="curves"><h2>Curves <span class="hint">dot: the operating threshold; '
        "dashed: chance / perfect calibration</span></h2>"
        f'<div class="curves">{"".join(cards)}</div></section>'
    )


def _card_section(card: ModelCard | None) -> str:
    if card is None:
        return ""

    def rows(items: Mapping[str, Any]) -> str:
        return "".join(
            f'<tr><td>{escape(str(k))}</td><td class="why">{escape(_inline(v))}</td></tr>'
            for k, v in sorted(items.items())
        )

    identity = {
        "name": card.name,
        "version": card.version,
        "kind": card.kind,
        "classes": ", ".join(card.classes),
        "dataset version hash": card.dataset_hash,
        "code version": card.code_version,
        "created": card.created or "-",
        "expires": card.expires or "-",
        "thresholds": card.thresholds,
    }
    tables = [("Release", identity), ("Training settings", card.training)]
    tables += [("Input contract", card.contract)]
    body = "".join(
        f'<div class="card chart"><h3>{escape(head)}</h3><table class="findings">'
        f"<tbody>{rows(items)}</tbody></table></div>"
        for head, items in tables
    )
    return f'<section id="card"><h2>Model card</h2><div class="curves">{body}</div></section>'


_EXTRA_CSS = """
.stats{grid-template-columns:repeat(auto-fill,minmax(190px,1fr))}
.eval-grid{display:grid;grid-template-columns:minmax(320px,1fr) minmax(320px,1.4fr);gap:12px}
.curves{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
table.per-class td.source{min-width:120px}
table.findings td.why{overflow-wrap:anywhere}
.table-wrap{overflow-x:auto;margin-bottom:12px}
svg.confusion{width:auto;max-width:100%;margin:0 auto}
svg .curve{fill:none;stroke:var(--accent);stroke-width:2}
svg .chance{fill:none;stroke:#9aa5b1;stroke-width:1;stroke-dasharray:4 4}
svg .operating{fill:var(--ng);stroke:#fff;stroke-width:1.5}
svg .bin{fill:#8fb8f0}
svg .cell.hit{fill:var(--ok)}svg .cell.miss{fill:var(--ng)}
svg .curve.s1{stroke:#d93025}svg .curve.s2{stroke:#1e8e3e}svg .curve.s3{stroke:#c77c02}
svg .curve.s4{stroke:#8e44ad}svg .curve.s5{stroke:#00838f}
svg .count{font-size:11px;fill:var(--ink)}svg .count.dark{fill:#fff}
@media (max-width:900px){.eval-grid{grid-template-columns:1fr}}
"""
