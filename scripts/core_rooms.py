"""A look at core/'s rooms: each room's modules (lines), and which rooms import which, lowest first.

    .venv/bin/python scripts/core_rooms.py

Rooms are printed in the order of the layers contract (pyproject.toml); an arrow always points down
the list (a room imports only rooms below it); an arrow up, or a circle between modules, is printed as
a problem (the layers contract and tests/core/test_core_shape.py fail on them too).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ["screening", "records", "inference", "imaging", "files", "decision", "common"]  # top to bottom


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def main() -> int:
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("core")
    arrows: Counter[tuple[str, str]] = Counter()
    for m in graph.modules:
        for d in graph.find_modules_directly_imported_by(m):
            a, b = room_of(m), room_of(d)
            if a and b and a != b:
                arrows[(a, b)] += 1
    problems = 0
    for room in ROOMS:
        folder = ROOT / "core" / room
        modules = sorted(p for p in folder.rglob("*.py") if p.name != "__init__.py" or p.parent != folder)
        lines = {str(p.relative_to(folder).with_suffix("")): p.read_text().count("\n") for p in modules}
        print(f"{room} ({len(modules)} modules, {sum(lines.values())} lines)")
        print("   " + ", ".join(f"{name} {n}" for name, n in lines.items()))
        below = [(b, n) for (a, b), n in sorted(arrows.items()) if a == room]
        for b, n in below:
            up = ROOMS.index(b) < ROOMS.index(room)
            problems += up
            print(f"   {'UP (problem) ' if up else ''}-> {b} ({n} imports)")
    print(f"{problems} arrows up")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
