"""Dataset versions, exports and background jobs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status
from sqlalchemy import func, select

from thermoscope.server.auth import Action, Principal, require
from thermoscope.server.context import ServerContext
from thermoscope.server.datasets import export_formats
from thermoscope.server.db.models import DatasetVersion, Export, Job, utc
from thermoscope.server.downloads import blob_response
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.jobs import add_job
from thermoscope.server.routers.deps import Caller, Ctx, HexId, Limit, Offset, ProjectId
from thermoscope.server.schemas.common import Items, JobAccepted, JobOut, Page
from thermoscope.server.schemas.datasets import (
    ExportAccepted,
    ExportIn,
    ExportOut,
    FormatOut,
    VersionIn,
    VersionOut,
)

router = APIRouter(tags=["datasets"])
PREFIX = "/api/v1"


def _version_out(row: DatasetVersion) -> VersionOut:
    return VersionOut(
        id=row.id,
        project_id=row.project_id,
        content_hash=row.content_hash,
        message=row.message,
        item_count=row.item_count,
        stats=row.stats,
        created_by=row.created_by,
        created_at=utc(row.created_at),
    )


def _wake(ctx: ServerContext) -> None:
    if ctx.jobs is not None:
        ctx.jobs.wake()


@router.post(
    "/projects/{pid}/dataset-versions",
    response_model=JobAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
def create_version(pid: ProjectId, body: VersionIn, caller: Caller, ctx: Ctx) -> JobAccepted:
    """Freeze the project's annotations as a dataset version (a background job)."""
    with ctx.db.write() as session:
        require(session, caller, pid, Action.REVIEW)
        job = add_job(
            session,
            "dataset_version",
            pid,
            {
                "project_id": pid,
                "message": body.message,
                "only_accepted": body.only_accepted,
                "username": caller.username,
            },
            caller.username,
        )
    _wake(ctx)
    return JobAccepted(job_id=job.id)


@router.get("/projects/{pid}/dataset-versions", response_model=Page[VersionOut])
def list_versions(
    pid: ProjectId, caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50
) -> Page[VersionOut]:
    """The project's dataset versions, newest first."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        where = DatasetVersion.project_id == pid
        total = session.scalar(select(func.count()).select_from(DatasetVersion).where(where))
        rows = session.scalars(
            select(DatasetVersion)
            .where(where)
            .order_by(DatasetVersion.created_at.desc(), DatasetVersion.id)
            .offset(offset)
            .limit(limit)
        )
        return Page(
            items=[_version_out(r) for r in rows], total=total or 0, offset=offset, limit=limit
        )


def _version(ctx: ServerContext, caller: Principal, vid: str, action: Action) -> DatasetVersion:
    with ctx.db.read() as session:
        row = session.get(DatasetVersion, vid)
        if row is None:
            raise not_found(f"dataset version {vid}")
        try:
            require(session, caller, row.project_id, action)
        except ApiError as exc:
            if exc.status == 404:
                raise not_found(f"dataset version {vid}") from None
            raise
        return row


@router.get("/dataset-versions/{vid}", response_model=VersionOut)
def get_version(vid: HexId, caller: Caller, ctx: Ctx) -> VersionOut:
    """One dataset version."""
    return _version_out(_version(ctx, caller, vid, Action.READ))


@router.get("/export-formats", response_model=Items[FormatOut])
def list_formats(caller: Caller) -> Items[FormatOut]:
    """The formats a version can be exported in."""
    caller.check_scope(Action.READ)
    return Items(
        items=[FormatOut(name=f.name, description=f.description) for f in export_formats().values()]
    )


@router.post(
    "/dataset-versions/{vid}/exports",
    response_model=ExportAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
def create_export(vid: HexId, body: ExportIn, caller: Caller, ctx: Ctx) -> ExportAccepted:
    """Export a version in a format (a background job)."""
    formats = export_formats()
    if body.format not in formats:
        raise ApiError(
            422, f"unknown export format {body.format!r}; choose from {', '.join(formats)}"
        )
    row = _version(ctx, caller, vid, Action.REVIEW)
    export_id = uuid.uuid4().hex
    with ctx.db.write() as session:
        job = add_job(session, "export", row.project_id, {"export_id": export_id}, caller.username)
        session.add(
            Export(
                id=export_id,
                version_id=vid,
                format=body.format,
                state="queued",
                job_id=job.id,
                created_by=caller.username,
            )
        )
    _wake(ctx)
    return ExportAccepted(job_id=job.id, export_id=export_id)


def _export(ctx: ServerContext, caller: Principal, export_id: str) -> tuple[Export, str]:
    with ctx.db.read() as session:
        export = session.get(Export, export_id)
        if export is None:
            raise not_found(f"export {export_id}")
        _version(ctx, caller, export.version_id, Action.READ)
        job = session.get(Job, export.job_id)
        state = export.state
        if state != "done" and job is not None:
            state = job.state if job.state != "done" else "done"
        return export, state


@router.get("/exports/{export_id}", response_model=ExportOut)
def get_export(export_id: HexId, caller: Caller, ctx: Ctx) -> ExportOut:
    """An export and, once done, its download URL."""
    export, state = _export(ctx, caller, export_id)
    return ExportOut(
        id=export.id,
        version_id=export.version_id,
        format=export.format,
        state=state,
        size_bytes=export.size_bytes,
        download_url=f"{PREFIX}/exports/{export.id}/download" if state == "done" else None,
    )


@router.get(
    "/exports/{export_id}/download",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "the export"},
        206: {"content": {"application/zip": {}}, "description": "the byte range asked for"},
        416: {"description": "the byte range lies past the end of the export"},
    },
)
def download_export(
    export_id: HexId,
    caller: Caller,
    ctx: Ctx,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The export's zip file, streamed from the blob store; one ``Range`` of bytes may be
    asked for (409 while the job is not done)."""
    export, state = _export(ctx, caller, export_id)
    if state != "done" or export.blob_key is None:
        raise ApiError(409, f"export {export_id} is {state}, not done")
    return blob_response(
        ctx.blobs,
        export.blob_key,
        range_header,
        media_type="application/zip",
        headers={
            "Content-Disposition": (
                f'attachment; filename="{export.format}-{export.version_id}.zip"'
            )
        },
    )


def result_url(job: Job) -> str | None:
    """Where a finished job's result is."""
    if job.state != "done" or job.result is None:
        return None
    if job.kind == "dataset_version" and "version_id" in job.result:
        return f"{PREFIX}/dataset-versions/{job.result['version_id']}"
    if job.kind == "export" and "export_id" in job.result:
        return f"{PREFIX}/exports/{job.result['export_id']}/download"
    return None


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: HexId, caller: Caller, ctx: Ctx) -> JobOut:
    """A background job's state and progress."""
    with ctx.db.read() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise not_found(f"job {job_id}")
        try:
            require(session, caller, job.project_id, Action.READ)
        except ApiError as exc:
            if exc.status == 404:
                raise not_found(f"job {job_id}") from None
            raise
    return JobOut(
        id=job.id,
        kind=job.kind,
        state=job.state,
        progress=job.progress,
        message=job.message,
        result=job.result,
        result_url=result_url(job),
        error=job.error,
        created_at=utc(job.created_at),
        updated_at=utc(job.updated_at),
    )
