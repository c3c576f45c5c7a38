"""Ingest: decode a radiometric file, store it, pre-annotate it and commit it as a frame.

A frame is committed in two steps: first every blob (the original file and the °C of each
frame) is stored, each atomically; then one database transaction adds the frame row and its
first annotation revision. A crash between the two leaves unreferenced blobs (harmless: the
next ingest of the same data rewrites them) but never a row whose data is missing, so a half
frame never appears. Ids follow the content: the frame id is derived from the project and the
content hash of the radiometric data, so the same data ingested twice is found, not doubled.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError

import thermoscope.io as tio
from thermoscope.annotations import (
    AnnotatedItem,
    AnnotationError,
    LabelSchema,
    from_inspection,
    inspection_label,
)
from thermoscope.core import Finding, Inspection, ThermalFrame, ThermoscopeError, Verdict
from thermoscope.datasets.hashing import frame_id, sequence_id
from thermoscope.recipes import inspect
from thermoscope.server.auth import Principal
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import (
    AnnotationRevision,
    AnnotationRow,
    Frame,
    Project,
    now,
    utc,
)
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.schemas.frames import EdgeInspection, IngestOut
from thermoscope.server.storage import BlobStore

#: What the server writes as the author of machine-made revisions.
MACHINE = "thermoscope"


def frame_key(project_id: int, content: str) -> str:
    """The frame id of radiometric content ``content`` in a project."""
    return hashlib.sha256(f"{project_id}/{content}".encode("ascii")).hexdigest()[:32]


def celsius_key(prefix: str, index: int) -> str:
    """The blob key of frame ``index``'s °C under a frame's ``celsius_prefix``: float32
    little-endian HxW, gzip-compressed (served as is to clients that accept gzip)."""
    return f"{prefix}/{index}.f32.gz"


def read_celsius(blobs: BlobStore, prefix: str, index: int) -> bytes:
    """The float32 little-endian °C bytes of frame ``index`` (uncompressed)."""
    return gzip.decompress(blobs.get(celsius_key(prefix, index)))


def item_json(item: AnnotatedItem) -> str:
    """The stored JSON text of an annotation item."""
    return json.dumps(item.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A file's frames and what is stored about them."""

    frames: list[ThermalFrame]
    frame_hashes: list[str]
    content: str
    format: str


def decode(data: bytes, filename: str) -> Decoded:
    """The frames of a radiometric file; 422 naming the file when it is not one."""
    suffix = PurePath(filename).suffix.lower()
    try:
        reader = tio.detect(data[: tio.registry.SNIFF_BYTES], suffix)
        with reader.parse(data) as seq:
            frames = list(seq)
    except ThermoscopeError as exc:
        raise ApiError(
            422, f"{filename}: not a radiometric file thermoscope reads: {exc}"
        ) from None
    except (ValueError, IndexError, KeyError, OverflowError, MemoryError) as exc:
        raise ApiError(422, f"{filename}: cannot decode: {exc}") from None
    if not frames:
        raise ApiError(422, f"{filename}: the file holds no frame")
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise ApiError(422, f"{filename}: frames of different sizes {sorted(shapes)}")
    hashes = [frame_id(f) for f in frames]
    content = hashes[0] if len(hashes) == 1 else sequence_id(hashes)
    return Decoded(frames, hashes, content, reader.name)


def _edge_inspection(edge: EdgeInspection, frames: list[ThermalFrame]) -> Inspection:
    """The core inspection of the edge's findings, checked against the frames."""
    height, width = frames[0].shape
    if edge.frame is not None and edge.frame >= len(frames):
        raise ApiError(
            422, f"findings.frame {edge.frame} is outside the file's {len(frames)} frame(s)"
        )
    findings = []
    for i, f in enumerate(edge.findings):
        if (f.x is not None and f.x >= width) or (f.y is not None and f.y >= height):
            raise ApiError(
                422,
                f"findings.findings[{i}]: pixel ({f.x}, {f.y}) outside the {width}x{height} frame",
            )
        findings.append(
            Finding(
                rule=f.rule,
                region=f.region,
                value=math.nan if f.value is None else f.value,
                limit=f.limit,
                verdict=Verdict(f.verdict),
                explanation=f.explanation,
                x=f.x,
                y=f.y,
                unit=f.unit,
                extra={} if f.score is None else {"score": f.score},
            )
        )
    return Inspection(edge.source, edge.frame, Verdict(edge.verdict), tuple(findings))


