"""Turn command-line inputs (files, folders, globs) into a list of files."""

from __future__ import annotations

import glob
from pathlib import Path

from thermoscope.io import readers

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
