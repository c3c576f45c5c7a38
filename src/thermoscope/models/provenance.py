"""Where a model comes from: the version of the code that trained it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import thermoscope


def code_version() -> str:
    """thermoscope's version, plus ``+git.<commit>`` (12 hex digits) when the package runs
    from a git checkout; the version alone elsewhere (an installed wheel, no git)."""
    base = thermoscope.__version__
    here = Path(thermoscope.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return base
    commit = out.stdout.strip()
    return f"{base}+git.{commit}" if out.returncode == 0 and commit else base