@dataclass(frozen=True, slots=True)
class PreAnnotated:
    """The first annotation of a frame and what the machine said."""

    item: AnnotatedItem
    machine_findings: dict[str, Any] | None
    machine_verdict: str | None
    confidence: float | None


def preannotate(
    ctx: ServerContext,
    decoded: Decoded,
    recipe_text: str | None,
    edge: EdgeInspection | None,
    filename: str,
) -> PreAnnotated:
    """Draft machine annotations from the project's recipe, else from the edge's findings."""
    frames = decoded.frames
    height, width = frames[0].shape
    base = AnnotatedItem(
        item_id=decoded.content,
        width=width,
        height=height,
        frame_count=len(frames),
        metadata={"source": filename},
    )
    edge_inspection = None if edge is None else _edge_inspection(edge, frames)
    inspection: Inspection | None = None
    kwargs: dict[str, Any] = {}
    if recipe_text is not None:
        compiled = ctx.compiled_recipe(recipe_text)
        recipe = compiled.recipe
        if (recipe.frame.height, recipe.frame.width) == (height, width):
            subject = frames if len(frames) > 1 else frames[0]
            try:
                inspection = inspect(subject, compiled.plan, source=filename)
            except ThermoscopeError:
                inspection = None
            kwargs = {
                "regions": compiled.regions,
                "model_name": f"recipe:{recipe.name}",
                "version": recipe.version,
                "kinds": compiled.kinds,
            }
    if inspection is None and edge_inspection is not None and edge is not None:
        inspection = edge_inspection
        kwargs = {
            "regions": {},
            "model_name": edge.model or "edge",
            "version": edge.model_version or "",
        }
    if inspection is None:
        return PreAnnotated(base, None, None, None)
    pre = from_inspection(inspection, frame_shape=(height, width), **kwargs)
    try:
        item = dataclasses.replace(base, annotations=pre.annotations, verdicts=(pre.verdict,))
    except AnnotationError:
        return PreAnnotated(base, inspection.to_json(), None, None)
    scores = [a.provenance.score for a in pre.annotations if a.provenance.score is not None]
    return PreAnnotated(
        item, inspection.to_json(), pre.verdict.verdict.value, min(scores) if scores else None
    )


def schema_with_labels(schema: dict[str, Any], item: AnnotatedItem) -> dict[str, Any] | None:
    """``schema`` plus an inspection label for every label the drafts use that it lacks
    (``None`` when nothing is missing)."""
    parsed = LabelSchema.from_dict(schema)
    missing = sorted({a.label for a in item.annotations if parsed.label(a.label) is None})
    if not missing:
        return None
    labels = (*parsed.labels, *(inspection_label(name) for name in missing))
    return LabelSchema(labels).to_dict()


def _frame_facts(frames: list[ThermalFrame]) -> dict[str, Any]:
    meta = frames[0].metadata
    finite = [f.celsius[np.isfinite(f.celsius)] for f in frames]
    values = [v for v in finite if v.size]
    timestamps = [f.metadata.timestamp_s for f in frames]
    return {
        "camera": dataclasses.asdict(meta.camera),
        "parameters": None if meta.parameters is None else dataclasses.asdict(meta.parameters),
        "capture_time": None if meta.capture_time is None else utc(meta.capture_time),
        "timestamps": None
        if any(t is None for t in timestamps)
        else [float(t) for t in timestamps if t is not None],
        "min_c": float(min(v.min() for v in values)) if values else None,
        "max_c": float(max(v.max() for v in values)) if values else None,
    }


