"""Shared fixtures: where the third-party sample files are."""

from __future__ import annotations

from pathlib import Path

import pytest

from sample_data import SKIP_REASON, samples_dir


@pytest.fixture
def samples() -> Path:
    """The shared sample folder; skips the test when it is absent."""
    found = samples_dir()
    if found is None:
        pytest.skip(SKIP_REASON)
    return found
