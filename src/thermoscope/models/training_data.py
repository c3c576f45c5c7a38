"""Labelled frames for classifier training and evaluation, from either kind of source.

- an InfraredSolarModules folder (``images/`` + ``module_metadata*.json``): 8-bit intensities,
  12 classes, normal class ``No-Anomaly``, fixed window 0..255 (``unit="intensity"``);
- a ``datasets`` store folder and a version ref (tag, id or ``working``): the °C frames of its
  single-frame items, classed by ``target``: ``"label"`` (the one label name an item's
  annotation carries; an item without labels whose verdict is OK is ``OK``) or ``"verdict"``
  (OK / NG). Items without the needed labels are left out; a version where fewer than two
  classes remain is refused. The fixed window is taken from the training frames: the 0.5th and
  99.5th percentiles of all their pixels, widened to whole degrees (the same window for every
  frame, never per image).

``holdout_split`` gives the leak-free evaluation part: seeded, stratified by class, with the
source's leakage groups (byte-identical files; for a dataset: shared frames, serials,
recordings, duplicate groups and near-identical perceptual hashes) kept on one side.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from thermoscope.datasets.solar import (
    SOLAR_NORMAL,
    SOLAR_WINDOW,
    grouped_split,
    is_solar_folder,
    read_solar,
)
from thermoscope.datasets.splits import split
from thermoscope.datasets.store import WORKING, DatasetStore
from thermoscope.datasets.versions import DatasetError, ItemRecord, canonical_json
from thermoscope.models.errors import ModelError

Target = Literal["label", "verdict"]
#: Percentiles of the training pixels that bound a dataset's fixed window.
WINDOW_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True, slots=True)
class LabelledFrames:
    """Frames with one class each.

    Attributes:
        frames: per item a (H, W) float32 array, °C or intensity (see ``unit``).
        labels: (N,) class indices into ``classes``.
        ids: item ids (file stems for the solar layout).
        classes: class names.
        normal: the class that means "no defect" (``None`` when none is known).
        unit: ``"intensity"`` or ``"celsius"``.
        window: the fixed input window, or ``None`` to derive it from the training frames.
        dataset_hash: SHA-256 naming the data (a dataset version id; for a folder, the hash of
            its files' SHA-256 and labels).
        source: a short description of where the frames came from.
        items: the dataset items (for grouping), ``None`` for the solar layout.
        digests: per item the SHA-256 of its file (solar layout), ``None`` for a dataset.
    """

    frames: list[NDArray[np.float32]]
    labels: NDArray[np.int64]
    ids: tuple[str, ...]
    classes: tuple[str, ...]
    normal: str | None
    unit: str
    window: tuple[float, float] | None
    dataset_hash: str
    source: str
    items: tuple[ItemRecord, ...] | None = None
    digests: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def load_labelled(
    source: str | Path, *, ref: str | None = None, target: Target = "label"
) -> LabelledFrames:
    """Labelled frames from an InfraredSolarModules folder or a dataset store folder.

    Args:
        source: the folder.
        ref: the dataset version (tag, id or ``"working"``); default the newest commit, or the
            working state when nothing is committed. Ignored for the solar layout.
        target: what a dataset item's class is (``"label"`` or ``"verdict"``).

    Raises:
        DatasetError: the folder is neither layout, or its files are malformed (named).
        ModelError: the version does not carry the needed labels.
    """
    folder = Path(source)
    if is_solar_folder(folder):
        data = read_solar(folder)
        digest = hashlib.sha256(
            canonical_json(
                [[d, data.classes[int(k)]] for d, k in zip(data.sha256, data.labels, strict=True)]
            )
        ).hexdigest()
        return LabelledFrames(
            frames=[image.astype(np.float32) for image in data.images],
            labels=data.labels,
            ids=data.ids,
            classes=data.classes,
            normal=SOLAR_NORMAL,
            unit="intensity",
            window=SOLAR_WINDOW,
            dataset_hash=digest,
            source=f"InfraredSolarModules folder {folder.name}",
            digests=data.sha256,
        )
    try:
        store = DatasetStore.open(folder)
    except DatasetError as exc:
        raise DatasetError(
            f"{folder}: neither an InfraredSolarModules folder (images/ + "
            f"module_metadata*.json) nor a dataset ({exc})"
        ) from exc
    return _from_store(store, ref, target)


def _default_ref(store: DatasetStore) -> str:
    log = store.log()
    return log[-1].id if log else WORKING


def _item_class(item: ItemRecord, target: Target) -> str | None:
    if target == "verdict":
        return item.verdict
    names = sorted(name for name, n in item.labels.items() if n > 0)
    if len(names) > 1:
        raise ModelError(
            f"item {item.id}: {len(names)} label names ({', '.join(names)}); a classifier "
            "needs one per item (train on verdicts with target 'verdict')"
        )
    if names:
        return names[0]
    return "OK" if item.verdict == "OK" else None


def _from_store(store: DatasetStore, ref: str | None, target: Target) -> LabelledFrames:
    if target not in ("label", "verdict"):
        raise ModelError(f"target: {target!r} unknown; choose label or verdict")
    name = ref or _default_ref(store)
    version = store.version(name)
    chosen: list[tuple[ItemRecord, str]] = []
    unlabelled = 0
    for item in version:
        cls = _item_class(item, target)
        if cls is None:
            unlabelled += 1
            continue
        if len(item.frames) != 1:
            raise ModelError(
                f"item {item.id}: a sequence of {len(item.frames)} frames; the classifier "
                "takes single frames"
            )
        chosen.append((item, cls))
    classes = tuple(sorted({cls for _, cls in chosen}))
    if len(classes) < 2:
        raise ModelError(
            f"dataset {store.root.name} version {name}: needs items of at least 2 classes by "
            f"{target}, found {len(classes)} ({', '.join(classes) or 'none'}); "
            f"{unlabelled} item(s) carry no {target}"
        )
    index = {cls: k for k, cls in enumerate(classes)}
    frames = [store.load_frame(item.frames[0]).celsius.astype(np.float32) for item, _ in chosen]
    normal = "OK" if "OK" in index else None
    return LabelledFrames(
        frames=frames,
        labels=np.array([index[cls] for _, cls in chosen], dtype=np.int64),
        ids=tuple(item.id for item, _ in chosen),
        classes=classes,
        normal=normal,
        unit="celsius",
        window=None,
        dataset_hash=version.id,
        source=f"dataset {store.root.name} version {name}",
        items=tuple(item for item, _ in chosen),
    )


def holdout_split(
    data: LabelledFrames, *, seed: int, holdout: float
) -> dict[str, NDArray[np.int64]]:
    """Indices of the ``train`` and ``holdout`` parts (leak-free, stratified, seeded)."""
    if holdout <= 0:
        return {"train": np.arange(len(data), dtype=np.int64), "holdout": np.zeros(0, np.int64)}
    fractions = {"train": 1.0 - holdout, "holdout": holdout}
    if data.digests is not None:
        from thermoscope.datasets.solar import SolarSet

        solar = SolarSet(
            images=np.zeros((len(data), 1, 1), dtype=np.uint8),
            labels=data.labels,
            ids=data.ids,
            classes=data.classes,
            sha256=data.digests,
            root=Path("."),
        )
        return grouped_split(solar, seed=seed, fractions=fractions)
    if data.items is None:
        raise ModelError("holdout_split: the frames carry no grouping facts")
    items = [
        item.with_changes(labels={data.classes[int(k)]: 1})
        for item, k in zip(data.items, data.labels, strict=True)
    ]
    result = split(items, rng=np.random.default_rng(seed), fractions=fractions, stratify_by="label")
    position = {item_id: k for k, item_id in enumerate(data.ids)}
    return {
        part: np.array(sorted(position[i] for i in ids), dtype=np.int64)
        for part, ids in result.parts.items()
    }


def fixed_window(frames: Sequence[NDArray[Any]]) -> tuple[float, float]:
    """The dataset window: pooled percentile bounds of all pixels, widened to whole degrees."""
    pixels = np.concatenate([np.asarray(f, dtype=np.float64).ravel() for f in frames])
    pixels = pixels[np.isfinite(pixels)]
    if pixels.size == 0:
        raise ModelError("window: the training frames hold no finite temperature")
    lo, hi = np.percentile(pixels, WINDOW_PERCENTILES)
    lo, hi = math.floor(float(lo)), math.ceil(float(hi))
    return (float(lo), float(hi if hi > lo else lo + 1))
