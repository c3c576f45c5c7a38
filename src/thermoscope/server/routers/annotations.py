"""Annotations (optimistic concurrency), review actions, tasks and the review queue."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response, status
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from thermoscope.server.annotating import get_annotation, review, save_annotation
from thermoscope.server.auth import Action, require
from thermoscope.server.db.models import Frame, Membership, Task, User, utc
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.routers.deps import Caller, Ctx, HexId, Limit, Offset, ProjectId
from thermoscope.server.routers.frames import frame_out
from thermoscope.server.schemas.annotations import (
    AnnotationIn,
    AnnotationOut,
    QueueEntry,
    ReviewIn,
    ReviewOut,
    TaskIn,
    TaskOut,
)
from thermoscope.server.schemas.common import Items, Page

router = APIRouter(tags=["annotations"])

#: Confidence below which the review queue calls a model's drafts uncertain.
LOW_CONFIDENCE = 0.5
#: Distance of a model score from its threshold below which the queue calls the model unsure.
UNCERTAIN_MARGIN = 0.1
#: The frame statuses of each stage of the queue: waiting for a reviewer, or for an annotator.
STAGES = {"review": ("submitted",), "annotate": ("new", "in_progress", "rejected")}


def _revision(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 18:
        raise ApiError(400, f"If-Match must be a revision number, got {if_match!r}")
    return int(text)


@router.get("/frames/{fid}/annotations", response_model=AnnotationOut)
def read_annotation(fid: HexId, caller: Caller, ctx: Ctx) -> Response:
    """The frame's annotation and its revision (also as ``ETag``)."""
    text, revision = get_annotation(ctx, caller, fid)
    return Response(text, media_type="application/json", headers={"ETag": f'"{revision}"'})


@router.put(
    "/frames/{fid}/annotations",
    response_model=AnnotationOut,
    responses={
        409: {"description": "saved by someone else in between: current revision and item"},
        428: {"description": "no revision given"},
    },
)
def write_annotation(
    fid: HexId,
    body: AnnotationIn,
    caller: Caller,
    ctx: Ctx,
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> Response:
    """Save the annotation over the revision it was edited from (409 when that is stale)."""
    base = body.revision if body.revision is not None else _revision(if_match)
    saved = save_annotation(ctx, caller, fid, body.item, base)
    return Response(
        saved.json(caller.username),
        media_type="application/json",
        headers={"ETag": f'"{saved.revision}"'},
    )


@router.post("/frames/{fid}/review", response_model=ReviewOut)
def review_frame(fid: HexId, body: ReviewIn, caller: Caller, ctx: Ctx) -> ReviewOut:
    """Submit (annotators) or accept / reject (reviewers) the frame's records."""
    return review(ctx, caller, fid, body.action, body.comment, body.revision)


def _task_out(task: Task, assignee: str) -> TaskOut:
    return TaskOut(
        id=task.id,
        project_id=task.project_id,
        frame_id=task.frame_id,
        assignee=assignee,
        state=task.state,
        created_by=task.created_by,
        created_at=utc(task.created_at),
    )


@router.get("/projects/{pid}/tasks", response_model=Page[TaskOut])
def list_tasks(
    pid: ProjectId,
    caller: Caller,
    ctx: Ctx,
    offset: Offset = 0,
    limit: Limit = 50,
    assignee: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="me or a user name")
    ] = None,
    state: Annotated[str | None, Query(pattern="^(open|done)$")] = None,
) -> Page[TaskOut]:
    """Tasks of a project (``assignee=me`` for the caller's)."""
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        query = (
            select(Task, User.username)
            .join(User, User.id == Task.assignee_id)
            .where(Task.project_id == pid)
        )
        if assignee == "me":
            query = query.where(Task.assignee_id == caller.user_id)
        elif assignee is not None:
            query = query.where(User.username == assignee)
        if state is not None:
            query = query.where(Task.state == state)
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(Task.id).offset(offset).limit(limit)).all()
        return Page(
            items=[_task_out(t, u) for t, u in rows], total=total, offset=offset, limit=limit
        )


