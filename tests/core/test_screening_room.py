"""The screening room's modules import one another one way (issue 27): no circle, also none hidden by an
import inside a function (screener -> auto_clearing -> audit -> regate -> screener was one)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOM = Path(__file__).resolve().parents[2] / "core" / "screening"
FRONT_DOOR = "__init__"


def room_imports() -> dict[str, set[str]]:
    """module -> the room's modules it imports, at module level or inside functions (the package itself,
    `core.screening`, counts as its front door, __init__)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOM.glob("*.py")):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name == "core.screening":
                    deps.add(FRONT_DOOR)
                elif name.startswith("core.screening."):
                    deps.add(name.split(".")[2])
        graph[path.stem] = deps - {path.stem}
    return graph


def test_the_room_imports_one_way():
    graph = room_imports()
    assert not [m for m, deps in graph.items() if FRONT_DOOR in deps], "a module imports the room's front door"
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        raise AssertionError(f"circle in core/screening: {' -> '.join(exc.args[1])}") from None


def test_the_shared_gate_path_and_the_clearing_rule_stand_alone():
    graph = room_imports()
    assert graph["deciding"] == set()  # the evaluation decides with it without loading the screener
    assert "audit_report" not in graph["auto_clearing"]  # the validation rule needs no HTML or CSV writer
