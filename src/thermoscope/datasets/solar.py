"""Reader for a folder in the InfraredSolarModules layout (RaptorMaps, MIT licence).

Layout::

    FOLDER/images/<id>.jpg                  8-bit greyscale JPEGs of single PV modules
                                            (40 rows x 24 columns in the original set)
    FOLDER/module_metadata*.json            {id: {"image_filepath": "images/<id>.jpg",
                                                  "anomaly_class": <class name>}}

The pixel values are 8-bit intensities (0..255), not temperatures: models trained on them use a
fixed intensity window (``SOLAR_WINDOW``), never per-image min/max.

``grouped_split`` keeps files with identical bytes (SHA-256) in one part, so exact duplicates
(some of which carry conflicting labels in the original metadata) never straddle train and
evaluation; it is stratified by class and seeded (``datasets.splits.split`` does the dealing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from thermoscope.datasets.splits import split
from thermoscope.datasets.versions import DatasetError, ItemRecord

#: The 12 classes of InfraredSolarModules, in the order used for class indices.
SOLAR_CLASSES: tuple[str, ...] = (
    "No-Anomaly",
    "Cell",
    "Cell-Multi",
    "Cracking",
    "Diode",
    "Diode-Multi",
    "Hot-Spot",
    "Hot-Spot-Multi",
    "Offline-Module",
    "Shadowing",
    "Soiling",
    "Vegetation",
)
#: The class that means "no anomaly" (the binary view's normal class).
SOLAR_NORMAL = "No-Anomaly"
#: Fixed intensity window of the 8-bit pictures (intensity units).
SOLAR_WINDOW: tuple[float, float] = (0.0, 255.0)


@dataclass(frozen=True, slots=True)
class SolarSet:
    """Images and labels read from an InfraredSolarModules folder.

    Attributes:
        images: (N, H, W) uint8 intensities, in ``ids`` order.
        labels: (N,) int64 class indices into ``classes``.
        ids: the image ids (file stems), sorted numerically where they are numbers.
        classes: class names: always ``SOLAR_CLASSES`` (stable indices), then any other class
            found, sorted.
        sha256: hex SHA-256 of each file's bytes (exact-duplicate groups).
        root: the folder read.
    """

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    ids: tuple[str, ...]
    classes: tuple[str, ...]
    sha256: tuple[str, ...]
    root: Path

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int] | NDArray[np.int64]) -> SolarSet:
        """The items at ``indices`` (same classes)."""
        idx = np.asarray(indices, dtype=np.int64)
        return SolarSet(
            images=self.images[idx],
            labels=self.labels[idx],
            ids=tuple(self.ids[i] for i in idx.tolist()),
            classes=self.classes,
            sha256=tuple(self.sha256[i] for i in idx.tolist()),
            root=self.root,
        )


def is_solar_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like the InfraredSolarModules layout (images/ + metadata)."""
    return (folder / "images").is_dir() and bool(sorted(folder.glob("module_metadata*.json")))


def _metadata_file(folder: Path) -> Path:
    found = sorted(folder.glob("module_metadata*.json"))
    if not found:
        raise DatasetError(f"{folder}: no module_metadata*.json (InfraredSolarModules layout)")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DatasetError(f"{folder}: more than one metadata file ({names}); keep one")
    return found[0]


def _entries(path: Path) -> dict[str, tuple[str, str]]:
    """id -> (relative image path, class name) from a metadata file."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable metadata ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{path}: expected a non-empty JSON object of id -> entry")
    out: dict[str, tuple[str, str]] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise DatasetError(f"{path}: entry {key!r} is not an object")
        rel, label = entry.get("image_filepath"), entry.get("anomaly_class")
        if not isinstance(rel, str) or not rel:
            raise DatasetError(f"{path}: entry {key!r}: image_filepath missing")
        if not isinstance(label, str) or not label:
            raise DatasetError(f"{path}: entry {key!r}: anomaly_class missing")
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise DatasetError(f"{path}: entry {key!r}: image_filepath {rel!r} leaves the folder")
        out[str(key)] = (rel, label)
    return out


def _sort_key(item_id: str) -> tuple[int, int | str]:
    return (0, int(item_id)) if item_id.isdigit() else (1, item_id)


def read_solar(folder: str | Path, *, limit: int | None = None) -> SolarSet:
    """Read every image and label of an InfraredSolarModules folder.

    Args:
        folder: the folder holding ``images/`` and one ``module_metadata*.json``.
        limit: read only the first ``limit`` ids (numeric order), e.g. for quick tests.

    Raises:
        DatasetError: the layout is wrong, naming the file: no metadata, a malformed entry, a
            missing or undecodable image, images of different sizes.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    meta = _metadata_file(root)
    entries = _entries(meta)
    ids = sorted(entries, key=_sort_key)[:limit]
    found = sorted({entries[i][1] for i in ids})
    classes = SOLAR_CLASSES + tuple(c for c in found if c not in SOLAR_CLASSES)
    index = {name: k for k, name in enumerate(classes)}
    images: list[NDArray[np.uint8]] = []
    digests: list[str] = []
    shape: tuple[int, ...] | None = None
    for item_id in ids:
        rel, _ = entries[item_id]
        path = root / rel
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"{path}: image of entry {item_id!r} unreadable ({exc})") from exc
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise DatasetError(f"{path}: not a decodable image")
        if shape is None:
            shape = image.shape
        elif image.shape != shape:
            raise DatasetError(f"{path}: size {image.shape} differs from the others' {shape}")
        images.append(np.asarray(image, dtype=np.uint8))
        digests.append(hashlib.sha256(data).hexdigest())
    if not images:
        raise DatasetError(f"{meta}: no entries")
    return SolarSet(
        images=np.stack(images).astype(np.uint8),
        labels=np.array([index[entries[i][1]] for i in ids], dtype=np.int64),
        ids=tuple(ids),
        classes=classes,
        sha256=tuple(digests),
        root=root,
    )


def grouped_split(
    data: SolarSet, *, seed: int, fractions: Mapping[str, float]
) -> dict[str, NDArray[np.int64]]:
    """Seeded, class-stratified split that keeps byte-identical files in one part.

    Args:
        data: the set to split.
        seed: seed of ``numpy.random.default_rng``.
        fractions: part name -> share (e.g. ``{"train": 0.8, "test": 0.2}``).

    Returns:
        part name -> sorted indices into ``data``.
    """
    items = [
        ItemRecord(
            id=item_id,
            frames=(digest,),
            height=int(data.images.shape[1]),
            width=int(data.images.shape[2]),
            labels={data.classes[int(label)]: 1},
        )
        for item_id, digest, label in zip(data.ids, data.sha256, data.labels, strict=True)
    ]
    result = split(
        items,
        rng=np.random.default_rng(seed),
        fractions=fractions,
        group_by=None,
        stratify_by="label",
        near_duplicate_bits=None,
    )
    position = {item_id: k for k, item_id in enumerate(data.ids)}
    return {
        name: np.array(sorted(position[i] for i in ids), dtype=np.int64)
        for name, ids in result.parts.items()
    }
