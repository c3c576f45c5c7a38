"""Ingest (direct and resumable), frame lists and details, °C data and renderings."""

from __future__ import annotations

import gzip
import json
import math
import re
import uuid
from typing import Annotated, Any
from urllib.parse import quote

import numpy as np
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy import func, select, update

from thermoscope.render import PALETTES, encode_png, palette_lut, render
from thermoscope.server.annotating import FrameRef, frame_access, load_frame
from thermoscope.server.auth import Action, Principal, require
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import AnnotationRow, Frame, Upload, now, utc
from thermoscope.server.downloads import blob_response
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.ingest import found, ingest_bytes
from thermoscope.server.routers.deps import Caller, Ctx, HexId, Limit, Offset, ProjectId
from thermoscope.server.schemas.common import Items, Page, Palette
from thermoscope.server.schemas.frames import (
    EdgeInspection,
    FrameDetail,
    FrameOut,
    IngestOut,
    UploadIn,
    UploadOut,
)
from thermoscope.server.uploads import complete
from thermoscope.storage.identity import celsius_key, read_celsius

router = APIRouter(tags=["frames"])

_RANGE = re.compile(r"^bytes (\d{1,19})-(\d{1,19})/(\d{1,19})$")
#: Largest ``findings`` or ``meta`` form field.
MAX_FIELD_BYTES = 4 << 20
IMMUTABLE = "private, max-age=31536000, immutable"


def frame_out(frame: Frame) -> FrameOut:
    """The list form of a frame."""
    return FrameOut(
        id=frame.id,
        project_id=frame.project_id,
        filename=frame.filename,
        format=frame.format,
        width=frame.width,
        height=frame.height,
        frame_count=frame.frame_count,
        status=frame.status,
        verdict=frame.verdict,
        machine_verdict=frame.machine_verdict,
        confidence=frame.confidence,
        disagreement=frame.disagreement,
        created_at=utc(frame.created_at),
        issues=list(frame.issues or []),
        model_score=frame.model_score,
        model_margin=frame.model_margin,
        model_version=frame.model_version,
        heatmap=frame.heatmap_key is not None,
    )


def _edge(text: str | None) -> EdgeInspection | None:
    if text is None or not text.strip():
        return None
    try:
        return EdgeInspection.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'findings'}: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise ApiError(422, f"findings: {problems}") from None


