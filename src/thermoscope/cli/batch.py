"""Run one action per file with a progress bar; a broken file is reported and the rest go on."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from thermoscope.core import ThermoscopeError

err_console = Console(stderr=True, soft_wrap=True)


def run_batch(files: list[Path], action: Callable[[Path], None], *, verb: str) -> list[str]:
    """Call ``action`` on every file; return one message per failure (also printed).

    A progress bar is shown on the terminal when there is more than one file.
    """
    failures: list[str] = []

    def one(path: Path) -> None:
        try:
            action(path)
        except ThermoscopeError as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            failures.append(message)
            err_console.print(f"[red]✗[/red] {message}", highlight=False, markup=True)
        except OSError as exc:
            message = f"{path}: {exc.strerror or exc}"
            failures.append(message)
            err_console.print(f"[red]✗[/red] {message}", highlight=False)

    if len(files) <= 1:
        for path in files:
            one(path)
        return failures
    columns = (
        TextColumn(f"{verb}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[name]}"),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task(verb, total=len(files), name="")
        for path in files:
            progress.update(task, name=path.name)
            one(path)
            progress.advance(task)
    return failures
