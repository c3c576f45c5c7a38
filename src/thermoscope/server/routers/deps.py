"""Dependencies every router shares: the server context, the caller, pagination, ids."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from thermoscope.server.auth import CSRF_HEADER, SESSION_COOKIE, Principal, authenticate
from thermoscope.server.context import ServerContext

#: Largest integer id accepted in a path (beyond it nothing exists; keeps drivers in range).
MAX_ID = 2**53

_bearer = HTTPBearer(auto_error=False, description="API token from POST /tokens")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="browser session")
_csrf = APIKeyHeader(
    name=CSRF_HEADER, auto_error=False, description="CSRF token of the session (browser writes)"
)


async def server(request: Request) -> ServerContext:
    """The app's server context (async: no thread hop for a lookup)."""
    ctx: ServerContext = request.app.state.ctx
    return ctx


def caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
    csrf: Annotated[str | None, Depends(_csrf)],
) -> Principal:
    """Who makes the request (401 / 403 when nobody, or a browser write without CSRF token)."""
    del bearer  # declared for the OpenAPI document; the header is read as sent
    ctx: ServerContext = request.app.state.ctx
    with ctx.db.read() as session:
        return authenticate(
            session,
            method=request.method,
            authorization=request.headers.get("authorization"),
            cookie=cookie,
            csrf_header=csrf,
        )


Ctx = Annotated[ServerContext, Depends(server)]
Caller = Annotated[Principal, Depends(caller)]
Offset = Annotated[int, Query(ge=0, le=10**9, description="index of the first item")]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="project id")]
IntId = Annotated[int, Path(ge=1, le=MAX_ID)]
HexId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$", description="a hex id")]
Username = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="a user name")]
