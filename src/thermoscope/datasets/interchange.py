"""Export a dataset version to the interchange formats, and import exports back into a dataset.

Exports carry the radiometric side-car of every frame (float32 °C TIFF or ``.npy``), so an export
re-imports without losing temperatures; what a format cannot hold is reported as loss warnings
(see ``thermoscope.annotations.formats``). An import needs those side-cars: a dataset holds
radiometric frames, so items without them are reported and left out.

The other way in is ``import_onto_originals``: annotations another tool made on rendered
pictures (CVAT, Label Studio, COCO, YOLO, VOC files) are put on the radiometric files the
pictures were rendered from, matched by file name and checked by image size (see
``match_original``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from thermoscope import io as tio
from thermoscope.annotations import AnnotatedItem, LabelSchema
from thermoscope.annotations.formats import FORMATS, AnnotationFormatError, ExportReport
from thermoscope.annotations.formats.naming import item_id_of, split_stem, stem_of
from thermoscope.core import ThermalFrame, ThermoscopeError
from thermoscope.datasets.store import DatasetStore
from thermoscope.datasets.versions import DatasetError, ItemRecord
from thermoscope.storage.identity import content_id


@dataclass(slots=True)
class ImportSummary:
    """What an import added: item ids, and messages for entries left out."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _format(name: str) -> str:
    if name not in FORMATS:
        raise DatasetError(f"unknown format {name!r}; choose from {', '.join(FORMATS)}")
    return name


def _annotation(store: DatasetStore, record: ItemRecord) -> AnnotatedItem:
    """The item's annotation, or an empty one of its size when it has none."""
    if record.annotation is not None:
        return store.load_annotation(record.annotation)
    return AnnotatedItem(
        item_id=record.id, width=record.width, height=record.height, frame_count=len(record.frames)
    )


def export_version(
    store: DatasetStore,
    ref: str,
    fmt: str,
    out: Path,
    *,
    sidecar: Literal["tiff", "npy"] = "tiff",
    overwrite: bool = False,
    strict: bool = False,
) -> ExportReport:
    """Write version ``ref`` of ``store`` as ``fmt`` into the folder ``out`` (atomically).

    Raises:
        DatasetError: unknown format or version.
        AnnotationFormatError: the export cannot be written (``strict``: something would be lost).
    """
    version = store.version(ref)
    records = {record.id: record for record in version}
    items = [_annotation(store, record) for record in version]
    schema = LabelSchema.from_dict(dict(version.schema)) if version.schema else None

    def frames(item_id: str) -> list[ThermalFrame]:
        return [store.load_frame(fid) for fid in records[item_id].frames]

    return FORMATS[_format(fmt)].save(
        items,
        out,
        schema=schema,
        frames=frames,
        sidecar=sidecar,
        overwrite=overwrite,
        strict=strict,
    )


def import_export(
    store: DatasetStore, fmt: str, path: Path, *, skip_invalid: bool = False, replace: bool = False
) -> ImportSummary:
    """Add the items of an export (with their radiometric side-cars) to the working state.

    Item ids are the content ids of the side-car frames; an annotation keyed by another id (an
    export from frames that also had raw counts) is re-keyed to it. Items the dataset already
    holds are left as they are (``unchanged``) unless ``replace``, which takes the export's
    annotation.

    Raises:
        AnnotationFormatError: a malformed export (without ``skip_invalid``), or an item
            without side-cars (without ``skip_invalid``).
    """
    result = FORMATS[_format(fmt)].load(path, skip_invalid=skip_invalid)
    summary = ImportSummary(skipped=[str(s) for s in result.skipped])
    with store.batch():
        for item in result.items:
            try:
                frames = result.load_frames(item.item_id)
            except AnnotationFormatError as exc:
                if not skip_invalid:
                    raise
                summary.skipped.append(str(exc))
                continue
            cid = content_id(frames)
            if cid in store and not replace:
                summary.unchanged.append(cid)
                continue
            if cid != item.item_id:
                data = item.to_dict()
                data["item_id"] = cid
                item = AnnotatedItem.from_dict(data)
            added = store.add(frames, annotation=item, source=path.name, replace=replace)
            (summary.added if added.status != "unchanged" else summary.unchanged).append(cid)
    return summary


#: The prefix Label Studio puts before the name of an uploaded file (``0f3a9c2e-board.png``).
_UPLOAD_PREFIX = re.compile(r"[0-9a-f]{8}-(.+)")


@dataclass(frozen=True, slots=True)
class Original:
    """The radiometric frames an annotated item was drawn on.

    Attributes:
        path: the radiometric file.
        frames: its frames the item covers (all of them, or the one frame a picture named
            ``<stem>@NNNNNN`` shows).
        frame_index: that frame's index in the file (``None`` for the whole file).
    """

    path: Path
    frames: list[ThermalFrame]
    frame_index: int | None


