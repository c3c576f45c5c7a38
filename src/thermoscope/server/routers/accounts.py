"""Accounts: users (site administrators add, disable, reset, delete them and revoke their
tokens), a user's own password and sessions. Every change is logged."""

from __future__ import annotations

import logging

from fastapi import APIRouter, status
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from thermoscope.server.auth import Principal
from thermoscope.server.auth.throttle import account_key, clear, record_failure
from thermoscope.server.db.models import ApiToken, LoginSession, User, now
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.routers.auth import throttle_policy, token_out, user_out
from thermoscope.server.routers.deps import Caller, Ctx, IntId, Limit, Offset, Username
from thermoscope.server.schemas.auth import (
    Ended,
    PasswordChange,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from thermoscope.server.schemas.common import Page

log = logging.getLogger(__name__)

router = APIRouter(tags=["accounts"])


@router.get("/users", response_model=Page[UserOut])
def list_users(caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50) -> Page[UserOut]:
    """Every user (site administrators only; project admins find people by exact name)."""
    caller.require_site_admin()
    with ctx.db.read() as session:
        total = session.scalar(select(func.count()).select_from(User)) or 0
        users = session.scalars(select(User).order_by(User.id).offset(offset).limit(limit))
        return Page(items=[user_out(u) for u in users], total=total, offset=offset, limit=limit)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, caller: Caller, ctx: Ctx) -> UserOut:
    """Add a user (site administrators only)."""
    caller.require_site_admin()
    password_hash = ctx.passwords.hash(body.password)
    try:
        with ctx.db.write() as session:
            if session.scalars(select(User.id).where(User.username == body.username)).first():
                raise ApiError(409, f"user {body.username!r} exists")
            user = User(username=body.username, password_hash=password_hash, is_admin=body.is_admin)
            session.add(user)
            session.flush()
            out = user_out(user)
    except IntegrityError:
        raise ApiError(409, f"user {body.username!r} exists") from None
    log.warning(
        "account: %r added user %r%s",
        caller.username,
        body.username,
        " (site administrator)" if body.is_admin else "",
    )
    return out


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise not_found(f"user {username!r}")
    return user


def _end_all(session: Session, user_id: int, *, tokens: bool) -> int:
    """End a user's sessions (and API tokens); returns how many."""
    ended = session.execute(delete(LoginSession).where(LoginSession.user_id == user_id))
    count = int(getattr(ended, "rowcount", 0) or 0)
    if tokens:
        revoked = session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
        count += int(getattr(revoked, "rowcount", 0) or 0)
    return count


def _not_self(caller: Principal, user: User, what: str) -> None:
    if user.id == caller.user_id:
        raise ApiError(409, f"you cannot {what} yourself; ask another site administrator")


@router.patch("/users/{username}", response_model=UserOut)
def patch_user(username: Username, body: UserPatch, caller: Caller, ctx: Ctx) -> UserOut:
    """Disable or enable a user, reset their password, or change whether they are a site
    administrator (site administrators only). Disabling ends the user's sessions and API
    tokens; a reset password ends their sessions and lifts a log-in lock on their name."""
    caller.require_site_admin()
    password_hash = None if body.password is None else ctx.passwords.hash(body.password)
    changes = []
    with ctx.db.write() as session:
        user = _user(session, username)
        if body.disabled is not None and body.disabled != user.disabled:
            if body.disabled:
                _not_self(caller, user, "disable")
                _end_all(session, user.id, tokens=True)
            user.disabled = body.disabled
            changes.append("disabled" if body.disabled else "enabled")
        if body.is_admin is not None and body.is_admin != user.is_admin:
            if not body.is_admin:
                _not_self(caller, user, "demote")
            user.is_admin = body.is_admin
            changes.append("made site administrator" if body.is_admin else "demoted")
        if password_hash is not None:
            user.password_hash = password_hash
            _end_all(session, user.id, tokens=False)
            clear(session, account_key(username))  # the new password works at once
            changes.append("password reset")
        out = user_out(user)
    log.warning("account: %r changed user %r: %s", caller.username, username, ", ".join(changes))
    return out


