"""Annotation reads and writes with optimistic concurrency, review actions and the facts the
review queue orders by.

A save names the revision it was made from. The write is one conditional ``UPDATE ... WHERE
revision = <that>``: when another save came in between, nothing is written and the caller gets
409 with the current revision and item, so two people editing one frame never silently
overwrite each other. Every revision is also kept in ``annotation_revisions``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from thermoscope.annotations import AnnotatedItem, AnnotationError, LabelSchema, ReviewState
from thermoscope.datasets.store import summarise
from thermoscope.server.auth import Action, Principal, require
from thermoscope.server.context import ServerContext
from thermoscope.server.db.models import (
    AnnotationRevision,
    AnnotationRow,
    Frame,
    Project,
    ReviewEvent,
    Task,
    VerdictVote,
    now,
    utc,
)
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.ingest import item_json
from thermoscope.server.schemas.annotations import AnnotationOut, ReviewOut

#: The kinds of records an item holds (each has a review state).
_RECORD_KINDS = ("annotations", "tracks", "verdicts", "tolerances")


def load_frame(
    session: Session, principal: Principal, frame_id: str, action: Action
) -> tuple[Frame, Project]:
    """The frame and its project when the principal may do ``action`` on it (404 otherwise)."""
    frame = session.get(Frame, frame_id)
    if frame is None:
        raise not_found(f"frame {frame_id}")
    try:
        project = require(session, principal, frame.project_id, action)
    except ApiError as exc:
        if exc.status == 404:
            raise not_found(f"frame {frame_id}") from None
        raise
    return frame, project


def annotation_out(row: AnnotationRow) -> AnnotationOut:
    """The API form of a stored annotation."""
    return AnnotationOut(
        item=json.loads(row.item),
        revision=row.revision,
        updated_at=utc(row.updated_at),
        updated_by=row.updated_by,
    )


def get_annotation(ctx: ServerContext, principal: Principal, frame_id: str) -> AnnotationOut:
    """The current annotation of a frame."""
    with ctx.db.read() as session:
        load_frame(session, principal, frame_id, Action.READ)
        row = session.get(AnnotationRow, frame_id)
        if row is None:
            raise not_found(f"annotation of frame {frame_id}")
        return annotation_out(row)


def parse_item(data: dict[str, Any], frame: Frame, schema: dict[str, Any]) -> AnnotatedItem:
    """The item of a request, checked against the project schema and the frame; 422 else."""
    try:
        item = AnnotatedItem.from_dict(data, schema=LabelSchema.from_dict(schema))
    except AnnotationError as exc:
        raise ApiError(422, str(exc)) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise ApiError(422, f"item: {exc}") from None
    if item.item_id != frame.content_hash:
        raise ApiError(
            422,
            f"item.item_id {item.item_id!r} is not this frame's content hash "
            f"{frame.content_hash!r}",
        )
    want = (frame.width, frame.height, frame.frame_count)
    got = (item.width, item.height, item.frame_count)
    if got != want:
        raise ApiError(
            422,
            f"item is {got[0]}x{got[1]} px with {got[2]} frame(s); the frame is "
            f"{want[0]}x{want[1]} px with {want[2]} frame(s)",
        )
    return item


def _records(item: AnnotatedItem) -> list[Any]:
    return [r for kind in _RECORD_KINDS for r in getattr(item, kind)]


def status_of(item: AnnotatedItem, human_edited: bool) -> str:
    """A frame's status from its records' review states."""
    states = {r.review.state for r in _records(item)}
    if ReviewState.SUBMITTED in states:
        return "submitted"
    if ReviewState.REJECTED in states:
        return "rejected"
    if states == {ReviewState.ACCEPTED}:
        return "accepted"
    return "in_progress" if human_edited else "new"


def confidence_of(item: AnnotatedItem) -> float | None:
    """The lowest model score among the item's machine-made records."""
    scores = [
        r.provenance.score
        for r in _records(item)
        if r.provenance.machine_made and r.provenance.score is not None
    ]
    return min(scores) if scores else None


def _update_facts(
    session: Session, frame: Frame, item: AnnotatedItem, author: str, human: bool
) -> None:
    """Refresh the frame's status, verdict, confidence and disagreement after a save."""
    verdict = summarise(item).verdict
    if human:
        frame.human_edited = True
        vote = session.get(VerdictVote, (frame.id, author))
        if verdict is None and vote is not None:
            session.delete(vote)
        elif verdict is not None and vote is None:
            session.add(VerdictVote(frame_id=frame.id, author=author, verdict=verdict))
        elif vote is not None and verdict is not None:
            vote.verdict = verdict
        session.flush()
    votes = set(
        session.scalars(select(VerdictVote.verdict).where(VerdictVote.frame_id == frame.id))
    )
    frame.verdict = verdict
    frame.status = status_of(item, frame.human_edited)
    frame.confidence = confidence_of(item)
    frame.disagreement = len(votes) > 1 or (
        frame.human_edited
        and frame.machine_verdict is not None
        and verdict is not None
        and verdict != frame.machine_verdict
    )


