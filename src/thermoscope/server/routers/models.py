"""Model releases of a project (upload, list, activate, download), training jobs, and the
model's heat map of a frame."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status
from sqlalchemy import func, select

from thermoscope.server.annotating import frame_access
from thermoscope.server.auth import Action, require
from thermoscope.server.db.models import DatasetVersion, Frame, ModelRelease, utc
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.jobs import add_job
from thermoscope.server.releases import activate as activate_release
from thermoscope.server.releases import active_release, add_release
from thermoscope.server.routers.deps import Caller, Ctx, HexId, Limit, Offset, ProjectId
from thermoscope.server.schemas.common import JobAccepted, Page
from thermoscope.server.schemas.models import ModelOut, ScoreIn, TrainIn

router = APIRouter(tags=["models"])

Version = Annotated[int, Path(ge=1, le=2**62, description="a release version")]
ZIP = "application/zip"


def model_out(row: ModelRelease) -> ModelOut:
    """The API form of a stored release."""
    manifest = row.manifest
    return ModelOut(
        version=row.version,
        name=row.name,
        kind=row.kind,
        created=utc(row.created),
        expires=utc(row.expires),
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        active=row.active,
        signed=row.signed,
        classes=list(manifest.get("classes", [])),
        thresholds=dict(manifest.get("thresholds", {})),
        metrics=dict(manifest.get("metrics", {})),
        uploaded_by=row.uploaded_by,
        uploaded_at=utc(row.uploaded_at),
    )


@router.post(
    "/projects/{pid}/models",
    response_model=ModelOut,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "refused: unsigned, altered, expired or not newer"}},
)
def upload_model(
    pid: ProjectId,
    caller: Caller,
    ctx: Ctx,
    body: Annotated[
        bytes,
        Body(
            media_type="application/octet-stream",
            description="a signed release folder as zip (sent as application/zip or "
            "application/octet-stream)",
        ),
    ],
) -> ModelOut:
    """Add a signed release (a zip of its folder) to the project's models, inactive."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.MANAGE)
    if not body:
        raise ApiError(422, "the body is empty: send the release folder as a zip")
    return model_out(add_release(ctx, pid, body, signed=True, by=caller.username))


@router.get("/projects/{pid}/models", response_model=Page[ModelOut])
def list_models(
    pid: ProjectId, caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50
) -> Page[ModelOut]:
    """The project's releases, newest version first."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        where = ModelRelease.project_id == pid
        total = session.scalar(select(func.count()).select_from(ModelRelease).where(where))
        rows = session.scalars(
            select(ModelRelease)
            .where(where)
            .order_by(ModelRelease.version.desc())
            .offset(offset)
            .limit(limit)
        )
        return Page(
            items=[model_out(r) for r in rows], total=total or 0, offset=offset, limit=limit
        )


@router.get("/projects/{pid}/models/active", response_model=ModelOut)
def get_active_model(pid: ProjectId, caller: Caller, ctx: Ctx) -> ModelOut:
    """The release ingest pre-annotates with (404 when none is active)."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        row = active_release(session, pid)
        if row is None:
            raise not_found(f"an active model of project {pid}")
        return model_out(row)


@router.post("/projects/{pid}/models/{version}/activate", response_model=ModelOut)
def activate_model(pid: ProjectId, version: Version, caller: Caller, ctx: Ctx) -> ModelOut:
    """Make a release the project's active model (project admins)."""
    with ctx.db.write() as session:
        require(session, caller, pid, Action.MANAGE)
        return model_out(activate_release(session, pid, version))


@router.get(
    "/projects/{pid}/models/{version}/release.zip",
    response_class=Response,
    responses={200: {"content": {ZIP: {}}, "description": "the release zip"}},
)
def download_model(pid: ProjectId, version: Version, caller: Caller, ctx: Ctx) -> Response:
    """The release zip as uploaded (verify it again before running it)."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        row = session.scalars(
            select(ModelRelease).where(
                ModelRelease.project_id == pid, ModelRelease.version == version
            )
        ).first()
        if row is None:
            raise not_found(f"model version {version} of project {pid}")
        key, name, digest = row.blob_key, row.name, row.sha256
    return Response(
        ctx.blobs.get(key),
        media_type=ZIP,
        headers={
            "Content-Disposition": f'attachment; filename="{name}-v{version}.zip"',
            "ETag": f'"{digest}"',
        },
    )


@router.post(
    "/projects/{pid}/models/train",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
def train_model(pid: ProjectId, body: TrainIn, caller: Caller, ctx: Ctx) -> JobAccepted:
    """Train a model from a dataset version of the project (a background job; its result
    names the new release version)."""
    with ctx.db.write() as session:
        require(session, caller, pid, Action.MANAGE)
        version = session.get(DatasetVersion, body.version_id)
        if version is None or version.project_id != pid:
            raise not_found(f"dataset version {body.version_id} of project {pid}")
        job = add_job(
            session,
            "train_model",
            pid,
            body.model_dump() | {"project_id": pid, "username": caller.username},
            caller.username,
        )
    if ctx.jobs is not None:
        ctx.jobs.wake()
    return JobAccepted(job_id=job.id)


@router.post(
    "/projects/{pid}/models/active/score",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
def score_frames(pid: ProjectId, body: ScoreIn, caller: Caller, ctx: Ctx) -> JobAccepted:
    """Score the project's frames not yet accepted with the active model (a background job):
    their ``model_score``, ``model_margin`` and heat map, for the review queue's uncertainty
    order (frames ingested before the model was active have none). Drafts stay as they are."""
    with ctx.db.write() as session:
        require(session, caller, pid, Action.REVIEW)
        if active_release(session, pid) is None:
            raise not_found(f"an active model of project {pid}")
        job = add_job(
            session,
            "score_frames",
            pid,
            body.model_dump() | {"project_id": pid, "username": caller.username},
            caller.username,
        )
    if ctx.jobs is not None:
        ctx.jobs.wake()
    return JobAccepted(job_id=job.id)


@router.get(
    "/frames/{fid}/heatmap",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "HxW float32"},
        404: {"description": "no such frame, or no model heat map of it"},
    },
)
def get_heatmap(fid: HexId, caller: Caller, ctx: Ctx) -> Response:
    """The heat map of the model that pre-annotated the frame: HxW float32 little-endian,
    row-major, 0..1 (``X-Width``, ``X-Height``, ``X-Model``)."""
    with ctx.db.read() as session:
        ref = frame_access(session, caller, fid, Action.READ)
        frame = session.get(Frame, ref.id)
        key = None if frame is None else frame.heatmap_key
        model = "" if frame is None else frame.model_version or ""
    if key is None:
        raise not_found(f"a heat map of frame {fid}")
    return Response(
        ctx.blobs.get(key),
        media_type="application/octet-stream",
        headers={
            "X-Width": str(ref.width),
            "X-Height": str(ref.height),
            "X-Model": model,
            "Cache-Control": "private, max-age=31536000, immutable",
            "Access-Control-Expose-Headers": "X-Width, X-Height, X-Model",
        },
    )
