"""Commands of the inspection loop: ``inspect``, ``recipe check|schema`` and ``synth``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, cast

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from thermoscope.cli.batch import err_console
from thermoscope.cli.exits import ExitCode, fail, usage
from thermoscope.cli.inputs import expand_and_report, recipe_or_fail
from thermoscope.core import Inspection, ThermoscopeError, Verdict
from thermoscope.datasets.synthetic import (
    DIFFICULTIES,
    PRODUCTS,
    Difficulty,
    Drift,
    save_run,
    simulate_run,
)
from thermoscope.io import ThermoscopeFormatError
from thermoscope.io.registry import writer_for
from thermoscope.pipeline.batch import inspect_files
from thermoscope.recipes import load_recipe, recipe_json_schema

console = Console()
recipe_app = typer.Typer(help="Check recipes and print their schema.", no_args_is_help=True)

VERDICT_STYLE = {Verdict.OK: "green", Verdict.WARN: "yellow", Verdict.NG: "red"}


def inspect_command(
    inputs: Annotated[
        list[str],
        typer.Argument(help="Files, folders or globs; one part per file.", metavar="FILES"),
    ],
    recipe: Annotated[
        Path, typer.Option("--recipe", "-r", help="The product's recipe (YAML/JSON).")
    ],
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    jsonl: Annotated[Path | None, typer.Option(help="Write one JSON object per part here.")] = None,
    ambient: Annotated[
        float | None, typer.Option(help="Ambient reading in °C (overrides the recipe's).")
    ] = None,
) -> None:
    """Inspect parts with a recipe: OK / WARN / NG per part, findings, drift alarms."""
    parsed = recipe_or_fail(recipe)
    files, problems = expand_and_report(inputs)
    columns = (
        TextColumn("Inspecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[name]}"),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("inspect", total=len(files), name="")

        def advance(path: Path, inspection: Inspection | None) -> None:
            progress.update(task, advance=1, name=path.name)

        try:
            result = inspect_files(
                files, parsed, ambient_c=ambient, report=report, jsonl=jsonl, on_part=advance
            )
        except (ThermoscopeError, OSError) as exc:
            raise fail(str(exc)) from None
    for _, message in result.failures:
        err_console.print(f"[red]✗[/red] {message}", highlight=False)
    for part, issue in result.warnings:
        err_console.print(f"[yellow]warning[/yellow] {part}: {issue}", highlight=False)
    flagged = [i for i in result.inspections if i.verdict is not Verdict.OK]
    if flagged:
        table = Table("part", "verdict", "finding")
        for inspection in sorted(flagged, key=lambda i: -i.verdict.severity)[:50]:
            worst = max(inspection.findings, key=lambda f: f.verdict.severity)
            style = VERDICT_STYLE[inspection.verdict]
            table.add_row(
                Path(inspection.source).name,
                f"[{style}]{inspection.verdict.value}[/{style}]",
                worst.explanation,
            )
        console.print(table)
    for alarm in result.alarms:
        console.print(f"[yellow]drift[/yellow] part {alarm.part_index}: {alarm.explanation}")
    counts = ", ".join(f"{v.value} {n}" for v, n in result.counts.items())
    console.print(
        f"{len(result.inspections)} parts inspected: {counts}; {len(result.alarms)} drift alarms"
    )
    for label, path in (("report", report), ("JSON lines", jsonl)):
        if path is not None and result.inspections:
            console.print(f"{label}: {path}")
    if result.failures or problems:
        raise typer.Exit(code=ExitCode.FAILED)


@recipe_app.command("check")
def recipe_check(
    recipe: Annotated[Path, typer.Argument(help="A recipe file (YAML or JSON).")],
) -> None:
    """Validate a recipe: schema, regions inside the frame, files it names."""
    try:
        parsed = load_recipe(recipe)
        from thermoscope.recipes import compile_recipe

        compile_recipe(parsed)
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"[green]ok[/green] {recipe}: {parsed.name} {parsed.version}, "
        f"{len(parsed.regions)} regions, {len(parsed.rules)} rules, "
        f"{parsed.frame.width}x{parsed.frame.height} frames"
    )


@recipe_app.command("schema")
def recipe_schema() -> None:
    """Print the recipe JSON schema (for editors and validators)."""
    print(json.dumps(recipe_json_schema(), indent=2))


def synth_command(
    product: Annotated[str, typer.Argument(help=f"Product: {', '.join(PRODUCTS)}.")],
    out: Annotated[Path, typer.Option(help="Folder for the recordings and ground truth.")],
    parts: Annotated[int, typer.Option(min=1, max=100_000, help="Parts to produce.")] = 100,
    defect_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of defective parts (0..1).")
    ] = 0.05,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same run).")] = 0,
    sequence: Annotated[
        bool, typer.Option(help="Record each part's heating/cooling sequence, not one frame.")
    ] = False,
    drift: Annotated[
        str | None,
        typer.Option(help="Slow process drift TARGET:PER_PART_C[:START_PART], e.g. Q1:0.05:300."),
    ] = None,
    suffix: Annotated[str, typer.Option(help="File format of the recordings.")] = ".seq",
    difficulty: Annotated[
        str, typer.Option(help=f"How hard to inspect: {', '.join(DIFFICULTIES)}.")
    ] = "normal",
) -> None:
    """Produce a synthetic production run: recordings our readers read, plus ground truth."""
    if product not in PRODUCTS:
        raise usage(f"unknown product {product!r}; choose from {', '.join(PRODUCTS)}")
    if difficulty not in DIFFICULTIES:
        raise usage(f"--difficulty: choose from {', '.join(DIFFICULTIES)}, got {difficulty!r}")
    try:
        writer_for(Path(f"part{suffix}"))
    except ThermoscopeFormatError as exc:
        raise usage(f"--suffix: {exc.reason}") from None
    process_drift = None
    if drift is not None:
        fields = drift.split(":")
        try:
            process_drift = Drift(
                fields[0], float(fields[1]), int(fields[2]) if len(fields) > 2 else 0
            )
        except (IndexError, ValueError):
            raise usage(f"--drift wants TARGET:PER_PART_C[:START_PART], got {drift!r}") from None
    try:
        run = simulate_run(
            product,
            parts=parts,
            defect_rate=defect_rate,
            rng=np.random.default_rng(seed),
            drift=process_drift,
            sequence=sequence,
            difficulty=cast(Difficulty, difficulty),
        )
    except (ThermoscopeError, ValueError) as exc:
        raise usage(str(exc)) from None
    try:
        with err_console.status(f"Producing {parts} {product} parts..."):
            truth = save_run(run, out, suffix=suffix)
    except (ThermoscopeError, OSError) as exc:
        raise fail(str(exc)) from None
    console.print(f"{parts} {product} parts in {out}/ (ground truth: {truth.name})")
