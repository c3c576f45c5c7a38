"""``thermoscope serve``: the annotation server on the embedded defaults (or as configured)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
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
) -> None:
    """Start the annotation server and its web UI (settings: THERMOSCOPE_* variables)."""
    import uvicorn

    from thermoscope.server.app import bootstrap_admin, build_context, create_app
    from thermoscope.server.demo import seed_demo
    from thermoscope.server.settings import Settings

    settings = Settings(data_dir=data_dir) if data_dir is not None else Settings()
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
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    err.print(f"thermoscope serves the annotation UI at [bold]http://{shown}:{port}/[/bold]")
    if password is not None:
        err.print(
            f"Log in as [bold]{settings.admin_username}[/bold] with password "
            f"[bold]{password}[/bold] (shown once; set THERMOSCOPE_ADMIN_PASSWORD to choose it)"
        )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
