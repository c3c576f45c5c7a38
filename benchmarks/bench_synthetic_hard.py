"""How hard the synthetic line's ``hard`` difficulty is: the shipped recipes and golden statistics
on ``normal`` and ``hard`` runs, side by side.

Run: ``python benchmarks/bench_synthetic_hard.py [--parts 1000] [--train 200]``. For each product
(pcb, battery, seal) and difficulty, one line (seed 2026) makes ``--parts`` parts, 5 % of them
defective, and the table prints:

- the shipped recipe's (``examples/<product>.yaml``) recall, precision and accuracy (a part is
  rejected when its verdict is NG; WARN passes), as ``tests/test_synthetic.py`` counts them;
- golden statistics fitted on ``--train`` good parts of the same line (indices after the run,
  so no part is seen twice): image AUROC of the anomaly score, and the localisation rate, the
  share of defective parts whose anomaly map peaks inside the defect's ground-truth mask. The
  models layer's ``thermoscope.models.golden`` is used when it exists (columns ``golden``);
  the script's own per-pixel reference is always printed beside it (columns ``pixel z``: the
  mean and standard deviation of each pixel over the good parts, anomaly map ``|z|`` after a
  3x3 mean, image score its maximum), so the two can be compared in the same run. Both work on
  the rise over the ambient measured on the bare conveyor (the recipe's reference), with
  ``thermoscope.models.golden`` at its default settings and the frame's own size.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.core import Verdict
from thermoscope.datasets.synthetic import PRODUCTS, ProductLine, SyntheticPart
from thermoscope.models.evaluation import auroc
from thermoscope.recipes import load_recipe
from thermoscope.recipes.engine import compile_recipe, inspect

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
cv2.setNumThreads(1)


@dataclass
class Row:
    """One product at one difficulty: recipe counts and anomaly scores."""

    product: str
    difficulty: str
    recall: float
    precision: float
    accuracy: float
    pixel_auroc: float | None
    pixel_localised: float
    golden_auroc: float | None = None
    golden_localised: float | None = None
    seconds: float = 0.0


#: Temperature window per product for the models' input contract (°C): every frame fits.
WINDOWS = {"pcb": (0.0, 80.0), "battery": (0.0, 60.0), "seal": (-10.0, 90.0)}

Scorer = Callable[[NDArray[np.float32], float], NDArray[np.float32]]


def pixel_golden(train: NDArray[np.float32], ambient: NDArray[np.float32]) -> Scorer:
    """The reference golden statistics: per-pixel mean and std of good frames' rise over the
    measured ambient; anomaly map |z| after a 3x3 mean."""
    rise = train - ambient[:, None, None]
    mean = rise.mean(axis=0)
    std = rise.std(axis=0) + np.float32(0.05)

    def score(frame: NDArray[np.float32], ambient_c: float) -> NDArray[np.float32]:
        z = np.abs((frame - np.float32(ambient_c) - mean) / std).astype(np.float32)
        return np.asarray(cv2.blur(z, (3, 3)), dtype=np.float32)

    return score


def models_golden(
    product: str, train: NDArray[np.float32], ambient: NDArray[np.float32]
) -> Scorer | None:
    """``thermoscope.models.golden`` with its default settings, fitted on the rise over the
    measured ambient (channel ``delta_ambient``) at the frame's own size; ``None`` without it."""
    try:
        golden = importlib.import_module("thermoscope.models.golden")
        contract_module = importlib.import_module("thermoscope.models.contract")
    except ImportError:
        return None
    height, width = train.shape[1:]
    contract = contract_module.InputContract(
        window_c=WINDOWS[product], channels=("delta_ambient",), height=height, width=width
    )
    model = golden.fit_golden(list(train), contract, ambient_c=[float(a) for a in ambient])

    def score(frame: NDArray[np.float32], ambient_c: float) -> NDArray[np.float32]:
        inputs = contract.apply_batch([frame], ambient_c=[ambient_c])
        return np.asarray(model.score(inputs)[1][0], dtype=np.float32)

    return score


