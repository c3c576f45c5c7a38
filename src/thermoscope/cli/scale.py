"""``thermoscope batch``: batch work over many files, on this process or on Ray."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from thermoscope.cli.batch import err_console
from thermoscope.cli.exits import ExitCode, fail
from thermoscope.cli.inputs import expand_and_report, recipe_or_fail
from thermoscope.core import ThermoscopeError, Verdict
from thermoscope.pipeline.scale import reinspect
from thermoscope.reports import write_jsonl

batch_app = typer.Typer(help="Batch work over many files: re-inspect, on one process or Ray.")
console = Console()


class EngineChoice(StrEnum):
    """Where the batch runs."""

    local = "local"
    ray = "ray"


@batch_app.command("reinspect")
def reinspect_command(
    inputs: Annotated[
        list[str],
        typer.Argument(help="Files, folders or globs; one part per file.", metavar="FILES"),
    ],
    recipe: Annotated[
        Path, typer.Option("--recipe", "-r", help="The recipe to inspect with (YAML/JSON).")
    ],
    engine: Annotated[
        EngineChoice,
        typer.Option(
            envvar="THERMOSCOPE_BATCH_ENGINE",
            help="local: this process; ray: Ray tasks (the 'ray' extra).",
        ),
    ] = EngineChoice.local,
    workers: Annotated[
        int | None, typer.Option(min=1, help="CPUs of a Ray runtime started here (default all).")
    ] = None,
    jsonl: Annotated[Path | None, typer.Option(help="Write one JSON object per part here.")] = None,
    ambient: Annotated[float | None, typer.Option(help="Ambient reading in °C.")] = None,
) -> None:
    """Re-inspect parts with another recipe; the same findings on either engine."""
    parsed = recipe_or_fail(recipe)
    files, problems = expand_and_report(inputs)
    try:
        result = reinspect(files, parsed, ambient_c=ambient, engine=engine.value, workers=workers)
        if jsonl is not None:
            write_jsonl(jsonl, result.inspections)
    except (ThermoscopeError, OSError) as exc:
        raise fail(str(exc)) from None
    for _, message in result.failures:
        err_console.print(f"[red]✗[/red] {message}", highlight=False)
    counts = {v: 0 for v in Verdict}
    for inspection in result.inspections:
        counts[inspection.verdict] += 1
    summary = ", ".join(f"{v.value} {n}" for v, n in counts.items())
    console.print(f"{len(result.inspections)} parts re-inspected on {engine.value}: {summary}")
    if jsonl is not None and result.inspections:
        console.print(f"JSON lines: {jsonl}")
    if result.failures or problems:
        raise typer.Exit(code=ExitCode.FAILED)
