"""Per-member, per-view raw outputs of a bundle on labelled image sets, saved so that subsets of the
ensemble (members x TTA views) and cascades are scored from disk instead of re-run.

Each image goes through the app's own path (core.screening.Screener.prepare: decode, quality checks,
preprocessing, the intake check's picture statistics) and the members run on every view
(core.inference.ensemble.Ensemble, the same engines). Saved in chunks (resumable): for chunk c of a set,
`<out>/<set>/chunk-<c>.npz` holds image_ids, logits (N x M x V x K, before temperature), ood (N x M x V,
or empty when the bundle has no intake check) and statistics (N x d or empty), and `chunk-<c>.pkl` the
QualityReport of each image (None for a file that could not be used).

    python -m evalkit.view_outputs --bundle core/models/default --out ../cache/cascade/outputs \
        --sets ham_val,isic2017_val,ham_test,derm7pt
"""

from __future__ import annotations

import argparse
import csv
import json
import pickle
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.inference.bundle import load_bundle
from core.inference.ensemble import EnsembleSettings
from core.screening import Screener
from core.screening.preparing import PreparedImage

from .labelled import PROJECT_ROOT, SHARED_DATA

CHUNK = 16


def image_set(name: str) -> list[tuple[str, Path]]:
    """(image_id, path) of a named set: ham_val, ham_test (the lesion split), isic2017_val, derm7pt."""
    if name in ("ham_val", "ham_test"):
        split = name.split("_")[1]
        with open(PROJECT_ROOT / "configs/splits/ham10000_lesion_split.csv", newline="") as fh:
            ids = [r["image_id"] for r in csv.DictReader(fh) if r["split"].strip() == split]
        return [(i, SHARED_DATA / "dermoscopy" / "images" / f"{i}.jpg") for i in ids]
    if name == "isic2017_val":
        with open(SHARED_DATA / "isic2017" / "labels.csv", newline="") as fh:
            ids = [r["image_id"] for r in csv.DictReader(fh) if r["challenge_split"].strip() == "val"]
        return [(i, SHARED_DATA / "isic2017" / "images" / f"{i}.jpg") for i in ids]
    if name == "derm7pt":
        with open(SHARED_DATA / "derm7pt" / "labels.csv", newline="") as fh:
            ids = [r["image_id"] for r in csv.DictReader(fh)]
        return [(i, SHARED_DATA / "derm7pt" / "images" / f"{i}.jpg") for i in ids]
    raise ValueError(f"unknown set {name!r}")


def run_chunk(screener: Screener, items: list[tuple[str, Path]], pool: ThreadPoolExecutor) -> dict:
    prepared = list(pool.map(lambda it: screener.prepare(str(it[1])), items))
    ok = [(i, p) for i, p in enumerate(prepared) if isinstance(p, PreparedImage)]
    ens = screener.ensemble
    m, v = len(ens.members), len(ens.views)
    k = len(ens.manifest.class_names)
    logits = np.full((len(items), m, v, k), np.nan, dtype=np.float32)
    ood = np.full((len(items), m, v), np.nan, dtype=np.float32) if ens.has_intake_check else np.zeros(0)
    stats: list[np.ndarray | None] = [None] * len(items)
    if ok:
        inputs = np.stack([p.model_input for _, p in ok])
        lg, _, od = ens._run_views(ens._views_of(inputs), want_cam=False)  # M x (n*V) x K
        lg = lg.reshape(m, len(ok), v, k).transpose(1, 0, 2, 3)
        for j, (i, p) in enumerate(ok):
            logits[i] = lg[j]
            stats[i] = p.statistics
        if od is not None:
            od = od.reshape(m, len(ok), v).transpose(1, 0, 2)
            for j, (i, _) in enumerate(ok):
                ood[i] = od[j]
    dims = next((len(s) for s in stats if s is not None), 0)
    statistics = np.array([s if s is not None else np.full(dims, np.nan) for s in stats], dtype=np.float32)
    quality = [p.quality if isinstance(p, PreparedImage) else None for p in prepared]
    return {
        "image_ids": np.array([i for i, _ in items]),
        "logits": logits,
        "ood": ood,
        "statistics": statistics,
        "quality": quality,
    }


def extract(bundle_dir: Path, out: Path, sets: list[str], engine: str) -> None:
    bundle = load_bundle(bundle_dir)
    screener = Screener(bundle, EnsembleSettings(engine=engine))
    log = out / "log.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").write_text(
        json.dumps(
            {
                "bundle": str(bundle_dir),
                "version": bundle.manifest.version,
                "identity": bundle.identity,
                "engine": screener.engine_in_use,
                "views": list(screener.ensemble.views),
                "members": [s.file for s in bundle.manifest.members],
                "chunk": CHUNK,
            },
            indent=1,
        )
    )
    with ThreadPoolExecutor(1) as pool:
        for name in sets:
            items = image_set(name)
            (out / name).mkdir(exist_ok=True)
            for c in range(0, len(items), CHUNK):
                base = out / name / f"chunk-{c // CHUNK:04d}"
                if base.with_suffix(".pkl").exists():
                    continue
                t = time.perf_counter()
                saved = run_chunk(screener, items[c : c + CHUNK], pool)
                dt = time.perf_counter() - t
                quality = saved.pop("quality")
                np.savez(base.with_suffix(".npz"), **saved)
                base.with_suffix(".pkl").write_bytes(pickle.dumps(quality))  # written last: the chunk is done
                n = len(items[c : c + CHUNK])
                with open(log, "a") as fh:
                    record = {"set": name, "chunk": c // CHUNK, "images": n, "s": round(dt, 3)}
                    fh.write(json.dumps({**record, "images_per_s": round(n / dt, 3), "time": time.time()}) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="core/models/default")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sets", default="ham_val,isic2017_val,ham_test,derm7pt")
    ap.add_argument("--engine", default="openvino")
    a = ap.parse_args(argv)
    extract(Path(a.bundle), Path(a.out), a.sets.split(","), a.engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
