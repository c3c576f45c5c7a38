"""Classifier inference speed on one core: ONNX Runtime vs naive torch eager, frame by frame.

Run: ``python benchmarks/bench_classifier.py [--release FOLDER] [--frames 2000]``.

With ``--release`` it times that release's ``model.onnx`` at its contract's input size (the
graph as shipped, e.g. flip-averaged); without, it builds the default networks (the compact CNN
of ``TrainSettings()`` at 40 x 24, with and without the flip averaging, and EfficientNet-Lite0)
with random weights (speed does not depend on the weights). For each it prints frames/s of:

* torch eager, one image per call (the naive version; ``torch.set_num_threads(1)``);
* ONNX Runtime, one image per call (a line camera's case), one intra-op thread;
* ONNX Runtime, batches of 64, one intra-op thread;

and the ratio of ONNX Runtime per-image to torch per-image. Target: >= 500 frames/s per image on
one thread for the shipped classifier. Inputs are random contract-applied frames in [0, 1].
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from thermoscope.models.classifier import build_classifier
from thermoscope.models.classifier_release import FlipAveraged
from thermoscope.models.onnx_export import export_onnx
from thermoscope.models.training import TrainSettings

BATCH = 64


def _rate(run: Callable[[int], None], count: int) -> float:
    """Frames per second of ``run(i)`` over ``count`` calls of one frame each (after warm-up)."""
    for i in range(min(20, count)):
        run(i)
    start = time.perf_counter()
    for i in range(count):
        run(i)
    return count / (time.perf_counter() - start)


def _session(onnx: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])


def measure(
    name: str, onnx: bytes, module: nn.Module | None, shape: tuple[int, ...], n: int
) -> None:
    """Print one row: torch per image, ORT per image, ORT batched, ratio."""
    rng = np.random.default_rng(0)
    frames = rng.random((n, *shape), dtype=np.float32)
    session = _session(onnx)
    ort_one = _rate(lambda i: session.run(None, {"input": frames[i : i + 1]}), n)
    batches = max(1, n // BATCH)

    def batch(i: int) -> None:
        session.run(None, {"input": frames[(i % batches) * BATCH : (i % batches + 1) * BATCH]})

    ort_batch = _rate(batch, batches) * BATCH
    eager = float("nan")
    if module is not None:
        module.eval()
        tensors = torch.from_numpy(frames)
        with torch.no_grad():
            eager = _rate(lambda i: module(tensors[i : i + 1]), min(n, 500))
    ratio = ort_one / eager if module is not None else float("nan")
    print(
        f"{name:<34} {'x'.join(map(str, shape)):>8} {eager:>12.0f} {ort_one:>12.0f} "
        f"{ort_batch:>12.0f} {ratio:>7.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", type=Path, help="time this release's model.onnx")
    parser.add_argument("--frames", type=int, default=2000, help="frames per measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'model':<34} {'input':>8} {'torch/img':>12} {'ORT/img':>12} {'ORT batch':>12} "
        f"{'ORT/torch':>8}   (frames/s, one thread)"
    )
    if args.release is not None:
        manifest = json.loads((args.release / "manifest.json").read_text(encoding="utf-8"))
        contract = manifest["contract"]
        shape = (len(contract["channels"]), contract["height"], contract["width"])
        onnx = (args.release / "model.onnx").read_bytes()
        measure(
            f"release {manifest['name']} v{manifest['version']}", onnx, None, shape, args.frames
        )
        return
    settings = TrainSettings()
    shape = (1, settings.height, settings.width)
    example = np.zeros((1, *shape), dtype=np.float32)
    for arch in ("compact", "efficientnet_lite0"):
        net = build_classifier(arch, 12, width=settings.cnn_width).eval()
        variants: list[tuple[str, nn.Module]] = [
            (arch, net),
            (f"{arch} + flip average", FlipAveraged(net)),
        ]
        for name, module in variants:
            onnx = export_onnx(module, example, output_names=("logits",))
            measure(name, onnx, module, shape, args.frames)


if __name__ == "__main__":
    main()
