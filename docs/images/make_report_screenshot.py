"""Regenerate ``docs/images/report.png``: the HTML report of a synthetic PCB run, in Chromium.

Usage (from the repository root, with Debian Chromium installed)::

    .venv/bin/python docs/images/make_report_screenshot.py [--html report.html] [--out PNG]

The run is the synthetic production line's PCB (seeded): 80 parts, 8 % of them defective, the
high-side MOSFET Q1 drifting warmer from part 30 on. Every part is inspected with the shipped
recipe ``examples/pcb.yaml``; the control charts are EWMA charts of two of its rules with a
baseline from the first 25 parts.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from thermoscope.analysis.control_charts import estimate_baseline, ewma
from thermoscope.datasets.synthetic import Drift, simulate_run
from thermoscope.recipes import compile_recipe, inspect, load_recipe
from thermoscope.reports import ControlChart, ReportPart, write_html_report

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "examples" / "pcb.yaml"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
#: Rules whose run gets a control chart, and the parts of the baseline.
CHARTED = ("Q1 rise", "half-bridge balance")
BASELINE_PARTS = 25


def build_report(html: Path) -> None:
    """Simulate the run, inspect every part with the shipped recipe, write the report."""
    recipe = load_recipe(RECIPE)
    plan = compile_recipe(recipe)
    regions = {spec.name: spec.to_region() for spec in recipe.regions}
    run = simulate_run(
        "pcb",
        parts=80,
        defect_rate=0.08,
        rng=np.random.default_rng(11),
        drift=Drift("Q1", 0.12, start_part=30),
    )
    parts = []
    for part in run:
        inspection = inspect(part.frame, plan, source=f"{part.serial}.tiff")
        parts.append(ReportPart(inspection, celsius=part.frame, regions=regions))

    charts = []
    for rule in CHARTED:
        values = [f.value for p in parts for f in p.inspection.findings if f.rule == rule]
        baseline = estimate_baseline(values, parts=BASELINE_PARTS)
        chart = ewma(values, center=baseline.center, sigma=baseline.sigma, lam=0.2)
        charts.append(
            ControlChart(
                f"{rule}: EWMA (λ = 0.2), baseline from the first {BASELINE_PARTS} parts",
                values=values,
                statistic=chart.statistic,
                lower=chart.lower,
                upper=chart.upper,
                alarms=np.flatnonzero(chart.signal).tolist(),
                center=baseline.center,
            )
        )
    write_html_report(
        html,
        parts,
        title="PCB-7 controller board: end-of-line thermal test",
        meta={
            "recipe": f"{recipe.name} {recipe.version}",
            "line": "SMT line 2, station T3",
            "shift": "2026-01-05 06:00 to 08:40",
        },
        control_charts=charts,
        range=(20.0, 62.0),
        ok_thumbnails=4,
    )


def screenshot(html: Path, png: Path) -> None:
    """Open ``html`` in Chromium and save the top of the page, 1280 px wide, as ``png``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(html.resolve().as_uri())
        page.screenshot(path=str(png))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the README's report screenshot.")
    parser.add_argument("--html", type=Path, help="also keep the report here")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("report.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        html = args.html or Path(tmp) / "report.html"
        build_report(html)
        screenshot(html, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
