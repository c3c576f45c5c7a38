"""Export a dataset version to the interchange formats, and import exports back into a dataset.

Exports carry the radiometric side-car of every frame (float32 °C TIFF or ``.npy``), so an export
re-imports without losing temperatures; what a format cannot hold is reported as loss warnings
(see ``thermoscope.annotations.formats``). An import needs those side-cars: a dataset holds
radiometric frames, so items without them are reported and left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from thermoscope.annotations import AnnotatedItem, LabelSchema
from thermoscope.annotations.formats import FORMATS, AnnotationFormatError, ExportReport
from thermoscope.core import ThermalFrame
from thermoscope.datasets.hashing import content_id
from thermoscope.datasets.store import DatasetStore
from thermoscope.datasets.versions import DatasetError, ItemRecord


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
