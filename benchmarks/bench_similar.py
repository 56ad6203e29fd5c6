"""Similar cases on the HAM10000 TEST split: neighbours' majority diagnosis vs the label, and the cost.

    python benchmarks/bench_similar.py [--bundle core/models/default] [--n 0 (all)]

Prints: how often the 6 nearest training images' majority diagnosis equals the image's label, the
same for the reference "always the most frequent training class" (nv), and the ms per image of the
encoder + search (model input prepared beforehand, one thread). Test labels choose nothing.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

from core.imaging.model_input import InputSpec, model_input_from_file
from core.inference.bundle import default_bundle_path, load_bundle
from core.inference.similar import SimilarCases, nearest

SPLITS = Path("configs/splits/ham10000_lesion_split.csv")
IMAGES = Path("../shared/data/dermoscopy/images")


def majority(labels: list[str]) -> str:
    counts = Counter(labels)
    best = max(counts.values())
    return next(label for label in labels if counts[label] == best)  # ties: the nearer neighbour's class


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default=str(default_bundle_path()))
    ap.add_argument("--n", type=int, default=0, help="test images (0: all)")
    args = ap.parse_args()
    bundle = load_bundle(args.bundle)
    similar = SimilarCases(bundle, threads=1)
    spec = InputSpec.from_manifest(bundle.manifest)
    with open(SPLITS, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "test"]
    rows = rows[: args.n] if args.n else rows
    with open(SPLITS, newline="") as f:
        train = Counter(r["dx"] for r in csv.DictReader(f) if r["split"] == "train")
    reference_class = train.most_common(1)[0][0]
    agree = reference = 0
    encode_s = search_s = 0.0
    for r in rows:
        x = model_input_from_file(IMAGES / f"{r['image_id']}.jpg", spec)
        t0 = time.perf_counter()
        feats = similar.features(x)[0]
        t1 = time.perf_counter()
        hits = nearest(similar.index, feats)
        t2 = time.perf_counter()
        encode_s, search_s = encode_s + t1 - t0, search_s + t2 - t1
        agree += majority([h.diagnosis for h in hits]) == r["dx"]
        reference += reference_class == r["dx"]
    n = len(rows)
    print(f"bundle {args.bundle}: {len(similar.index.labels)} indexed training images; {n} HAM10000 test images")
    print(f"majority of 6 neighbours = label: {agree / n:.3f} ({agree}/{n})")
    print(f"reference, always '{reference_class}' (most frequent training class): {reference / n:.3f}")
    print(f"ms per image: encoder {1000 * encode_s / n:.1f} + search {1000 * search_s / n:.2f}, one thread")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
