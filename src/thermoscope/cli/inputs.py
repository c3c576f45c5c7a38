"""Turn command-line inputs (files, folders, globs, a recipe file) into what commands use."""

from __future__ import annotations

import glob
from pathlib import Path

from thermoscope.cli.batch import err_console
from thermoscope.cli.exits import fail
from thermoscope.core import ThermoscopeError
from thermoscope.io import readers
from thermoscope.recipes import Recipe, load_recipe

_GLOB_CHARS = set("*?[")


def readable_suffixes() -> set[str]:
    """File name endings that some reader claims (used when a folder is given)."""
    return {suffix for reader in readers() for suffix in reader.suffixes}


def expand_inputs(items: list[str]) -> tuple[list[Path], list[str]]:
    """Files named by ``items`` and messages for items that match nothing.

    A folder contributes its files (recursively) whose suffix a reader claims; a pattern with
    ``*``, ``?`` or ``[`` is expanded (``**`` recurses); anything else is taken as a file name.
    """
    files: list[Path] = []
    problems: list[str] = []
    suffixes = readable_suffixes()
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
            )
            if not found:
                problems.append(f"{item}: folder holds no radiometric files")
            files.extend(found)
        elif _GLOB_CHARS & set(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matches:
                problems.append(f"{item}: pattern matches no files")
            files.extend(matches)
        else:
            files.append(path)
    unique = list(dict.fromkeys(files))
    return unique, problems


def expand_and_report(items: list[str]) -> tuple[list[Path], list[str]]:
    """``expand_inputs``, with each item that matches nothing printed on standard error."""
    files, problems = expand_inputs(items)
    for problem in problems:
        err_console.print(f"[red]✗[/red] {problem}", highlight=False)
    return files, problems


def recipe_or_fail(path: Path) -> Recipe:
    """The recipe in ``path``; a bad recipe ends the command with exit code 1 and the reason."""
    try:
        return load_recipe(path)
    except ThermoscopeError as exc:
        raise fail(str(exc)) from None
