"""Where the shared third-party sample files are, and the radiometric files among them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

SAMPLES = Path(
    os.environ.get(
        "THERMOSCOPE_SAMPLES", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
)
SKIP_REASON = f"sample data not found at {SAMPLES} (set THERMOSCOPE_SAMPLES)"


def samples_dir() -> Path | None:
    """The shared sample folder, or ``None`` when it is not present."""
    return SAMPLES if (SAMPLES / "README.md").is_file() else None


def reference_cases(*subdirs: str) -> list[Any]:
    """One pytest param per radiometric file that has a ``.reference.npz`` beside it.

    New files dropped into the folder are covered automatically; without the folder the
    single param is skipped with the reason.
    """
    root = samples_dir()
    if root is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-samples")]
    cases = []
    for sub in subdirs:
        for ref in sorted((root / sub).glob("*.reference.npz")):
            stem = ref.name.removesuffix(".reference.npz")
            data = [p for p in ref.parent.glob(stem + ".*") if not p.name.endswith(".npz")]
            cases.extend(pytest.param(p, id=f"{sub}/{p.name}") for p in data)
    return cases


def reference_for(path: Path) -> Path:
    """The reference ``.npz`` beside a sample file."""
    return path.with_name(path.name.split(".")[0] + ".reference.npz")