@router.delete("/users/{username}", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(username: Username, caller: Caller, ctx: Ctx) -> None:
    """Delete a user with their memberships, tasks, sessions and tokens (site administrators
    only); what they annotated keeps their name."""
    caller.require_site_admin()
    with ctx.db.write() as session:
        user = _user(session, username)
        _not_self(caller, user, "delete")
        session.delete(user)
    log.warning("account: %r deleted user %r", caller.username, username)


@router.get("/users/{username}/tokens", response_model=Page[TokenOut])
def list_user_tokens(
    username: Username, caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50
) -> Page[TokenOut]:
    """A user's API tokens, without their text (site administrators only)."""
    caller.require_site_admin()
    with ctx.db.read() as session:
        user = _user(session, username)
        where = ApiToken.user_id == user.id
        total = session.scalar(select(func.count()).select_from(ApiToken).where(where)) or 0
        tokens = session.scalars(
            select(ApiToken).where(where).order_by(ApiToken.id).offset(offset).limit(limit)
        )
        return Page(items=[token_out(t) for t in tokens], total=total, offset=offset, limit=limit)


@router.delete("/users/{username}/tokens", response_model=Ended)
def revoke_user_tokens(username: Username, caller: Caller, ctx: Ctx) -> Ended:
    """Revoke every API token of a user (site administrators only)."""
    caller.require_site_admin()
    with ctx.db.write() as session:
        user = _user(session, username)
        result = session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
        count = int(getattr(result, "rowcount", 0) or 0)
    log.warning("account: %r revoked %d token(s) of user %r", caller.username, count, username)
    return Ended(ended=count)


@router.delete("/users/{username}/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_user_token(username: Username, token_id: IntId, caller: Caller, ctx: Ctx) -> None:
    """Revoke one API token of a user (site administrators only)."""
    caller.require_site_admin()
    with ctx.db.write() as session:
        user = _user(session, username)
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != user.id:
            raise not_found(f"token {token_id} of user {username!r}")
        session.delete(token)
    log.warning("account: %r revoked token %d of user %r", caller.username, token_id, username)


@router.post("/auth/password", response_model=Ended)
def change_password(body: PasswordChange, caller: Caller, ctx: Ctx) -> Ended:
    """Change one's own password (the old one required; from a browser session). Ends the
    user's other sessions; a wrong old password counts as a failed log-in."""
    caller.require_session("a password is changed")
    with ctx.db.read() as session:
        user = _user(session, caller.username)
    if not ctx.passwords.verify(user.password_hash, body.old_password):
        with ctx.db.write() as session:
            record_failure(
                session,
                throttle_policy(ctx.settings),
                {account_key(caller.username): ctx.settings.login_failures_per_account},
                now(),
            )
        log.warning("account: %r gave a wrong old password", caller.username)
        raise ApiError(403, "the old password is wrong")
    password_hash = ctx.passwords.hash(body.new_password)
    with ctx.db.write() as session:
        row = session.get(User, caller.user_id)
        if row is None:
            raise ApiError(401, "the user no longer exists")
        row.password_hash = password_hash
        count = _end_other_sessions(session, caller)
    log.warning(
        "account: %r changed their password (%d other session(s) ended)", caller.username, count
    )
    return Ended(ended=count)


def _end_other_sessions(session: Session, caller: Principal) -> int:
    result = session.execute(
        delete(LoginSession).where(
            LoginSession.user_id == caller.user_id, LoginSession.id != caller.session_id
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


@router.delete("/auth/sessions", response_model=Ended)
def end_other_sessions(caller: Caller, ctx: Ctx) -> Ended:
    """End every other session of the caller (from a browser session)."""
    caller.require_session("other sessions are ended")
    with ctx.db.write() as session:
        count = _end_other_sessions(session, caller)
    log.warning("account: %r ended %d other session(s)", caller.username, count)
    return Ended(ended=count)