def originals_by_name(folder: Path) -> dict[str, list[Path]]:
    """The files under ``folder`` (recursively) by the item id their name gives (the id an
    importer gives a picture with the same stem)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: the originals folder does not exist")
    out: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            out[item_id_of(stem_of(path.name))].append(path)
    return dict(out)


def match_original(item: AnnotatedItem, originals: dict[str, list[Path]]) -> Original:
    """The radiometric original of an item imported from pictures.

    The item's id is the picture's stem (after a CVAT subset prefix ``Train/``; a Label Studio
    upload prefix ``0f3a9c2e-`` is tried off too); a stem ``<name>@NNNNNN`` is frame NNNNNN
    of the original ``<name>``, as ``thermoscope`` names the frames of a sequence. Among the
    files of that name, the one whose frame size (and frame count) fits the item is taken.

    Raises:
        DatasetError: no file of that name, none that fits (the message gives the sizes), or
            more than one that fits.
    """
    name = item.item_id.rsplit("/", 1)[-1]
    names = [name]
    upload = _UPLOAD_PREFIX.fullmatch(name)
    if upload:
        names.append(item_id_of(upload.group(1)))
    keys: list[tuple[str, int | None]] = [(n, None) for n in names]
    for n in names:
        base, frame = split_stem(n)
        if frame is not None and item.frame_count == 1:
            keys.append((base, frame))
    where = f"item {item.item_id!r}"
    candidates = [(frame, p) for key, frame in keys for p in originals.get(key, [])]
    if not candidates:
        tried = " or ".join(repr(key) for key, _ in keys)
        raise DatasetError(f"{where}: no radiometric original named {tried}")
    fits: list[Original] = []
    seen: list[str] = []
    for frame, path in candidates:
        try:
            with tio.open_path(path) as seq:
                count = len(seq)
                if frame is not None:
                    frames = [seq[frame]] if frame < count else []
                elif count == item.frame_count:
                    frames = list(seq)
                else:
                    seen.append(f"{path.name}: {count} frames, the item {item.frame_count}")
                    continue
        except ThermoscopeError as exc:
            seen.append(f"{path.name}: {exc}")
            continue
        if not frames:
            seen.append(f"{path.name}: {count} frames, no frame {frame}")
        elif frames[0].shape != (item.height, item.width):
            h, w = frames[0].shape
            seen.append(f"{path.name}: {w}x{h} px, the pictures {item.width}x{item.height}")
        else:
            fits.append(Original(path, frames, frame))
    if not fits:
        raise DatasetError(f"{where}: no original fits ({'; '.join(seen)})")
    if len(fits) > 1:
        found = ", ".join(o.path.name for o in fits)
        raise DatasetError(f"{where}: more than one original fits ({found})")
    return fits[0]


def import_onto_originals(
    store: DatasetStore,
    fmt: str,
    path: Path,
    originals: Path,
    *,
    skip_invalid: bool = False,
    replace: bool = False,
) -> ImportSummary:
    """Add annotations made on rendered pictures to the radiometric files they show.

    ``path`` is an annotation file or folder in ``fmt`` (no side-cars needed); each item is
    matched to a file under ``originals`` by ``match_original``, and the item (keyed by the
    original's content id) is added with the original's frames, so its shapes lie on the
    temperatures. An item the dataset already holds gets the annotation when it has none (or
    with ``replace``); otherwise it is left ``unchanged``.

    Raises:
        AnnotationFormatError: a malformed annotation file (without ``skip_invalid``).
        DatasetError: an item without an original that fits (without ``skip_invalid``).
    """
    result = FORMATS[_format(fmt)].load(path, skip_invalid=skip_invalid)
    index = originals_by_name(originals)
    summary = ImportSummary(skipped=[str(s) for s in result.skipped])
    with store.batch():
        for item in result.items:
            try:
                original = match_original(item, index)
            except DatasetError as exc:
                if not skip_invalid:
                    raise
                summary.skipped.append(str(exc))
                continue
            cid = content_id(original.frames)
            data = item.to_dict()
            data["item_id"] = cid
            keyed = AnnotatedItem.from_dict(data)
            if cid in store:
                if store.item(cid).annotation is not None and not replace:
                    summary.unchanged.append(cid)
                    continue
                store.annotate(cid, keyed)
                summary.added.append(cid)
                continue
            extra: dict[str, Any] = (
                {} if original.frame_index is None else {"frame_index": original.frame_index}
            )
            store.add(original.frames, annotation=keyed, source=original.path.name, **extra)
            summary.added.append(cid)
    return summary
