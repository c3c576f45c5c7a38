"""Ingest: decode a radiometric file, store it, pre-annotate it and commit it as a frame.

A frame is committed in two steps: first every blob (the original file and the °C of each
frame) is stored, each atomically; then one database transaction adds the frame row and its
first annotation revision. A crash between the two leaves unreferenced blobs (harmless: the
next ingest of the same data rewrites them) but never a row whose data is missing, so a half
frame never appears. Ids follow the content: the frame id is derived from the project and the
content hash of the radiometric data, so the same data ingested twice is found, not doubled.

Decoding, inspection and drafting are the pipeline's (``thermoscope.pipeline``: the path the
CLI and the edge take too); this module keeps the answers, the blobs and the database rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.exc import IntegrityError

import thermoscope.io as tio
from thermoscope.annotations import (
    AnnotatedItem,
    AnnotationError,
    LabelSchema,
    PreAnnotation,
    from_inspection,
    inspection_label,
)
from thermoscope.core import ContractError, Inspection, ThermoscopeError
from thermoscope.models.runtime import LoadedModel
from thermoscope.pipeline import DecodedPart, PipelineError, decode_bytes, decode_path
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
from thermoscope.server.releases import active_model, heatmap_key, margin
from thermoscope.server.schemas.frames import EdgeInspection, IngestOut
from thermoscope.storage import BlobStore
from thermoscope.storage.identity import celsius_prefix, frame_key, put_celsius

#: What the server writes as the author of machine-made revisions.
MACHINE = "thermoscope"


def item_json(item: AnnotatedItem) -> str:
    """The stored JSON text of an annotation item."""
    return json.dumps(item.to_dict(), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode(data: bytes, filename: str, limits: tio.DecodeLimits) -> DecodedPart:
    """``pipeline.decode_bytes`` with its errors as answers: 413 beyond the decode limits,
    422 naming the file when it is not a radiometric file. Close the part when done."""
    try:
        return decode_bytes(data, filename, limits)
    except PipelineError as exc:
        raise ApiError(413 if exc.too_large else 422, str(exc)) from None


def decode_file(path: Path, filename: str, limits: tio.DecodeLimits) -> DecodedPart:
    """``pipeline.decode_path`` of a received file spooled at ``path`` (its suffix that of
    ``filename``), with the errors of ``decode`` naming ``filename``."""
    try:
        return decode_path(path, limits)
    except PipelineError as exc:
        raise ApiError(413 if exc.too_large else 422, f"{filename}: {exc.reason}") from None


@dataclass(frozen=True, slots=True)
class Original:
    """The file a frame is ingested from, kept as a blob: its bytes in memory, or a file on
    disk copied into the store in pieces.

    Attributes:
        source: the bytes, or the path of the file.
        size: its length in bytes.
        sha256: its SHA-256, lower-case hex.
    """

    source: bytes | Path
    size: int
    sha256: str

    @classmethod
    def of_bytes(cls, data: bytes) -> Original:
        """A file held in memory."""
        return cls(data, len(data), hashlib.sha256(data).hexdigest())

    def put(self, blobs: BlobStore, key: str) -> None:
        """Store the file under ``key``."""
        if isinstance(self.source, bytes):
            blobs.put(key, self.source)
            return
        with self.source.open("rb") as fh:
            blobs.put_file(key, fh)


def _edge_inspection(edge: EdgeInspection, decoded: DecodedPart) -> Inspection:
    """The core inspection of the edge's findings (every field kept), checked against the
    frames."""
    height, width, count = decoded.height, decoded.width, decoded.frame_count
    if edge.frame is not None and edge.frame >= count:
        raise ApiError(422, f"findings.frame {edge.frame} is outside the file's {count} frame(s)")
    for i, f in enumerate(edge.findings):
        if (f.x is not None and f.x >= width) or (f.y is not None and f.y >= height):
            raise ApiError(
                422,
                f"findings.findings[{i}]: pixel ({f.x}, {f.y}) outside the {width}x{height} frame",
            )
    try:
        return Inspection.from_json(edge.contract_json(), what="findings")
    except ContractError as exc:
        raise ApiError(422, str(exc)) from None


@dataclass(frozen=True, slots=True)
class PreAnnotated:
    """The first annotation of a frame and what the machine said."""

    item: AnnotatedItem
    machine_findings: dict[str, Any] | None
    machine_verdict: str | None
    confidence: float | None
    learned: Learned | None = None


@dataclass(frozen=True, slots=True)
class Learned:
    """What the project's model said about a frame: its score, the score's distance from the
    threshold, ``name:version`` and its heat map over the frame (float32, H x W)."""

    score: float
    margin: float
    model: str
    heatmap: NDArray[np.float32] | None


def preannotate(
    ctx: ServerContext,
    decoded: DecodedPart,
    recipe_text: str | None,
    edge: EdgeInspection | None,
    filename: str,
    model: LoadedModel | None = None,
) -> PreAnnotated:
    """Draft machine annotations from the project's recipe and its active model (through the
    pipeline), else from the edge's findings."""
    height, width = decoded.height, decoded.width
    base = AnnotatedItem(
        item_id=decoded.content_id,
        width=width,
        height=height,
        frame_count=decoded.frame_count,
        metadata={"source": filename},
    )
    edge_inspection = None if edge is None else _edge_inspection(edge, decoded)
    inspection: Inspection | None = None
    pre: PreAnnotation | None = None
    learned: Learned | None = None
    if recipe_text is not None and not ctx.compiled_recipe(recipe_text).fits((height, width)):
        recipe_text = None
    if recipe_text is not None or model is not None:
        pipeline, recorder = ctx.pipeline(recipe_text, model)
        try:
            inspection = pipeline.inspect_part(decoded, source=filename)
        except ThermoscopeError:
            inspection = None
        if inspection is not None:
            pre = pipeline.drafts(inspection, (height, width))
        said = None if recorder is None else recorder.prediction
        if said is not None and model is not None:
            learned = Learned(
                said.score, margin(said), f"{model.name}:{model.version}", said.heatmap
            )
    if inspection is None and edge_inspection is not None and edge is not None:
        inspection = edge_inspection
        pre = from_inspection(
            inspection,
            {},
            model_name=edge.model or "edge",
            version=edge.model_version or "",
            frame_shape=(height, width),
        )
    if inspection is None or pre is None:
        return PreAnnotated(base, None, None, None, learned)
    try:
        verdicts = () if pre.verdict is None else (pre.verdict,)
        item = dataclasses.replace(base, annotations=pre.annotations, verdicts=verdicts)
    except AnnotationError:
        return PreAnnotated(base, inspection.to_json(), None, None, learned)
    scores = [a.provenance.score for a in pre.annotations if a.provenance.score is not None]
    return PreAnnotated(
        item,
        inspection.to_json(),
        None if pre.verdict is None else pre.verdict.verdict.value,
        min(scores) if scores else None,
        learned,
    )


