"""Shared fixtures: where the third-party sample files are; tests marked ``samples`` skip
(with the reason) where they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from sample_data import SKIP_REASON, samples_dir


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip every test marked ``samples`` when the shared sample folder is absent."""
    if samples_dir() is not None:
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("samples") is not None:
            item.add_marker(skip)


@pytest.fixture
def samples() -> Path:
    """The shared sample folder; skips the test when it is absent."""
    found = samples_dir()
    if found is None:
        pytest.skip(SKIP_REASON)
    return found
