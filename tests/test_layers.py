"""DESIGN.md's layer table, enforced by parsing every module's imports (without running them).

Imports only go down: each package may import the packages in the rows above it in the table
(``LAYERS``, bottom first), never one below, and the table's "must not import" exceptions hold
(render, analysis and recipes do not import io). Core imports nothing of ours and no third-party
package but NumPy. Imports inside functions count as much as those at the top of a module (a
lazy import is still a dependency), and no chain of runtime imports leads from a module back to
itself: a cycle that an import inside a function merely dodges would show up here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from dataclasses import astuple, dataclass, replace
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "thermoscope"

#: DESIGN.md's table, bottom layer first.
LAYERS = (
    "core",
    "io",
    "render",
    "analysis",
    "recipes",
    "annotations",
    "storage",
    "datasets",
    "models",
    "reports",
    "pipeline",
    "twin",
    "edge",
    "server",
    "web",
    "cli",
)
#: The table's "must not import" entries that the order alone does not say.
FORBIDDEN = {"render": {"io"}, "analysis": {"io"}, "recipes": {"io"}}
#: Top-level modules outside the table, placed in it: ``formats`` registers io's readers and
#: render's png writer with io: a row of its own just above both.
#: ``loop_demo`` runs server, edge and models together (``thermoscope demo --loop``): the cli row.
PLACED: dict[str, str] = {"loop_demo": "cli"}
ORDER = (*LAYERS[:3], "formats", *LAYERS[3:])
#: Third-party packages core may use.
CORE_THIRD_PARTY = {"numpy"}


@dataclass(frozen=True)
class Import:
    """One import statement's target, as a dotted module name."""

    module: str
    target: str
    line: int
    runtime: bool  # False inside ``if TYPE_CHECKING:``


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, runtime: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for stmt in child.body:
                    visit_stmt(stmt, False)
                for stmt in child.orelse:
                    visit_stmt(stmt, runtime)
                continue
            visit_stmt(child, runtime)

    def visit_stmt(node: ast.AST, runtime: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(module, a.name, node.lineno, runtime) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(module, sub if sub in MODULES else base, node.lineno, runtime))
        visit(node, runtime)

    visit(tree, True)
    return found


ALL_IMPORTS = [imp for module in MODULES for imp in _imports(module)]


def _layer(module: str) -> str:
    """The table row of a module of ours (``""`` for the ``thermoscope`` package itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    return PLACED.get(parts[1], parts[1])


def _own(target: str) -> bool:
    return target == "thermoscope" or target.startswith("thermoscope.")


def test_every_package_is_in_the_table() -> None:
    unknown = {_layer(m) for m in MODULES} - set(ORDER) - {""}
    assert not unknown, f"packages missing from DESIGN.md's layer table: {sorted(unknown)}"


def _layer_violations(imports: list[Import]) -> list[str]:
    rank = {name: i for i, name in enumerate(ORDER)}
    problems = []
    for imp in imports:
        if not _own(imp.target):
            continue
        src, dst = _layer(imp.module), _layer(imp.target)
        if src == dst or src == "":
            continue
        where = f"{imp.module} (line {imp.line}) imports {imp.target}"
        if src == "core":
            problems.append(f"{where}: core imports nothing of ours")
        elif dst == "":
            continue  # the package itself: version and re-exported core types
        elif rank[dst] > rank[src]:
            problems.append(f"{where}: {src} sits below {dst}")
        elif dst in FORBIDDEN.get(src, set()):
            problems.append(f"{where}: {src} must not import {dst}")
    return problems


def test_imports_only_go_down_the_layer_table() -> None:
    assert _layer_violations(ALL_IMPORTS) == []


def _core_third_party(imports: list[Import]) -> list[str]:
    allowed = set(sys.stdlib_module_names) | {"__future__"} | CORE_THIRD_PARTY
    return [
        f"{imp.module} (line {imp.line}) imports {imp.target}: core uses NumPy only"
        for imp in imports
        if _layer(imp.module) == "core"
        and not _own(imp.target)
        and imp.target.split(".")[0] not in allowed
    ]


def test_core_uses_numpy_and_the_standard_library_only() -> None:
    assert _core_third_party(ALL_IMPORTS) == []


def _cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of modules under runtime imports (a module importing its own
    parent package does not count: Python runs the parent first)."""
    known = set(MODULES) | {imp.module for imp in imports}
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        target = imp.target
        while target and target not in known:
            target = target.rpartition(".")[0]
        ancestor = imp.module.startswith(target + ".")
        if imp.runtime and target and target != imp.module and not ancestor:
            graph[imp.module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return groups


def test_no_import_cycles() -> None:
    assert _cycles(ALL_IMPORTS) == []


@pytest.mark.parametrize(
    ("module", "source", "problem"),
    [
        ("thermoscope.io.formats", "from thermoscope.render.writer import X", "io sits below"),
        ("thermoscope.render.writer", "from thermoscope.io.registry import X", "must not"),
        ("thermoscope.core.regions", "import cv2", "NumPy only"),
        ("thermoscope.core.frame", "def f():\n    from thermoscope.io import load", "core"),
    ],
)
def test_the_layer_checks_catch_what_they_are_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, source: str, problem: str
) -> None:
    """The old io -> render -> io edges, cv2 in core, a lazy import of a higher layer."""
    path = tmp_path / "module.py"
    path.write_text(source + "\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, module, path)
    imports = _imports(module)
    found = _layer_violations(imports) + _core_third_party(imports)
    assert any(problem in p for p in found), found


def test_the_cycle_check_finds_the_old_registry_cycle() -> None:
    """io.registry imported io.formats inside a function; io.formats imported
    render.writer, which imported io.registry."""
    old = [
        Import("thermoscope.io.registry", "thermoscope.io.formats", 62, True),
        Import("thermoscope.io.formats", "thermoscope.render.writer", 15, True),
        Import("thermoscope.render.writer", "thermoscope.io.registry", 12, True),
    ]
    assert _cycles(old) == [
        ["thermoscope.io.formats", "thermoscope.io.registry", "thermoscope.render.writer"]
    ]
    assert _cycles([*old[:2], Import(*astuple(old[2])[:3], False)]) == []


def test_importing_io_alone_registers_every_format() -> None:
    """``thermoscope.formats`` registers io's formats and render's png writer in one place; the
    ``thermoscope`` package imports it, so a program that imports only io sees them all."""
    code = (
        "import thermoscope.io as t; "
        "print(*(r.name for r in t.readers())); print(*(w.name for w in t.writers()))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    readers, writers = result.stdout.splitlines()
    assert readers.split() == ["flir-rjpeg", "flir-seq", "dji-rjpeg", "tiff", "npy", "csv"]
    assert writers.split() == ["flir-fff", "flir-seq", "flir-csq", "png", "tiff", "npy", "csv"]


def test_registering_a_format_again_replaces_it_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    from thermoscope.formats import PNG_WRITER
    from thermoscope.io import registry

    monkeypatch.setattr(registry, "_WRITERS", list(registry.writers()))
    order = [w.name for w in registry.writers()]
    other = replace(PNG_WRITER, description="another picture")
    registry.register_writer(other)
    assert [w.name for w in registry.writers()] == order
    assert registry.writer_for("x.png") is other
