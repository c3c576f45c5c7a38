"""The statements of the hot paths (authentication, frame access, annotation reads and saves)
as plain SQL that reads the same on SQLite and PostgreSQL.

Building SQLAlchemy expressions and their cache keys costs more per request than running these
statements; written out once, they cost a dictionary lookup. ``ON CONFLICT ... DO UPDATE`` is
understood by both databases (SQLite 3.24+).
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, bindparam, text

_TIME = DateTime(timezone=True)

TOKEN_PRINCIPAL = text(
    "SELECT t.expires_at, t.scopes, u.id, u.username, u.is_admin "
    "FROM api_tokens t JOIN users u ON u.id = t.user_id "
    "WHERE t.token_hash = :digest AND NOT u.disabled"
).columns(expires_at=_TIME, scopes=JSON, id=Integer, username=String, is_admin=Boolean)

SESSION_PRINCIPAL = text(
    "SELECT s.expires_at, s.csrf_token, u.id, u.username, u.is_admin "
    "FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.id = :session_id AND NOT u.disabled"
).columns(expires_at=_TIME, csrf_token=String, id=Integer, username=String, is_admin=Boolean)

FRAME_ACCESS = text(
    "SELECT f.id, f.project_id, f.content_hash, f.width, f.height, f.frame_count, "
    "f.celsius_prefix, f.machine_verdict, p.label_schema, m.role "
    "FROM frames f JOIN projects p ON p.id = f.project_id "
    "LEFT JOIN memberships m ON m.project_id = f.project_id AND m.user_id = :user_id "
    "WHERE f.id = :frame_id"
).columns(
    id=String,
    project_id=Integer,
    content_hash=String,
    width=Integer,
    height=Integer,
    frame_count=Integer,
    celsius_prefix=String,
    machine_verdict=String,
    label_schema=JSON,
    role=String,
)

ANNOTATION_ACCESS = text(
    "SELECT m.role, a.item, a.revision, a.updated_at, a.updated_by "
    "FROM frames f "
    "LEFT JOIN memberships m ON m.project_id = f.project_id AND m.user_id = :user_id "
    "LEFT JOIN annotations a ON a.frame_id = f.id "
    "WHERE f.id = :frame_id"
).columns(role=String, item=Text, revision=Integer, updated_at=_TIME, updated_by=String)

ANNOTATION = text(
    "SELECT item, revision, updated_at, updated_by FROM annotations WHERE frame_id = :frame_id"
).columns(item=Text, revision=Integer, updated_at=_TIME, updated_by=String)

SAVE_ANNOTATION = text(
    "UPDATE annotations SET item = :item, revision = :base + 1, updated_by = :author, "
    "updated_at = :at WHERE frame_id = :frame_id AND revision = :base"
).bindparams(bindparam("at", type_=_TIME))

ADD_REVISION = text(
    "INSERT INTO annotation_revisions (frame_id, revision, item, author, created_at) "
    "VALUES (:frame_id, :revision, :item, :author, :at)"
).bindparams(bindparam("at", type_=_TIME))

SET_VOTE = text(
    "INSERT INTO verdict_votes (frame_id, author, verdict) VALUES (:frame_id, :author, :verdict) "
    "ON CONFLICT (frame_id, author) DO UPDATE SET verdict = excluded.verdict"
)

DROP_VOTE = text("DELETE FROM verdict_votes WHERE frame_id = :frame_id AND author = :author")

FRAME_FACTS = text(
    "UPDATE frames SET human_edited = :human_edited, verdict = :verdict, status = :status, "
    "confidence = :confidence, disagreement = (:machine_disagrees OR "
    "(SELECT COUNT(DISTINCT v.verdict) FROM verdict_votes v WHERE v.frame_id = :frame_id) > 1) "
    "WHERE id = :frame_id"
).bindparams(
    bindparam("human_edited", type_=Boolean()), bindparam("machine_disagrees", type_=Boolean())
)
