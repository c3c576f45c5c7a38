"""Train a classifier from a folder or dataset version and write it as a release (needs torch).

``train_classifier`` is the one call behind ``thermoscope model train`` for classifiers:

1. read the labelled frames (``training_data.load_labelled``): an InfraredSolarModules folder or
   a dataset version;
2. split off the leak-free, stratified, seeded holdout (``settings.holdout``);
3. fix the input contract: the source's window (0..255 intensity for 8-bit pictures; pooled
   percentiles of the training frames in °C for a dataset), 1 channel, ``settings.height`` x
   ``settings.width`` (stretched), and apply it to every frame;
4. optionally add synthetic defects rendered onto normal training frames
   (``datasets.synthetic_defects``);
5. fit (``training.fit_classifier``, or ``training.fit_classifier_ray`` across Ray Train
   workers with ``engine="ray"``), then measure on the holdout (``evaluation.evaluate``;
   accuracy, macro-F1, per-class recall, the defect-vs-normal view);
6. export to ONNX (with ``settings.flips`` and ``settings.tta`` the graph averages the logits
   over the four flips, so the release computes exactly what was measured), check torch vs
   ONNX within 1e-4 on holdout frames, and write the release (``release.write_release``,
   atomic) with the contract, classes, dataset hash, settings, metrics and ``split.json`` (the
   train and holdout ids, for ``eval``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from thermoscope.datasets.synthetic_defects import SpotSettings, render_spots
from thermoscope.models.contract import InputContract
from thermoscope.models.errors import ModelError
from thermoscope.models.evaluation import evaluate
from thermoscope.models.onnx_export import check_parity, export_onnx
from thermoscope.models.provenance import code_version
from thermoscope.models.release import write_release
from thermoscope.models.training import (
    Progress,
    TrainSettings,
    fit_classifier,
    fit_classifier_ray,
    predict_logits,
)
from thermoscope.models.training_data import (
    LabelledFrames,
    Target,
    fixed_window,
    holdout_split,
    load_labelled,
)

#: Name of the extra release file that lists the train and holdout item ids.
SPLIT_FILE = "split.json"
#: Holdout frames the torch-vs-ONNX parity check runs on.
PARITY_FRAMES = 64


class FlipAveraged(nn.Module):
    """Logits averaged over the identity and the horizontal, vertical and double flips."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        views = (x, x.flip(3), x.flip(2), x.flip(2).flip(3))
        return torch.stack([self.model(v) for v in views]).mean(dim=0)


def contract_for(
    data: LabelledFrames, train: NDArray[np.int64], settings: TrainSettings
) -> InputContract:
    """The input contract of a model trained on ``data``'s ``train`` frames."""
    window = data.window or fixed_window([data.frames[i] for i in train.tolist()])
    return InputContract(
        window_c=window,
        channels=("celsius",),
        height=settings.height,
        width=settings.width,
        resize="stretch",
        unit=data.unit,
        max_clipped=1.0 if data.unit == "intensity" else 0.5,
    )


