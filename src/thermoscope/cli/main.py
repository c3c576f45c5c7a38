"""The ``thermoscope`` command line: parses arguments, calls the library, prints results."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import thermoscope.io as tio
from thermoscope import __version__
from thermoscope.cli.batch import err_console, run_batch
from thermoscope.cli.dataset import dataset_app
from thermoscope.cli.describe import describe, describe_without_temperatures
from thermoscope.cli.edge import edge_app
from thermoscope.cli.exits import ExitCode, fail, usage
from thermoscope.cli.fuse import fuse_command
from thermoscope.cli.inputs import expand_and_report, expand_inputs
from thermoscope.cli.inspection import inspect_command, recipe_app, synth_command
from thermoscope.cli.model import model_app
from thermoscope.cli.record import inspect_record_command
from thermoscope.cli.scale import batch_app
from thermoscope.cli.serve import serve_command
from thermoscope.cli.twin import twin_app
from thermoscope.core import ThermoscopeError
from thermoscope.render import PALETTES, Isotherm, encode_png, render

app = typer.Typer(
    name="thermoscope",
    help="Thermal-imaging quality control: read, inspect and render radiometric files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
app.command("inspect")(inspect_command)
app.command("inspect-record")(inspect_record_command)
app.command("synth")(synth_command)
app.command("fuse")(fuse_command)
app.add_typer(recipe_app, name="recipe")
app.add_typer(dataset_app, name="dataset")
app.add_typer(model_app, name="model")
app.command("serve")(serve_command)
app.add_typer(edge_app, name="edge")
app.add_typer(twin_app, name="twin")
app.add_typer(batch_app, name="batch")

Inputs = Annotated[
    list[str],
    typer.Argument(help="Files, folders or glob patterns.", metavar="FILES", show_default=False),
]
FrameOption = Annotated[
    int, typer.Option("--frame", "-f", min=0, help="Frame of a sequence (0-based).")
]


def _finish(failures: list[str], problems: list[str], done: int) -> None:
    if failures or problems:
        err_console.print(f"{done} ok, {len(failures) + len(problems)} failed", highlight=False)
        raise typer.Exit(code=ExitCode.FAILED)


def _parse_range(text: str | None) -> tuple[float, float] | None:
    """``"20:80"`` -> (20.0, 80.0) °C."""
    if text is None:
        return None
    try:
        lo, hi = (float(part) for part in text.split(":"))
    except ValueError:
        raise usage(f"--range wants LOW:HIGH in °C, got {text!r}") from None
    return lo, hi


def _parse_isotherm(text: str) -> Isotherm:
    """``"60"`` (>= 60 °C), ``"60:80"`` or ``"60:80:#00ff00"``."""
    parts = text.split(":")
    try:
        lo = float(parts[0])
        hi = float(parts[1]) if len(parts) > 1 and parts[1] else math.inf
        if len(parts) > 2:
            colour = parts[2].lstrip("#")
            rgb = (int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16))
            return Isotherm(lo, hi, rgb)
        return Isotherm(lo, hi)
    except (ValueError, IndexError, ThermoscopeError) as exc:
        raise usage(f"--isotherm wants LOW[:HIGH[:#rrggbb]] in °C, got {text!r} ({exc})") from None


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """thermoscope: exact radiometric I/O and quality control for thermal images."""
    if version:
        console.print(__version__)
        raise typer.Exit()


@app.command()
def info(
    inputs: Inputs,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
) -> None:
    """Camera, size, frames, parameters and min/max/mean °C of each file."""
    files, problems = expand_and_report(inputs)
    rows: list[dict[str, object]] = []

    def one(path: Path) -> None:
        try:
            with tio.open_path(path) as seq:
                rows.append(describe(path, seq))
        except tio.TemperatureUnavailableError as exc:
            rows.append(describe_without_temperatures(path, exc))

    failures = run_batch(files, one, verb="Reading")
    if as_json:
        for row in rows:
            console.print_json(json.dumps(row)) if console.is_terminal else print(json.dumps(row))
    elif len(rows) == 1:
        table = Table(show_header=False, box=None)
        for key, value in rows[0].items():
            table.add_row(f"[bold]{key}[/bold]", _fmt(value))
        console.print(table)
    elif rows:
        table = Table("file", "format", "camera", "size", "frames", "min °C", "max °C", "mean °C")
        for row in rows:
            table.add_row(
                Path(str(row["file"])).name,
                str(row.get("format", "")),
                str(row.get("camera", "")),
                f"{row['width']}x{row['height']}",
                str(row["frames"]),
                *(_fmt(row.get(k)) for k in ("min_c", "max_c", "mean_c")),
            )
        console.print(table)
    _finish(failures, problems, len(rows))


def _fmt(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


@app.command()
def temp(
    file: Annotated[Path, typer.Argument(help="A radiometric file.")],
    x: Annotated[int, typer.Argument(help="Column (pixels from the left).")],
    y: Annotated[int, typer.Argument(help="Row (pixels from the top).")],
    frame: FrameOption = 0,
) -> None:
    """The temperature in °C at pixel (X, Y)."""
    try:
        value = tio.load(file, frame).temperature_at(x, y)
    except ThermoscopeError as exc:
        message = str(exc) if str(file) in str(exc) else f"{file}: {exc}"
        raise fail(message) from None
    console.print(f"{value:.3f}")


@app.command("render")
def render_command(
    inputs: Inputs,
    output: Annotated[
        Path, typer.Argument(help="OUT.png for one input, else a folder.", metavar="OUT")
    ],
    palette: Annotated[str, typer.Option(help=f"Palette: {', '.join(PALETTES)}.")] = "iron",
    value_range: Annotated[
        str | None,
        typer.Option("--range", help="Fixed range LOW:HIGH in °C (default: 1st-99th percentile)."),
    ] = None,
    isotherm: Annotated[
        list[str] | None,
        typer.Option(help="Highlight LOW[:HIGH[:#rrggbb]] °C; repeatable."),
    ] = None,
    colorbar: Annotated[bool, typer.Option(help="Append a colour bar with a °C scale.")] = True,
    frame: FrameOption = 0,
) -> None:
    """Render files as false-colour PNGs."""
    fixed = _parse_range(value_range)
    bands = [_parse_isotherm(text) for text in isotherm or []]
    if palette not in PALETTES:
        raise usage(f"unknown palette {palette!r}; choose from {', '.join(PALETTES)}")
    files, problems = expand_and_report(inputs)
    single = len(files) == 1 and output.suffix.lower() == ".png" and not output.is_dir()

    def one(path: Path) -> None:
        image = render(
            tio.load(path, frame).celsius,
            palette=palette,
            range=fixed,
            isotherms=bands,
            colorbar=colorbar,
        )
        target = output if single else output / f"{path.stem}.png"
        tio.registry.write_atomic(target, encode_png(image))

    failures = run_batch(files, one, verb="Rendering")
    _finish(failures, problems, len(files) - len(failures))


@app.command()
def convert(
    inputs: Inputs,
    output: Annotated[
        Path,
        typer.Argument(help="Output file (format from its suffix) or a folder.", metavar="OUTPUT"),
    ],
    to: Annotated[str, typer.Option(help="Output suffix when OUTPUT is a folder.")] = ".npy",
) -> None:
    """Convert files to another format (.npy and .tif hold float32 °C; .csv, .seq, .csq...)."""
    suffix = to if to.startswith(".") else f".{to}"
    files, problems = expand_inputs(inputs)
    single = len(files) == 1 and output.suffix != "" and not output.is_dir()
    try:
        tio.registry.writer_for(output if single else Path(f"x{suffix}"))
    except ThermoscopeError as exc:
        raise usage(str(exc)) from None
    for problem in problems:
        err_console.print(f"[red]✗[/red] {problem}", highlight=False)

    def one(path: Path) -> None:
        with tio.open_path(path) as seq:
            frames = list(seq)
            for issue in seq.issues:
                err_console.print(f"[yellow]![/yellow] {path}: {issue}", highlight=False)
        tio.save(frames, output if single else output / f"{path.stem}{suffix}")

    failures = run_batch(files, one, verb="Converting")
    _finish(failures, problems, len(files) - len(failures))


@app.command()
def formats() -> None:
    """List the formats thermoscope reads and writes."""
    table = Table("name", "reads", "writes", "suffixes", "description")
    for reader in tio.readers():
        table.add_row(reader.name, "yes", "", " ".join(reader.suffixes), reader.description)
    for writer in tio.writers():
        table.add_row(writer.name, "", "yes", " ".join(writer.suffixes), writer.description)
    console.print(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo line's files.")] = Path(
        "demo-output"
    ),
    parts: Annotated[int, typer.Option(min=1, max=100_000, help="Parts to produce.")] = 200,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Then close the loop: edge agent, annotation server (OUT/server), a model "
            "trained from the frames that arrived, signed and pulled back by the agent.",
        ),
    ] = False,
) -> None:
    """Run the demo production line on the embedded defaults (files in a local folder)."""
    from thermoscope.pipeline.demo import run_demo

    try:
        with err_console.status(f"Recording and inspecting {parts} demo boards..."):
            result = run_demo(out, parts=parts)
    except (ThermoscopeError, OSError) as exc:
        raise fail(str(exc)) from None
    counts = ", ".join(f"{verdict.value} {n}" for verdict, n in result.counts.items())
    console.print(f"{len(result.inspections)} boards inspected: {counts}")
    for alarm in result.alarms[:5]:
        console.print(f"[yellow]drift[/yellow] part {alarm.part_index}: {alarm.explanation}")
    console.print(f"Report: {out / 'report.html'} (open it in a browser)")
    console.print(f"JSON lines: {out / 'inspections.jsonl'}; recordings: {out / 'parts'}/")
    if loop:
        _demo_loop(out)


def _demo_loop(out: Path) -> None:
    """``thermoscope demo --loop``: the closed loop of ``thermoscope.loop_demo``."""
    from thermoscope.loop_demo import run_loop

    console.print("The closed loop: line -> edge agent -> server -> model -> edge agent")
    try:
        result = run_loop(out, say=lambda line: console.print(line, highlight=False))
    except (ThermoscopeError, OSError) as exc:
        raise fail(f"demo loop: {exc}") from None
    if result.password is not None:
        console.print(
            f"Log in to the annotation server as [bold]admin[/bold] with password "
            f"[bold]{result.password}[/bold] (shown once; THERMOSCOPE_ADMIN_PASSWORD sets another)"
        )
    console.print(
        f"Its data: {out / 'server'} (thermoscope serve --demo --data-dir {out / 'server'}); "
        f"the agent's configuration: {out / 'edge' / 'edge.yaml'}"
    )
