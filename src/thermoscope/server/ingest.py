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
from thermoscope.core import (
    Finding,
    Inspection,
    ThermalFrame,
    ThermalSequence,
    ThermoscopeError,
    Verdict,
)
from thermoscope.datasets.hashing import frame_id, sequence_id
from thermoscope.recipes import InspectionPlan, inspect
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
    """What is stored about a file's frames, gathered in one pass that holds one decoded
    frame at a time.

    Attributes:
        sequence: the file's frames, decoded again on access (``decode`` leaves it open).
        first: frame 0, decoded (the only one kept).
        frame_hashes: content id of each frame.
        content: content id of the whole item (the frame's, or the sequence's).
        format: the reader's name for the file's format (``flir-csq`` for a CSQ).
        width, height: frame size, pixels.
        facts: camera, parameters, times and °C range as stored on the frame row.
        issues: problems that did not stop the readable frames (a truncated last frame).
    """

    sequence: ThermalSequence
    first: ThermalFrame
    frame_hashes: list[str]
    content: str
    format: str
    width: int
    height: int
    facts: dict[str, Any]
    issues: tuple[str, ...]

    @property
    def frame_count(self) -> int:
        """Frames of the item."""
        return len(self.frame_hashes)


def _unreadable(filename: str, exc: Exception) -> ApiError:
    if isinstance(exc, tio.DecodeLimitError):
        return ApiError(413, f"{filename}: beyond the server's decode limits: {exc.reason}")
    if isinstance(exc, tio.ThermoscopeFormatError):  # its reason, without the "<bytes>: " prefix
        return ApiError(422, f"{filename}: {exc.reason}")
    if isinstance(exc, ThermoscopeError):
        return ApiError(422, f"{filename}: not a radiometric file thermoscope reads: {exc}")
    return ApiError(422, f"{filename}: cannot decode: {exc}")


def decode(data: bytes, filename: str, limits: tio.DecodeLimits) -> Decoded:
    """Index a radiometric file within ``limits`` (checked from its headers before any pixel
    is decoded), then decode its frames one at a time for their ids and facts; 413 beyond the
    limits, 422 naming the file when it is not one. Close ``Decoded.sequence`` when done."""
    suffix = PurePath(filename).suffix.lower()
    try:
        reader = tio.detect(data[: tio.registry.SNIFF_BYTES], suffix)
        seq = reader.parse(data, limits)
    except (ThermoscopeError, *_DECODE_ERRORS) as exc:
        raise _unreadable(filename, exc) from None
    try:
        return _summarise(seq, filename)
    except BaseException:
        seq.close()
        raise


_DECODE_ERRORS = (ValueError, IndexError, KeyError, OverflowError, MemoryError)


