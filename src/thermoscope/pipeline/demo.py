"""The demo production line: synthetic PCBs recorded, read back, inspected and reported.

This runs the part of the loop that exists today on the embedded defaults (files in a local
folder): the line's camera records each board after power-on, thermoscope reads the files back
through the same readers a real camera's files use, inspects every part with the shipped recipe,
watches the run for drift (a heat sink slowly losing contact on Q1 from part 100 on) and writes
an HTML report and JSON lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thermoscope.datasets.synthetic import Drift, save_run, simulate_run
from thermoscope.pipeline.batch import RunResult, inspect_files
from thermoscope.recipes import load_recipe

#: The process drift of the demo run: Q1 runs warmer part after part from part 100 on (°C/part).
DEMO_DRIFT = Drift("Q1", 0.05, start_part=100)


def example_recipe(product: str) -> Path:
    """The shipped example recipe of a synthetic product (``examples/<product>.yaml``)."""
    installed = Path(__file__).parents[1] / "examples" / f"{product}.yaml"
    source_tree = Path(__file__).resolve().parents[3] / "examples" / f"{product}.yaml"
    return installed if installed.is_file() else source_tree


def run_demo(out: Path, *, parts: int = 200, seed: int = 0) -> RunResult:
    """Record ``parts`` synthetic PCBs (5 % defective, drifting), inspect them, write reports.

    Files land in ``out``: ``parts/`` with one FLIR SEQ recording per board plus the ground
    truth, ``report.html`` and ``inspections.jsonl``.
    """
    run = simulate_run(
        "pcb", parts=parts, defect_rate=0.05, rng=np.random.default_rng(seed), drift=DEMO_DRIFT
    )
    save_run(run, out / "parts", suffix=".seq")
    files = sorted((out / "parts").glob("*.seq"))
    return inspect_files(
        files,
        load_recipe(example_recipe("pcb")),
        report=out / "report.html",
        jsonl=out / "inspections.jsonl",
    )