def _meta(text: str | None) -> dict[str, Any] | None:
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(422, f"meta: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(422, "meta: must be a JSON object")
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise ApiError(422, "meta: numbers must be finite") from None
    return value


@router.post(
    "/projects/{pid}/frames",
    response_model=IngestOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": IngestOut, "description": "already ingested"}},
)
def ingest_frame(
    pid: ProjectId,
    file: Annotated[UploadFile, File(description="a radiometric file")],
    caller: Caller,
    ctx: Ctx,
    response: Response,
    findings: Annotated[
        str | None, Form(max_length=MAX_FIELD_BYTES, description="the edge's inspection JSON")
    ] = None,
    meta: Annotated[
        str | None, Form(max_length=MAX_FIELD_BYTES, description="a JSON object kept as is")
    ] = None,
) -> IngestOut:
    """Ingest a file as a frame (201), or find it by its content hash (200)."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.INGEST)
    edge, extra = _edge(findings), _meta(meta)
    data = file.file.read(ctx.settings.max_upload_bytes + 1)
    if len(data) > ctx.settings.max_upload_bytes:
        raise ApiError(413, f"file larger than {ctx.settings.max_upload_bytes} bytes")
    result = ingest_bytes(ctx, pid, caller, data, file.filename or "upload", edge=edge, meta=extra)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result


# --------------------------------------------------------------------------- resumable uploads


def _upload_out(upload: Upload) -> UploadOut:
    return UploadOut(
        upload_id=upload.id,
        offset=upload.offset,
        size=upload.size,
        state=upload.state,
        frame_id=upload.frame_id,
    )


def _own_upload(ctx: ServerContext, caller: Principal, upload_id: str) -> Upload:
    with ctx.db.read() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or (upload.user_id != caller.user_id and not caller.is_admin):
            raise not_found(f"upload {upload_id}")
        require(session, caller, upload.project_id, Action.INGEST)
        return upload


@router.post(
    "/uploads",
    response_model=UploadOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": UploadOut, "description": "an unfinished upload resumed"}},
)
def open_upload(body: UploadIn, caller: Caller, ctx: Ctx, response: Response) -> UploadOut:
    """Open a resumable upload, or find the caller's unfinished one of the same file."""
    if body.size > ctx.settings.max_upload_bytes:
        raise ApiError(413, f"file of {body.size} bytes exceeds {ctx.settings.max_upload_bytes}")
    sha = body.sha256.lower()
    with ctx.db.write() as session:
        require(session, caller, body.project_id, Action.INGEST)
        found = session.scalars(
            select(Upload).where(
                Upload.project_id == body.project_id,
                Upload.user_id == caller.user_id,
                Upload.size == body.size,
                Upload.sha256 == sha,
                Upload.state == "open",
            )
        ).first()
        if found is not None:
            response.status_code = status.HTTP_200_OK
            return _upload_out(found)
        upload = Upload(
            id=uuid.uuid4().hex,
            project_id=body.project_id,
            user_id=caller.user_id,
            filename=body.filename,
            size=body.size,
            sha256=sha,
            offset=0,
            chunks=[],
            state="open",
            findings=None if body.findings is None else body.findings.model_dump(mode="json"),
            meta=body.meta,
        )
        session.add(upload)
        return _upload_out(upload)


@router.get("/uploads/{upload_id}", response_model=UploadOut)
def get_upload(upload_id: HexId, caller: Caller, ctx: Ctx) -> UploadOut:
    """Where an upload stands (resume from ``offset``)."""
    return _upload_out(_own_upload(ctx, caller, upload_id))


def _store_chunk(
    ctx: ServerContext, caller: Principal, upload_id: str, start: int, data: bytes
) -> UploadOut:
    upload = _own_upload(ctx, caller, upload_id)
    if upload.state != "open":
        raise ApiError(
            409, f"upload {upload_id} is {upload.state}", extra={"offset": upload.offset}
        )
    if start != upload.offset:
        raise ApiError(
            409,
            f"chunk starts at byte {start}, the upload is at byte {upload.offset}",
            extra={"offset": upload.offset},
        )
    key = f"uploads/{upload_id}/{start:020d}-{uuid.uuid4().hex[:8]}"
    ctx.blobs.put(key, data)
    with ctx.db.write() as session:
        result = session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.offset == start, Upload.state == "open")
            .values(offset=start + len(data), chunks=[*upload.chunks, key], updated_at=now())
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            ctx.blobs.delete(key)
            current = session.get(Upload, upload_id)
            offset = current.offset if current is not None else 0
            raise ApiError(409, "another chunk was stored first", extra={"offset": offset})
    upload.offset = start + len(data)
    return _upload_out(upload)


