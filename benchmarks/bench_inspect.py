"""Inspection speed: the compiled recipe engine side by side with a straightforward NumPy/OpenCV
implementation of the same rules, in the same process, pinned to one CPU core.

Run: ``python benchmarks/bench_inspect.py``. Prints a table of frames/s for a 10-region, 15-rule
recipe on 640x512 frames, and sequences/s for a rule set on 60-frame heating sequences. The
straightforward peer builds full-frame masks once, then per rule indexes the frame with them
(``np.max(celsius[mask])``, ``np.where(mask, ...)`` for locations, connected components with
stats on the full frame); both sides return the same values, which the script checks first.
A last row times the one polygon rasterisation (``core.regions.fill_polygon``, NumPy, run once
per region when a recipe is compiled) against OpenCV's ``fillPoly`` (another convention: its
pixels differ on the outline) on a 60-px-radius octagon.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np

from thermoscope.analysis.temporal import curve_deviation, theil_sen, time_to_reach
from thermoscope.core import FrameMetadata, ThermalFrame
from thermoscope.core.regions import fill_polygon
from thermoscope.recipes import compile_recipe, inspect, parse_recipe
from thermoscope.recipes.schema import Recipe

H, W = 512, 640
cv2.setNumThreads(1)


def box(x: int, y: int, w: int, h: int) -> dict[str, int]:
    return {"x": x, "y": y, "width": w, "height": h}


def octagon(cx: float, cy: float, r: float) -> list[list[float]]:
    angles = np.arange(8) * np.pi / 4 + np.pi / 8
    return [[cx + r * np.cos(a), cy + r * np.sin(a)] for a in angles]


FRAME_RECIPE: dict[str, Any] = {
    "name": "bench-board",
    "frame": {"width": W, "height": H},
    "ambient": {"region": "conveyor"},
    "regions": [
        {"name": "U1", "box": box(100, 100, 64, 48)},
        {"name": "U2", "box": box(200, 100, 40, 40)},
        {"name": "U3", "box": box(280, 100, 40, 40), "pair": "U2"},
        {"name": "U4", "box": box(360, 100, 32, 32)},
        {"name": "Q1", "box": box(440, 100, 24, 24)},
        {"name": "Q2", "box": box(440, 160, 24, 24), "pair": "Q1"},
        {"name": "L1", "box": box(100, 220, 48, 48)},
        {"name": "C1", "polygon": octagon(240, 260, 20)},
        {"name": "J1", "box": box(300, 300, 120, 32)},
        {"name": "conveyor", "box": box(8, 200, 16, 120)},
    ],
    "rules": [
        *({"type": "max", "region": r, "limits": {"max": 85, "warn_max": 80}}
          for r in ("U1", "U2", "U3", "U4", "Q1", "Q2", "L1")),
        {"type": "min", "region": "C1", "limits": {"min": 30}},
        {"type": "mean", "region": "J1", "limits": {"min": 25, "max": 45}},
        {"type": "percentile", "region": "U1", "percentile": 95, "limits": {"max": 80}},
        {"type": "delta_t", "region": "U1", "reference": "ambient", "limits": {"max": 55}},
        {"type": "hot_spot_area", "region": "J1", "above_median_c": 3, "limits": {"max": 20}},
        {"type": "cold_spot_area", "region": "L1", "below_median_c": 3, "limits": {"max": 20}},
        {"type": "asymmetry", "region": "Q1", "limits": {"min": -3, "max": 3}},
        {"type": "gradient", "region": "U4", "limits": {"max": 8}},
    ],
}  # fmt: skip

SEQ_REGIONS = ("U1", "U2", "Q1", "L1")
GOLDEN = [[0.0, 24.0], [2.0, 34.0], [5.9, 52.0]]
SEQUENCE_RECIPE: dict[str, Any] = {
    **FRAME_RECIPE,
    "name": "bench-heating",
    "rules": [
        *({"type": "heating_rate", "region": r, "window_s": [0.5, 3.0], "limits": {"min": 1}}
          for r in SEQ_REGIONS),
        *({"type": "time_to_reach", "region": r, "temperature_c": 40, "limits": {"max": 5}}
          for r in SEQ_REGIONS[:2]),
        *({"type": "curve_shape", "region": r, "golden": GOLDEN, "limits": {"min": -30, "max": 30}}
          for r in SEQ_REGIONS[:2]),
    ],
}  # fmt: skip


def board(rng: np.random.Generator, heat: float = 1.0) -> np.ndarray:
    """A 640x512 board: warm components on a 24 °C background with sensor noise."""
    yy, xx = np.mgrid[0:H, 0:W]
    scene = 24.0 + 2.0 * xx / W + rng.normal(0.0, 0.05, (H, W))
    for spec in FRAME_RECIPE["regions"][:9]:
        x0, y0, x1, y1 = _bounds(spec)
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 3
        scene += heat * 35.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    return scene.astype(np.float32)


def _bounds(spec: dict[str, Any]) -> tuple[int, int, int, int]:
    if "box" in spec:
        b = spec["box"]
        return b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]
    pts = np.asarray(spec["polygon"])
    return int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max())


# --------------------------------------------------------------------------- the naive peer


class Naive:
    """The same rules, written the obvious way: full-frame masks and NumPy on the whole frame."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe
        self.masks = {r.name: r.to_region().mask((H, W)) for r in recipe.regions}
        self.pairs = {r.name: r.pair for r in recipe.regions if r.pair}
        self.pairs |= {v: k for k, v in self.pairs.items()}

    def _where(self, celsius: np.ndarray, mask: np.ndarray, find_max: bool) -> tuple[int, int]:
        filled = np.where(mask, celsius, -np.inf if find_max else np.inf)
        index = int(np.argmax(filled) if find_max else np.argmin(filled))
        return index % W, index // W

    def frame(self, celsius: np.ndarray) -> list[dict[str, Any]]:
        out = []
        ambient = float(np.median(celsius[self.masks["conveyor"]]))
        for rule in self.recipe.rules:
            m = self.masks[rule.region]
            x = y = None
            if rule.type in ("max", "min"):
                value = float(celsius[m].max() if rule.type == "max" else celsius[m].min())
                x, y = self._where(celsius, m, rule.type == "max")
            elif rule.type == "mean":
                value = float(celsius[m].mean(dtype=np.float64))
            elif rule.type == "percentile":
                value = float(np.percentile(celsius[m], rule.percentile))
                x, y = self._where(np.abs(celsius - value), m, False)
            elif rule.type == "delta_t":
                value = float(celsius[m].max()) - ambient
                x, y = self._where(celsius, m, True)
            elif rule.type in ("hot_spot_area", "cold_spot_area"):
                median = float(np.median(celsius[m]))
                hot = rule.type == "hot_spot_area"
                threshold = median + rule.above_median_c if hot else median - rule.below_median_c
                beyond = ((celsius > threshold) if hot else (celsius < threshold)) & m
                n, labels, stats, _ = cv2.connectedComponentsWithStats(
                    beyond.astype(np.uint8), connectivity=8
                )
                value = 0.0
                if n > 1:
                    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
                    value = float(stats[k, cv2.CC_STAT_AREA])
                    x, y = self._where(celsius, labels == k, hot)
            elif rule.type == "asymmetry":
                other = self.masks[self.pairs[rule.region]]
                value = float(
                    celsius[m].mean(dtype=np.float64) - celsius[other].mean(dtype=np.float64)
                )
            elif rule.type == "gradient":
                gy, gx = np.gradient(celsius)
                magnitude = np.hypot(gx, gy)
                value = float(magnitude[m].max())
                x, y = self._where(magnitude, m, True)
            else:
                raise ValueError(rule.type)
            out.append(self._judge(rule, value, x, y))
        return out

    def sequence(self, frames: list[ThermalFrame]) -> list[dict[str, Any]]:
        times = np.array([f.metadata.timestamp_s for f in frames]) - frames[0].metadata.timestamp_s
        series = {
            name: np.array([f.celsius[self.masks[name]].mean(dtype=np.float64) for f in frames])
            for name in SEQ_REGIONS
        }
        out = []
        for rule in self.recipe.rules:
            s = series[rule.region]
            if rule.type == "heating_rate":
                keep = (times >= rule.window_s[0]) & (times <= rule.window_s[1])
                value = theil_sen(times[keep], s[keep]).slope
            elif rule.type == "time_to_reach":
                found = time_to_reach(times, s, rule.temperature_c)
                value = float("nan") if found is None else found
            else:
                golden = np.asarray(rule.golden_points)
                value = curve_deviation(times, s, golden[:, 0], golden[:, 1]).value
            out.append(self._judge(rule, value, None, None))
        return out

    @staticmethod
    def _judge(rule: Any, value: float, x: int | None, y: int | None) -> dict[str, Any]:
        lo, hi = rule.limits.min, rule.limits.max
        ng = (hi is not None and value > hi) or (lo is not None and value < lo)
        verdict = "NG" if ng else "OK"
        text = f"{rule.region} {rule.type} {value:.1f}: {verdict}"
        return {
            "rule": rule.label,
            "value": value,
            "x": x,
            "y": y,
            "verdict": verdict,
            "text": text,
        }


