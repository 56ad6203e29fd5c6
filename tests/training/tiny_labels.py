"""Writing small labels CSVs for the training tests (subsets of the shared data sets)."""

import csv
from pathlib import Path


def write_labels(path: Path, rows: list[dict]) -> Path:
    """A labels CSV with the columns of the first row (tiny subsets of the shared sets)."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path
