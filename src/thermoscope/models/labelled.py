"""Labelled data for training and evaluation, from the three layouts models learn from.

``load_labelled(path)`` reads:

- an **InfraredSolarModules folder** or a **dataset folder** at a version: through
  ``models.training_data`` (the classifier's own loader: 8-bit pictures with ``No-Anomaly`` as
  the normal class, or a version's single-frame items classed by their one label or verdict;
  a version without the needed labels is refused there);
- a **synthetic run** (``thermoscope synth``: ``ground_truth.jsonl`` + recordings): class
  ``ok`` or the defect kind; the recordings are kept whole (``sequences``) for temporal models;
  the hash covers the ground truth and every recording's bytes.

``holdout_split`` deals the items into train and held-out parts, seeded, stratified by class
and leak-free: for frames loaded by ``models.training_data`` exactly as its own
``holdout_split`` (so an evaluation recomputes the part a classifier's training held out); for
runs, one part's serial stays on one side, through ``datasets.splits.split``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import thermoscope.io as tio
from thermoscope.core import ThermalFrame, ThermoscopeError
from thermoscope.datasets.splits import split
from thermoscope.datasets.synthetic import GROUND_TRUTH
from thermoscope.datasets.versions import ItemRecord
from thermoscope.models import training_data
from thermoscope.models.errors import ModelError

#: Class of a good part in dataset versions (from a verdict) and synthetic runs.
OK_CLASS = "ok"


@dataclass(frozen=True, slots=True, eq=False)
class LabelledData:
    """Frames (or recordings) with one class each.

    Attributes:
        inputs: one (H, W) float32 image per item: °C, or intensity for pictures.
        labels: the class name of each item.
        sources: a name per item (image id, item id, file name) for reports.
        groups: a leakage key per item (file hash, part serial): equal keys stay together.
        classes: the class names, in a stable order (the set's own order, else sorted).
        normal: the class that means a good part, if the set has one.
        unit: ``"celsius"`` or ``"intensity"``.
        dataset_hash: what identifies the data (see the module docstring).
        sequences: each item's whole recording (synthetic runs), else ``None``.
        ambient_c: the ambient temperature per item where known.
        product: the synthetic product the recordings show (its layout gives the regions).
        origin: the ``training_data`` frames these came from (their split is used).
    """

    inputs: list[NDArray[np.float32]]
    labels: tuple[str, ...]
    sources: tuple[str, ...]
    groups: tuple[str, ...]
    classes: tuple[str, ...]
    normal: str | None
    unit: str
    dataset_hash: str
    sequences: list[list[ThermalFrame]] | None = None
    ambient_c: tuple[float | None, ...] | None = None
    product: str | None = None
    origin: training_data.LabelledFrames | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int]) -> LabelledData:
        """The items at ``indices`` (same classes, hash and unit)."""
        idx = [int(i) for i in indices]
        return LabelledData(
            inputs=[self.inputs[i] for i in idx],
            labels=tuple(self.labels[i] for i in idx),
            sources=tuple(self.sources[i] for i in idx),
            groups=tuple(self.groups[i] for i in idx),
            classes=self.classes,
            normal=self.normal,
            unit=self.unit,
            dataset_hash=self.dataset_hash,
            sequences=None if self.sequences is None else [self.sequences[i] for i in idx],
            ambient_c=None if self.ambient_c is None else tuple(self.ambient_c[i] for i in idx),
            product=self.product,
            origin=None,
        )


def load_labelled(
    path: str | Path,
    *,
    version: str | None = None,
    limit: int | None = None,
    target: training_data.Target = "label",
) -> LabelledData:
    """Read a solar folder, a dataset version or a synthetic run (see the module docstring).

    Args:
        path: the folder.
        version: the dataset version (id, prefix or tag); dataset folders only.
        limit: read at most this many items (quick runs).
        target: a dataset item's class: its one ``"label"`` (an OK verdict without labels
            counts as ``OK``) or its ``"verdict"`` (OK / NG).

    Raises:
        ModelError: an unknown layout, a missing version, items without labels, or files
            that cannot be read (the message names the file).
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"{root}: not a folder of labelled data")
    try:
        if (root / GROUND_TRUTH).is_file():
            if version is not None:
                raise ModelError(f"{root}: --version applies to dataset folders, not a run")
            return _synthetic(root, limit)
        return _frames(training_data.load_labelled(root, ref=version, target=target), limit)
    except ModelError:
        raise
    except ThermoscopeError as exc:
        raise ModelError(str(exc)) from None
    except OSError as exc:
        raise ModelError(f"{exc.filename or root}: {exc.strerror or exc}") from None


