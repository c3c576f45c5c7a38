"""Private files of the server and the edge: data folders, the blob folders (0700) and the SQLite
database (0600; it holds password and token hashes), like the blobs themselves (0600)."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, narrow: bool = False) -> Path:
    """Create ``path`` and its missing parents as 0700 folders; with ``narrow``, an existing
    ``path`` that others may read is narrowed to 0700 (logged). Returns ``path``."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
    if narrow:
        _narrow(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as a 0600 file when missing, else narrow it to 0600 (logged)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except FileExistsError:
        _narrow(path, FILE_MODE)
    return path


def _narrow(path: Path, mode: int) -> None:
    current = stat.S_IMODE(path.stat().st_mode)
    if current & ~mode:
        log.warning("narrowing the permissions of %s from %o to %o", path, current, mode)
        path.chmod(mode)
