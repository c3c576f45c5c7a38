"""``thermoscope twin``: export the line model as an Asset Administration Shell or DTDL."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from thermoscope.cli.exits import fail
from thermoscope.twin import TwinError, load_site
from thermoscope.twin.dtdl import site_to_dtdl

twin_app = typer.Typer(
    help="The digital twin of a line: its model from a site file, exported for plant IT.",
    no_args_is_help=True,
)
console = Console()


class TwinFormat(StrEnum):
    """Export formats of the twin."""

    AAS = "aas"
    DTDL = "dtdl"


@twin_app.command("export")
def export_command(
    site: Annotated[Path, typer.Argument(help="The site file (YAML or JSON) naming its recipes.")],
    format_: Annotated[
        TwinFormat, typer.Option("--format", help="aas (AAS v3 JSON) or dtdl (DTDL v3 JSON).")
    ] = TwinFormat.AAS,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export the line model of SITE as AAS or DTDL JSON."""
    try:
        model = load_site(site)
    except TwinError as exc:
        raise fail(str(exc)) from None
    if format_ is TwinFormat.AAS:
        # basyx-python-sdk comes with the twin extra; only this format needs it
        from thermoscope.twin.aas import site_to_aas_json

        text = site_to_aas_json(model)
    else:
        text = json.dumps(site_to_dtdl(model), indent=1, ensure_ascii=False)
    if out is None:
        typer.echo(text)
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"{out}: cannot write: {exc}") from None
    stations = len(model.stations())
    console.print(f"{out}: {format_.value}, site {model.id}, {stations} stations", highlight=False)