def _conflict(row: AnnotationRow, base: int) -> ApiError:
    return ApiError(
        409,
        f"the annotation changed since revision {base}: it is at revision {row.revision} "
        f"(saved by {row.updated_by}); reload, merge and save again",
        extra={"revision": row.revision, "item": json.loads(row.item)},
    )


def write_item(
    session: Session,
    frame: Frame,
    item: AnnotatedItem,
    base: int,
    author: str,
    *,
    at: datetime | None = None,
) -> AnnotationRow:
    """Save ``item`` over revision ``base`` in the open transaction; 409 when stale."""
    text = item_json(item)
    moment = at or now()
    result = session.execute(
        update(AnnotationRow)
        .where(AnnotationRow.frame_id == frame.id, AnnotationRow.revision == base)
        .values(item=text, revision=base + 1, updated_by=author, updated_at=moment)
        .execution_options(synchronize_session=False)
    )
    row = session.get(AnnotationRow, frame.id, populate_existing=True)
    if row is None:
        raise not_found(f"annotation of frame {frame.id}")
    if getattr(result, "rowcount", 0) != 1:
        raise _conflict(row, base)
    session.add(
        AnnotationRevision(
            frame_id=frame.id, revision=base + 1, item=text, author=author, created_at=moment
        )
    )
    _update_facts(session, frame, item, author, human=True)
    return row


def save_annotation(
    ctx: ServerContext,
    principal: Principal,
    frame_id: str,
    data: dict[str, Any],
    base: int | None,
) -> AnnotationOut:
    """Validate and save an annotation over revision ``base``."""
    if base is None:
        raise ApiError(
            428, "say which revision you edited: 'revision' in the body or an If-Match header"
        )
    with ctx.db.read() as session:
        found, project = load_frame(session, principal, frame_id, Action.ANNOTATE)
        item = parse_item(data, found, project.label_schema)
    with ctx.db.write() as session:
        frame = session.get(Frame, frame_id)
        if frame is None:
            raise not_found(f"frame {frame_id}")
        row = write_item(session, frame, item, base, principal.username)
        return annotation_out(row)


def _move(item: AnnotatedItem, action: str, by: str, comment: str) -> tuple[AnnotatedItem, int]:
    """The item with every record that ``action`` applies to moved on, and how many moved."""
    need = ReviewState.DRAFT if action == "submit" else ReviewState.SUBMITTED
    moved = 0

    def step(record: Any) -> Any:
        nonlocal moved
        if record.review.state is not need:
            return record
        moved += 1
        if action == "submit":
            return record.submit(by=by)
        if action == "accept":
            return record.accept(by=by, comment=comment)
        return record.reject(by=by, comment=comment)

    moved_item = dataclasses.replace(
        item,
        annotations=tuple(step(r) for r in item.annotations),
        tracks=tuple(step(r) for r in item.tracks),
        verdicts=tuple(step(r) for r in item.verdicts),
        tolerances=tuple(step(r) for r in item.tolerances),
    )
    return moved_item, moved


def review(
    ctx: ServerContext,
    principal: Principal,
    frame_id: str,
    action: str,
    comment: str,
    base: int | None,
) -> ReviewOut:
    """Apply a review action to every record of a frame's annotation it applies to."""
    need = Action.ANNOTATE if action == "submit" else Action.REVIEW
    if action == "reject" and not comment.strip():
        raise ApiError(422, "a rejection needs a comment saying what to fix")
    with ctx.db.read() as session:
        load_frame(session, principal, frame_id, need)
    attempts = 1 if base is not None else 5
    for attempt in range(attempts):  # without a base revision, retry when a save overtook us
        with ctx.db.read() as session:
            row = session.get(AnnotationRow, frame_id)
            if row is None:
                raise not_found(f"annotation of frame {frame_id}")
            current, text = row.revision, row.item
        if base is not None and base != current:
            with ctx.db.read() as session:
                found = session.get(AnnotationRow, frame_id)
                assert found is not None
                raise _conflict(found, base)
        item = AnnotatedItem.from_dict(json.loads(text))
        moved_item, moved = _move(item, action, principal.username, comment)
        if not moved:
            state = "draft" if action == "submit" else "submitted"
            raise ApiError(422, f"nothing to {action}: no record of this frame is {state}")
        try:
            with ctx.db.write() as session:
                frame = session.get(Frame, frame_id)
                if frame is None:
                    raise not_found(f"frame {frame_id}")
                saved = write_item(session, frame, moved_item, current, principal.username)
                session.add(
                    ReviewEvent(
                        frame_id=frame_id,
                        username=principal.username,
                        action=action,
                        comment=comment,
                    )
                )
                if action == "submit":
                    session.execute(
                        update(Task)
                        .where(Task.frame_id == frame_id, Task.state == "open")
                        .values(state="done")
                        .execution_options(synchronize_session=False)
                    )
                return ReviewOut(
                    item=json.loads(saved.item), revision=saved.revision, status=frame.status
                )
        except ApiError as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise
    raise ApiError(409, "the annotation kept changing; try again")
