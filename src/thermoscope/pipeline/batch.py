"""Inspect a batch of files with a recipe (and a model): verdicts, the drift watch, report and
JSON lines.

Each input file is one part: a single frame, or the part's heating/cooling sequence, decoded
with ``decode_path`` and inspected with ``Pipeline.inspect_part`` (the path the server and the
edge take). Parts are inspected in the order given (the production order, for the drift watch);
a file that cannot be read or does not fit the recipe is recorded as a failure and the run goes
on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thermoscope.core import Inspection, ThermalFrame, ThermoscopeError, Verdict
from thermoscope.pipeline.decode import decode_path
from thermoscope.pipeline.part import PartModel, Pipeline
from thermoscope.recipes import Recipe
from thermoscope.recipes.watch import DriftAlarm, RunWatch, WatchSettings
from thermoscope.reports import ControlChart, ReportPart, write_html_report, write_jsonl

#: OK parts whose frames are kept for report thumbnails (flagged parts always are).
OK_THUMBNAILS = 12


@dataclass(slots=True)
class RunResult:
    """What a batch inspection found.

    Attributes:
        inspections: one per part that could be inspected, in input order.
        failures: ``(file, reason)`` for inputs that could not be inspected.
        warnings: ``(file, problem)`` for inputs inspected without all their data (a recording
            whose last frame is cut short is inspected on its complete frames).
        alarms: drift alarms raised while the parts came in.
        counts: parts per verdict.
    """

    inspections: list[Inspection] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[tuple[Path, str]] = field(default_factory=list)
    alarms: list[DriftAlarm] = field(default_factory=list)
    counts: dict[Verdict, int] = field(default_factory=lambda: dict.fromkeys(Verdict, 0))


def inspect_files(
    files: Sequence[Path],
    recipe: Recipe,
    *,
    model: PartModel | None = None,
    ambient_c: float | None = None,
    watch: WatchSettings | None = None,
    report: Path | None = None,
    jsonl: Path | None = None,
    on_part: Callable[[Path, Inspection | None], None] | None = None,
) -> RunResult:
    """Inspect every file with ``recipe``; write the HTML report and JSON lines when asked.

    Args:
        files: one part per file, in production order.
        recipe: the product's recipe.
        model: a learned model whose findings join the recipe's, if any.
        ambient_c: an ambient reading in °C for every part (overrides the recipe's ambient).
        watch: drift-watch settings (default ``WatchSettings()``).
        report: path of the HTML report to write, if any.
        jsonl: path of the JSON-lines file to write, if any.
        on_part: called after each file with its inspection (``None`` when it failed).
    """
    pipeline = Pipeline(recipe, model)
    regions = pipeline.regions
    watcher = RunWatch(watch)
    result = RunResult()
    parts: list[ReportPart] = []
    ok_kept = 0
    for path in files:
        try:
            inspection, frame, issues = _inspect_file(path, pipeline, ambient_c)
        except ThermoscopeError as exc:
            message = str(exc)
            result.failures.append(
                (path, message if str(path) in message else f"{path}: {message}")
            )
            if on_part is not None:
                on_part(path, None)
            continue
        result.warnings.extend((path, issue) for issue in issues)
        result.inspections.append(inspection)
        result.counts[inspection.verdict] += 1
        result.alarms.extend(watcher.update(inspection, ambient=ambient_c))
        keep = inspection.verdict is not Verdict.OK or ok_kept < OK_THUMBNAILS
        ok_kept += inspection.verdict is Verdict.OK and keep
        parts.append(ReportPart(inspection, celsius=frame if keep else None, regions=regions))
        if on_part is not None:
            on_part(path, inspection)
    if jsonl is not None:
        write_jsonl(jsonl, result.inspections)
    if report is not None:
        write_html_report(
            report,
            parts,
            title=f"{recipe.product or recipe.name}: thermal inspection",
            meta={"recipe": f"{recipe.name} {recipe.version}", "parts": str(len(files))},
            control_charts=_charts(watcher),
            ok_thumbnails=OK_THUMBNAILS,
        )
    return result


def _inspect_file(
    path: Path, pipeline: Pipeline, ambient_c: float | None
) -> tuple[Inspection, ThermalFrame, tuple[str, ...]]:
    """Inspect one file; return its inspection, the frame the inspection names (for the
    report's thumbnail) and the file's issues (e.g. a truncated last frame, not inspected)."""
    with decode_path(path, keep=pipeline.frames_needed) as part:
        inspection = pipeline.inspect_part(part, source=str(path), ambient_c=ambient_c)
        index = inspection.frame if part.frame_count > 1 and inspection.frame is not None else 0
        return inspection, part.frame(index), part.issues


def _charts(watcher: RunWatch) -> list[ControlChart]:
    """EWMA charts of the series that raised alarms, else of the first few series."""
    keys = watcher.keys()
    alarmed = [k for k in keys if any((a.rule, a.region) == k for a in watcher.alarms)]
    charts = []
    for rule, region in alarmed or keys[:3]:
        history = watcher.history(rule, region)
        if not np.isfinite(history.ewma).any():
            continue
        charts.append(
            ControlChart(
                f"{rule} ({region}): EWMA of the ambient-compensated value",
                values=history.compensated,
                statistic=history.ewma,
                lower=history.ewma_lower,
                upper=history.ewma_upper,
                alarms=[a.part_index for a in history.alarms],
                center=float(history.center),
                unit=history.unit,
                parts=history.part_index,
            )
        )
    return charts