# --------------------------------------------------------------------------- timing


def per_second(func: Callable[[], int], min_time: float) -> tuple[float, float]:
    """Items per second of ``func`` (which returns how many items it did), best of 5 runs:
    per wall-clock second, and per second of CPU time this thread got (the two agree on an
    idle machine; on a busy one the second is what the code costs)."""
    func()
    wall = cpu = 0.0
    for _ in range(5):
        done, start, start_cpu = 0, time.perf_counter(), time.thread_time()
        while (elapsed := time.perf_counter() - start) < min_time / 5:
            done += func()
        wall = max(wall, done / elapsed)
        cpu = max(cpu, done / (time.thread_time() - start_cpu))
    return wall, cpu


def check_same(ours: list[Any], theirs: list[dict[str, Any]]) -> None:
    for a, b in zip(ours, theirs, strict=True):
        assert a.rule == b["rule"]
        assert abs(a.value - b["value"]) <= 1e-4 * max(1.0, abs(b["value"])), (a, b)
        if b["x"] is not None:
            assert (a.x, a.y) == (b["x"], b["y"]), (a, b)


def heating_sequence(rng: np.random.Generator, n: int = 60, dt: float = 0.1) -> list[ThermalFrame]:
    base = board(rng)
    frames = []
    for i in range(n):
        t = i * dt
        rise = 1.0 - np.exp(-t / 2.5)
        image = 24.0 + (base - 24.0) * np.float32(rise)
        meta = FrameMetadata(source="bench", frame_index=i, timestamp_s=t)
        frames.append(ThermalFrame(image.astype(np.float32), metadata=meta))
    return frames


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    min_time = float(os.environ.get("BENCH_SECONDS", "3"))
    rng = np.random.default_rng(0)
    frames = [ThermalFrame(board(rng, heat)) for heat in (0.8, 1.0, 1.2, 1.4)]

    recipe = parse_recipe(FRAME_RECIPE)
    plan = compile_recipe(recipe, (H, W))
    naive = Naive(recipe)
    for frame in frames:
        check_same(list(inspect(frame, plan).findings), naive.frame(frame.celsius))

    def ours_frames() -> int:
        for frame in frames:
            inspect(frame, plan)
        return len(frames)

    def naive_frames() -> int:
        for frame in frames:
            naive.frame(frame.celsius)
        return len(frames)

    seq_recipe = parse_recipe(SEQUENCE_RECIPE)
    seq_plan = compile_recipe(seq_recipe)
    seq_naive = Naive(seq_recipe)
    sequence = heating_sequence(rng)
    check_same(list(inspect(sequence, seq_plan).findings), seq_naive.sequence(sequence))

    def ours_sequence() -> int:
        inspect(sequence, seq_plan)
        return 1

    def naive_sequence() -> int:
        seq_naive.sequence(sequence)
        return 1

    octagon_points = octagon(W / 2, H / 2, 60)
    octagon_ints = np.round(np.asarray(octagon_points)).astype(np.int32)

    def ours_polygon() -> int:
        fill_polygon(octagon_points, (H, W))
        return 1

    def opencv_polygon() -> int:
        canvas = np.zeros((H, W), np.uint8)
        cv2.fillPoly(canvas, [octagon_ints], 1)
        canvas.view(bool)
        return 1

    rows = [
        (
            f"{W}x{H}: {len(recipe.regions)} regions, {len(recipe.rules)} rules",
            "frames/s",
            per_second(ours_frames, min_time),
            per_second(naive_frames, min_time),
        ),
        (
            f"{len(sequence)}-frame sequence, {len(seq_recipe.rules)} rules",
            "seq/s",
            per_second(ours_sequence, min_time),
            per_second(naive_sequence, min_time),
        ),
        (
            "octagon mask (compile) vs cv2.fillPoly",
            "masks/s",
            per_second(ours_polygon, min_time / 3),
            per_second(opencv_polygon, min_time / 3),
        ),
    ]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"one core (affinity {sorted(os.sched_getaffinity(0))}), load average {load}")
    probe = frames[0].celsius
    copy_ms = 1000 / per_second(lambda: (probe.copy(), 1)[1], 0.5)[0]
    reduce_ms = 1000 / per_second(lambda: (probe.max(), probe.mean(), 1)[2], 0.5)[0]
    print(
        f"machine probe, 640x512 float32: copy {copy_ms:.3f} ms, max+mean {reduce_ms:.3f} ms "
        "(DESIGN.md's probe machine: 0.03 ms, 0.08 ms)"
    )
    head = ("case", "unit", "thermoscope", "naive", "ratio", "ms/item")
    print(f"{head[0]:<38} {head[1]:<14} {head[2]:>12} {head[3]:>8} {head[4]:>6} {head[5]:>8}")
    for name, unit, (ours_wall, ours_cpu), (theirs_wall, theirs_cpu) in rows:
        for clock, ours, theirs in (
            ("wall", ours_wall, theirs_wall),
            ("cpu", ours_cpu, theirs_cpu),
        ):
            print(
                f"{name:<38} {unit + ' ' + clock:<14} {ours:>12,.0f} {theirs:>8,.0f} "
                f"{ours / theirs:>5.{1 if ours >= theirs else 2}f}x {1000 / ours:>8.3f}"
            )


if __name__ == "__main__":
    main()
