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
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from thermoscope.annotations import AnnotatedItem, AnnotationError, ReviewState
from thermoscope.datasets.store import summarise
from thermoscope.server.auth import (
    ROLE_ACTIONS,
    Action,
    Principal,
    Role,
    check_role,
    require,
)
from thermoscope.server.context import ServerContext
from thermoscope.server.db import queries
from thermoscope.server.db.models import (
    AnnotationRow,
    Frame,
    Project,
    ReviewEvent,
    Task,
    now,
    utc,
)
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.ingest import item_json
from thermoscope.server.schemas.annotations import ReviewOut

log = logging.getLogger(__name__)

#: The kinds of records an item holds (each has a review state).
_RECORD_KINDS = ("annotations", "tracks", "verdicts", "tolerances")


@dataclass(frozen=True, slots=True)
class FrameRef:
    """What the hot paths need of a frame (one query, no JSON columns but the schema)."""

    id: str
    project_id: int
    content_hash: str
    width: int
    height: int
    frame_count: int
    celsius_prefix: str
    machine_verdict: str | None
    label_schema: dict[str, Any]
    #: The principal's role in the frame's project (``admin`` for site administrators).
    role: Role


def frame_access(session: Session, principal: Principal, frame_id: str, action: Action) -> FrameRef:
    """The frame when the principal may do ``action`` on it, in one query (404 otherwise)."""
    row = session.execute(
        queries.FRAME_ACCESS, {"frame_id": frame_id, "user_id": principal.user_id}
    ).first()
    what = f"frame {frame_id}"
    if row is None:
        raise not_found(what)
    fields = dict(row._mapping)
    role = _checked_role(principal, fields.pop("role"), action, what)
    return FrameRef(**fields, role=role)


def _checked_role(principal: Principal, stored: str | None, action: Action, what: str) -> Role:
    """The principal's role from its stored membership (``admin`` for site administrators)
    when it allows ``action`` on ``what``: 404 without a role, 403 when it does not allow."""
    role = Role.ADMIN if principal.is_admin else None if stored is None else Role(stored)
    if role is None:
        raise not_found(what)
    check_role(principal, role, action, what)
    return role


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


def annotation_json(item: str, revision: int, updated_at: datetime, updated_by: str) -> str:
    """The JSON text of ``AnnotationOut``, built around the stored item text (not re-encoded)."""
    meta = json.dumps(
        {
            "revision": revision,
            "updated_at": utc(updated_at).isoformat().replace("+00:00", "Z"),
            "updated_by": updated_by,
        }
    )
    return '{"item":' + item + "," + meta[1:]


def get_annotation(ctx: ServerContext, principal: Principal, frame_id: str) -> tuple[str, int]:
    """The current annotation of a frame as ``AnnotationOut`` JSON text, and its revision."""
    with ctx.db.read() as session:  # access and annotation in one query
        row = session.execute(
            queries.ANNOTATION_ACCESS, {"frame_id": frame_id, "user_id": principal.user_id}
        ).first()
    if row is None:
        raise not_found(f"frame {frame_id}")
    stored_role, item, revision, updated_at, updated_by = row
    _checked_role(principal, stored_role, Action.READ, f"frame {frame_id}")
    if item is None:
        raise not_found(f"annotation of frame {frame_id}")
    return annotation_json(item, revision, updated_at, updated_by), revision


def parse_item(ctx: ServerContext, data: dict[str, Any], frame: FrameRef) -> AnnotatedItem:
    """The item of a request, checked against the project schema and the frame; 422 else."""
    try:
        item = AnnotatedItem.from_dict(data, schema=ctx.label_schema(frame.label_schema))
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


def is_machine_draft(record: Any) -> bool:
    """Whether a model made the record and no person has taken it on yet: no author, and
    still a draft (submitting or reviewing the frame takes its records on)."""
    return bool(record.provenance.machine_made) and record.review.state is ReviewState.DRAFT


def without_machine_drafts(item: AnnotatedItem) -> tuple[AnnotatedItem, int]:
    """The item with only what people made or took on, and how many machine drafts left."""
    kept: dict[str, Any] = {
        kind: tuple(r for r in getattr(item, kind) if not is_machine_draft(r))
        for kind in _RECORD_KINDS
    }
    dropped = sum(len(getattr(item, kind)) - len(kept[kind]) for kind in _RECORD_KINDS)
    return (dataclasses.replace(item, **kept) if dropped else item), dropped


def has_records(item: AnnotatedItem) -> bool:
    """Whether the item holds any annotation, track, verdict or tolerance."""
    return any(getattr(item, kind) for kind in _RECORD_KINDS)


def status_of(item: AnnotatedItem) -> str:
    """A frame's status after a person saved it, from its records' review states."""
    states = {r.review.state for r in _records(item)}
    if ReviewState.SUBMITTED in states:
        return "submitted"
    if ReviewState.REJECTED in states:
        return "rejected"
    if states == {ReviewState.ACCEPTED}:
        return "accepted"
    return "in_progress"


def confidence_of(item: AnnotatedItem) -> float | None:
    """The lowest model score among the item's machine-made records."""
    scores = [
        r.provenance.score
        for r in _records(item)
        if r.provenance.machine_made and r.provenance.score is not None
    ]
    return min(scores) if scores else None


