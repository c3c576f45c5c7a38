"""``create_app(settings)``: the FastAPI app of the annotation server.

The app opens the database (migrating it unless told not to), the blob store and the job
workers when it starts, and closes them when it stops. The API lives under ``/api/v1`` (OpenAPI
at ``/api/v1/openapi.json``); the browser UI's static files, when the package ships them, are
served at ``/``.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thermoscope import __version__
from thermoscope.server.auth import Passwords
from thermoscope.server.context import ServerContext
from thermoscope.server.datasets import HANDLERS
from thermoscope.server.db import Database
from thermoscope.server.db.models import User
from thermoscope.server.errors import ApiError
from thermoscope.server.headers import SecurityHeaders
from thermoscope.server.housekeeping import clean_uploads
from thermoscope.server.jobs import JobRunner
from thermoscope.server.routers import (
    accounts,
    auth,
    datasets,
    fleet,
    frames,
    fusion,
    label_studio,
    measure,
    models,
    projects,
    twin,
)
from thermoscope.server.routers import annotations as annotation_routes
from thermoscope.server.schemas.common import Health
from thermoscope.server.settings import Settings
from thermoscope.server.training import score_frames, train_model
from thermoscope.storage import BlobStore, open_blob_store
from thermoscope.storage.files import private_dir

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
#: Where the web UI's static files are (served at ``/`` when present).
WEB_DIR = Path(__file__).resolve().parents[1] / "web" / "static"
#: Room for the multipart framing and form fields around a file in a request body.
BODY_SLACK = 1 << 20


def build_context(settings: Settings) -> ServerContext:
    """The database, blob store and password hasher ``settings`` describe. The data folder,
    when the embedded defaults use it, is made (or narrowed to) 0700."""
    if settings.database_url is None or settings.blob_url is None:
        private_dir(settings.data_dir, narrow=True)
    db = Database(
        settings.resolved_database_url,
        pool_size=settings.database_pool_size,
        sqlite_synchronous=settings.sqlite_synchronous,
    )
    return ServerContext(
        settings=settings,
        db=db,
        blobs=_blob_store(settings),
        passwords=Passwords(
            memory_kib=settings.argon2_memory_kib, time_cost=settings.argon2_time_cost
        ),
    )


def _blob_store(settings: Settings) -> BlobStore:
    """The blob store ``settings.resolved_blob_url`` names (a folder or ``s3://bucket/prefix``)."""
    secret = settings.s3_secret_access_key
    return open_blob_store(
        settings.resolved_blob_url,
        fsync=settings.fsync_blobs,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=None if secret is None else secret.get_secret_value(),
    )


def bootstrap_admin(ctx: ServerContext) -> str | None:
    """Create the first site administrator when there is no user; return the generated
    password when none was configured (``None`` otherwise). A configured password is also
    set on an existing administrator of that name whose password differs."""
    settings = ctx.settings
    configured = settings.admin_password
    with ctx.db.write() as session:
        user = session.scalars(select(User).where(User.username == settings.admin_username)).first()
        if user is not None:
            wanted = None if configured is None else configured.get_secret_value()
            if wanted is not None and not ctx.passwords.verify(user.password_hash, wanted):
                user.password_hash = ctx.passwords.hash(wanted)
            return None
        if session.scalars(select(User.id).limit(1)).first() is not None:
            return None
        password = (
            configured.get_secret_value() if configured is not None else secrets.token_urlsafe(12)
        )
        session.add(
            User(
                username=settings.admin_username,
                password_hash=ctx.passwords.hash(password),
                is_admin=True,
            )
        )
    return password if configured is None else None


def _problems(exc: RequestValidationError) -> tuple[int, str]:
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "the body is not valid JSON"
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return 422, "; ".join(parts) or "invalid request"


class BodyTooLarge(HTTPException):
    """A request body streamed past its route's limit (413; raised while the body is read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


#: Routes whose bodies are files: ``(method, path pattern, settings field of their limit)``.
_FILE_ROUTES = (
    ("POST", re.compile(rf"^{API_PREFIX}/projects/[^/]+/frames$"), "max_upload_bytes"),
    ("PUT", re.compile(rf"^{API_PREFIX}/uploads/[^/]+$"), "max_chunk_bytes"),
    ("POST", re.compile(rf"^{API_PREFIX}/projects/[^/]+/models$"), "max_model_bytes"),
)


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The most bytes a request body may have on a route: a file route's limit (plus
    ``BODY_SLACK`` for the multipart framing), else ``max_request_bytes``."""
    for route_method, pattern, field in _FILE_ROUTES:
        if method == route_method and pattern.match(path):
            return int(getattr(settings, field)) + BODY_SLACK
    return settings.max_request_bytes


class BodyLimit:
    """ASGI middleware: refuse a request body beyond its route's limit (413), whether its
    length is declared (refused before it is read) or not (chunked: the bytes are counted as
    they stream in, and reading stops at the limit)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.settings, scope["method"], scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                response = JSONResponse(
                    {"detail": f"request body larger than {limit} bytes"}, status_code=413
                )
                await response(scope, receive, send)
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, send_started)
        except BodyTooLarge as exc:  # read outside the routes' error handling
            if not started:
                await JSONResponse({"detail": exc.detail}, status_code=413)(
                    scope, receive, send_started
                )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The annotation server's app for ``settings`` (default: from the environment)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = build_context(settings)
        if settings.migrate:
            ctx.db.migrate()
        password = bootstrap_admin(ctx)
        if password is not None:
            print(
                f"thermoscope: created the site administrator {settings.admin_username!r} with "
                f"password {password} (shown once; set THERMOSCOPE_ADMIN_PASSWORD to choose it)",
                file=sys.stderr,
                flush=True,
            )
        runner = JobRunner(
            ctx,
            HANDLERS | {"train_model": train_model, "score_frames": score_frames},
            threads=settings.worker_threads,
            lease_s=settings.job_lease_s,
            housekeeping=clean_uploads,
            housekeeping_s=settings.housekeeping_s,
        )
        ctx.jobs = runner
        runner.start()
        app.state.ctx = ctx
        try:
            yield
        finally:
            runner.stop()
            ctx.db.dispose()

    app = FastAPI(
        title="thermoscope",
        version=__version__,
        description="Annotation server for radiometric thermal data (see docs/api.md).",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # FastAPI's docs page loads its scripts from a CDN; the JSON is enough
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, detail = _problems(exc)
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        return JSONResponse(
            {"detail": "the request holds a value the database cannot store (e.g. a NUL char)"},
            status_code=400,
        )

    if settings.gzip_level > 0:
        app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=settings.gzip_level)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(SecurityHeaders, https=settings.cookie_secure)  # outermost: every answer

    @app.get(f"{API_PREFIX}/health", response_model=Health, tags=["misc"])
    def health() -> Health:
        """The server is up."""
        return Health(status="ok", version=__version__)

    for router in (
        auth.router,
        accounts.router,
        projects.router,
        frames.router,
        annotation_routes.router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(measure.router, prefix=API_PREFIX)
    app.include_router(fusion.router, prefix=API_PREFIX)
    app.include_router(datasets.router, prefix=API_PREFIX)
    app.include_router(models.router, prefix=API_PREFIX)
    app.include_router(label_studio.router, prefix=API_PREFIX)
    app.include_router(twin.router, prefix=API_PREFIX)
    app.include_router(fleet.router, prefix=API_PREFIX)
    if settings.serve_web and WEB_DIR.is_dir():
        app.mount("/", StaticFiles(directory=WEB_DIR, html=True), name="web")
    return app


def app_from_env() -> FastAPI:
    """The app configured from the environment (for ``uvicorn --factory``)."""
    return create_app(Settings())


__all__ = ["API_PREFIX", "app_from_env", "create_app"]
