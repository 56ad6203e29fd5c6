"""Exporting results: one CSV row per file found."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from .results import ScreeningResult

CSV_COLUMNS = ("path", "status", "p_melanoma", "decision", "reason", "spread", "quality_flags", "sha256")


def csv_rows(results: Iterable[ScreeningResult], class_names: Iterable[str] = ()) -> Iterable[dict]:
    classes = list(class_names)
    for r in results:
        row = {
            "path": r.path,
            "status": r.status,
            "p_melanoma": f"{r.p_melanoma:.4f}" if r.p_melanoma is not None else "",
            "decision": r.decision.value if r.decision is not None else "",
            "reason": r.reason,
            "spread": f"{r.spread:.4f}" if r.spread is not None else "",
            "quality_flags": ";".join(r.quality.flags) if r.quality else "",
            "sha256": r.sha256 or "",
        }
        for c in classes:
            p = r.class_probs.get(c)
            row[f"p_{c}"] = f"{p:.4f}" if p is not None else ""
        yield row


def write_csv(results: Iterable[ScreeningResult], path: str | Path, class_names: Iterable[str] = ()) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = list(class_names)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[*CSV_COLUMNS, *(f"p_{c}" for c in classes)])
        writer.writeheader()
        writer.writerows(csv_rows(results, classes))
    return path