@router.post(
    "/projects/{pid}/tasks", response_model=Items[TaskOut], status_code=status.HTTP_201_CREATED
)
def create_tasks(pid: ProjectId, body: TaskIn, caller: Caller, ctx: Ctx) -> Items[TaskOut]:
    """Assign frames to a member (reviewers and admins)."""
    try:
        with ctx.db.write() as session:
            require(session, caller, pid, Action.REVIEW)
            user = session.scalars(
                select(User)
                .join(Membership, Membership.user_id == User.id)
                .where(User.username == body.assignee, Membership.project_id == pid)
            ).first()
            if user is None:  # the same answer for unknown users and non-members
                raise not_found(f"member {body.assignee!r} of project {pid}")
            out = []
            for fid in dict.fromkeys(body.frame_ids):
                frame = session.get(Frame, fid)
                if frame is None or frame.project_id != pid:
                    raise not_found(f"frame {fid} in project {pid}")
                task = session.scalars(
                    select(Task).where(Task.frame_id == fid, Task.assignee_id == user.id)
                ).first()
                if task is None:
                    task = Task(
                        project_id=pid,
                        frame_id=fid,
                        assignee_id=user.id,
                        state="open",
                        created_by=caller.username,
                    )
                    session.add(task)
                    session.flush()
                else:
                    task.state = "open"
                out.append(_task_out(task, user.username))
            return Items(items=out)
    except IntegrityError:
        raise ApiError(409, "a task for one of these frames was just created; try again") from None


def _reasons(frame: Frame) -> tuple[float, list[str]]:
    reasons = []
    priority = 0.0
    if frame.disagreement:
        priority += 8
        reasons.append("annotators, or the machine and the annotators, disagree on the verdict")
    if (frame.verdict or frame.machine_verdict) == "NG":
        priority += 4
        reasons.append("NG")
    if frame.confidence is not None and frame.confidence < LOW_CONFIDENCE:
        priority += 2 * (1 - frame.confidence)
        reasons.append(f"low model confidence ({frame.confidence:.2f})")
    if frame.status == "submitted":
        priority += 1
        reasons.append("submitted for review")
    if frame.model_margin is not None and frame.model_margin < UNCERTAIN_MARGIN:
        reasons.append(
            f"model {frame.model_version} unsure (score {frame.model_score:.2f}, "
            f"{frame.model_margin:.2f} from its threshold)"
        )
    return priority, reasons


@router.get("/projects/{pid}/review-queue", response_model=Page[QueueEntry])
def review_queue(
    pid: ProjectId,
    caller: Caller,
    ctx: Ctx,
    offset: Offset = 0,
    limit: Limit = 50,
    stage: Annotated[
        Literal["review", "annotate"] | None,
        Query(description="review: submitted frames; annotate: new, in progress or rejected"),
    ] = None,
    order: Annotated[
        Literal["priority", "uncertainty"],
        Query(
            description="priority: disagreement, NG, low confidence, submitted first; "
            "uncertainty (active learning): the frames whose model score lies nearest its "
            "threshold first (|score - threshold| smallest), frames without a model score last"
        ),
    ] = "priority",
) -> Page[QueueEntry]:
    """Frames not yet accepted (of one stage), the ones most in need of a human first."""
    effective = func.coalesce(Frame.verdict, Frame.machine_verdict)
    with ctx.db.read() as session:
        require(session, caller, pid, Action.READ)
        query = select(Frame).where(Frame.project_id == pid, Frame.status != "accepted")
        if stage is not None:
            query = query.where(Frame.status.in_(STAGES[stage]))
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        first = (
            (case((Frame.model_margin.is_(None), 1), else_=0), Frame.model_margin)
            if order == "uncertainty"
            else ()
        )
        frames = session.scalars(
            query.order_by(
                *first,
                case((Frame.disagreement, 0), else_=1),
                case((effective == "NG", 0), else_=1),
                case((Frame.confidence.is_(None), 1), else_=0),
                Frame.confidence,
                case((Frame.status == "submitted", 0), else_=1),
                Frame.created_at,
                Frame.id,
            )
            .offset(offset)
            .limit(limit)
        )
        items = []
        for frame in frames:
            priority, reasons = _reasons(frame)
            items.append(
                QueueEntry(
                    frame=frame_out(frame),
                    priority=priority,
                    reasons=reasons,
                    stage="review" if frame.status in STAGES["review"] else "annotate",
                )
            )
    return Page(items=items, total=total, offset=offset, limit=limit)
