"""The evaluation page and model card: content, JSON beside the page, escaping, and a real
browser (Debian Chromium via Playwright) that draws every plot."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from thermoscope.models.evaluation import Evaluation, evaluate
from thermoscope.reports.errors import ReportError
from thermoscope.reports.evaluation import (
    CARD_NAME,
    Compared,
    ModelCard,
    build_comparison_page,
    build_evaluation_page,
    write_comparison_report,
    write_evaluation_report,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
CLASSES = ["Cell", "Diode", "Hot-Spot", "<No-Anomaly>"]


def sample_evaluation(count: int = 600, *, signal: float = 2.0, seed: int = 7) -> Evaluation:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(CLASSES), count)
    logits = rng.normal(0.0, 1.0, (count, len(CLASSES)))
    logits[np.arange(count), truth] += signal
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return evaluate(truth, probs, CLASSES, normal="<No-Anomaly>", target_recall=0.95)


def sample_card() -> ModelCard:
    return ModelCard.from_manifest(
        {
            "name": "solar",
            "version": 3,
            "kind": "classifier",
            "dataset_hash": "ab12cd34",
            "code_version": "0.1.0+git.deadbeef",
            "training": {"seed": 0, "epochs": 1, "lr": 0.001},
            "classes": CLASSES,
            "thresholds": {},
            "contract": {"window_c": [0.0, 255.0], "height": 40, "width": 24},
            "created": "2026-12-03T12:00:00Z",
            "metrics": {"accuracy": 0.5},
        }
    )


def test_page_holds_every_figure_and_escapes_names() -> None:
    ev = sample_evaluation()
    page = build_evaluation_page(ev, title="<solar> & co", card=sample_card())
    assert "&lt;solar&gt; &amp; co" in page
    assert "<No-Anomaly>" not in page.split('id="evaluation-data"')[0]
    for css in ("confusion", "roc", "pr", "reliability"):
        assert f'<svg class="{css}"' in page
    assert page.count('class="cell ') == len(CLASSES) ** 2
    assert f"{ev.macro_f1:.4f}" in page
    assert "ab12cd34" in page and "0.1.0+git.deadbeef" in page  # noqa: PT018
    data = page.split('id="evaluation-data">')[1].split("</script>")[0]
    assert json.loads(data)["evaluation"]["accuracy"] == ev.accuracy


def test_written_report_and_card(tmp_path: Path) -> None:
    ev = sample_evaluation()
    files = write_evaluation_report(tmp_path / "out", ev, title="t", card=sample_card())
    doc = json.loads(files.json.read_text(encoding="utf-8"))
    assert doc["evaluation"] == json.loads(ev.to_json())
    assert doc["model_card"]["dataset_hash"] == "ab12cd34"
    assert files.card == tmp_path / "out" / CARD_NAME
    card = files.card.read_text(encoding="utf-8")
    assert "dataset version hash: `ab12cd34`" in card
    assert "- seed: 0" in card
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["evaluation.html", "evaluation.json", CARD_NAME]
    )


def test_card_needs_provenance() -> None:
    with pytest.raises(ReportError, match="dataset_hash"):
        ModelCard.from_manifest({"name": "x", "version": 1, "kind": "classifier"})


def test_long_curves_are_thinned() -> None:
    ev = sample_evaluation(5000)
    assert ev.binary is not None
    assert len(ev.binary.roc.x) > 1000
    page = build_evaluation_page(ev, title="big")
    roc = page.split('<svg class="roc"')[1].split("</svg>")[0]
    points = roc.split('class="curve" points="')[1].split('"')[0].split()
    assert len(points) <= 400


def test_comparison_marks_the_best_of_each_column() -> None:
    strong, weak = sample_evaluation(signal=3.0), sample_evaluation(signal=1.0)
    page = build_comparison_page(
        [Compared("pretrained", strong, page="a/evaluation.html"), Compared("scratch", weak)],
        title="pretrained vs scratch",
    )
    assert f"<b>{100 * strong.accuracy:.2f} %</b>" in page
    assert f"<b>{100 * weak.accuracy:.2f} %</b>" not in page
    assert page.count('class="curve s') == 4  # two curves, two legend lines
    assert 'href="a/evaluation.html"' in page
    with pytest.raises(ReportError, match="at least one"):
        build_comparison_page([], title="none")


sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is absent (Debian package chromium: apt-get install -y chromium)",
)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[sync_api.Page]:
    files = write_evaluation_report(tmp_path, sample_evaluation(), title="b", card=sample_card())
    rows = [Compared("a", sample_evaluation(signal=3.0)), Compared("b", sample_evaluation())]
    write_comparison_report(tmp_path, rows, title="c")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        requests: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda request: requests.append(request.url))
        page.goto(files.html.as_uri())
        yield page
        browser.close()
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests


@needs_chromium
def test_browser_draws_every_plot(page: sync_api.Page) -> None:
    page.wait_for_function("() => document.querySelectorAll('svg.roc polyline.curve').length > 0")
    sizes = page.locator("svg").evaluate_all(
        """svgs => svgs.map(s => {const b = s.getBoundingClientRect();
            return {css: s.getAttribute('class'), w: b.width, h: b.height};})"""
    )
    drawn = {s["css"] for s in sizes if s["w"] > 150 and s["h"] > 100}
    assert drawn == {"confusion", "roc", "pr", "reliability"}
    curve = page.locator("svg.roc polyline.curve").bounding_box()
    assert curve is not None
    assert curve["width"] > 100
    assert curve["height"] > 100
    assert page.locator("svg.confusion rect.cell").count() == len(CLASSES) ** 2
    assert page.locator("svg.reliability rect.bin").count() >= 3
    assert page.locator("svg circle.operating").count() == 2
    heading = page.locator("section#card h2").inner_text()
    assert heading == "Model card"


@needs_chromium
def test_browser_draws_the_comparison(page: sync_api.Page) -> None:
    page.goto(page.url.replace("evaluation.html", "comparison.html"))
    page.wait_for_function("() => document.querySelectorAll('svg.roc-overlay polyline').length")
    assert page.locator("svg.roc-overlay polyline.curve").count() == 2
    box = page.locator("svg.roc-overlay").bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert page.locator("table.per-class tbody tr").count() == 2
