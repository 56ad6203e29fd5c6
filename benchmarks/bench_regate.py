"""Time changing the confidence of a stored run (core/screening/regate.py): the gate applied again to the stored
results, no model run. A trial (in memory) and the clinic's standard (recorded as a new run).

    .venv/bin/python benchmarks/bench_regate.py                  # the default bundle, 45 and 500 results
    .venv/bin/python benchmarks/bench_regate.py --sizes 45 2000 --bundle PATH

The stored run is written directly (realistic rows: class probabilities, a 128 px heat map, a thumbnail)
with the bundle's result key, so nothing is screened; the bundle must have fitted gates for 0.99 and 0.95.
Prints the median of 3 runs per size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.decision.gate import decide  # noqa: E402
from core.decision.results import Prediction, ScreeningResult  # noqa: E402
from core.inference.bundle import default_bundle_path, load_bundle  # noqa: E402
from core.records.store import ReviewStore  # noqa: E402
from core.screening import (  # noqa: E402
    GateChoice,
    regate_run,  # noqa: E402
    result_key,
)


def stored_run(store: ReviewStore, bundle, n: int) -> int:
    m = bundle.manifest
    gate = GateChoice(0.99)
    thresholds = m.gate.thresholds(0.99)
    key = result_key(bundle, gate)
    run = store.start_run("/bench", m.name, m.version, key, {"confidence": 0.99})
    rng = np.random.default_rng(0)
    ok, thumb = cv2.imencode(".jpg", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    for i in range(n):
        probs = rng.dirichlet(np.ones(len(m.class_names)))
        class_probs = {c: float(p) for c, p in zip(m.class_names, probs)}
        mal = [c for c in m.malignant_classes if c in class_probs]
        p_mal = sum(class_probs[c] for c in mal)
        pred = Prediction(
            p_melanoma=class_probs.get(m.positive_class, 0.0),
            member_p=(0.1,) * len(m.members),
            spread=0.05,
            class_probs=class_probs,
            p_malignant=p_mal,
            likely_class=max(class_probs, key=class_probs.get),
            malignant_class=max(mal, key=class_probs.get) if mal else "",
        )
        out = decide(pred, thresholds, max_member_spread=m.gate.max_member_spread)
        result = ScreeningResult(
            path=f"/bench/img_{i:05d}.jpg",
            sha256=f"{i:064x}",
            status="ok",
            decision=out.decision,
            reason=out.reason,
            p_melanoma=pred.p_melanoma,
            member_p=pred.member_p,
            spread=pred.spread,
            class_probs=class_probs,
            cam=rng.random((96, 128)).astype(np.float32),
            p_malignant=p_mal,
            likely_class=pred.likely_class,
            malignant_class=pred.malignant_class,
            band=out.band,
            details=out.details,
        )
        store.add_result(run, result, key, thumbnail=thumb.tobytes())
    store.finish_run(run, "finished", {})
    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[45, 500])
    p.add_argument("--bundle", default=str(default_bundle_path()))
    args = p.parse_args(argv)
    bundle = load_bundle(args.bundle)
    print(f"bundle {bundle.manifest.name} {bundle.manifest.version}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            trial, recorded = [], []
            for rep in range(3):
                with ReviewStore.open(Path(tmp) / f"r{n}-{rep}.sqlite") as store:
                    run = stored_run(store, bundle, n)
                    t = time.perf_counter()
                    regate_run(bundle, store, run, GateChoice(0.95), record=False)
                    trial.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    regate_run(bundle, store, run, GateChoice(0.95), record=True)
                    recorded.append(time.perf_counter() - t)
            print(
                f"{n:6d} results: trial {statistics.median(trial):.3f} s, "
                f"recorded as the standard {statistics.median(recorded):.3f} s (median of 3, no model run)"
            )


if __name__ == "__main__":
    main()
