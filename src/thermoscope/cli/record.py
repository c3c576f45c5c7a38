"""``thermoscope inspect-record``: inspect one part record (views + sensors) from a manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from thermoscope.cli.exits import fail
from thermoscope.core import Finding, ThermoscopeError, Verdict
from thermoscope.io.record_manifest import load_record_manifest
from thermoscope.io.registry import write_atomic
from thermoscope.recipes import load_recipe
from thermoscope.recipes.record import PROTOCOL_RULE, inspect_record

console = Console()

VERDICT_STYLE = {
    Verdict.OK: "green",
    Verdict.WARN: "yellow",
    Verdict.NG: "red",
    Verdict.RETAKE: "magenta",
}


def _origin(finding: Finding, main_view: str) -> tuple[str, str]:
    """The view and the sensors a finding came from (``"-"`` when none), for the table."""
    sources = finding.extra.get("sources")
    sensor = finding.extra.get("sensor")
    if isinstance(sources, list):
        sensors = ", ".join(str(s) for s in sources if s != "thermal") or "-"
    else:
        sensors = str(sensor) if sensor is not None else "-"
    if finding.rule == PROTOCOL_RULE:
        view = finding.region.split(" ", 1)[0]
    elif "/" in finding.rule:
        view = finding.rule.split("/", 1)[0]
    elif sensor is not None:
        view = "-"
    else:
        view = main_view
    return view, sensors


def inspect_record_command(
    manifest: Annotated[
        Path, typer.Argument(help="The part-record manifest (YAML/JSON).", metavar="MANIFEST")
    ],
    recipe: Annotated[
        Path, typer.Option("--recipe", "-r", help="The product's recipe (YAML/JSON).")
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the inspection as JSON here.")
    ] = None,
) -> None:
    """Inspect one part record (views, sensors, ambient): OK / WARN / NG / RETAKE and findings."""
    try:
        parsed = load_recipe(recipe)
        record = load_record_manifest(manifest)
        inspection = inspect_record(record, parsed)
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
    table = Table("view", "sensors", "rule", "verdict", "finding")
    for finding in inspection.findings:
        view, sensors = _origin(finding, parsed.view)
        style = VERDICT_STYLE[finding.verdict]
        table.add_row(
            escape(view),
            escape(sensors),
            escape(finding.rule),
            f"[{style}]{finding.verdict.value}[/{style}]",
            escape(finding.explanation),
        )
    console.print(table)
    style = VERDICT_STYLE[inspection.verdict]
    console.print(
        f"part {escape(record.part_id)}: [{style}]{inspection.verdict.value}[/{style}] "
        f"({len(record.views)} views, {len(record.sensors)} sensors, recipe {escape(parsed.name)})"
    )
    if json_out is not None:
        text = json.dumps(inspection.to_json(), indent=2, ensure_ascii=False) + "\n"
        try:
            write_atomic(json_out, text.encode("utf-8"))
        except OSError as exc:
            raise fail(f"{json_out}: cannot write: {exc.strerror or exc}") from None
        console.print(f"JSON: {json_out}")
