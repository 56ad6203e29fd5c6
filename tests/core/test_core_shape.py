"""The shape of core/ (issue 27): rooms along the flow, no circle between modules (function-level imports
included), no module over 400 lines, no function over 80. The layers between rooms are import-linter's
contract (pyproject.toml); this file checks what a layers contract cannot see."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
# Named exceptions, each with its reason (none today; add "path::function": "why" only with a reason).
FUNCTION_EXCEPTIONS: dict[str, str] = {}
MODULE_EXCEPTIONS: dict[str, str] = {}
ROOMS = ("common", "decision", "files", "imaging", "inference", "records", "screening")


def _core_files() -> list[Path]:
    return sorted(p for p in (ROOT / "core").rglob("*.py") if "models" not in p.parts)


def test_core_holds_only_rooms_and_its_front_door():
    loose = sorted(p.name for p in (ROOT / "core").glob("*.py") if p.name != "__init__.py")
    assert loose == [], f"modules outside core's rooms: {loose}"
    rooms = sorted(p.name for p in (ROOT / "core").iterdir() if (p / "__init__.py").is_file())
    assert rooms == sorted(ROOMS)


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_of_core_is_over_400_lines(path: Path):
    rel = str(path.relative_to(ROOT))
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES or rel in MODULE_EXCEPTIONS, f"{rel}: {lines} lines"


def test_no_function_of_core_is_over_80_lines():
    long = []
    for path in _core_files():
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > MAX_FUNCTION_LINES and f"{rel}::{node.name}" not in FUNCTION_EXCEPTIONS:
                    long.append(f"{rel}::{node.name} ({n} lines)")
    assert long == []


def test_no_circle_between_core_modules():
    """Strongly connected parts of core's import graph, function-level imports counted: there are none."""
    graph = grimp.build_graph("core")
    modules = sorted(m for m in graph.modules if m.startswith("core."))
    edges = {m: {d for d in graph.find_modules_directly_imported_by(m) if d.startswith("core.")} for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                circles.append(sorted(part))

    for m in modules:
        if m not in index:
            visit(m)
    assert circles == []


def test_the_app_and_the_command_line_import_core_through_its_front_door():
    deep = []
    for face in ("desktop", "cli"):
        for path in sorted((ROOT / face).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("core."):
                    deep.append(f"{path.relative_to(ROOT)}:{node.lineno} from {node.module}")
                if isinstance(node, ast.Import):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    deep += [f"{where} import {a.name}" for a in node.names if a.name.startswith("core.")]
    assert deep == [], "import these names from `core` (core/__init__.py lists what the faces may use)"


def test_every_name_of_the_front_door_loads_from_the_module_it_names():
    import core

    for name in core.__all__:
        assert getattr(core, name) is getattr(__import__(core._PUBLIC[name], fromlist=[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        core.nothing_here  # noqa: B018
