"""``thermoscope fuse``: a thermal frame and its visual photo in one picture."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import thermoscope.io as tio
from thermoscope.analysis.fusion_registration import (
    VisualRegistration,
    fused_view,
    registration_for,
)
from thermoscope.cli.exits import fail, usage
from thermoscope.core import ThermoscopeError
from thermoscope.io.visual import embedded_visual
from thermoscope.io.visual import load as load_visual
from thermoscope.render import PALETTES, encode_png
from thermoscope.render.fusion import MODES


def fuse_command(
    file: Annotated[Path, typer.Argument(help="A radiometric file.", metavar="INPUT")],
    output: Annotated[Path, typer.Option("--out", "-o", help="The PNG to write.")],
    mode: Annotated[
        str, typer.Option(help=f"View: {', '.join(MODES)} (edges = visual edges, MSX-style).")
    ] = "edges",
    visual: Annotated[
        Path | None,
        typer.Option(help="A separate visual photo (JPEG/PNG); default the one INPUT carries."),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="A camera pair's registration JSON; default the camera's metadata."),
    ] = None,
    palette: Annotated[str, typer.Option(help=f"Palette: {', '.join(PALETTES)}.")] = "iron",
    alpha: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Photo weight (blend) or edge strength.")
    ] = 0.5,
    frame: Annotated[int, typer.Option("--frame", "-f", min=0, help="Frame (0-based).")] = 0,
) -> None:
    """Fuse INPUT's thermal frame with its visual photo: picture-in-picture, blend or edges."""
    if mode not in MODES:
        raise usage(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if palette not in PALETTES:
        raise usage(f"--palette must be one of {', '.join(PALETTES)}, got {palette!r}")
    try:
        thermal = tio.load(file, frame)
        photo = load_visual(visual) if visual is not None else embedded_visual(thermal)
        if photo is None:
            raise fail(f"{file}: carries no visual photo; give one with --visual")
        stored = None
        if calibration is not None:
            try:
                text = calibration.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise fail(f"{calibration}: cannot read: {exc}") from None
            try:
                stored = VisualRegistration.from_json(text)
            except ThermoscopeError as exc:
                raise fail(f"{calibration}: {exc}") from None
        registration = registration_for(photo, (thermal.width, thermal.height), calibration=stored)
        image = fused_view(
            thermal.celsius, photo, registration, mode=mode, palette=palette, alpha=alpha
        )
    except ThermoscopeError as exc:
        message = str(exc) if str(file) in str(exc) else f"{file}: {exc}"
        raise fail(message) from None
    try:
        tio.registry.write_atomic(output, encode_png(image))
    except OSError as exc:
        raise fail(f"{output}: cannot write: {exc}") from None
    typer.echo(f"{output}: {mode} view, {thermal.width}x{thermal.height} ({registration.model})")
