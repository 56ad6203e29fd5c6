"""Several bundles side by side, from their multi-set reports (python -m training.evaluate --sets):
the model card's comparison table (issue 16: melanoma AUC and what the default gate auto-clears on
each test set, for the shipped bundle and the one it replaces).

    python -m evalkit.compare REPORT_NEW REPORT_OLD [--level 0.99]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .report import _num, _pct
from .scoring import EvaluationError


def load_report(folder: str | Path) -> dict:
    path = Path(folder) / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: not a readable report ({exc})") from None
    if "sets" not in data or "bundle" not in data:
        raise EvaluationError(f"{path}: not a multi-set report; make it with python -m training.evaluate --sets ...")
    return data


def comparison_table(reports: Sequence[dict], level: str | None = None) -> list[str]:
    """One row per bundle; per set: melanoma AUC (CI), melanomas / all malignancies auto-cleared and
    benign lesions cleared at the gate level (default: each set's default confidence)."""
    sets = list(dict.fromkeys(name for r in reports for name in r["sets"]))
    head = ["bundle"]
    for name in sets:
        head += [f"{name} mel AUC", f"{name} mel cleared", f"{name} malignant cleared", f"{name} benign cleared"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in reports:
        cells = [f"{r['bundle']['version']}"]
        for name in sets:
            c = r["sets"].get(name)
            if c is None:
                cells += ["not scored"] * 4
                continue
            g = c["gate"].get(level or f"{c['gate_default_confidence']:g}", {})
            auc = c["melanoma_auc"]
            cells += [
                f"{_num(auc['auc'])} ({_num(auc['ci95'][0])}-{_num(auc['ci95'][1])})",
                f"{_pct(g.get('melanomas_auto_cleared_share'))} ({g.get('melanomas_auto_cleared_n', 'n/a')})",
                f"{_pct(g.get('malignant_auto_cleared_share'))} ({g.get('malignant_auto_cleared_n', 'n/a')})",
                _pct(g.get("benign_cleared_share")),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evalkit.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("reports", nargs="+", help="report folders written by python -m training.evaluate --sets")
    ap.add_argument("--level", help="gate confidence level (default: each bundle's default)")
    args = ap.parse_args(argv)
    try:
        print("\n".join(comparison_table([load_report(r) for r in args.reports], args.level)))
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
