"""A hand-made inspected part and batch for the report tests (no recipe engine needed)."""

from __future__ import annotations

import numpy as np

from thermoscope.core import Box, Finding, Inspection, Region, ThermalFrame, Verdict
from thermoscope.reports import ReportPart

HEIGHT, WIDTH = 120, 160
#: Hottest pixel (x, y) of region "hot" and coldest of region "cold".
HOT_XY = (35, 40)
COLD_XY = (110, 75)


def sample_regions() -> dict[str, Region]:
    """Three boxes: a hot component, a cold one, and one no rule looks at."""
    return {
        "hot": Box(20, 30, 30, 20),
        "cold": Box(100, 60, 30, 30),
        "plain": Box(60, 90, 20, 20),
    }


def sample_frame(*, hot_c: float = 90.0, seed: int = 0) -> ThermalFrame:
    """25 °C board, "hot" at 70 °C peaking at ``hot_c`` on HOT_XY, "cold" at 15 °C (5 °C min)."""
    rng = np.random.default_rng(seed)
    celsius = np.full((HEIGHT, WIDTH), 25.0) + rng.normal(0.0, 0.05, (HEIGHT, WIDTH))
    celsius[30:50, 20:50] = 70.0
    celsius[HOT_XY[1], HOT_XY[0]] = hot_c
    celsius[60:90, 100:130] = 15.0
    celsius[COLD_XY[1], COLD_XY[0]] = 5.0
    return ThermalFrame(celsius.astype(np.float32))


def sample_inspection(
    source: str = "part-001.tiff", frame: int | None = 0, *, hot_verdict: Verdict = Verdict.NG
) -> Inspection:
    """A max rule on "hot" (``hot_verdict``) and an OK min rule on "cold"."""
    return Inspection.of(
        source,
        frame,
        [
            Finding(
                "hot max",
                "hot",
                90.0,
                80.0,
                hot_verdict,
                "hot max 90.0 °C is 10.0 °C over its 80 °C limit",
                x=HOT_XY[0],
                y=HOT_XY[1],
                margin=-10.0,
            ),
            Finding(
                "cold min",
                "cold",
                5.0,
                0.0,
                Verdict.OK,
                "cold min 5.0 °C, 5.0 °C inside its 0 °C limit",
                x=COLD_XY[0],
                y=COLD_XY[1],
                margin=5.0,
            ),
        ],
    )


def sample_batch(count: int = 12) -> list[ReportPart]:
    """``count`` parts in run order: every 5th NG (from part 3), every 4th WARN, the rest OK."""
    regions = sample_regions()
    parts = []
    for i in range(count):
        verdict = Verdict.NG if i % 5 == 3 else Verdict.WARN if i % 4 == 1 else Verdict.OK
        hot_c = {Verdict.NG: 90.0, Verdict.WARN: 78.0, Verdict.OK: 72.0}[verdict]
        inspection = sample_inspection(f"part-{i:03d}.tiff", i, hot_verdict=verdict)
        findings = list(inspection.findings)
        findings[0] = Finding(
            "hot max", "hot", hot_c, 80.0, verdict, f"hot max {hot_c} °C", *HOT_XY, 80.0 - hot_c
        )
        parts.append(
            ReportPart(
                Inspection.of(inspection.source, i, findings),
                celsius=sample_frame(hot_c=hot_c, seed=i),
                regions=regions,
            )
        )
    return parts
