"""SQLAlchemy 2 tables of the server (the migrations in ``migrations/`` create exactly these).

Times are stored as UTC; ``utc`` restores the offset SQLite drops. JSON columns hold plain
JSON-ready values. Annotation items are stored as their JSON text, so a save writes and a read
returns the bytes without a round trip through Python objects.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """``value`` with a UTC offset (SQLite hands back naive times)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


Time = DateTime(timezone=True)


class User(Base):
    """A person (or the account an edge agent's tokens belong to)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A disabled user cannot log in; their sessions and tokens were ended when disabled.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class LoginThrottle(Base):
    """Failed log-ins of one key (``user:<name>`` or ``addr:<address>``) and until when
    the key is locked; kept in the database so that every server process sees them."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(Time)


class LoginSession(Base):
    """A browser session; ``id`` is the SHA-256 of the cookie value."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Time, default=now)
    expires_at: Mapped[datetime] = mapped_column(Time)


class ApiToken(Base):
    """An API token; only the SHA-256 of its text is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(Time, default=now)
    expires_at: Mapped[datetime] = mapped_column(Time)


class Project(Base):
    """A project: its label schema, its recipe and its members' frames."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    label_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    recipe_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class Membership(Base):
    """A user's role in a project."""

    __tablename__ = "memberships"
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))


class Frame(Base):
    """One ingested item: a frame or a sequence, with what the review queue orders by."""

    __tablename__ = "frames"
    __table_args__ = (
        UniqueConstraint("project_id", "content_hash", name="uq_frames_project_content"),
        Index("ix_frames_project_created", "project_id", "created_at"),
        Index("ix_frames_project_status", "project_id", "status"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    content_hash: Mapped[str] = mapped_column(String(64))
    frame_hashes: Mapped[list[Any]] = mapped_column(JSON)
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frame_count: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_key: Mapped[str] = mapped_column(String(300))
    celsius_prefix: Mapped[str] = mapped_column(String(300))
    camera: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    capture_time: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    timestamps: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    findings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    machine_findings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    min_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_c: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Problems of the file that did not stop ingest (e.g. a truncated last frame), in words.
    issues: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(4), nullable=True)
    machine_verdict: Mapped[str | None] = mapped_column(String(4), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    disagreement: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The project model's score of the frame (its label's confidence, or the anomaly score).
    model_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: How far that score lies from the model's threshold, |score - threshold| (0: undecided).
    model_margin: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: ``name:version`` of the model that pre-annotated the frame.
    model_version: Mapped[str | None] = mapped_column(String(160), nullable=True)
    #: Blob key of the model's heat map over the frame (float32, little-endian, H x W).
    heatmap_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    human_edited: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class AnnotationRow(Base):
    """The current annotation of a frame and its revision (optimistic concurrency)."""

    __tablename__ = "annotations"
    frame_id: Mapped[str] = mapped_column(
        ForeignKey("frames.id", ondelete="CASCADE"), primary_key=True
    )
    item: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(Time, default=now)


class AnnotationRevision(Base):
    """Every saved revision of a frame's annotation (the audit trail)."""

    __tablename__ = "annotation_revisions"
    __table_args__ = (UniqueConstraint("frame_id", "revision", name="uq_revisions_frame_rev"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[str] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    item: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class VerdictVote(Base):
    """The verdict each person last saved on a frame (annotator disagreement)."""

    __tablename__ = "verdict_votes"
    frame_id: Mapped[str] = mapped_column(
        ForeignKey("frames.id", ondelete="CASCADE"), primary_key=True
    )
    author: Mapped[str] = mapped_column(String(64), primary_key=True)
    verdict: Mapped[str] = mapped_column(String(4))


class ReviewEvent(Base):
    """A review action on a frame."""

    __tablename__ = "review_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    frame_id: Mapped[str] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class Task(Base):
    """A frame assigned to a person."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("frame_id", "assignee_id", name="uq_tasks_frame_assignee"),
        Index("ix_tasks_project_assignee", "project_id", "assignee_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    frame_id: Mapped[str] = mapped_column(ForeignKey("frames.id", ondelete="CASCADE"))
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class Upload(Base):
    """A resumable upload: its declared size and hash and how many bytes are durable."""

    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    offset: Mapped[int] = mapped_column(BigInteger)
    chunks: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    findings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    frame_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(Time, default=now)
    updated_at: Mapped[datetime] = mapped_column(Time, default=now)


class Job(Base):
    """A background job with its progress; a lease marks who works on it until when."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(Time, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Time, default=now)
    updated_at: Mapped[datetime] = mapped_column(Time, default=now)


class DatasetVersion(Base):
    """An immutable dataset version of a project (its manifest lies in the blob store)."""

    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("project_id", "content_hash", name="uq_versions_project_content"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    content_hash: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    manifest_key: Mapped[str] = mapped_column(String(300))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class Export(Base):
    """An export of a dataset version in one format."""

    __tablename__ = "exports"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[str] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )
    format: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    blob_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    job_id: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Time, default=now)


class ModelRelease(Base):
    """A signed model release of a project (the zip lies in the blob store)."""

    __tablename__ = "model_releases"
    __table_args__ = (
        UniqueConstraint("project_id", "version", name="uq_model_releases_project_version"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(300))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    #: Whether the release was verified with a trusted key (unsigned: a training job's own).
    signed: Mapped[bool] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(Time)
    expires: Mapped[datetime] = mapped_column(Time)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(Time, default=now)
