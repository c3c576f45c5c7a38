"""Dataset versions, exports and formats."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from thermoscope.server.schemas.common import Request


class VersionIn(Request):
    """A dataset version to make of a project's current annotations."""

    message: Annotated[str, StringConstraints(max_length=2000)] = ""
    only_accepted: bool = Field(
        default=False, description="only frames whose annotation is accepted"
    )


class VersionOut(BaseModel):
    """An immutable dataset version."""

    id: str
    project_id: int
    content_hash: str
    message: str
    item_count: int
    stats: dict[str, Any]
    created_by: str
    created_at: datetime


class ExportIn(Request):
    """An export of a version."""

    format: Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ExportAccepted(BaseModel):
    """An export job was queued."""

    job_id: str
    export_id: str


class ExportOut(BaseModel):
    """An export and where to download it."""

    id: str
    version_id: str
    format: str
    state: str
    size_bytes: int | None
    download_url: str | None


class FormatOut(BaseModel):
    """An export format."""

    name: str
    description: str