def _summarise(seq: ThermalSequence, filename: str) -> Decoded:
    if len(seq) == 0:
        raise ApiError(422, f"{filename}: the file holds no frame")
    hashes: list[str] = []
    low, high = math.inf, -math.inf
    timestamps: list[float | None] = []
    first: ThermalFrame | None = None
    for index in range(len(seq)):
        try:
            frame = seq[index]
        except (ThermoscopeError, *_DECODE_ERRORS) as exc:
            raise _unreadable(filename, exc) from None
        if first is None:
            first = frame
        elif frame.shape != first.shape:
            raise ApiError(
                422, f"{filename}: frames of different sizes {sorted({first.shape, frame.shape})}"
            )
        hashes.append(frame_id(frame))
        finite = frame.celsius[np.isfinite(frame.celsius)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        timestamps.append(frame.metadata.timestamp_s)
    assert first is not None
    meta = first.metadata
    facts = {
        "camera": dataclasses.asdict(meta.camera),
        "parameters": None if meta.parameters is None else dataclasses.asdict(meta.parameters),
        "capture_time": None if meta.capture_time is None else utc(meta.capture_time),
        "timestamps": None
        if any(t is None for t in timestamps)
        else [float(t) for t in timestamps if t is not None],
        "min_c": low if math.isfinite(low) else None,
        "max_c": high if math.isfinite(high) else None,
    }
    content = hashes[0] if len(hashes) == 1 else sequence_id(hashes)
    height, width = first.shape
    return Decoded(
        seq, first, hashes, content, meta.format, width, height, facts, tuple(seq.issues)
    )


def _edge_inspection(edge: EdgeInspection, decoded: Decoded) -> Inspection:
    """The core inspection of the edge's findings, checked against the frames."""
    height, width, count = decoded.height, decoded.width, decoded.frame_count
    if edge.frame is not None and edge.frame >= count:
        raise ApiError(422, f"findings.frame {edge.frame} is outside the file's {count} frame(s)")
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
    """Draft machine annotations from the project's recipe, else from the edge's findings.

    A recipe inspects the decoded frames (a sequence's frames together, which the decode
    limits bound).
    """
    height, width = decoded.height, decoded.width
    base = AnnotatedItem(
        item_id=decoded.content,
        width=width,
        height=height,
        frame_count=decoded.frame_count,
        metadata={"source": filename},
    )
    edge_inspection = None if edge is None else _edge_inspection(edge, decoded)
    inspection: Inspection | None = None
    kwargs: dict[str, Any] = {}
    if recipe_text is not None:
        compiled = ctx.compiled_recipe(recipe_text)
        recipe = compiled.recipe
        if (recipe.frame.height, recipe.frame.width) == (height, width):
            try:
                inspection = _recipe_inspection(decoded, compiled.plan, filename)
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


def _recipe_inspection(decoded: Decoded, plan: InspectionPlan, filename: str) -> Inspection:
    """The recipe's inspection of the item. A sequence is inspected as a whole (every frame
    decoded at once, within the decode limits) only when the recipe has sequence rules;
    otherwise its rules look at one frame (``sequence.frame``), and only that one is decoded."""
    count = decoded.frame_count
    if count == 1:
        return inspect(decoded.first, plan, source=filename)
    index = plan.sequence.frame
    if plan.sequence_rules or not -count <= index < count:
        return inspect(decoded.sequence, plan, source=filename)
    index %= count
    frame = decoded.first if index == 0 else decoded.sequence[index]
    return dataclasses.replace(inspect(frame, plan, source=filename), frame=index)


def schema_with_labels(schema: dict[str, Any], item: AnnotatedItem) -> dict[str, Any] | None:
    """``schema`` plus an inspection label for every label the drafts use that it lacks
    (``None`` when nothing is missing)."""
    parsed = LabelSchema.from_dict(schema)
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
    decoded = decode(data, filename, ctx.settings.decode_limits)
    with decoded.sequence:
        return _store(ctx, project_id, principal, data, filename, decoded, edge, meta)


def _store(
    ctx: ServerContext,
    project_id: int,
    principal: Principal,
    data: bytes,
    filename: str,
    decoded: Decoded,
    edge: EdgeInspection | None,
    meta: dict[str, Any] | None,
) -> IngestOut:
    """Pre-annotate, store the blobs (decoding each frame again, one at a time) and commit."""
    fid = frame_key(project_id, decoded.content)
    with ctx.db.read() as session:
        existing = session.get(Frame, fid)
        if existing is not None:
            return found(existing)
        project = session.get(Project, project_id)
        if project is None:
            raise not_found(f"project {project_id}")
        recipe_text = project.recipe_text
    pre = preannotate(ctx, decoded, recipe_text, edge, filename)
    content = decoded.content
    prefix = f"celsius/{content[:2]}/{content}"
    for index in range(decoded.frame_count):
        frame = decoded.first if index == 0 else decoded.sequence[index]
        data_c = frame.celsius.astype("<f4").tobytes()
        ctx.blobs.put(celsius_key(prefix, index), gzip.compress(data_c, compresslevel=1, mtime=0))
        del frame, data_c
    original_key = f"originals/{content[:2]}/{content}/{hashlib.sha256(data).hexdigest()}"
    ctx.blobs.put(original_key, data)
    try:
        created = _commit(
            ctx, project_id, principal, fid, decoded, pre, edge, meta, data, original_key, filename
        )
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
                width=decoded.width,
                height=decoded.height,
                frame_count=decoded.frame_count,
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
                issues=list(decoded.issues) or None,
                **decoded.facts,
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
