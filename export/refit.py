"""Re-fit a bundle's gate on p(malignant) without retraining: declare the malignant classes, fit the
thresholds and risk bands on validation images, write a new (unsigned) bundle.

    python -m export.refit --bundle core/models/default --out NEW_BUNDLE \
        --validation ham10000=configs/splits/ham10000_lesion_split.csv:val \
        --validation isic2017=../shared/data/isic2017/labels.csv:val [--raw-npz ham10000=FILE ...]

Members, temperatures, preprocessing and views are unchanged. Validation member logits are
computed through core (what the app runs), or taken from a `--raw-npz` file written earlier with
the same bundle (arrays `ids`, `dx`, `logits`: N x members x classes, TTA-averaged, before temperature).
A labels file lists images by `image_id` with a `dx` column and a part column (`split` or
`challenge_split`); images are `<labels folder>/images/<image_id>.jpg`, or under `--data`.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.imaging.model_input import InputSpec, model_input_from_file
from core.inference.bundle import Bundle, load_bundle, write_bundle
from core.inference.ensemble import Ensemble, EnsembleSettings
from evalkit.metrics import roc_auc

from .calibrate import ensemble_malignancy, ensemble_probability, fit_malignancy_gate, fit_temperatures

MALIGNANT_CLASSES = ("akiec", "bcc", "mel")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_HAM_IMAGES = DATA / "dermoscopy" / "images"


def read_part(spec: str) -> tuple[str, list[tuple[Path, str, str]]]:
    """'name=labels.csv:part' -> (name, [(image path, image id, dx)])."""
    name, _, rest = spec.partition("=")
    labels, _, part = rest.rpartition(":")
    labels_path = Path(labels)
    rows = list(csv.DictReader(open(labels_path, newline="")))
    column = "split" if "split" in rows[0] else "challenge_split"
    folder = labels_path.parent / "images"
    if not folder.is_dir():  # a split file kept apart from its images (configs/splits/)
        folder = _HAM_IMAGES
    return name, [(folder / f"{r['image_id']}.jpg", r["image_id"], r["dx"]) for r in rows if r[column] == part]


def member_logits(bundle: Bundle, items: list[tuple[Path, str, str]], threads: int = 0) -> np.ndarray:
    """N x members x classes, TTA-averaged, before temperature, through core's own ensemble."""
    ensemble = Ensemble(bundle, EnsembleSettings(threads=threads))
    spec = InputSpec.from_manifest(bundle.manifest)
    out = [ensemble.member_logits(model_input_from_file(p, spec)[None])[:, 0] for p, _, _ in items]
    return np.stack(out)


def _npz_logits(path: Path, items: list[tuple[Path, str, str]]) -> np.ndarray:
    data = np.load(path)
    index = {str(i): k for k, i in enumerate(data["ids"])}
    missing = [iid for _, iid, _ in items if iid not in index]
    if missing:
        raise SystemExit(f"{path}: {len(missing)} validation images are missing (e.g. {missing[0]})")
    return data["logits"][[index[iid] for _, iid, _ in items]]


def ensemble_validation(
    sets: dict[str, tuple[list, np.ndarray]], temperatures, class_names, positive_class: str
) -> dict[str, dict]:
    """Per validation set: the ensemble's melanoma and malignancy AUC with the fitted temperatures
    (what the About box and the model card report for a bundle whose members came from several)."""
    mel = class_names.index(positive_class)
    mal = [class_names.index(c) for c in MALIGNANT_CLASSES]
    out = {}
    for name, (items, logits) in sets.items():
        dx = np.array([d for _, _, d in items])
        by_member = logits.transpose(1, 0, 2)
        is_mel, is_mal = dx == positive_class, np.isin(dx, MALIGNANT_CLASSES)
        out[name] = {
            "n": len(items),
            "n_melanoma": int(is_mel.sum()),
            "mel_auc": _finite(roc_auc(is_mel, ensemble_probability(by_member, temperatures, mel))),
            "n_malignant": int(is_mal.sum()),
            "malignant_auc": _finite(roc_auc(is_mal, ensemble_malignancy(by_member, temperatures, mal))),
        }
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None  # a set with one class has no AUC; JSON has no NaN


def refit(
    bundle: Bundle, out: Path, sets: dict[str, tuple[list, np.ndarray]], temperatures: bool = False
) -> tuple[Bundle, list]:
    """The gate (and with `temperatures`, each member's temperature first) fitted on all `sets`."""
    m = bundle.manifest
    names = m.class_names
    mal_idx = [names.index(c) for c in MALIGNANT_CLASSES]
    logits = np.concatenate([lg for _, lg in sets.values()])  # N x M x K
    dx = np.array([d for items, _ in sets.values() for _, _, d in items])
    members = m.members
    if temperatures:
        # Every validation image has a true label, even where its source labels only some classes.
        fits_t = fit_temperatures(logits.transpose(1, 0, 2), np.array([names.index(d) for d in dx]))
        members = tuple(
            replace(
                mem, temperature=f.temperature, val_metrics={**mem.val_metrics, "temperature_refit_nll": f.nll_after}
            )
            for mem, f in zip(m.members, fits_t)
        )
    temps = [mem.temperature for mem in members]
    p_mal = ensemble_malignancy(logits.transpose(1, 0, 2), temps, mal_idx)
    gate, fits = fit_malignancy_gate(p_mal, np.isin(dx, MALIGNANT_CLASSES), dx == m.positive_class, base=m.gate)
    provenance = dict(m.provenance)
    provenance["gate_refit"] = {
        "malignant_classes": list(MALIGNANT_CLASSES),
        "temperatures_refit": bool(temperatures),
        "validation": {name: len(items) for name, (items, _) in sets.items()},
        "fits": [f.to_dict() for f in fits],
        "ensemble_validation": ensemble_validation(sets, temps, names, m.positive_class),
    }
    manifest = replace(m, members=members, malignant_classes=MALIGNANT_CLASSES, gate=gate, provenance=provenance)
    files = {mem.file: bundle.member_path(mem) for mem in m.members}
    if out.exists():
        shutil.rmtree(out)
    return write_bundle(out, manifest, files, bundle.model_card), list(fits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--validation", action="append", required=True, help="NAME=LABELS.csv:PART")
    ap.add_argument("--raw-npz", action="append", default=[], help="NAME=FILE: cached member logits of that set")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--temperatures", action="store_true", help="re-fit each member's temperature on these sets too")
    ap.add_argument("--save-raw", action="append", default=[], help="NAME=FILE: write the member logits of that set")
    args = ap.parse_args(argv)
    bundle = load_bundle(args.bundle, allow_unsigned=True)
    cached = dict(s.split("=", 1) for s in args.raw_npz)
    sets = {}
    for spec in args.validation:
        name, items = read_part(spec)
        logits = (
            _npz_logits(Path(cached[name]), items) if name in cached else member_logits(bundle, items, args.threads)
        )
        sets[name] = (items, logits)
    for spec in args.save_raw:
        name, _, path = spec.partition("=")
        items, logits = sets[name]
        np.savez(path, ids=np.array([i for _, i, _ in items]), dx=np.array([d for _, _, d in items]), logits=logits)
    new, fits = refit(bundle, args.out, sets, args.temperatures)
    print(json.dumps(new.manifest.gate.to_dict(), indent=2))
    for f in fits:
        print(json.dumps(f.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