def measured_ambient(line: ProductLine, frame: NDArray[np.float32]) -> float:
    """The ambient as a deployed system knows it: the median of the bare conveyor."""
    return float(np.median(frame[line.layout["conveyor"].mask(frame.shape)]))


def localised(maps: list[NDArray[np.float32]], parts: list[SyntheticPart]) -> float:
    """Share of defective parts whose anomaly map peaks inside the defect's mask."""
    hits = 0
    for heat, part in zip(maps, parts, strict=True):
        peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
        hits += bool(part.defects[0].mask[peak])
    return hits / max(len(parts), 1)


def measure(product: str, difficulty: str, parts: int, train: int) -> Row:
    start = time.perf_counter()
    plan = compile_recipe(load_recipe(EXAMPLES / f"{product}.yaml"))
    line = ProductLine(product, rng=np.random.default_rng(2026), difficulty=difficulty)  # type: ignore[arg-type]
    run = list(line.run(parts, defect_rate=0.05))
    tp = fp = tn = fn = 0
    for part in run:
        rejected = inspect(part.frame, plan).verdict is Verdict.NG
        if part.is_defective:
            tp, fn = tp + rejected, fn + (not rejected)
        else:
            fp, tn = fp + rejected, tn + (not rejected)
    good = np.stack([line.part(parts + i).frame.celsius for i in range(train)])
    good_ambient = np.array([measured_ambient(line, f) for f in good], dtype=np.float32)
    ambient = [measured_ambient(line, p.frame.celsius) for p in run]
    truth = [p.is_defective for p in run]
    bad = [p for p in run if p.is_defective]
    row = Row(
        product,
        difficulty,
        recall=tp / max(tp + fn, 1),
        precision=tp / max(tp + fp, 1),
        accuracy=(tp + tn) / len(run),
        pixel_auroc=None,
        pixel_localised=0.0,
    )
    scorers = (
        ("pixel", pixel_golden(good, good_ambient)),
        ("golden", models_golden(product, good, good_ambient)),
    )
    for name, scorer in scorers:
        if scorer is None:
            continue
        maps = [scorer(p.frame.celsius, a) for p, a in zip(run, ambient, strict=True)]
        scores = [float(m.max()) for m in maps]
        rate = localised([m for m, p in zip(maps, run, strict=True) if p.is_defective], bad)
        setattr(row, f"{name}_auroc", auroc(truth, scores))
        setattr(row, f"{name}_localised", rate)
    row.seconds = time.perf_counter() - start
    return row


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=1000, help="parts per run (5 % defective)")
    parser.add_argument("--train", type=int, default=200, help="good parts to fit golden on")
    parser.add_argument("--products", nargs="*", default=sorted(PRODUCTS), help="products")
    args = parser.parse_args()
    header = (
        f"{'product':8} {'difficulty':10} {'recall':>7} {'precis.':>7} {'accur.':>7} "
        f"{'pixel z AUROC':>13} {'pixel z loc.':>12} {'golden AUROC':>12} {'golden loc.':>11} "
        f"{'s':>5}"
    )
    print(f"{args.parts} parts per run, 5 % defective, seed 2026; golden fit on {args.train}")
    print(header)
    print("-" * len(header))
    rows = []
    for product in args.products:
        for difficulty in ("normal", "hard"):
            row = measure(product, difficulty, args.parts, args.train)
            rows.append(row)
            print(
                f"{row.product:8} {row.difficulty:10} {row.recall:7.3f} {row.precision:7.3f} "
                f"{row.accuracy:7.3f} {fmt(row.pixel_auroc):>13} {row.pixel_localised:12.3f} "
                f"{fmt(row.golden_auroc):>12} {fmt(row.golden_localised):>11} "
                f"{row.seconds:5.1f}",
                flush=True,
            )
    print()
    for product in args.products:
        normal, hard = (r for r in rows if r.product == product)
        ratio = hard.recall / max(normal.recall, 1e-9)
        print(
            f"{product}: hard/normal recipe recall ratio {ratio:.2f}, "
            f"pixel z AUROC {fmt(normal.pixel_auroc)} -> {fmt(hard.pixel_auroc)}"
        )


if __name__ == "__main__":
    main()
