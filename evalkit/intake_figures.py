"""How often the intake check flags each set: in-distribution (HAM10000 test), other clinics (ISIC 2017
test, Derm7pt) and 50 images that are not dermoscopy (evalkit/non_dermoscopy.py).

    python -m evalkit.intake_figures --bundle core/models/default --out reports/intake

The check is computed as the app computes it (core.decision.intake_check.assess on the members' `ood` output of the
id view and the picture statistics of the decoded file); only the id view is run, so it is much
quicker than a full evaluation. Writes `intake.json` and `intake.md` (a table for the model card)
with the share flagged per set, per level, and the AUROC of in- vs out-of-distribution.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from core.decision.intake_check import OOD_OUTPUT, assess, ensemble_score
from core.decision.vocabulary import NOT_DERMOSCOPY
from core.files.images import read_image
from core.imaging.model_input import InputSpec, model_input
from core.imaging.picture_statistics import image_statistics
from core.inference.bundle import load_bundle
from core.inference.ensemble import Ensemble, EnsembleSettings
from evalkit.labelled import SHARED_DATA, read_cases
from evalkit.metrics import roc_auc

from .non_dermoscopy import write_set

SETS = {  # name: (labels file, part, part column, images folder)
    "HAM10000 test": (
        "configs/splits/ham10000_lesion_split.csv",
        "test",
        "split",
        SHARED_DATA / "dermoscopy" / "images",
    ),
    "ISIC 2017 test": (
        SHARED_DATA / "isic2017" / "labels.csv",
        "test",
        "challenge_split",
        SHARED_DATA / "isic2017" / "images",
    ),
    "Derm7pt (all)": (SHARED_DATA / "derm7pt" / "labels.csv", None, "split", SHARED_DATA / "derm7pt" / "images"),
}


def intake_of(ensemble: Ensemble, paths: list[Path]) -> list[tuple[str, float, float | None]]:
    """(level, feature score, picture score) per file, as the app's intake check computes them."""
    m = ensemble.manifest
    check = m.ood
    if check is None:
        raise ValueError("this bundle has no intake check")
    spec = InputSpec.from_manifest(m)
    out = []
    for path in paths:
        rgb = read_image(path).rgb
        x = model_input(rgb, spec)[None]
        score = ensemble_score(np.array([member.run(x, (OOD_OUTPUT,))[OOD_OUTPUT][0] for member in ensemble.members]))
        finding = assess(score, check, image_statistics(rgb))
        out.append((finding.level, finding.score, finding.image_score))
    return out


def _paths(labels, part: str | None, column: str, images: Path, limit: int | None) -> list[Path]:
    cases, _ = read_cases(Path(labels), split=part, split_column=column)
    paths = [images / f"{c.image_id}.jpg" for c in cases]
    return paths[:limit] if limit else paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="share of each set the intake check flags")
    ap.add_argument("--bundle", type=Path, default=Path("core/models/default"))
    ap.add_argument("--out", type=Path, default=Path("reports/intake"))
    ap.add_argument("--limit", type=int, help="at most this many images per set (a quick look)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    bundle = load_bundle(args.bundle)
    if bundle.manifest.ood is None:
        raise SystemExit(f"{args.bundle}: this bundle has no intake check")
    ensemble = Ensemble(bundle, EnsembleSettings(threads=args.threads))
    results = {}
    for name, (labels, part, column, images) in SETS.items():
        results[name] = intake_of(ensemble, _paths(labels, part, column, images, args.limit))
    with tempfile.TemporaryDirectory() as tmp:
        results["not dermoscopy (50)"] = intake_of(ensemble, write_set(tmp))
    summary = {}
    for name, rows in results.items():
        levels = [r[0] for r in rows]
        summary[name] = {
            "n": len(rows),
            "flagged": float(np.mean([lv != "familiar" for lv in levels])),
            "unfamiliar": float(np.mean([lv == "unfamiliar" for lv in levels])),
            NOT_DERMOSCOPY.code: float(np.mean([lv == NOT_DERMOSCOPY.code for lv in levels])),
        }
    check = bundle.manifest.ood

    def combined(rows):  # one number per image for the AUROC: the larger part relative to its threshold
        return [max(f / check.threshold, (p or 0.0) / (check.image_threshold or 1.0)) for _, f, p in rows]

    inside, outside = combined(results["HAM10000 test"]), combined(results["not dermoscopy (50)"])
    auroc = roc_auc(np.r_[np.zeros(len(inside)), np.ones(len(outside))].astype(bool), np.r_[inside, outside])
    lines = [
        f"Intake check of {bundle.manifest.name} {bundle.manifest.version} "
        f"(`python -m evalkit.intake_figures --bundle {args.bundle}`):",
        "",
        "| set | images | flagged | unfamiliar | not dermoscopy |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s in summary.items():
        shares = f"{s['flagged']:.1%} | {s['unfamiliar']:.1%} | {s[NOT_DERMOSCOPY.code]:.1%}"
        lines.append(f"| {name} | {s['n']} | {shares} |")
    lines += ["", f"AUROC of the check's score, HAM10000 test vs the 50 non-dermoscopy images: {auroc:.3f}"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "intake.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.out / "intake.json").write_text(json.dumps({"sets": summary, "auroc": auroc}, indent=2), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
