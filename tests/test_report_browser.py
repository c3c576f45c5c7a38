"""The HTML report in a real browser: Debian Chromium driven by Playwright.

Opens a generated report from a file:// URL and checks what a person would see: the overlay
thumbnails loaded and shown, NG parts on top, the histograms and control chart drawn, the
filter and zoom working, no request leaving the file, no script error. Skips when Chromium or
Playwright is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from report_samples import sample_batch, sample_frame, sample_inspection, sample_regions
from thermoscope.core import Verdict
from thermoscope.render import encode_png
from thermoscope.reports import ControlChart, ReportPart, render_overlay, write_html_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is absent (Debian package chromium: apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def batch() -> list[ReportPart]:
    """30 parts with rendered thumbnails and one NG part with its own full-size overlay PNG."""
    full = render_overlay(sample_frame(), sample_inspection("full-size.tiff"), sample_regions())
    return [*sample_batch(30), ReportPart(sample_inspection("full-size.tiff"), encode_png(full))]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parts = batch()
    values = np.r_[np.zeros(15), np.linspace(0.0, 4.0, 15)]
    chart = ControlChart(
        "hot max drift", values=values, statistic=values * 0.7, lower=-1.5, upper=1.5, alarms=[25]
    )
    path = tmp_path_factory.mktemp("report") / "report.html"
    return write_html_report(
        path, parts, title="Browser check", control_charts=[chart], ok_thumbnails=2
    )


@pytest.fixture
def page(browser: sync_api.Browser, report: Path) -> Iterator[sync_api.Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    yield page
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    context.close()


def test_overlay_images_are_loaded_and_visible(page: sync_api.Page) -> None:
    images = page.locator("img.overlay")
    count = images.count()
    flagged = sum(p.inspection.verdict is not Verdict.OK for p in batch())
    assert count == flagged + 2
    states = images.evaluate_all(
        """imgs => imgs.map(img => {
            const box = img.getBoundingClientRect(), style = getComputedStyle(img);
            return {loaded: img.complete && img.naturalWidth > 0 && img.naturalHeight > 0,
                    shown: style.display !== "none" && style.visibility === "visible",
                    width: box.width, height: box.height};
        })"""
    )
    for i, state in enumerate(states):
        assert state["loaded"], f"overlay {i} did not decode"
        assert state["shown"], f"overlay {i} is hidden"
        assert 100 <= state["width"] <= 240, state  # at most the thumbnail width
        assert state["height"] > 50, state
    first = images.first
    assert first.is_visible()
    first.scroll_into_view_if_needed()
    assert first.evaluate("img => img.getBoundingClientRect().top") < 900  # inside the viewport


def test_ng_rows_come_first(page: sync_api.Page) -> None:
    verdicts = page.locator("table.parts > tbody > tr").evaluate_all(
        "rows => rows.map(r => r.dataset.verdict)"
    )
    assert len(verdicts) == 31
    severity = [("OK", "WARN", "NG").index(v) for v in verdicts]
    assert severity == sorted(severity, reverse=True)
    assert verdicts[0] == "NG"
    first = page.locator("table.parts > tbody > tr").first
    assert first.locator("td").first.inner_text() == "NG"
    assert first.locator("img.overlay").is_visible()


def test_histograms_and_control_chart_are_drawn(page: sync_api.Page) -> None:
    histograms = page.locator("svg.histogram")
    assert histograms.count() == 2
    chart = page.locator("svg.control-chart")
    assert chart.count() == 1
    chart.scroll_into_view_if_needed()
    assert chart.is_visible()
    assert chart.bounding_box()["width"] > 600
    assert page.locator("svg.control-chart circle.alarm").count() == 2  # the alarm, the legend
    bars = page.locator("svg.histogram rect.bar")
    assert bars.count() > 0
    assert bars.first.bounding_box()["height"] > 0


def test_filter_and_zoom_work(page: sync_api.Page) -> None:
    page.locator(".filters button[data-filter=NG]").click()
    visible = page.locator("table.parts > tbody > tr:visible")
    assert set(visible.evaluate_all("rows => rows.map(r => r.dataset.verdict)")) == {"NG"}
    page.locator("#part-search").fill("full-size")
    assert page.locator("table.parts > tbody > tr:visible").count() == 1
    image = page.locator("table.parts > tbody > tr:visible img.overlay")
    assert image.bounding_box()["width"] == 240
    image.click()
    assert image.bounding_box()["width"] == image.evaluate("img => img.naturalWidth")
    page.locator(".filters button[data-filter=all]").click()
    page.locator("#part-search").fill("")
    assert page.locator("table.parts > tbody > tr:visible").count() == 31


def test_sorting_by_part_name(page: sync_api.Page) -> None:
    page.locator("th[data-sort=source]").click()
    names = page.locator("table.parts > tbody > tr").evaluate_all(
        "rows => rows.map(r => r.dataset.source)"
    )
    assert names == sorted(names)


def test_screenshot(page: sync_api.Page, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000