def schema_with_labels(
    ctx: ServerContext, schema: dict[str, Any], item: AnnotatedItem
) -> dict[str, Any] | None:
    """``schema`` plus an inspection label for every label the drafts use that it lacks
    (``None`` when nothing is missing; the schema is parsed once per process)."""
    parsed = ctx.label_schema(schema)
    missing = sorted({a.label for a in item.annotations if parsed.label(a.label) is None})
    if not missing:
        return None
    labels = (*parsed.labels, *(inspection_label(name) for name in missing))
    return LabelSchema(labels).to_dict()


def found(frame: Frame) -> IngestOut:
    """The answer for a file whose frame is already stored."""
    return IngestOut(
        frame_id=frame.id,
        created=False,
        width=frame.width,
        height=frame.height,
        frame_count=frame.frame_count,
        format=frame.format,
        issues=list(frame.issues or []),
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
    with ctx.ingest_slots, decode(data, filename, ctx.settings.decode_limits) as decoded:
        return _store(
            ctx, project_id, principal, Original.of_bytes(data), filename, decoded, edge, meta
        )


def ingest_file(
    ctx: ServerContext,
    project_id: int,
    principal: Principal,
    path: Path,
    filename: str,
    *,
    sha256: str,
    edge: EdgeInspection | None = None,
    meta: dict[str, Any] | None = None,
) -> IngestOut:
    """``ingest_bytes`` of a received file spooled at ``path`` (its suffix that of
    ``filename``, its SHA-256 ``sha256`` already checked): decoded from the file and copied
    into the blob store in pieces, never read into memory whole."""
    size = path.stat().st_size
    if size > ctx.settings.max_upload_bytes:
        raise ApiError(413, f"file of {size} bytes exceeds {ctx.settings.max_upload_bytes}")
    if size == 0:
        raise ApiError(422, f"{filename}: the file is empty")
    with ctx.ingest_slots, decode_file(path, filename, ctx.settings.decode_limits) as decoded:
        original = Original(path, size, sha256)
        return _store(ctx, project_id, principal, original, filename, decoded, edge, meta)


def _store(
    ctx: ServerContext,
    project_id: int,
    principal: Principal,
    original: Original,
    filename: str,
    decoded: DecodedPart,
    edge: EdgeInspection | None,
    meta: dict[str, Any] | None,
) -> IngestOut:
    """Pre-annotate, store the blobs (decoding each frame again, one at a time) and commit."""
    fid = frame_key(project_id, decoded.content_id)
    with ctx.db.read() as session:
        existing = session.get(Frame, fid)
        if existing is not None:
            return found(existing)
        project = session.get(Project, project_id)
        if project is None:
            raise not_found(f"project {project_id}")
        recipe_text = project.recipe_text
        model = active_model(ctx, session, project_id)
    pre = preannotate(ctx, decoded, recipe_text, edge, filename, model)
    content = decoded.content_id
    heat_key = None
    if pre.learned is not None and pre.learned.heatmap is not None:
        heat_key = heatmap_key(content, pre.learned.model)
        ctx.blobs.put(heat_key, pre.learned.heatmap.astype("<f4").tobytes())
    prefix = celsius_prefix(content)
    for index in range(decoded.frame_count):
        put_celsius(ctx.blobs, prefix, index, decoded.frame(index).celsius)
    original_key = f"originals/{content[:2]}/{content}/{original.sha256}"
    original.put(ctx.blobs, original_key)
    try:
        _commit(
            ctx,
            project_id,
            principal,
            fid,
            decoded,
            pre,
            edge,
            meta,
            original.size,
            (original_key, heat_key),
            filename,
        )
        created = True
    except IntegrityError:  # the same data committed by a concurrent request
        created = False
    return IngestOut(
        frame_id=fid,
        created=created,
        width=decoded.width,
        height=decoded.height,
        frame_count=decoded.frame_count,
        format=decoded.format,
        issues=list(decoded.issues),
    )


def _commit(
    ctx: ServerContext,
    project_id: int,
    principal: Principal,
    fid: str,
    decoded: DecodedPart,
    pre: PreAnnotated,
    edge: EdgeInspection | None,
    meta: dict[str, Any] | None,
    size: int,
    keys: tuple[str, str | None],
    filename: str,
) -> None:
    """The one transaction that makes a stored frame visible (``IntegrityError`` when a
    concurrent request committed the same frame first).
    ``size``: the original file's bytes; ``keys``: the blob keys of the original file and of
    the model's heat map (if any)."""
    original_key, heat_key = keys
    learned = pre.learned
    content = decoded.content_id
    text = item_json(pre.item)
    moment = now()
    with ctx.db.write() as session:  # a frame committed meanwhile: IntegrityError
        project = session.get(Project, project_id)
        if project is None:
            raise not_found(f"project {project_id}")
        grown = schema_with_labels(ctx, project.label_schema, pre.item)
        if grown is not None:
            project.label_schema = grown
        session.add(
            Frame(
                id=fid,
                project_id=project_id,
                content_hash=content,
                frame_hashes=list(decoded.frame_ids),
                filename=PurePath(filename).name[:255] or "upload",
                format=decoded.format,
                width=decoded.width,
                height=decoded.height,
                frame_count=decoded.frame_count,
                size_bytes=size,
                original_key=original_key,
                celsius_prefix=celsius_prefix(content),
                findings=None if edge is None else edge.model_dump(mode="json"),
                machine_findings=pre.machine_findings,
                meta=meta or {},
                status="new",
                verdict=pre.machine_verdict,
                machine_verdict=pre.machine_verdict,
                confidence=pre.confidence,
                model_score=None if learned is None else learned.score,
                model_margin=None if learned is None else learned.margin,
                model_version=None if learned is None else learned.model,
                heatmap_key=heat_key,
                disagreement=False,
                human_edited=False,
                created_by=principal.user_id,
                created_at=moment,
                issues=list(decoded.issues) or None,
                camera=decoded.camera,
                parameters=decoded.parameters,
                capture_time=None if decoded.capture_time is None else utc(decoded.capture_time),
                timestamps=None if decoded.timestamps_s is None else list(decoded.timestamps_s),
                min_c=decoded.min_c,
                max_c=decoded.max_c,
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
