"""Log-in (throttled), log-out, who am I and the caller's API tokens."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import delete, func, select

from thermoscope.server.auth import (
    SESSION_COOKIE,
    Action,
    Role,
    digest,
    new_session,
    new_token_text,
)
from thermoscope.server.auth.throttle import (
    ThrottlePolicy,
    account_key,
    address_key,
    clear,
    locked_for,
    record_failure,
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
    UserOut,
)
from thermoscope.server.schemas.common import Page
from thermoscope.server.settings import Settings

log = logging.getLogger(__name__)

router = APIRouter(tags=["auth"])


def user_out(user: User) -> UserOut:
    """The API form of a user."""
    return UserOut(
        id=user.id, username=user.username, is_admin=user.is_admin, disabled=user.disabled
    )


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    """The log-in throttle the settings describe."""
    return ThrottlePolicy(
        free_per_account=settings.login_failures_per_account,
        free_per_address=settings.login_failures_per_address,
        backoff_s=settings.login_backoff_s,
        backoff_max_s=settings.login_backoff_max_s,
    )


def client_address(request: Request) -> str:
    """The client's address (behind a reverse proxy: the one the server trusts it to name)."""
    return request.client.host if request.client is not None else "unknown"


@router.post(
    "/auth/login",
    response_model=LoginOut,
    responses={
        401: {"description": "wrong user name or password"},
        403: {"description": "the account is disabled"},
        429: {"description": "too many failed log-ins: locked for Retry-After seconds"},
    },
)
def login(body: LoginIn, request: Request, response: Response, ctx: Ctx) -> LoginOut:
    """Check the password, start a browser session (HttpOnly cookie), return the CSRF token.

    Failed log-ins are counted per user name and per client address; past the free ones each
    failure locks both for a back-off time that doubles (429 with ``Retry-After``)."""
    settings = ctx.settings
    policy = throttle_policy(settings)
    address = client_address(request)
    name_key = account_key(body.username)
    keys = {
        name_key: policy.free_per_account,
        address_key(address): policy.free_per_address,
    }
    moment = now()
    with ctx.db.read() as session:
        wait = locked_for(session, list(keys), moment)
        user = session.scalars(select(User).where(User.username == body.username)).first()
    if wait > 0:
        seconds = math.ceil(wait)
        log.warning("login throttled: user %r from %s for %d s", body.username, address, seconds)
        raise ApiError(
            429,
            f"too many failed log-ins for this user or address; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    if user is None:
        ok = ctx.passwords.verify_nobody(body.password)
    else:
        ok = ctx.passwords.verify(user.password_hash, body.password)
    if user is None or not ok:
        with ctx.db.write() as session:
            lock = record_failure(session, policy, keys, moment)
        log.warning(
            "login failed: user %r from %s%s",
            body.username,
            address,
            f" (locked for {lock:g} s)" if lock else "",
        )
        raise ApiError(401, "wrong username or password")
    if user.disabled:
        log.warning("login refused: user %r from %s is disabled", body.username, address)
        raise ApiError(403, "this account is disabled; ask a site administrator")
    with ctx.db.write() as session:
        clear(session, name_key)
        session.execute(delete(LoginSession).where(LoginSession.expires_at < moment))
        cookie, row = new_session(session, user, settings.session_ttl_s)
    log.info("login: user %r from %s", user.username, address)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
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


def token_out(token: ApiToken, text: str | None = None) -> TokenOut:
    """The API form of a token (its text only right after creation)."""
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
    caller.require_session("API tokens are made")
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
        return token_out(token, text)


@router.get("/tokens", response_model=Page[TokenOut])
def list_tokens(caller: Caller, ctx: Ctx, offset: Offset = 0, limit: Limit = 50) -> Page[TokenOut]:
    """The caller's API tokens (without their text; a token needs the ``admin`` scope)."""
    caller.check_scope(Action.MANAGE)
    with ctx.db.read() as session:
        where = ApiToken.user_id == caller.user_id
        total = session.scalar(select(func.count()).select_from(ApiToken).where(where)) or 0
        tokens = session.scalars(
            select(ApiToken).where(where).order_by(ApiToken.id).offset(offset).limit(limit)
        )
        return Page(items=[token_out(t) for t in tokens], total=total, offset=offset, limit=limit)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(token_id: IntId, caller: Caller, ctx: Ctx) -> None:
    """Revoke one of the caller's API tokens (a token needs the ``admin`` scope)."""
    caller.check_scope(Action.MANAGE)
    with ctx.db.write() as session:
        token = session.get(ApiToken, token_id)
        if token is None or token.user_id != caller.user_id:
            raise not_found(f"token {token_id}")
        session.delete(token)
    log.info("token revoked: user %r revoked their token %d", caller.username, token_id)
