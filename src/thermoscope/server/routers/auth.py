"""Log-in, log-out, who am I, API tokens and users."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from thermoscope.server.auth import (
    SESSION_COOKIE,
    Role,
    digest,
    new_session,
    new_token_text,
)
from thermoscope.server.db.models import (
    ApiToken,
    LoginSession,
    Membership,
    Project,
    User,
    now,
    utc,
)
from thermoscope.server.errors import ApiError, not_found
from thermoscope.server.routers.deps import Caller, Ctx, IntId, Limit, Offset
from thermoscope.server.schemas.auth import (
    LoginIn,
    LoginOut,
    MeOut,
    ProjectRole,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from thermoscope.server.schemas.common import Page

router = APIRouter(tags=["auth"])


def user_out(user: User) -> UserOut:
    """The API form of a user."""
    return UserOut(id=user.id, username=user.username, is_admin=user.is_admin)


@router.post("/auth/login", response_model=LoginOut, responses={401: {"description": "wrong"}})
def login(body: LoginIn, response: Response, ctx: Ctx) -> LoginOut:
    """Check the password, start a browser session (HttpOnly cookie), return the CSRF token."""
    with ctx.db.read() as session:
        user = session.scalars(select(User).where(User.username == body.username)).first()
    if user is None or not ctx.passwords.verify(user.password_hash, body.password):
        raise ApiError(401, "wrong username or password")
    with ctx.db.write() as session:
        session.execute(delete(LoginSession).where(LoginSession.expires_at < now()))
        cookie, row = new_session(session, user, ctx.settings.session_ttl_s)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=ctx.settings.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=ctx.settings.cookie_secure,
        path="/",
    )
    return LoginOut(user=user_out(user), csrf_token=row.csrf_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(caller: Caller, response: Response, ctx: Ctx) -> None:
    """End the browser session."""
    if caller.session_id is not None:
        with ctx.db.write() as session:
            session.execute(delete(LoginSession).where(LoginSession.id == caller.session_id))
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/auth/me", response_model=MeOut)
def me(caller: Caller, ctx: Ctx) -> MeOut:
    """The caller, the session's CSRF token, and their projects with their role."""
    with ctx.db.read() as session:
        user = session.get(User, caller.user_id)
        if user is None:
            raise ApiError(401, "the user no longer exists")
        rows: list[tuple[int, str, str]]
        if caller.is_admin:
            projects = session.scalars(select(Project).order_by(Project.id))
            rows = [(p.id, p.name, Role.ADMIN.value) for p in projects]
        else:
            found = session.execute(
                select(Project.id, Project.name, Membership.role)
                .join(Membership, Membership.project_id == Project.id)
                .where(Membership.user_id == caller.user_id)
                .order_by(Project.id)
            )
            rows = [(i, n, r) for i, n, r in found]
    return MeOut(
        user=user_out(user),
        csrf_token=caller.csrf_token,
        scopes=None if caller.scopes is None else sorted(caller.scopes),
        projects=[ProjectRole(id=i, name=n, role=r) for i, n, r in rows],
    )


def _token_out(token: ApiToken, text: str | None = None) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        scopes=list(token.scopes),
        created_at=utc(token.created_at),
        expires_at=utc(token.expires_at),
        token=text,
    )


@router.post("/tokens", response_model=TokenOut, status_code=status.HTTP_201_CREATED)
def create_token(body: TokenIn, caller: Caller, ctx: Ctx) -> TokenOut:
    """A new API token for the caller (from a browser session only); its text is shown once."""
    if caller.session_id is None:
        raise ApiError(403, "API tokens are made from a logged-in browser session, not a token")
    text = new_token_text()
    moment = now()
    with ctx.db.write() as session:
        token = ApiToken(
            user_id=caller.user_id,
            name=body.name,
            token_hash=digest(text),
            scopes=sorted(set(body.scopes)),
            created_at=moment,
            expires_at=moment + timedelta(seconds=body.expires_in_s),
        )
        session.add(token)
        session.flush()
        return _token_out(token, text)


@router.get("/tokens", response_model=Page[TokenOut])
def list_tokens(caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50) -> Page[TokenOut]:
    """The caller's API tokens (without their text)."""
    with ctx.db.read() as session:
        where = ApiToken.user_id == caller.user_id
        total = session.scalar(select(func.count()).select_from(ApiToken).where(where)) or 0
        tokens = session.scalars(
            select(ApiToken).where(where).order_by(ApiToken.id).offset(offset).limit(limit)
        )
        return Page(items=[_token_out(t) for t in tokens], total=total, offset=offset, limit=limit)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(token_id: IntId, caller: Caller, ctx: Ctx) -> None:
    """Revoke one of the caller's API tokens."""
    with ctx.db.write() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != caller.user_id:
            raise not_found(f"token {token_id}")
        session.delete(token)


@router.get("/users", response_model=Page[UserOut])
def list_users(caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50) -> Page[UserOut]:
    """Every user (site administrators only)."""
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
            return user_out(user)
    except IntegrityError:
        raise ApiError(409, f"user {body.username!r} exists") from None