def _synthetic(
    data: LabelledFrames,
    train: NDArray[np.int64],
    contract: InputContract,
    settings: TrainSettings,
    seed: int,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Synthetic defect inputs and labels (empty when switched off)."""
    count = round(settings.synthetic_share * len(train))
    empty = (np.zeros((0, *contract.input_shape), np.float32), np.zeros(0, np.int64))
    if count == 0:
        return empty
    target = settings.synthetic_class or "NG"
    if target not in data.classes:
        raise ModelError(
            f"synthetic_class: {target!r} is not a class of {data.source} "
            f"({', '.join(data.classes)})"
        )
    if data.normal is None:
        raise ModelError(f"synthetic defects: {data.source} has no normal (OK) class to render on")
    normal = train[data.labels[train] == data.classes.index(data.normal)]
    if normal.size == 0:
        raise ModelError(f"synthetic defects: no {data.normal} frame in the training part")
    rng = np.random.default_rng([seed, 1])
    lo, hi = contract.window_c
    spot = SpotSettings(amplitude=(0.08 * (hi - lo), 0.3 * (hi - lo)))
    chosen = rng.choice(normal, size=count, replace=True)
    frames = [render_spots(data.frames[i], rng, spot).frame for i in chosen.tolist()]
    inputs = contract.apply_batch(frames, check=False)
    return inputs, np.full(count, data.classes.index(target), dtype=np.int64)


def train_classifier(
    source: str | Path,
    out: Path,
    *,
    settings: TrainSettings | None = None,
    seed: int = 0,
    ref: str | None = None,
    target: Target = "label",
    name: str = "classifier",
    version: int = 1,
    private_key: Path | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
    engine: Literal["local", "ray"] = "local",
    workers: int = 2,
) -> Path:
    """Train a classifier and write its release folder.

    Args:
        source: an InfraredSolarModules folder or a dataset store folder.
        out: the release folder to create.
        settings: training settings (defaults: ``TrainSettings()``).
        seed: seeds the split, sampling, augmentation and initialisation.
        ref: the dataset version (dataset sources only).
        target: class of a dataset item: ``"label"`` or ``"verdict"``.
        name, version: the release's name and monotonic version.
        private_key: sign the release with this Ed25519 key.
        overwrite: replace an existing release folder.
        progress: called after each epoch (see ``training.Progress``).
        log: called with one line per stage (reading, training, evaluating, exporting).
        engine: ``"local"`` (this process) or ``"ray"`` (``workers`` Ray Train workers).

    Returns:
        the release folder. Its manifest's ``metrics`` hold the holdout figures.

    Raises:
        DatasetError: the source is malformed (named).
        ModelError: the settings, labels or export do not work (named); nothing is written.
    """
    settings = settings or TrainSettings()
    say = log or (lambda _line: None)
    say(f"reading {source}")
    data = load_labelled(source, ref=ref, target=target)
    parts = holdout_split(data, seed=seed, holdout=settings.holdout)
    train, hold = parts["train"], parts["holdout"]
    contract = contract_for(data, train, settings)
    inputs = contract.apply_batch(data.frames, check=False)
    x_syn, y_syn = _synthetic(data, train, contract, settings, seed)
    x_train = np.concatenate([inputs[train], x_syn])
    y_train = np.concatenate([data.labels[train], y_syn])
    say(
        f"training {settings.architecture} on {len(y_train)} frames ({len(y_syn)} synthetic), "
        f"holdout {len(hold)}"
    )
    started = time.perf_counter()
    if engine == "ray":
        fit = fit_classifier_ray(
            x_train, y_train, len(data.classes), settings, seed=seed, workers=workers,
            progress=progress,
        )  # fmt: skip
    else:
        fit = fit_classifier(
            x_train, y_train, len(data.classes), settings, seed=seed, progress=progress
        )
    module: nn.Module = FlipAveraged(fit.model) if settings.flips and settings.tta else fit.model
    module.eval()
    metrics: dict[str, object] = {
        "train_seconds": round(fit.seconds, 1),
        "train_cpu_seconds": round(fit.cpu_seconds, 1),
    }
    if hold.size:
        say(f"evaluating on {hold.size} holdout frames")
        logits = predict_logits(module, inputs[hold])
        probs = torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
        result = evaluate(data.labels[hold], probs, data.classes, normal=data.normal)
        metrics.update(
            holdout=int(hold.size),
            accuracy=result.accuracy,
            macro_f1=result.macro_f1,
            recall={c.name: c.recall for c in result.per_class},
        )
        if result.binary is not None:
            metrics["binary_accuracy"] = result.binary.accuracy
            metrics["binary_auroc"] = result.binary.auroc
    say("exporting to ONNX")
    check = inputs[hold[:PARITY_FRAMES]] if hold.size else inputs[:PARITY_FRAMES]
    onnx = export_onnx(module, check[:1], output_names=("logits",))
    metrics["onnx_parity"] = check_parity(module, onnx, check)
    split_ids = {"seed": seed, "train": [data.ids[i] for i in train.tolist()]}
    split_ids["holdout"] = [data.ids[i] for i in hold.tolist()]
    training = {
        **settings.to_dict(),
        "seed": seed,
        "source": data.source,
        "target": target,
        "pretrained_tensors": len(fit.loaded),
        "engine": engine,
        "workers": workers if engine == "ray" else 1,
        "threads": torch.get_num_threads(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    return write_release(
        out,
        name=name,
        version=version,
        kind="classifier",
        contract=contract,
        onnx=onnx,
        classes=list(data.classes),
        dataset_hash=data.dataset_hash,
        code_version=code_version(),
        training=training,
        metrics=metrics,
        extra_files={SPLIT_FILE: json.dumps(split_ids).encode("utf-8")},
        private_key=private_key,
        overwrite=overwrite,
    )
