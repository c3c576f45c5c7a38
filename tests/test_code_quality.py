"""Style gates that CI enforces: ruff (lint and format) and mypy (strict on core and io)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "check", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"]
)
def test_ruff(check: list[str]) -> None:
    result = run(sys.executable, "-m", "ruff", *check)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr
