"""Dataset versions and exports as background jobs.

A version freezes a project's frames and current annotations as a
``thermoscope.datasets.versions.Version``. It holds what people made or took on: machine drafts
nobody took on (pre-annotations of a model, their verdicts included) are left out, so an item
that only has machine drafts counts as not annotated and without a verdict; the version's
statistics say how many items (``machine_only``) and drafts (``machine_drafts_left_out``) that
was. its manifest (canonical JSON, id = SHA-256) and every
annotation (by the hash of its canonical JSON) go to the blob store, the row keeps the
statistics. Equal content gives the same version. An export writes one zip per version and
format to the blob store: the zip is written to a temporary file (each array one frame at a
time), then copied into the store in pieces, so no export is ever held in memory whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import tempfile
import zipfile
from collections.abc import Callable
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from numpy.lib import format as npy_format
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from thermoscope.annotations import AnnotatedItem, LabelSchema
from thermoscope.annotations.formats import FORMATS
from thermoscope.core import ThermalFrame
from thermoscope.datasets.store import summarise
from thermoscope.datasets.versions import ItemRecord, Version, canonical_json, content_hash, stats
from thermoscope.server.annotating import has_records, without_machine_drafts
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import AnnotationRow, DatasetVersion, Export, Frame, Project
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.jobs import Handler, JobContext
from thermoscope.storage import BlobStore
from thermoscope.storage.identity import read_celsius

#: Report progress every this many items.
PROGRESS_EVERY = 25


def version_key(project_id: int, content: str) -> str:
    """The id of the version of a project whose manifest hashes to ``content``."""
    return hashlib.sha256(f"{project_id}/version/{content}".encode("ascii")).hexdigest()[:32]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def build_version(job: JobContext) -> dict[str, Any]:
    """Job ``dataset_version``: freeze a project's annotations as a dataset version."""
    params = job.params
    project_id = int(params["project_id"])
    ctx = job.ctx
    with ctx.db.read() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise not_found(f"project {project_id}")
        schema = dict(project.label_schema)
        rows = session.execute(
            select(Frame, AnnotationRow)
            .join(AnnotationRow, AnnotationRow.frame_id == Frame.id)
            .where(Frame.project_id == project_id)
            .order_by(Frame.created_at, Frame.id)
        ).all()
    records = []
    machine_only = left_out = 0
    for i, (frame, annotation) in enumerate(rows):
        if params.get("only_accepted") and frame.status != "accepted":
            continue
        item, dropped = without_machine_drafts(AnnotatedItem.from_dict(json.loads(annotation.item)))
        left_out += dropped
        digest = None
        if has_records(item):
            data = canonical_json(item.to_dict())
            digest = content_hash(data)
            key = f"annotations/{digest[:2]}/{digest}.json"
            if not ctx.blobs.exists(key):
                ctx.blobs.put(key, data)
        elif dropped:
            machine_only += 1
        summary = summarise(item)
        records.append(
            ItemRecord(
                id=frame.content_hash,
                frames=tuple(frame.frame_hashes),
                height=frame.height,
                width=frame.width,
                annotation=digest,
                product=_text(frame.meta.get("product")),
                serial=_text(frame.meta.get("serial")),
                source=frame.filename,
                labels=summary.labels,
                verdict=summary.verdict,
                review=summary.review,
            )
        )
        if i % PROGRESS_EVERY == 0:
            job.progress(0.9 * i / max(1, len(rows)), f"{i} of {len(rows)} frames")
    version = Version.of(records, schema)
    manifest = version.manifest()
    content = content_hash(manifest)
    vid = version_key(project_id, content)
    manifest_key = f"versions/{project_id}/{content}.json"
    ctx.blobs.put(manifest_key, manifest)
    with contextlib.suppress(IntegrityError):  # IntegrityError: made by a concurrent job
        _add_version(
            ctx,
            vid,
            project_id,
            content,
            params,
            version,
            manifest_key,
            {"machine_only": machine_only, "machine_drafts_left_out": left_out},
        )
    return {"version_id": vid}


def _add_version(
    ctx: ServerContext,
    vid: str,
    project_id: int,
    content: str,
    params: dict[str, Any],
    version: Version,
    manifest_key: str,
    drafts: dict[str, int],
) -> None:
    with ctx.db.write() as session:
        if session.get(DatasetVersion, vid) is None:
            session.add(
                DatasetVersion(
                    id=vid,
                    project_id=project_id,
                    content_hash=content,
                    message=str(params.get("message", "")),
                    item_count=len(version),
                    stats=stats(version).to_dict() | drafts,
                    manifest_key=manifest_key,
                    created_by=str(params.get("username", "")),
                )
            )


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """A format a version can be exported in."""

    name: str
    description: str
    write: Callable[[JobContext, DatasetVersion, Version, zipfile.ZipFile], None]


def _items(job: JobContext, version: Version) -> list[tuple[ItemRecord, AnnotatedItem]]:
    out = []
    for record in version:
        if record.annotation is None:
            continue
        data = job.ctx.blobs.get(f"annotations/{record.annotation[:2]}/{record.annotation}.json")
        out.append((record, AnnotatedItem.from_dict(json.loads(data))))
    return out


def _stored(job: JobContext, project_id: int, content: str) -> Frame:
    """The frame row of content ``content`` in a project (where its °C lie)."""
    with job.ctx.db.read() as session:
        frame = session.scalars(
            select(Frame).where(Frame.project_id == project_id, Frame.content_hash == content)
        ).first()
    if frame is None:
        raise not_found(f"frame {content}")
    return frame