def _found(frame: Frame) -> IngestOut:
    return IngestOut(
        frame_id=frame.id,
        created=False,
        width=frame.width,
        height=frame.height,
        frame_count=frame.frame_count,
    )


def ingest_bytes(
    ctx: ServerContext,
    project_id: int,
    principal: Principal,
    data: bytes,
    filename: str,
    *,
    edge: EdgeInspection | None = None,
    meta: dict[str, Any] | None = None,
) -> IngestOut:
    """Commit a file as a frame of a project (or find it); the caller checked access."""
    if len(data) > ctx.settings.max_upload_bytes:
        raise ApiError(413, f"file of {len(data)} bytes exceeds {ctx.settings.max_upload_bytes}")
    if not data:
        raise ApiError(422, f"{filename}: the file is empty")
    decoded = decode(data, filename)
    fid = frame_key(project_id, decoded.content)
    with ctx.db.read() as session:
        existing = session.get(Frame, fid)
        if existing is not None:
            return _found(existing)
        project = session.get(Project, project_id)
        if project is None:
            raise not_found(f"project {project_id}")
        recipe_text = project.recipe_text
    pre = preannotate(ctx, decoded, recipe_text, edge, filename)
    content = decoded.content
    prefix = f"celsius/{content[:2]}/{content}"
    for index, frame in enumerate(decoded.frames):
        data_c = frame.celsius.astype("<f4").tobytes()
        ctx.blobs.put(celsius_key(prefix, index), gzip.compress(data_c, compresslevel=1, mtime=0))
    original_key = f"originals/{content[:2]}/{content}/{hashlib.sha256(data).hexdigest()}"
    ctx.blobs.put(original_key, data)
    try:
        created = _commit(
            ctx, project_id, principal, fid, decoded, pre, edge, meta, data, original_key, filename
        )
    except IntegrityError:  # the same data committed by a concurrent request
        created = False
    height, width = decoded.frames[0].shape
    return IngestOut(
        frame_id=fid,
        created=created,
        width=width,
        height=height,
        frame_count=len(decoded.frames),
    )


def _commit(
    ctx: ServerContext,
    project_id: int,
    principal: Principal,
    fid: str,
    decoded: Decoded,
    pre: PreAnnotated,
    edge: EdgeInspection | None,
    meta: dict[str, Any] | None,
    data: bytes,
    original_key: str,
    filename: str,
) -> bool:
    """The one transaction that makes a stored frame visible; ``False`` when it was there."""
    content = decoded.content
    facts = _frame_facts(decoded.frames)
    height, width = decoded.frames[0].shape
    text = item_json(pre.item)
    moment = now()
    with ctx.db.write() as session:
        if session.get(Frame, fid) is not None:
            return False
        project = session.get(Project, project_id)
        if project is None:
            raise not_found(f"project {project_id}")
        grown = schema_with_labels(project.label_schema, pre.item)
        if grown is not None:
            project.label_schema = grown
        session.add(
            Frame(
                id=fid,
                project_id=project_id,
                content_hash=content,
                frame_hashes=decoded.frame_hashes,
                filename=PurePath(filename).name[:255] or "upload",
                format=decoded.format,
                width=width,
                height=height,
                frame_count=len(decoded.frames),
                size_bytes=len(data),
                original_key=original_key,
                celsius_prefix=f"celsius/{content[:2]}/{content}",
                findings=None if edge is None else edge.model_dump(mode="json"),
                machine_findings=pre.machine_findings,
                meta=meta or {},
                status="new",
                verdict=pre.machine_verdict,
                machine_verdict=pre.machine_verdict,
                confidence=pre.confidence,
                disagreement=False,
                human_edited=False,
                created_by=principal.user_id,
                created_at=moment,
                **facts,
            )
        )
        session.flush()
        session.add(
            AnnotationRow(
                frame_id=fid, item=text, revision=1, updated_by=MACHINE, updated_at=moment
            )
        )
        session.add(
            AnnotationRevision(
                frame_id=fid, revision=1, item=text, author=MACHINE, created_at=moment
            )
        )
    return True
