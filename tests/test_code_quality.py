"""Style gates that CI enforces: ruff (lint and format), mypy (strict on core and io) and no
unreferenced code."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import Counter
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


def _defined_names(tree: ast.Module) -> list[str]:
    """Top-level names a module defines for others to use: undecorated functions and classes
    (a decorator registers its function: routes, commands), constants, but not ORM tables
    (``__tablename__``, found through the mapper) nor dunders."""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            registered = any(
                not (isinstance(d, ast.Name) and d.id == "dataclass")
                and not (isinstance(d, ast.Call) and getattr(d.func, "id", "") == "dataclass")
                for d in node.decorator_list
            )
            table = isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in b.targets)
                for b in node.body
            )
            if not registered and not table:
                names.append(node.name)
        elif isinstance(node, ast.Assign):
            names.extend(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return [n for n in names if not (n.startswith("__") and n.endswith("__"))]


def test_no_unreferenced_top_level_code() -> None:
    """Every top-level function, class and constant of the package is used somewhere (in the
    package, its tests, benchmarks or examples) besides its own definition."""
    sources = [
        p
        for folder in ("src", "tests", "benchmarks", "examples")
        for p in (ROOT / folder).rglob("*.py")
    ]
    words: Counter[str] = Counter()
    for path in sources:
        words.update(re.findall(r"[A-Za-z_]\w*", path.read_text(encoding="utf-8")))
    unused = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "src" / "thermoscope").rglob("*.py"))
        if "migrations" not in path.parts
        for name in _defined_names(ast.parse(path.read_text(encoding="utf-8")))
        if words[name] <= 1
    ]
    assert unused == []