def _update_facts(session: Session, frame: FrameRef, item: AnnotatedItem, author: str) -> str:
    """Refresh the frame's status, verdict, confidence and disagreement after a person's save
    (one statement, plus the person's verdict vote); returns the new status. The verdict is
    the people's: a machine draft's verdict nobody took on is not theirs."""
    verdict = summarise(without_machine_drafts(item)[0]).verdict
    keys = {"frame_id": frame.id, "author": author}
    if verdict is None:
        session.execute(queries.DROP_VOTE, keys)
    else:
        session.execute(queries.SET_VOTE, {**keys, "verdict": verdict})
    status = status_of(item)
    session.execute(
        queries.FRAME_FACTS,
        {
            "frame_id": frame.id,
            "human_edited": True,
            "verdict": verdict,
            "status": status,
            "confidence": confidence_of(item),
            "machine_disagrees": frame.machine_verdict is not None
            and verdict is not None
            and verdict != frame.machine_verdict,
        },
    )
    return status


def _conflict(session: Session, frame_id: str, base: int) -> ApiError:
    row = session.execute(queries.ANNOTATION, {"frame_id": frame_id}).first()
    if row is None:
        return not_found(f"annotation of frame {frame_id}")
    item, revision, _, by = row
    return ApiError(
        409,
        f"the annotation changed since revision {base}: it is at revision {revision} "
        f"(saved by {by}); reload, merge and save again",
        extra={"revision": revision, "item": json.loads(item)},
    )


@dataclass(frozen=True, slots=True)
class Saved:
    """A saved annotation."""

    text: str
    revision: int
    updated_at: datetime
    status: str

    def json(self, author: str) -> str:
        """The ``AnnotationOut`` JSON text."""
        return annotation_json(self.text, self.revision, self.updated_at, author)


def write_item(
    session: Session, frame: FrameRef, item: AnnotatedItem, base: int, author: str
) -> Saved:
    """Save ``item`` over revision ``base`` in the open transaction; 409 when stale."""
    text = item_json(item)
    moment = now()
    values = {"frame_id": frame.id, "item": text, "author": author, "at": moment}
    result = session.execute(queries.SAVE_ANNOTATION, {**values, "base": base})
    if getattr(result, "rowcount", 0) != 1:
        raise _conflict(session, frame.id, base)
    session.execute(queries.ADD_REVISION, {**values, "revision": base + 1})
    status = _update_facts(session, frame, item, author)
    return Saved(text, base + 1, moment, status)


def save_annotation(
    ctx: ServerContext,
    principal: Principal,
    frame_id: str,
    data: dict[str, Any],
    base: int | None,
) -> Saved:
    """Validate and save an annotation over revision ``base``."""
    if base is None:
        raise ApiError(
            428, "say which revision you edited: 'revision' in the body or an If-Match header"
        )
    with ctx.db.read() as session:
        frame = frame_access(session, principal, frame_id, Action.ANNOTATE)
    item = parse_item(ctx, data, frame)
    with ctx.db.write() as session:
        if not may_review(principal, frame.role):
            check_review_unchanged(session, principal, frame.id, item)
        return write_item(session, frame, item, base, principal.username)


def may_review(principal: Principal, role: Role) -> bool:
    """Whether the principal's role in a project and its token's scopes allow reviewing."""
    scoped = principal.scopes is None or Action.REVIEW.value in principal.scopes
    return scoped and Action.REVIEW in ROLE_ACTIONS[role]


#: Review states only a reviewer may give a record.
_REVIEWED = frozenset({ReviewState.ACCEPTED, ReviewState.REJECTED})


def check_review_unchanged(
    session: Session, principal: Principal, frame_id: str, item: AnnotatedItem
) -> None:
    """403 when a caller who may not review saves a record as accepted or rejected that is
    not stored exactly so (same id, same content, same review): only a review action moves a
    record there, and an accepted record edited by an annotator must go back to draft."""
    reviewed = [r for r in _records(item) if r.review.state in _REVIEWED]
    if not reviewed:
        return
    row = session.execute(queries.ANNOTATION, {"frame_id": frame_id}).first()
    stored = (
        {}
        if row is None
        else {r.id: r for r in _records(AnnotatedItem.from_dict(json.loads(row[0])))}
    )
    for record in reviewed:
        before = stored.get(record.id)
        if before is None or before.to_dict() != record.to_dict():
            log.warning(
                "permission denied: %s saved record %s of frame %s as %s without review rights",
                principal.username,
                record.id,
                frame_id,
                record.review.state.value,
            )
            raise ApiError(
                403,
                f"record {record.id}: only a reviewer may mark a record "
                f"{record.review.state.value} (or change one that is); save it as a draft or "
                "submit it for review",
            )


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
        frame = frame_access(session, principal, frame_id, need)
    attempts = 1 if base is not None else 5
    for attempt in range(attempts):  # without a base revision, retry when a save overtook us
        with ctx.db.read() as session:
            row = session.execute(
                select(AnnotationRow.revision, AnnotationRow.item).where(
                    AnnotationRow.frame_id == frame_id
                )
            ).first()
            if row is None:
                raise not_found(f"annotation of frame {frame_id}")
            current, text = row
            if base is not None and base != current:
                raise _conflict(session, frame_id, base)
        item = AnnotatedItem.from_dict(json.loads(text))
        moved_item, moved = _move(item, action, principal.username, comment)
        if not moved:
            state = "draft" if action == "submit" else "submitted"
            raise ApiError(422, f"nothing to {action}: no record of this frame is {state}")
        try:
            with ctx.db.write() as session:
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
                    )
            return ReviewOut(
                item=json.loads(saved.text), revision=saved.revision, status=saved.status
            )
        except ApiError as exc:
            if exc.status != 409 or attempt == attempts - 1:
                raise
    raise ApiError(409, "the annotation kept changing; try again")
