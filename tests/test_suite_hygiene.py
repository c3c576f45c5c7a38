"""The suite's own hygiene: sample files only behind guards, our packages imported plainly.

Tests reach the shared sample files only through guards that skip with the reason: the
``samples`` fixture, ``reference_cases`` and the ``samples`` marker (see ``conftest.py``); a
test that builds a sample path from ``SAMPLES`` itself fails where ``../shared`` is absent
instead of skipping. ``importorskip`` of a thermoscope package would turn a broken import into a
skip, so our packages are imported plainly.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
GUARDED = {TESTS / "sample_data.py", TESTS / "conftest.py", Path(__file__).resolve()}


def _modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if p not in GUARDED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_reaches_the_samples_unguarded(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sample_data":
            names = {alias.name for alias in node.names}
            assert "SAMPLES" not in names, (
                f"{path.name}:{node.lineno} imports the sample folder itself; use the "
                "`samples` fixture, `reference_cases` or the `samples` marker"
            )
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert "shared/data" not in node.value, f"{path.name}:{node.lineno} names ../shared"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(TESTS)))
def test_our_packages_are_imported_plainly(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "importorskip"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            module = str(node.args[0].value)
            assert module.split(".")[0] != "thermoscope", (
                f"{path.name}:{node.lineno} importorskip({module!r}) would hide a broken import"
            )


def test_marked_tests_skip_with_the_reason_without_samples(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("conftest.py", "sample_data.py", "services.py"):
        shutil.copy(TESTS / name, project / name)
    (project / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    samples: needs the shared samples\n", encoding="utf-8"
    )
    (project / "test_needs_samples.py").write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.samples
            def test_reads_a_sample():
                raise AssertionError("ran without its samples")

            def test_uses_the_fixture(samples):
                raise AssertionError("ran without its samples")
            """
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "THERMOSCOPE_SAMPLES": str(tmp_path / "empty")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 skipped" in result.stdout
    assert result.stdout.count("sample data not found at") == 2
