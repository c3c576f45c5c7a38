"""Accounts and access: password hashes, sessions with CSRF tokens, API tokens, roles.

- Passwords are argon2id hashes (``Passwords``).
- A browser logs in and gets an HttpOnly session cookie; the server keeps only the SHA-256 of
  the cookie value, with the session's CSRF token. Every state-changing request made with the
  cookie must send that token in ``X-CSRF-Token``.
- An API token (``Authorization: Bearer``) acts for its user, limited to its scopes, until it
  expires; only its SHA-256 is kept.
- Every project route asks ``Access.require`` for an action; the user's role in the project
  (or being a site administrator) and the token's scopes must both allow it. Projects the user
  is not a member of answer 404, so their existence does not leak.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from thermoscope.server.db import queries
from thermoscope.server.db.models import (
    LoginSession,
    Membership,
    Project,
    User,
    now,
    utc,
)
from thermoscope.server.errors import ApiError, forbidden, not_found

log = logging.getLogger(__name__)

SESSION_COOKIE = "thermoscope_session"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PREFIX = "tsk_"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(StrEnum):
    """A user's role in a project."""

    VIEWER = "viewer"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Action(StrEnum):
    """What a route does, checked against roles and token scopes."""

    READ = "read"
    INGEST = "ingest"
    ANNOTATE = "annotate"
    REVIEW = "review"
    MANAGE = "admin"


#: The token scope each action needs (the scope names are the action values).
SCOPES = tuple(a.value for a in Action)

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.ANNOTATOR: frozenset({Action.READ, Action.INGEST, Action.ANNOTATE}),
    Role.REVIEWER: frozenset({Action.READ, Action.INGEST, Action.ANNOTATE, Action.REVIEW}),
    Role.ADMIN: frozenset(Action),
}


def digest(secret: str) -> str:
    """The SHA-256 (hex) under which a session cookie or token is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Passwords:
    """argon2id password hashing with the configured cost."""

    def __init__(self, *, memory_kib: int, time_cost: int) -> None:
        self._hasher = PasswordHasher(
            memory_cost=memory_kib, time_cost=time_cost, parallelism=min(4, memory_kib // 8)
        )
        #: A hash of a random password, checked for log-ins of unknown users (equal work).
        self._nobody = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """The hash to store."""
        return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored``."""
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def verify_nobody(self, password: str) -> bool:
        """The work of ``verify`` for a user who does not exist (always ``False``), so that
        the time of an answer does not tell which user names exist."""
        self.verify(self._nobody, password)
        return False


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request and through what.

    Attributes:
        user_id, username, is_admin: the user.
        scopes: the API token's scopes, ``None`` for a browser session (no scope limit).
        session_id: the session's id (cookie digest) for a browser session.
        csrf_token: the session's CSRF token.
    """

    user_id: int
    username: str
    is_admin: bool
    scopes: frozenset[str] | None = None
    session_id: str | None = None
    csrf_token: str | None = None

    def check_scope(self, action: Action) -> None:
        """403 unless the token (if any) carries the scope ``action`` needs."""
        if self.scopes is not None and action.value not in self.scopes:
            raise self.denied(f"this API token lacks the {action.value!r} scope")

    def require_site_admin(self) -> None:
        """403 unless a site administrator (with the ``admin`` scope for a token)."""
        self.check_scope(Action.MANAGE)
        if not self.is_admin:
            raise self.denied("only a site administrator may do this")

    def require_session(self, what: str) -> None:
        """403 unless the request comes from a logged-in browser session (not a token)."""
        if self.session_id is None:
            raise self.denied(f"{what} from a logged-in browser session, not an API token")

    def denied(self, detail: str) -> ApiError:
        """403 with ``detail``, logged with who was refused."""
        log.warning("permission denied: user %r: %s", self.username, detail)
        return forbidden(detail)


def new_session(db: Session, user: User, ttl_s: int) -> tuple[str, LoginSession]:
    """Start a session for ``user``; returns the cookie value and the row."""
    cookie = secrets.token_urlsafe(32)
    row = LoginSession(
        id=digest(cookie),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=now() + timedelta(seconds=ttl_s),
    )
    db.add(row)
    return cookie, row


def new_token_text() -> str:
    """A fresh API token text."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def authenticate(
    db: Session,
    *,
    method: str,
    authorization: str | None,
    cookie: str | None,
    csrf_header: str | None,
    at: datetime | None = None,
) -> Principal:
    """The principal of a request from its headers; 401 / 403 when it has none or breaks CSRF."""
    moment = at or now()
    if authorization is not None:
        kind, _, text = authorization.partition(" ")
        if kind.lower() != "bearer" or not text.strip():
            raise ApiError(401, "Authorization must be 'Bearer <token>'")
        token = db.execute(queries.TOKEN_PRINCIPAL, {"digest": digest(text.strip())}).first()
        if token is None:
            raise ApiError(401, "unknown API token")
        expires, scopes, user_id, username, is_admin = token
        if utc(expires) <= moment:
            raise ApiError(401, "API token expired")
        return Principal(user_id, username, is_admin, scopes=frozenset(scopes))
    if cookie:
        session_id = digest(cookie)
        login = db.execute(queries.SESSION_PRINCIPAL, {"session_id": session_id}).first()
        if login is None:
            raise ApiError(401, "not logged in (unknown session)")
        expires, csrf_token, user_id, username, is_admin = login
        if utc(expires) <= moment:
            raise ApiError(401, "session expired; log in again")
        if method.upper() not in SAFE_METHODS and not (
            csrf_header and hmac.compare_digest(csrf_header, csrf_token)
        ):
            raise forbidden(f"missing or wrong {CSRF_HEADER} header (browser writes need it)")
        return Principal(user_id, username, is_admin, session_id=session_id, csrf_token=csrf_token)
    raise ApiError(401, "not logged in: send a session cookie or 'Authorization: Bearer <token>'")


def role_in(db: Session, principal: Principal, project_id: int) -> Role | None:
    """The principal's role in a project (``admin`` for site administrators), or ``None``."""
    if principal.is_admin:
        return Role.ADMIN
    role = db.scalar(
        select(Membership.role).where(
            Membership.project_id == project_id, Membership.user_id == principal.user_id
        )
    )
    return None if role is None else Role(role)


def check_role(principal: Principal, role: Role | None, action: Action, what: str) -> None:
    """404 for ``what`` when the principal has no role, 403 when the role or the token's
    scopes do not allow ``action``."""
    if role is None:
        raise not_found(what)
    principal.check_scope(action)
    if action not in ROLE_ACTIONS[role]:
        raise principal.denied(f"your role in this project ({role.value}) may not {action.value}")


def require(db: Session, principal: Principal, project_id: int, action: Action) -> Project:
    """The project when the principal may do ``action`` in it: 404 for non-members (and for
    missing projects), 403 when the role or the token's scopes do not allow it."""
    project = db.get(Project, project_id)
    role = None if project is None else role_in(db, principal, project_id)
    if project is None or role is None:
        raise not_found(f"project {project_id}")
    principal.check_scope(action)
    if action not in ROLE_ACTIONS[role]:
        raise principal.denied(
            f"your role in project {project.name!r} ({role.value}) may not {action.value}"
        )
    return project
