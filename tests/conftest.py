"""Shared fixtures: where the third-party sample files are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SAMPLES = Path(os.environ.get("THERMOSCOPE_SAMPLES", Path(__file__).parents[1] / ".." / "shared" / "data"))


def samples_dir() -> Path | None:
    """The shared sample folder, or ``None`` when it is not present."""
    return SAMPLES if (SAMPLES / "README.md").is_file() else None


@pytest.fixture
def samples() -> Path:
    """The shared sample folder; skips the test when it is absent."""
    found = samples_dir()
    if found is None:
        pytest.skip(f"sample data not found at {SAMPLES} (set THERMOSCOPE_SAMPLES)")
    return found
