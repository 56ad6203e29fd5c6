"""A simulated clinic: the audit of a screened, labelled folder beside training.evaluate's way of gating it.

    # 1. screen the folder as the clinic would (the app's code; about 26 minutes for Derm7pt on 2 cores)
    nice -n 15 .venv/bin/python -m cli.main screen ../shared/data/derm7pt/images --db D7.sqlite
    # 2. its labels as confirmed diagnoses (a CSV with file, diagnosis, method, date)
    .venv/bin/python -m cli.main outcome import LABELS.csv --by "Derm7pt labels" --db D7.sqlite
    # 3. the audit, and this comparison
    .venv/bin/python -m cli.main audit --db D7.sqlite --out audit.html
    .venv/bin/python benchmarks/bench_clinic_simulation.py D7.sqlite

For every confidence level of the bundle it prints what the stored results would clear, re-gated
(core/screening/regate.py, no model run) as the app gates them (quality and intake checks) and as
training.evaluate's model-card figures were gated (raw outputs: no quality or intake flags), so the
second line can be set beside the card's table.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.inference.bundle import default_bundle_path, load_bundle  # noqa: E402
from core.records.store import ReviewStore  # noqa: E402
from core.screening import run_audit  # noqa: E402
from core.screening.regate import regate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db")
    ap.add_argument("--bundle", default=str(default_bundle_path()))
    args = ap.parse_args(argv)
    bundle = load_bundle(args.bundle, verify=False)
    with ReviewStore.open(args.db) as store:
        audit = run_audit(store, bundle)
    for g in audit.groups:
        f = g.figures
        lo, hi = f["malignant_auc_ci95"]
        mlo, mhi = f["melanoma_auc_ci95"]
        print(
            f"{g.bundle}, confidence {g.confidence}: {f['n']} cases ({f['n_malignant']} malignant, "
            f"{f['n_melanoma']} melanomas); p(malignant) AUC {f['malignant_auc']:.3f} ({lo:.3f}-{hi:.3f}), "
            f"p(melanoma) AUC {f['melanoma_auc']:.3f} ({mlo:.3f}-{mhi:.3f}); cleared {f['cleared_n']}, "
            f"held back by auto-clearing off {f['held_n']} ({f['held_malignant_n']} malignant)"
        )
        mal = np.array([c.malignant for c in g.cases])
        mel = np.array([c.melanoma for c in g.cases])
        for level in sorted({bundle.manifest.gate.default_confidence, *bundle.manifest.gate.fitted}):
            t = bundle.manifest.gate.thresholds(level)
            for label, bare in (("as the app gates", False), ("raw outputs only", True)):
                results = [replace(c.result, intake=None, quality=None) if bare else c.result for c in g.cases]
                d = np.array([regate(r, bundle, t).decision.value for r in results])
                cleared = d == "benign"
                print(
                    f"  {level:g} {label:17s} malignancies cleared {int((cleared & mal).sum()):3d}, melanomas "
                    f"{int((cleared & mel).sum()):3d}, benign {int((cleared & ~mal).sum()):3d}, suspicious "
                    f"{int((d == 'suspicious').sum()):3d}, review {int((d == 'uncertain').sum()):4d}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
