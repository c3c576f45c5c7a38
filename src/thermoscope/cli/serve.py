"""``thermoscope serve``: the annotation server on the embedded defaults (or as configured).

The port is bound before anything is written: a port that is taken exits with code 3 and
leaves the data folder as it was. ``--workers N`` (N > 1) serves the one bound socket from N
worker processes under uvicorn's supervisor, which starts a new one when one dies; the
database is migrated once, by the parent, before they start (they share everything through the
database and the blob store, so PostgreSQL is the database for that: see docs/deploy.md).

The first administrator's generated password is printed only once the server answers (with
several workers: once one of them answers its health route), so it is never shown for a server
that did not come up; should it be lost anyway, ``THERMOSCOPE_ADMIN_PASSWORD`` sets a new one at the
next start.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from thermoscope.cli.exits import ExitCode, fail
from thermoscope.core import ThermoscopeError

if TYPE_CHECKING:
    import uvicorn

err = Console(stderr=True)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (port 0: any free port).

    Raises:
        OSError: the address is taken or not local.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _server(config: uvicorn.Config, on_ready: Callable[[], None]) -> uvicorn.Server:
    """A uvicorn server that calls ``on_ready`` once it accepts requests."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_ready()

    return Server(config)


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")
    ] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder of the embedded database and blobs (default: THERMOSCOPE_DATA_DIR or "
            "./thermoscope-data).",
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Seed a project from the synthetic production line first."),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes serving the port (more than 1: use PostgreSQL, see "
            "docs/deploy.md).",
        ),
    ] = 1,
) -> None:
    """Start the annotation server and its web UI (settings: THERMOSCOPE_* variables)."""
    import uvicorn

    from thermoscope.server.app import bootstrap_admin, build_context, create_app
    from thermoscope.server.demo import seed_demo
    from thermoscope.server.settings import Settings

    try:
        sock = listen(host, port)
    except OSError as exc:
        raise fail(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server running? "
            "choose another --port)",
            ExitCode.UNAVAILABLE,
        ) from None
    try:
        settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
    except ValueError as exc:
        sock.close()
        raise fail(f"invalid settings: {exc}") from None
    password: str | None = None
    try:
        ctx = build_context(settings)
        try:
            if settings.migrate:
                ctx.db.migrate()
            password = bootstrap_admin(ctx)
            if demo:
                with err.status("Seeding the demo project from the synthetic PCB line..."):
                    seeded = seed_demo(ctx, settings.admin_username)
                if seeded.created:
                    err.print(f"Demo project seeded: {seeded.frames} boards with pre-annotations")
                else:
                    err.print("Demo project already there")
        finally:
            ctx.db.dispose()
        bound = sock.getsockname()[1]
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        shown = f"[{shown}]" if ":" in shown else shown  # an IPv6 address in a URL

        def ready() -> None:
            nonlocal password
            url = escape(f"http://{shown}:{bound}/")
            err.print(f"thermoscope serves the annotation UI at [bold]{url}[/bold]")
            _print_password(settings.admin_username, password)
            password = None

        if workers > 1:
            started = _serve_workers(sock, workers, data_dir, ready)
        else:
            server = _server(uvicorn.Config(create_app(settings), log_level="warning"), ready)
            server.run(sockets=[sock])
            started = server.started
    except (ThermoscopeError, OSError, ValueError) as exc:
        raise fail(f"cannot start the server: {exc}") from None
    finally:
        sock.close()
        _print_password(settings.admin_username, password)  # created, but the server never came up
    if not started:
        raise fail("the server did not start (see the messages above)")


def _answers(sock: socket.socket, timeout_s: float) -> bool:
    """Whether the server on ``sock`` answers its health route within ``timeout_s`` seconds."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    shown = f"[{host}]" if ":" in host else host
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{shown}:{port}/api/v1/health", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def _serve_workers(
    sock: socket.socket, workers: int, data_dir: Path | None, on_ready: Callable[[], None]
) -> bool:
    """Serve ``sock`` from ``workers`` processes until a signal stops them; ``False`` when
    they failed to start. The workers read their settings from the environment (the parent's,
    with ``data_dir`` and ``THERMOSCOPE_MIGRATE=false`` added: the parent migrated)."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    if data_dir is not None:
        os.environ["THERMOSCOPE_DATA_DIR"] = str(data_dir)
    os.environ["THERMOSCOPE_MIGRATE"] = "false"
    config = uvicorn.Config(
        "thermoscope.server.app:app_from_env", factory=True, workers=workers, log_level="warning"
    )

    class Supervisor(Multiprocess):
        def init_processes(self) -> None:
            super().init_processes()
            if _answers(sock, timeout_s=120.0):
                on_ready()

    supervisor = Supervisor(config, sockets=[sock])
    supervisor.run()
    return not any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)


def _print_password(username: str, password: str | None) -> None:
    """Show the generated administrator password (``None``: nothing to show)."""
    if password is not None:
        err.print(
            f"Log in as [bold]{escape(username)}[/bold] with password "
            f"[bold]{escape(password)}[/bold] (shown once; set THERMOSCOPE_ADMIN_PASSWORD "
            "to choose it, or to set a new one at the next start)"
        )
