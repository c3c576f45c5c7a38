"""Speed and torch/ONNX parity of the default anomaly model (the patch model) on one core.

Run: ``python benchmarks/bench_anomaly.py [--train 100] [--repeat 300] [--product pcb]
[--difficulty hard] [--components 32]``. A patch model is fitted on ``--train`` good parts of a
synthetic line (``--components`` > 0: the registered, conditional model the synthetic
evaluation uses, features of the residual only; 0: the plain ``PatchSettings()``),
written as an ``anomaly`` release and loaded with ``thermoscope.models.runtime.load_model``
(ONNX Runtime, one intra-op thread). The frame scored is a 640x512 °C frame (a synthetic part
brought to that size), and the table prints the per-frame latency (median, p99, in ms) of:

- ``release predict``: ``LoadedModel.predict`` end to end: the contract (window, resize to
  160x128), the graph, the map back to 640x512, the peak box and the 3 nearest examples;
- ``ONNX graph``: the graph alone on the contract-applied input;
- ``torch eager``: the same model in torch (one thread), the naive peer of the graph;
- the naive version: for the plain model ``NumPy brute force``, the same features but the
  nearest neighbour searched by NumPy over the whole memory (every stored patch of the
  neighbourhood, no coreset); for the conditional model ``OpenCV ECC + NumPy``, each frame
  aligned onto the template by OpenCV's iterative ECC (affine) instead of the graph's fixed
  number of Lucas-Kanade steps, then the same residual, smoothing and normalisation in NumPy.

Then the parity: the largest absolute difference between torch and ONNX over all outputs
(normalised score, normalised map, peak features) on the test frames, and the same for the
naive scores' ranking (AUROC of both on the same parts). Timings use ``time.perf_counter``
(wall) and ``time.process_time`` (CPU of this process) over ``--repeat`` runs (at most 30 for
the naive version) after 20 warm-up runs; the ratio column compares CPU p99s with the first
row; the header prints the machine's load average, as other work skews the wall clock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from thermoscope.datasets.synthetic import ProductLine
from thermoscope.models.contract import InputContract
from thermoscope.models.evaluation import auroc
from thermoscope.models.onnx_export import parity
from thermoscope.models.patch_features import FeatureSettings
from thermoscope.models.patch_model import (
    SOFT,
    PatchModel,
    PatchSettings,
    example_index,
    fit_patch_model,
    gaussian_kernel,
    neighbourhood,
    split_frames,
    write_patch_release,
)
from thermoscope.models.runtime import load_model

torch.set_num_threads(1)
cv2.setNumThreads(1)
#: The frame size the edge budget is about (width, height).
FRAME = (640, 512)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, float, float]:
    """Median and p99 latency of ``fn`` in milliseconds: wall clock, then CPU time of this
    process (what the run itself costs, whatever else the machine is doing)."""
    for _ in range(20):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1e3)
        wall.append((time.perf_counter() - start) * 1e3)
    return (
        float(np.median(wall)),
        float(np.percentile(wall, 99)),
        float(np.median(cpu)),
        float(np.percentile(cpu, 99)),
    )


def brute_force(
    model: PatchModel, pool: NDArray[np.float32]
) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """The naive scorer: torch features, then NumPy nearest neighbour over ``pool`` (P, M, D)
    (every candidate patch), smoothing and the same normalisation; returns the scores (N,)."""
    sq = np.einsum("pmd,pmd->pm", pool, pool)
    kernel = gaussian_kernel(model.settings.smooth)

    def score(x: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.no_grad():
            f = model.features(torch.from_numpy(x)).numpy()
        n, d, h, w = f.shape
        q = f.reshape(n, d, h * w).transpose(2, 0, 1)  # (P, N, D)
        d2 = (
            np.einsum("pnd,pnd->pn", q, q)[:, :, None]
            - 2.0 * np.matmul(q, pool.transpose(0, 2, 1))
            + sq[:, None, :]
        )
        near = np.sqrt(np.maximum(d2.min(axis=2), 0.0) + SOFT) - SOFT**0.5
        dist = near.T.reshape(n, h, w).astype(np.float32)
        smooth = np.stack(
            [cv2.filter2D(m, -1, kernel, borderType=cv2.BORDER_REPLICATE) for m in dist]
        )
        raw = smooth.reshape(n, -1).max(axis=1)
        out: NDArray[np.float32] = (1.0 - np.exp(raw * model.rate)).astype(np.float32)
        return out

    return score


def ecc_residual(model: PatchModel) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """The naive conditional scorer: OpenCV ECC alignment (affine, to convergence) onto the
    model's template, then its residual, smoothing and normalisation in NumPy; the scores (N,)."""
    front = model.front
    if front is None:
        raise SystemExit("ecc_residual needs a conditional model (--components > 0)")
    h, w = front.shape
    template = front.template.numpy().reshape(h, w)
    basis = front.basis.numpy()
    scatter = front.scatter.numpy().reshape(h, w)
    kernel = gaussian_kernel(model.settings.smooth)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)

    def score(x: NDArray[np.float32]) -> NDArray[np.float32]:
        raws = []
        for image in x[:, 0]:
            warp = np.eye(2, 3, dtype=np.float32)
            with contextlib.suppress(cv2.error):  # not converged: score it unaligned
                warp = cv2.findTransformECC(
                    template, image, warp, cv2.MOTION_AFFINE, criteria, None, 5
                )[1]
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            aligned = cv2.warpAffine(
                image, warp, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE
            )
            r = (aligned - template).reshape(-1)
            r = r - basis.T @ (basis @ r)
            z = (r.reshape(h, w) / scatter).astype(np.float32)
            raws.append(
                float(np.abs(cv2.filter2D(z, -1, kernel, borderType=cv2.BORDER_REPLICATE)).max())
            )
        out: NDArray[np.float32] = (1.0 - np.exp(np.array(raws) * model.rate)).astype(np.float32)
        return out

    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100, help="good parts to fit on")
    parser.add_argument("--test", type=int, default=40, help="test parts (half defective)")
    parser.add_argument("--repeat", type=int, default=300, help="timed runs per row")
    parser.add_argument("--product", default="pcb")
    parser.add_argument("--difficulty", default="hard")
    parser.add_argument("--components", type=int, default=32, help="0: the plain model")
    args = parser.parse_args()
    settings = PatchSettings()
    if args.components:
        features = FeatureSettings(cnn_weight=0.0, temperature_weight=0.1, patch=3)
        settings = PatchSettings(features=features, components=args.components, bank=16)
    line = ProductLine(args.product, rng=np.random.default_rng(2026), difficulty=args.difficulty)  # type: ignore[arg-type]
    kinds = line.model.defect_kinds
    conveyor = line.layout["conveyor"]

    def ambient(frame: NDArray[np.float32]) -> float:
        return float(np.median(frame[conveyor.mask(frame.shape)]))

    train = [line.part(i).frame.celsius for i in range(args.train)]
    half = args.test // 2
    test = [line.part(args.train + i).frame.celsius for i in range(half)]
    test += [
        line.part(args.train + half + i, defect=kinds[i % len(kinds)]).frame.celsius
        for i in range(half)
    ]
    truth = [False] * half + [True] * half
    contract = InputContract(
        window_c=(0.0, 80.0), channels=("delta_ambient",), height=128, width=160
    )
    start = time.perf_counter()
    model = fit_patch_model(
        train, contract, settings=settings, ambient_c=[ambient(f) for f in train]
    )
    fitted = time.perf_counter() - start
    x = contract.apply_batch(test, ambient_c=[ambient(f) for f in test])
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_patch_release(
            model,
            Path(tmp) / "patch",
            name=f"patch-{args.product}",
            version=1,
            index=example_index(model, [f.shape for f in train]),
            check=x,
        )
        size = (folder / "model.onnx").stat().st_size
        loaded = load_model(folder)
    onnx_bytes = model.to_onnx()
    diff = parity(model, onnx_bytes, x)
    big = cv2.resize(test[half], FRAME, interpolation=cv2.INTER_LINEAR)
    big_ambient = ambient(test[half])
    one = x[half : half + 1]
    if model.front is None:
        keep = split_frames(len(train), model.settings)[0]
        with torch.no_grad():
            kept = contract.apply_batch(
                [train[i] for i in keep], ambient_c=[ambient(train[i]) for i in keep]
            )
            pool = neighbourhood(model.features(torch.from_numpy(kept)), model.settings.radius)[
                0
            ].numpy()
        naive = brute_force(model, pool)
        naive_name = f"NumPy brute-force kNN over all {pool.shape[1]} patches/cell"
    else:
        naive = ecc_residual(model)
        naive_name = "OpenCV ECC alignment + NumPy residual (naive)"

    def eager() -> None:
        with torch.no_grad():
            model(torch.from_numpy(one))

    rows = [
        (
            "release predict (ONNX Runtime, 640x512 frame)",
            lambda: loaded.predict(big, ambient_c=big_ambient),
        ),
        ("ONNX graph alone (1x1x128x160)", lambda: loaded.run(one)),
        ("torch eager, same model (1 thread)", eager),
        (naive_name, lambda: naive(one)),
    ]
    print(
        f"patch model: {args.product} {args.difficulty}, {args.components} components, fitted on "
        f"{args.train} good parts in {fitted:.1f} s; memory {model.memory_t.shape[0]} cells x "
        f"{model.bank_size} x {model.memory_t.shape[1]} floats; model.onnx {size / 1e6:.1f} MB; "
        f"one thread; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    header = (
        f"{'path':58} {'median ms':>9} {'p99 ms':>7} {'CPU median':>10} {'CPU p99':>7} "
        f"{'p99 ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    base = None
    for i, (name, fn) in enumerate(rows):
        # the naive version takes up to a second a frame: fewer runs
        median, p99, cpu_median, cpu_p99 = timed(fn, args.repeat if i < 3 else min(args.repeat, 30))
        base = cpu_p99 if base is None else base
        print(
            f"{name:58} {median:9.2f} {p99:7.2f} {cpu_median:10.2f} {cpu_p99:7.2f} "
            f"{cpu_p99 / base:9.2f}",
            flush=True,
        )
    onnx_scores = loaded.run(x)["score"]
    print()
    print(f"torch vs ONNX, largest |difference| over score, anomaly_map, features: {diff:.2e}")
    print(
        f"AUROC on {args.test} test parts: coreset (ONNX) "
        f"{auroc(truth, onnx_scores.tolist()):.4f}, "
        f"naive {auroc(truth, naive(x).tolist()):.4f}"
    )


if __name__ == "__main__":
    main()
