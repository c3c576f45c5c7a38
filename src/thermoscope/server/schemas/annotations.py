"""Annotations, review, tasks and the review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from thermoscope.server.schemas.common import Request
from thermoscope.server.schemas.frames import FrameOut


class AnnotationOut(BaseModel):
    """A frame's annotation and its revision."""

    item: dict[str, Any] = Field(description="AnnotatedItem.to_dict()")
    revision: int
    updated_at: datetime
    updated_by: str


class AnnotationIn(Request):
    """An annotation to save over ``revision`` (or the ``If-Match`` header)."""

    item: dict[str, Any] = Field(description="AnnotatedItem.to_dict()")
    revision: int | None = Field(default=None, ge=0, le=2**62)
    updated_at: datetime | None = Field(
        default=None, description="ignored (a GET answer may be sent back as is)"
    )
    updated_by: str | None = Field(default=None, max_length=64, description="ignored")


class ReviewIn(Request):
    """A review action on a frame's records."""

    action: Literal["submit", "accept", "reject"]
    comment: Annotated[str, StringConstraints(max_length=5000)] = ""
    revision: int | None = Field(default=None, ge=0, le=2**62)


class ReviewOut(BaseModel):
    """The annotation after a review action."""

    item: dict[str, Any]
    revision: int
    status: str


class TaskIn(Request):
    """Frames to assign to a person."""

    frame_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=1000
    )
    assignee: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TaskOut(BaseModel):
    """A frame assigned to a person."""

    id: int
    project_id: int
    frame_id: str
    assignee: str
    state: str
    created_by: str
    created_at: datetime


class QueueEntry(BaseModel):
    """A frame in the review queue and why it is there."""

    frame: FrameOut
    priority: float = Field(description="higher needs a human more")
    reasons: list[str]
    stage: Literal["review", "annotate"] = Field(
        description="review: submitted, a reviewer accepts or rejects it; annotate: new, in "
        "progress or rejected, an annotator works on it"
    )
