"""Outcome codes live in one place (issue 27): "benign", "uncertain", "suspicious" and "not_dermoscopy" are
written as literals only in core/decision/vocabulary.py (the table) and core/decision/results.py (the
Decision enum). Everywhere else they are `Decision.REVIEW.value`, `NOT_DERMOSCOPY.code` and so on, so a
reader finds every use of an outcome by its name, and the stored codes cannot drift apart."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "cli", "desktop", "evalkit", "training", "export")
OUTCOME_CODES = frozenset({"benign", "uncertain", "suspicious", "not_dermoscopy"})
ALLOWED = frozenset({"core/decision/vocabulary.py", "core/decision/results.py"})


def outcome_literals(source: str) -> list[tuple[int, str]]:
    """(line, code) of every string constant equal to an outcome code (SQL or prose that merely contains
    one is a longer string, not a code)."""
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in OUTCOME_CODES
    )


def test_the_check_finds_a_code_and_passes_prose_and_sql():
    found = outcome_literals(
        'x = "benign"\n'
        "if d == 'not_dermoscopy':\n    pass\n"
        "sql = \"SELECT count(*) FROM results WHERE decision = 'uncertain'\"\n"
        'words = f"{n} suspicious"\n'
    )
    assert found == [(1, "benign"), (2, "not_dermoscopy")]


def test_outcome_codes_are_written_only_in_the_vocabulary():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED:
                continue
            offenders += [f"{rel}:{line}: {code!r}" for line, code in outcome_literals(path.read_text("utf-8"))]
    assert not offenders, "outcome codes written as literals (use Decision members or the vocabulary):\n" + (
        "\n".join(offenders)
    )