@router.put(
    "/uploads/{upload_id}",
    response_model=UploadOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        "parameters": [
            {
                "name": "Content-Range",
                "in": "header",
                "required": True,
                "schema": {"type": "string", "pattern": r"^bytes \d+-\d+/\d+$"},
                "description": "bytes a-b/total of this chunk (inclusive)",
            }
        ],
    },
)
async def put_chunk(upload_id: HexId, request: Request, caller: Caller, ctx: Ctx) -> UploadOut:
    """Append the bytes ``a..b`` (``Content-Range: bytes a-b/total``) at the current offset."""
    match = _RANGE.match(request.headers.get("content-range", ""))
    if match is None:
        raise ApiError(400, "send Content-Range: bytes <first>-<last>/<total>")
    first, last, total = (int(g) for g in match.groups())
    if last < first:
        raise ApiError(400, f"Content-Range: last byte {last} before first byte {first}")
    length = last - first + 1
    if length > ctx.settings.max_chunk_bytes:
        raise ApiError(413, f"chunk of {length} bytes exceeds {ctx.settings.max_chunk_bytes}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != length:
        raise ApiError(400, f"Content-Length {declared} does not match Content-Range ({length})")
    upload = await run_in_threadpool(_own_upload, ctx, caller, upload_id)
    if total != upload.size:
        raise ApiError(400, f"Content-Range total {total} is not the upload's size {upload.size}")
    if last >= upload.size:
        raise ApiError(400, f"Content-Range ends at byte {last}, past the file's end")
    data = bytearray()
    async for piece in request.stream():
        data.extend(piece)
        if len(data) > length:
            break
    if len(data) != length:
        raise ApiError(400, f"body has {len(data)} bytes, Content-Range says {length}")
    return await run_in_threadpool(_store_chunk, ctx, caller, upload_id, first, bytes(data))


@router.post(
    "/uploads/{upload_id}/complete",
    response_model=IngestOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": IngestOut, "description": "already ingested"}},
)
def complete_upload(upload_id: HexId, caller: Caller, ctx: Ctx, response: Response) -> IngestOut:
    """Check the whole file against its sha256 and ingest it, as ``POST .../frames`` (the
    chunks are streamed through a temporary file, never joined in memory)."""
    upload = _own_upload(ctx, caller, upload_id)
    if upload.state == "complete" and upload.frame_id is not None:
        with ctx.db.read() as session:
            frame = session.get(Frame, upload.frame_id)
        if frame is not None:
            response.status_code = status.HTTP_200_OK
            return found(frame)
    if upload.offset < upload.size:
        raise ApiError(
            409,
            f"{upload.size - upload.offset} bytes are missing (upload at byte {upload.offset} "
            f"of {upload.size})",
            extra={"offset": upload.offset},
        )
    result = complete(ctx, caller, upload)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return result


# --------------------------------------------------------------------------- frames


@router.get("/projects/{pid}/frames", response_model=Page[FrameOut])
def list_frames(
    pid: ProjectId,
    caller: Caller,
    ctx: Ctx,
    offset: Offset = 0,
    limit: Limit = 50,
    status: Annotated[
        str | None, Query(pattern="^(new|in_progress|submitted|accepted|rejected)$")
    ] = None,
    verdict: Annotated[str | None, Query(pattern="^(OK|NG|none)$")] = None,
) -> Page[FrameOut]:
    """The frames of a project, newest first."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        query = select(Frame).where(Frame.project_id == pid)
        if status is not None:
            query = query.where(Frame.status == status)
        if verdict == "none":
            query = query.where(Frame.verdict.is_(None))
        elif verdict is not None:
            query = query.where(Frame.verdict == verdict)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        frames = session.scalars(
            query.order_by(Frame.created_at.desc(), Frame.id).offset(offset).limit(limit)
        )
        return Page(items=[frame_out(f) for f in frames], total=total, offset=offset, limit=limit)


@router.get("/frames/{fid}", response_model=FrameDetail)
def get_frame(fid: HexId, caller: Caller, ctx: Ctx) -> FrameDetail:
    """Everything about a frame."""
    with ctx.db.read() as session:
        frame, _ = load_frame(session, caller, fid, Action.READ)
        revision = session.scalar(
            select(AnnotationRow.revision).where(AnnotationRow.frame_id == fid)
        )
    return FrameDetail(
        **frame_out(frame).model_dump(),
        content_hash=frame.content_hash,
        size_bytes=frame.size_bytes,
        camera=frame.camera,
        parameters=frame.parameters,
        capture_time=None if frame.capture_time is None else utc(frame.capture_time),
        timestamps_s=frame.timestamps,
        findings=frame.findings,
        machine_findings=frame.machine_findings,
        meta=frame.meta,
        min_c=frame.min_c,
        max_c=frame.max_c,
        revision=revision or 0,
    )


FrameIndex = Annotated[int, Query(ge=0, le=10**7, description="frame of a sequence (0-based)")]


def _frame_index(frame: FrameRef, index: int) -> None:
    if index >= frame.frame_count:
        raise ApiError(
            422, f"frame {index} out of range: the item has {frame.frame_count} frame(s)"
        )


@router.get(
    "/frames/{fid}/celsius",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "HxW float32"}},
)
def get_celsius(
    fid: HexId, caller: Caller, ctx: Ctx, request: Request, frame: FrameIndex = 0
) -> Response:
    """The °C of one frame: HxW float32 little-endian, row-major (``X-Width``, ``X-Height``);
    gzip-encoded when the client accepts it (stored compressed: no work per request)."""
    with ctx.db.read() as session:
        row = frame_access(session, caller, fid, Action.READ)
    _frame_index(row, frame)
    etag = f'"{row.content_hash}-{frame}"'
    headers = {
        "X-Width": str(row.width),
        "X-Height": str(row.height),
        "X-Frame-Count": str(row.frame_count),
        "X-Frame-Index": str(frame),
        "ETag": etag,
        "Cache-Control": IMMUTABLE,
        "Vary": "Accept-Encoding",
        "Access-Control-Expose-Headers": "X-Width, X-Height, X-Frame-Count, X-Frame-Index",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    data = ctx.blobs.get(celsius_key(row.celsius_prefix, frame))
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
    else:
        data = gzip.decompress(data)
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.get(
    "/frames/{fid}/render.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "false-colour PNG"}},
)
def get_render(
    fid: HexId,
    caller: Caller,
    ctx: Ctx,
    frame: FrameIndex = 0,
    palette: Annotated[str, Query(max_length=40)] = "iron",
    low: Annotated[float | None, Query(ge=-273.15, le=10000.0)] = None,
    high: Annotated[float | None, Query(ge=-273.15, le=10000.0)] = None,
) -> Response:
    """A false-colour PNG of a frame (``low``..``high`` °C; default 1st..99th percentile)."""
    if palette not in PALETTES:
        raise ApiError(422, f"unknown palette {palette!r}; choose from {', '.join(PALETTES)}")
    if (low is None) != (high is None):
        raise ApiError(422, "give both low and high, or neither")
    if low is not None and high is not None and not (math.isfinite(low) and low < high):
        raise ApiError(422, f"low {low} must be below high {high}")
    with ctx.db.read() as session:
        row = frame_access(session, caller, fid, Action.READ)
    _frame_index(row, frame)
    data = read_celsius(ctx.blobs, row.celsius_prefix, frame)
    celsius = np.frombuffer(data, dtype="<f4").reshape(row.height, row.width)
    span = None if low is None or high is None else (low, high)
    image = render(celsius, palette=palette, range=span)
    return Response(
        encode_png(image),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=3600"},
    )


@router.get(
    "/frames/{fid}/original",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the file"},
        206: {"content": {"application/octet-stream": {}}, "description": "a byte range"},
        416: {"description": "the byte range lies past the end of the file"},
    },
)
def get_original(
    fid: HexId,
    caller: Caller,
    ctx: Ctx,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The file as it was uploaded, streamed from the blob store (one ``Range`` of bytes may
    be asked for)."""
    with ctx.db.read() as session:
        frame, _ = load_frame(session, caller, fid, Action.READ)
    name = frame.filename.replace('"', "").replace("\\", "")
    return blob_response(
        ctx.blobs,
        frame.original_key,
        range_header,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "Cache-Control": IMMUTABLE,
        },
    )


@router.get("/palettes", response_model=Items[Palette])
def list_palettes() -> Items[Palette]:
    """The palettes the server renders with, 256 RGB colours each (coldest first)."""
    return Items(items=[Palette(name=n, colors=palette_lut(n).tolist()) for n in PALETTES])