def _digest(rows: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode("utf-8")).hexdigest()


def _frames(data: training_data.LabelledFrames, limit: int | None) -> LabelledData:
    count = len(data) if limit is None else min(limit, len(data))
    labels = tuple(data.classes[int(k)] for k in data.labels[:count])
    groups = data.digests or tuple(data.ids)
    whole = count == len(data)
    # the first N items are other data than the whole set: their own hash
    digest = data.dataset_hash if whole else _digest([data.dataset_hash, "first", count])
    return LabelledData(
        inputs=list(data.frames[:count]),
        labels=labels,
        sources=tuple(data.ids[:count]),
        groups=tuple(groups[:count]),
        classes=tuple(data.classes),
        normal=data.normal,
        unit=data.unit,
        dataset_hash=digest,
        origin=data if whole else None,
    )


def _synthetic(root: Path, limit: int | None) -> LabelledData:
    truth = root / GROUND_TRUTH
    try:
        lines = truth.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()][:limit]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{truth}: unreadable ground truth ({exc})") from None
    sequences: list[list[ThermalFrame]] = []
    labels, sources, groups, ambient, digests = [], [], [], [], []
    for k, record in enumerate(records):
        try:
            file = root / str(record["file"])
            defects = record["defects"]
            label = str(defects[0]["kind"]) if defects else OK_CLASS
            serial = str(record["serial"])
            ambient_c = float(record["ambient_c"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"{truth}: line {k + 1} lacks {exc}") from None
        with tio.open_path(file) as recording:
            frames = list(recording)
        sequences.append(frames)
        digests.append(hashlib.sha256(file.read_bytes()).hexdigest())
        labels.append(label)
        sources.append(file.name)
        groups.append(serial)
        ambient.append(ambient_c)
    if not records:
        raise ModelError(f"{truth}: no parts")
    return LabelledData(
        inputs=[seq[-1].celsius for seq in sequences],
        labels=tuple(labels),
        sources=tuple(sources),
        groups=tuple(groups),
        classes=tuple(sorted(set(labels))),
        normal=OK_CLASS if OK_CLASS in labels else None,
        unit="celsius",
        dataset_hash=_digest([hashlib.sha256(truth.read_bytes()).hexdigest(), digests]),
        sequences=sequences,
        ambient_c=tuple(ambient),
        product=str(records[0].get("product", "")) or None,
    )


def holdout_split(data: LabelledData, *, share: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) item indices: seeded, stratified by class, groups kept whole.

    A ``share`` of 0 holds nothing out.
    """
    if not 0.0 <= share < 1.0:
        raise ModelError(f"holdout share must be in [0, 1), got {share}")
    if share == 0.0:
        return list(range(len(data))), []
    if data.origin is not None:
        dealt = training_data.holdout_split(data.origin, seed=seed, holdout=share)
        return [int(i) for i in dealt["train"]], [int(i) for i in dealt["holdout"]]
    items = [
        ItemRecord(
            id=f"{k:09d}",
            frames=(hashlib.sha256(group.encode("utf-8")).hexdigest(),),
            height=1,
            width=1,
            labels={label: 1},
        )
        for k, (group, label) in enumerate(zip(data.groups, data.labels, strict=True))
    ]
    result = split(
        items,
        rng=np.random.default_rng(seed),
        fractions={"train": 1.0 - share, "holdout": share},
        group_by=None,
        stratify_by="label",
        near_duplicate_bits=None,
    )
    parts = {name: sorted(int(i) for i in ids) for name, ids in result.parts.items()}
    return parts["train"], parts["holdout"]


def class_counts(labels: Sequence[str]) -> dict[str, int]:
    """How many items of each class, most common first."""
    return dict(Counter(labels).most_common())
