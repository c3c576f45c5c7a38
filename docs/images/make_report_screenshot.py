"""Regenerate ``docs/images/report.png``: the HTML report of a small synthetic PCB run in Chromium.

Usage (from the repository root, with Debian Chromium installed)::

    .venv/bin/python docs/images/make_report_screenshot.py [--html out.html]

The run is the synthetic production line's PCB (seeded): 80 parts, 8 % defective, the high-side
MOSFET Q1 drifting warmer from part 30 on. A small stand-in recipe is evaluated right here
(a two-sided band on each powered component's maximum and the Q1/Q2 asymmetry), so the picture
does not depend on the recipe engine; its control chart is an EWMA of the asymmetry.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thermoscope.analysis.control_charts import estimate_baseline, ewma
from thermoscope.core import Finding, Inspection, Region, ThermalFrame, Verdict
from thermoscope.datasets.synthetic import Drift, product_layout, simulate_run
from thermoscope.reports import ControlChart, ReportPart, write_html_report

HERE = Path(__file__).resolve().parent
SCALE = 2  # 320x240 frames
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@dataclass(frozen=True)
class Band:
    """A stand-in rule: ``region``'s maximum (°C) inside [lo, hi], warning ``warn_c`` inside."""

    region: str
    lo: float
    hi: float
    warn_c: float = 3.0


BANDS = (
    Band("U1", 50.0, 68.0),
    Band("U2", 36.0, 52.0),
    Band("Q1", 46.0, 62.0),
    Band("Q2", 46.0, 62.0),
    Band("L1", 32.0, 46.0),
    Band("R7", 31.0, 45.0),
)
#: Largest |max(Q1) - max(Q2)| (°C) of the half bridge; a warning from ``ASYMMETRY_WARN_C``.
ASYMMETRY_NG_C = 8.0
ASYMMETRY_WARN_C = 5.0


def band_finding(band: Band, frame: ThermalFrame, region: Region) -> Finding:
    """The band rule on one frame: value, the limit crossed or nearest, verdict, explanation."""
    values = np.where(region.mask(frame.shape), frame.celsius, -np.inf)
    y, x = np.unravel_index(int(np.argmax(values)), values.shape)
    value = float(frame.celsius[y, x])
    rule = f"{band.region} max"
    if value > band.hi or value < band.lo:
        limit = band.hi if value > band.hi else band.lo
        side = "over" if value > band.hi else "under"
        text = f"{rule} {value:.1f} °C is {abs(value - limit):.1f} °C {side} its {limit:g} °C limit"
        verdict = Verdict.NG
    else:
        limit = band.hi if band.hi - value <= value - band.lo else band.lo
        margin = abs(limit - value)
        verdict = Verdict.WARN if margin < band.warn_c else Verdict.OK
        text = f"{rule} {value:.1f} °C, {margin:.1f} °C inside its {limit:g} °C limit"
    margin = min(band.hi - value, value - band.lo)
    return Finding(rule, band.region, value, limit, verdict, text, int(x), int(y), margin)


def asymmetry_finding(q1: Finding, q2: Finding) -> Finding:
    """|Q1 max - Q2 max| against the half bridge's symmetry limits, at the hotter device."""
    delta = abs(q1.value - q2.value)
    hot = q1 if q1.value >= q2.value else q2
    if delta > ASYMMETRY_NG_C:
        verdict, limit = Verdict.NG, ASYMMETRY_NG_C
        text = f"Q1-Q2 asymmetry {delta:.1f} °C is over its {limit:g} °C limit ({hot.region} hot)"
    else:
        verdict = Verdict.WARN if delta > ASYMMETRY_WARN_C else Verdict.OK
        limit = ASYMMETRY_WARN_C if verdict is Verdict.OK else ASYMMETRY_NG_C
        text = f"Q1-Q2 asymmetry {delta:.1f} °C, limit {limit:g} °C"
    return Finding(
        "Q1-Q2 asymmetry", "Q1-Q2", delta, limit, verdict, text, hot.x, hot.y, 8.0 - delta
    )


def build_report(html: Path) -> None:
    """Simulate the run, inspect every part and write the report to ``html``."""
    regions = product_layout("pcb", scale=SCALE)
    shown = {name: regions[name] for name in ("board", *(b.region for b in BANDS))}
    parts = []
    asymmetry = []
    run = simulate_run(
        "pcb",
        parts=80,
        defect_rate=0.08,
        rng=np.random.default_rng(11),
        scale=SCALE,
        drift=Drift("Q1", 0.12, start_part=30),
    )
    for part in run:
        frame = part.frame
        findings = [band_finding(b, frame, regions[b.region]) for b in BANDS]
        q1, q2 = (f for f in findings if f.region in ("Q1", "Q2"))
        findings.append(asymmetry_finding(q1, q2))
        asymmetry.append(q1.value - q2.value)
        # as if read from the part's power-on recording, inspected at its last frame
        inspection = Inspection.of(f"{part.serial}.seq", 19, findings)
        parts.append(ReportPart(inspection, celsius=frame, regions=shown))

    baseline = estimate_baseline(asymmetry, parts=25)
    chart = ewma(asymmetry, center=baseline.center, sigma=baseline.sigma, lam=0.2)
    control = ControlChart(
        "Q1 - Q2 max (drift watch, EWMA λ = 0.2)",
        values=asymmetry,
        statistic=chart.statistic,
        lower=chart.lower,
        upper=chart.upper,
        alarms=np.flatnonzero(chart.signal).tolist(),
        center=baseline.center,
    )
    write_html_report(
        html,
        parts,
        title="PCB-7 power board: end-of-line thermal test",
        meta={
            "line": "SMT line 2, station ICT-T",
            "recipe": "pcb-power-on.yaml",
            "shift": "2026-01-05 06:00-14:00",
        },
        control_charts=[control],
        range=(22.0, 66.0),
        ok_thumbnails=3,
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, help="also keep the report here")
    parser.add_argument("--out", type=Path, default=HERE / "report.png", help="screenshot path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        html = args.html or Path(tmp) / "report.html"
        build_report(html)
        screenshot(html, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
