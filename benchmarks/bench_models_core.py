"""The models layer's core on one core: nearest-example search, the heat-map box, a prediction.

Run: ``python benchmarks/bench_models_core.py [--vectors 100000] [--dim 128]``. Prints, each
beside a naive version run in the same process, and their ratio:

- ``FeatureIndex.nearest`` (k = 3, cosine) over ``--vectors`` stored vectors: one matrix-vector
  product on pre-normalised vectors and a partial sort, against normalising every vector per
  query and sorting all distances;
- ``runtime.peak_box`` on a 640x512 heat map (flood fill from the peak), against labelling
  every connected component of the thresholded map and picking the peak's;
- ``LoadedModel.predict`` of a golden-statistics release (input 128x160) on a 640x512 frame
  (contract, ONNX Runtime with one thread, heat map back to the frame, finding), p50 and p99,
  against the same statistics scored in NumPy (``GoldenStatistics.score`` after the contract,
  no heat map or finding).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.models.contract import InputContract
from thermoscope.models.explain import FeatureIndex
from thermoscope.models.golden import fit_golden
from thermoscope.models.release import Manifest
from thermoscope.models.runtime import LoadedModel, peak_box


def timed(fn: Callable[[], object], repeat: int) -> NDArray[np.float64]:
    """Milliseconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    out = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - start) * 1000.0
    return out


def naive_nearest(vectors: NDArray[np.float32], query: NDArray[np.float32], k: int) -> list[int]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distance = 1.0 - unit @ (query / np.linalg.norm(query))
    return [int(i) for i in np.argsort(distance)[:k]]


def naive_box(heat: NDArray[np.float32], level: float) -> list[int]:
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    _, labels = cv2.connectedComponents((heat >= level).astype(np.uint8), connectivity=8)
    ys, xs = np.nonzero(labels == labels[row, col])
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def smooth_map(rng: np.random.Generator) -> NDArray[np.float32]:
    noise = rng.random((64, 80)).astype(np.float32)
    heat = cv2.resize(cv2.GaussianBlur(noise, (9, 9), 2.0), (640, 512))
    heat[200:240, 300:360] += 1.0
    return (heat / heat.max()).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    rows: list[tuple[str, float, float]] = []

    vectors = rng.normal(size=(args.vectors, args.dim)).astype(np.float32)
    index = FeatureIndex(
        vectors,
        [f"f{i}" for i in range(args.vectors)],
        np.zeros(args.vectors, int),
        np.zeros(args.vectors, int),
        ["ok"] * args.vectors,
    )
    query = rng.normal(size=args.dim).astype(np.float32)
    assert [n.frame_id for n in index.nearest(query, 3)] == [
        f"f{i}" for i in naive_nearest(vectors, query, 3)
    ]
    fast = timed(lambda: index.nearest(query, 3), max(args.repeat // 10, 5))
    slow = timed(lambda: naive_nearest(vectors, query, 3), max(args.repeat // 10, 5))
    rows.append((f"nearest k=3 of {args.vectors}x{args.dim}", np.median(fast), np.median(slow)))

    heat = smooth_map(rng)
    assert peak_box(heat, level=0.5)[2] == naive_box(heat, 0.5)
    fast = timed(lambda: peak_box(heat, level=0.5), args.repeat)
    slow = timed(lambda: naive_box(heat, 0.5), args.repeat)
    rows.append(("peak box 640x512", np.median(fast), np.median(slow)))

    contract = InputContract(window_c=(15.0, 90.0), height=128, width=160)
    frames = [rng.normal(40.0, 1.0, (512, 640)).astype(np.float32) for _ in range(8)]
    golden = fit_golden(frames, contract)
    now = datetime.now(UTC)
    manifest = Manifest(
        name="bench",
        version=1,
        kind="golden",
        created=now,
        expires=now + timedelta(days=1),
        classes=(),
        thresholds={"anomaly": 0.5},
        contract=contract,
        files={"model.onnx": "0" * 64},
    )
    model = LoadedModel(manifest, golden.to_onnx(), threads=1)
    frame = frames[0]
    fast = timed(lambda: model.predict(frame), args.repeat)
    slow = timed(lambda: golden.score(contract.apply(frame)[None]), args.repeat)
    rows.append(("predict 640x512 (golden) p50", np.median(fast), np.median(slow)))
    rows.append(("predict 640x512 (golden) p99", np.quantile(fast, 0.99), np.quantile(slow, 0.99)))

    print(f"{'what':<36} {'ours ms':>9} {'naive ms':>9} {'naive/ours':>10}")
    for name, ours, naive in rows:
        print(f"{name:<36} {ours:>9.3f} {naive:>9.3f} {naive / ours:>10.1f}")


if __name__ == "__main__":
    main()
