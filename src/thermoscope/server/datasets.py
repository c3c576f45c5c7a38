"""Dataset versions and exports as background jobs.

A version freezes a project's frames and current annotations as a
``thermoscope.datasets.versions.Version``. It holds what people made or took on: machine drafts
nobody took on (pre-annotations of a model, their verdicts included) are left out, so an item
that only has machine drafts counts as not annotated and without a verdict; the version's
statistics say how many items (``machine_only``) and drafts (``machine_drafts_left_out``) that
was. its manifest (canonical JSON, id = SHA-256) and every
annotation (by the hash of its canonical JSON) go to the blob store, the row keeps the
statistics. Equal content gives the same version. An export writes one zip per version and
format to the blob store.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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


def _frames(job: JobContext, project_id: int, content: str) -> np.ndarray[Any, Any]:
    with job.ctx.db.read() as session:
        frame = session.scalars(
            select(Frame).where(Frame.project_id == project_id, Frame.content_hash == content)
        ).first()
        if frame is None:
            raise not_found(f"frame {content}")
    layers = [
        np.frombuffer(read_celsius(job.ctx.blobs, frame.celsius_prefix, i), dtype="<f4")
        for i in range(frame.frame_count)
    ]
    return np.stack(layers).reshape(frame.frame_count, frame.height, frame.width)


def _write_native(
    job: JobContext, row: DatasetVersion, version: Version, archive: zipfile.ZipFile
) -> None:
    """The ``thermoscope`` format: manifest, item dicts (of annotated items) and float32 °C
    arrays (of every item)."""
    archive.writestr("manifest.json", version.manifest())
    annotated = {record.id: item for record, item in _items(job, version)}
    records = list(version)
    for i, record in enumerate(records):
        if record.id in annotated:
            item = annotated[record.id]
            archive.writestr(f"items/{record.id}.json", json.dumps(item.to_dict(), indent=1))
        buffer = io.BytesIO()
        np.save(buffer, _frames(job, row.project_id, record.content), allow_pickle=False)
        archive.writestr(f"frames/{record.id}.npy", buffer.getvalue())
        if i % PROGRESS_EVERY == 0:
            job.progress(0.95 * i / max(1, len(records)), f"{i} of {len(records)} items")


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

        def frames(item_id: str) -> list[ThermalFrame]:
            stack = _frames(job, row.project_id, item_id)
            return [ThermalFrame(celsius=layer) for layer in stack]

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
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        fmt.write(job, row, version, archive)
    data = buffer.getvalue()
    key = f"exports/{export_id}.zip"
    ctx.blobs.put(key, data)
    with ctx.db.write() as session:
        found = session.get(Export, export_id)
        if found is not None:
            found.state = "done"
            found.blob_key = key
            found.size_bytes = len(data)
    return {"export_id": export_id}


HANDLERS: dict[str, Handler] = {"dataset_version": build_version, "export": run_export}
