"""What applying the intake finding in the evaluation changes (issue 27: the evaluation now decides through the
app's gate path, core.screening.deciding.decide_image, where it used to gate without the intake check).

From saved per-view outputs (evalkit.view_outputs: logits, intake scores, picture statistics and the app's
quality reports; no model run), each image of a set is decided both ways at every confidence level of the
bundle, and the differences are counted.

    .venv/bin/python scripts/intake_finding_effect.py --outputs ../cache/cascade/outputs --sets ham_test,derm7pt
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.decision.gate import decide  # noqa: E402
from core.decision.results import Decision  # noqa: E402
from core.decision.vocabulary import NOT_DERMOSCOPY  # noqa: E402
from core.screening.deciding import decide_image  # noqa: E402
from evalkit.cascade_fit import Decider, load_outputs  # noqa: E402
from evalkit.cascade_views import saved_views  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outputs", type=Path, default=Path("../cache/cascade/outputs"))
    ap.add_argument("--bundle", type=Path, default=Path("core/models/default"))
    ap.add_argument("--sets", default="ham_test,derm7pt")
    a = ap.parse_args(argv)
    d = Decider(a.bundle, saved=saved_views(a.outputs))
    m = d.m
    malignant = set(m.malignant_classes)
    for name in a.sets.split(","):
        out = load_outputs(a.outputs, (name,))
        preds = d.predictions(out, tuple(range(len(m.members))), d.ens.views)
        for level in sorted({m.gate.default_confidence, *m.gate.fitted}):
            t = m.gate.thresholds(level)
            moves: Counter[str] = Counter()
            flagged = not_dermoscopy = bands = reasons = 0
            cleared_before = cleared_after = 0
            for i, p in enumerate(preds):
                row = out.statistics[i]
                stats = row if row.size and np.all(np.isfinite(row)) else None  # NaN rows: no statistics
                before = decide(p, t, out.quality[i], m.gate.max_member_spread, scope=m.risk_scope)
                after, intake = decide_image(m, p, t, out.quality[i], stats)
                flagged += intake is not None and intake.flagged
                not_dermoscopy += intake is not None and intake.level == NOT_DERMOSCOPY.code
                if before.decision != after.decision:
                    moves[f"{before.decision.value} -> {after.decision.value}"] += 1
                elif before.band != after.band:
                    bands += 1
                reasons += before.reason != after.reason
                if out.dx[i] in malignant:
                    cleared_before += before.decision is Decision.NO_CANCER_SUSPECTED
                    cleared_after += after.decision is Decision.NO_CANCER_SUSPECTED
            print(
                f"{name} ({len(preds)} images) at {level:g}: {flagged} flagged by the intake check "
                f"({not_dermoscopy} not dermoscopy); decision changed {sum(moves.values())} {dict(moves)}; "
                f"band only {bands}; reason text {reasons}; malignancies cleared {cleared_before} -> {cleared_after}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
