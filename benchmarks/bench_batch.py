"""Batch re-inspection benchmark: frames/s on one process and on Ray, same findings checked.

Writes ``--frames`` radiometric files (°C ``.npy``, ``--size`` pixels square, a hot box whose
temperature varies around the recipe's limit) to a temporary folder, then re-inspects them with
``thermoscope.pipeline.scale.reinspect`` on ``engine="local"`` (this process) and on
``engine="ray"`` (a local Ray runtime of ``--workers`` CPUs, started before the clock runs; its
start-up time is printed apart), and the frame statistics on both. It prints frames/s of each,
the ratio Ray/local, and whether the findings are identical (exit status 1 when they are not).

Run: ``python benchmarks/bench_batch.py --frames 10000 [--workers 2] [--size 120]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from thermoscope.pipeline.scale import frame_statistics, reinspect
from thermoscope.recipes import parse_recipe


def _write(folder: Path, frames: int, size: int) -> list[Path]:
    rng = np.random.default_rng(1)
    paths = []
    box = size // 4
    for i in range(frames):
        image = rng.normal(22.0, 0.3, (size, size)).astype(np.float32)
        image[box : 2 * box, box : 2 * box] += float(rng.uniform(35.0, 65.0))
        path = folder / f"part{i:06d}.npy"
        np.save(path, image)
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", type=int, default=120, help="frame width and height, pixels")
    parser.add_argument("--chunk", type=int, default=256, help="files per Ray task")
    args = parser.parse_args()
    box = args.size // 4
    recipe = parse_recipe(
        {
            "name": "bench",
            "version": "1",
            "frame": {"width": args.size, "height": args.size},
            "regions": [
                {"name": "hot", "box": {"x": box, "y": box, "width": box, "height": box}},
                {"name": "bg", "box": {"x": 0, "y": 3 * box, "width": args.size, "height": box}},
            ],
            "rules": [
                {"type": "max", "region": "hot", "limits": {"max": 80, "warn_max": 75}},
                {"type": "mean", "region": "hot", "limits": {"max": 78}},
                {"type": "delta_t", "region": "hot", "reference": "bg", "limits": {"max": 55}},
            ],
        }
    )
    import ray

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        files = _write(Path(tmp), args.frames, args.size)
        t0 = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t0
        rows = []
        results = {}
        for engine in ("local", "ray"):
            t0 = time.perf_counter()
            results[engine] = reinspect(files, recipe, engine=engine, chunk=args.chunk)  # type: ignore[arg-type]
            inspect_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            frame_statistics(files, engine=engine, chunk=args.chunk)  # type: ignore[arg-type]
            stats_s = time.perf_counter() - t0
            load = os.getloadavg()[0]  # the machine's 1-minute load average at the row's end
            rows.append((engine, inspect_s, args.frames / inspect_s, args.frames / stats_s, load))
        ray.shutdown()
    same = [i.to_json() for i in results["ray"].inspections] == [
        i.to_json() for i in results["local"].inspections
    ] and results["ray"].failures == results["local"].failures
    print(f"setup: {args.frames} files of {args.size}x{args.size} °C (.npy), 3 rules; "
          f"{platform.machine()} {os.cpu_count()} CPUs; Ray {ray.__version__} with "
          f"{args.workers} CPUs, {args.chunk} files per task, started in {ray_start:.1f} s "
          "(not counted)")  # fmt: skip
    print(f"{'engine':<8}{'reinspect s':>13}{'frames/s':>11}{'stats frames/s':>16}{'load 1m':>9}")
    for engine, seconds, rate, stats_rate, load in rows:
        print(f"{engine:<8}{seconds:>13.2f}{rate:>11.0f}{stats_rate:>16.0f}{load:>9.1f}")
    print(f"ray/local frames/s: {rows[1][2] / rows[0][2]:.2f}x")
    verdicts = dict(Counter(i.verdict.value for i in results["local"].inspections))
    print(f"findings identical: {same} ({len(results['local'].inspections)} parts, {verdicts})")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
