"""Reproduce issue 23's exploration from cached inputs: frozen Lite0 features (raw images, 224 px) + an
L2 logistic regression for melanoma fitted on HAM10000 val + ISIC 2017 val only, averaged with the
bundle's members' p(melanoma) (one view), scored on the test sets with paired bootstrap intervals.

    python -m training.generalist.features --cache C \
        --sets ham10000_val,isic2017_val,isic2017_test,derm7pt,ham10000_test
    python -m training.generalist.members --cache C --sets (the same)
    python -m training.generalist.explore --cache C --out REPORT_DIR

Combination fixed in code before scoring: p = (p_generalist + p_ensemble) / 2, p_ensemble the mean of
the members' temperature-scaled p(mel) (the bundle's own temperatures). The mean of all nine
probabilities (the generalist as one more member) is reported beside it."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from core.inference.calibration import softmax
from evalkit.metrics import bootstrap_auc_ci, paired_bootstrap_auc_delta, roc_auc

from .features import default_key, load_features
from .heads import choose_c, fit_melanoma_lr
from .scores import MEL, aligned, member_logits_for
from .sets import load_set

log = logging.getLogger(__name__)
FIT_SETS = ("ham10000_val", "isic2017_val")
TEST_SETS = ("derm7pt", "isic2017_test", "ham10000_test")


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def run(cache: Path, bundle: Path, sets=TEST_SETS, n_boot: int = 2000) -> dict:
    from core.inference.bundle import load_bundle

    key = default_key("lite0", "raw")
    temps = np.array([m.temperature for m in load_bundle(bundle, allow_unsigned=True).manifest.members], np.float32)
    fit = [load_set(n) for n in FIT_SETS]
    fx, fy, fg = [], [], []
    for s in fit:
        f = load_features(cache, key, s.name)
        rows, (idx,) = aligned(s, f.image_ids)
        fx.append(f.values[idx])
        fy.append(s.melanoma[rows])
        fg += [f"{s.name}:{s.lesion_ids[r]}" for r in rows]
    x, y = np.concatenate(fx), np.concatenate(fy)
    c, cv = choose_c(x, y, fg)
    head = fit_melanoma_lr(x, y, c)
    report = {
        "features": key.tag,
        "fit_sets": list(FIT_SETS),
        "fit_images": int(len(y)),
        "fit_melanomas": int(y.sum()),
        "C": c,
        "cv_auc": {str(k): round(v, 4) for k, v in cv.items()},
        "view": "id",
        "sets": {},
    }
    for name in sets:
        s = load_set(name)
        f = load_features(cache, key, name)
        logits, ids = member_logits_for(cache, bundle, s)
        rows, (fi, mi) = aligned(s, f.image_ids, ids)
        yy = s.melanoma[rows]
        groups = [s.lesion_ids[r] for r in rows]
        pg = _sigmoid(head.logits(f.values[fi])[:, 0])
        pm = softmax(logits[:, mi] / temps[:, None, None])[..., MEL]  # M x N
        ens = pm.mean(axis=0)
        half = (pg + ens) / 2
        ninth = (pg + pm.sum(axis=0)) / (len(pm) + 1)
        entry = {"images": int(len(yy)), "melanomas": int(yy.sum())}
        for label, p in (
            ("generalist", pg),
            ("members", ens),
            ("average", half),
            ("nine", ninth),
            ("members_0_4", pm[:5].mean(0)),
            ("members_5_7", pm[5:].mean(0)),
        ):
            lo, hi = bootstrap_auc_ci(yy, p, groups, n_boot)
            entry[label] = {"auc": round(roc_auc(yy, p), 4), "ci": [round(lo, 4), round(hi, 4)]}
        for label, p in (("average", half), ("nine", ninth)):
            d = paired_bootstrap_auc_delta(yy, p, ens, groups, n_boot)
            entry[f"{label}_vs_members"] = {"delta": round(d.delta, 4), "ci": [round(d.low, 4), round(d.high, 4)]}
        report["sets"][name] = entry
        log.info("%s: %s", name, json.dumps(entry))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True, type=Path)
    ap.add_argument("--bundle", type=Path, default=Path("core/models/default"))
    ap.add_argument("--sets", default=",".join(TEST_SETS))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = run(args.cache, args.bundle, args.sets.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "explore.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