class StoredFrames(SequenceABC[ThermalFrame]):
    """A stored part's frames, each read from the blob store when it is asked for (so an
    export holds one frame's °C at a time, not the part's)."""

    def __init__(self, blobs: BlobStore, frame: Frame) -> None:
        self.blobs = blobs
        self.prefix = frame.celsius_prefix
        self.frame_count = frame.frame_count
        self.shape = (frame.height, frame.width)

    def __len__(self) -> int:
        return self.frame_count

    @overload
    def __getitem__(self, index: int) -> ThermalFrame: ...

    @overload
    def __getitem__(self, index: slice) -> list[ThermalFrame]: ...

    def __getitem__(self, index: int | slice) -> ThermalFrame | list[ThermalFrame]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.frame_count))]
        if not -self.frame_count <= index < self.frame_count:
            raise IndexError(f"frame {index} of {self.frame_count}")
        data = read_celsius(self.blobs, self.prefix, index % self.frame_count)
        return ThermalFrame(celsius=np.frombuffer(data, dtype="<f4").reshape(self.shape))


def _write_native(
    job: JobContext, row: DatasetVersion, version: Version, archive: zipfile.ZipFile
) -> None:
    """The ``thermoscope`` format: manifest, item dicts (of annotated items) and float32 °C
    arrays (of every item), each array written into the zip one frame at a time."""
    archive.writestr("manifest.json", version.manifest())
    annotated = {record.id: item for record, item in _items(job, version)}
    records = list(version)
    for i, record in enumerate(records):
        if record.id in annotated:
            item = annotated[record.id]
            archive.writestr(f"items/{record.id}.json", json.dumps(item.to_dict(), indent=1))
        frame = _stored(job, row.project_id, record.content)
        _write_stack(archive, f"frames/{record.id}.npy", job.ctx.blobs, frame)
        if i % PROGRESS_EVERY == 0:
            job.progress(0.95 * i / max(1, len(records)), f"{i} of {len(records)} items")


def _write_stack(archive: zipfile.ZipFile, name: str, blobs: BlobStore, frame: Frame) -> None:
    """Write a frame's °C as one ``.npy`` (frames x H x W, float32 little-endian) member of
    ``archive``: the header, then each frame's bytes as read from the blob store."""
    header = io.BytesIO()
    shape = (frame.frame_count, frame.height, frame.width)
    npy_format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    size = len(header.getvalue()) + 4 * math.prod(shape)
    with archive.open(name, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as member:
        member.write(header.getvalue())
        for index in range(frame.frame_count):
            member.write(read_celsius(blobs, frame.celsius_prefix, index))


NATIVE = ExportFormat(
    "thermoscope",
    "zip of the version manifest, one AnnotatedItem JSON per item and its °C as float32 .npy",
    _write_native,
)


def export_formats() -> dict[str, ExportFormat]:
    """The export formats: ``thermoscope`` and those of ``thermoscope.annotations.formats``."""
    formats = {NATIVE.name: NATIVE}
    for name, fmt in FORMATS.items():
        formats[name] = ExportFormat(name, fmt.description, _interchange_writer(name))
    return formats


def _interchange_writer(
    name: str,
) -> Callable[[JobContext, DatasetVersion, Version, zipfile.ZipFile], None]:
    """An export through ``thermoscope.annotations.formats``: the format's files, a PNG
    rendering and a float32 °C TIFF side-car per frame, and ``warnings.txt`` with what the
    format cannot hold."""

    def write(
        job: JobContext, row: DatasetVersion, version: Version, archive: zipfile.ZipFile
    ) -> None:
        pairs = _items(job, version)
        items = [item for _, item in pairs]
        schema = LabelSchema.from_dict(dict(version.schema)) if version.schema else None

        def frames(item_id: str) -> StoredFrames:
            return StoredFrames(job.ctx.blobs, _stored(job, row.project_id, item_id))

        job.progress(0.1, f"writing {len(items)} items as {name}")
        with tempfile.TemporaryDirectory(prefix="thermoscope-export-") as folder:
            out = Path(folder) / "export"
            report = FORMATS[name].save(items, out, schema=schema, frames=frames)
            for relative in report.files:
                archive.write(out / relative, relative)
        lines = [str(warning) for warning in report.warnings]
        archive.writestr("warnings.txt", "\n".join(lines) + ("\n" if lines else ""))

    return write


def run_export(job: JobContext) -> dict[str, Any]:
    """Job ``export``: write a version in a format as a zip to the blob store."""
    ctx = job.ctx
    export_id = str(job.params["export_id"])
    with ctx.db.read() as session:
        export = session.get(Export, export_id)
        if export is None:
            raise not_found(f"export {export_id}")
        row = session.get(DatasetVersion, export.version_id)
        if row is None:
            raise not_found(f"dataset version {export.version_id}")
    fmt = export_formats().get(export.format)
    if fmt is None:
        raise ApiError(422, f"unknown export format {export.format!r}")
    version = Version.from_manifest(ctx.blobs.get(row.manifest_key), expected_id=row.content_hash)
    key = f"exports/{export_id}.zip"
    with tempfile.TemporaryFile(prefix="thermoscope-export-") as spool:
        with zipfile.ZipFile(
            spool, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1
        ) as archive:
            fmt.write(job, row, version, archive)
        spool.seek(0)
        size = ctx.blobs.put_file(key, spool)
    with ctx.db.write() as session:
        found = session.get(Export, export_id)
        if found is not None:
            found.state = "done"
            found.blob_key = key
            found.size_bytes = size
    return {"export_id": export_id}


HANDLERS: dict[str, Handler] = {"dataset_version": build_version, "export": run_export}
