"""How often the per-run camera check (core/screening/camera_check.py) fires on batches of one source.

    nice -n 15 .venv/bin/python benchmarks/bench_camera_check.py [--batches 20] [--size 50] \
        [--bundle core/models/default] [--cache ../cache/camera-check]

Draws `--batches` random batches of `--size` images (seeded; without replacement inside a batch)
from the HAM10000 test split, the ISIC 2017 test images and Derm7pt, and prints how many batches
the check fires on and the median batch score. Only decoding (core.files.images.read_image) and
core.imaging.picture_statistics.image_statistics run, no model: the check uses the picture statistics the
bundle's intake check carries. Statistics are cached per image under --cache, so a second run takes seconds.

The check's limits (core/screening/camera_check.py) were set on training-source batches (HAM10000
validation split, ISIC 2017 validation and training images), never on these sets; `--calibration`
prints the same figures for those sources.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.files.images import read_image  # noqa: E402
from core.imaging.picture_statistics import image_statistics  # noqa: E402
from core.inference.bundle import default_bundle_path, load_bundle  # noqa: E402
from core.screening.camera_check import check_statistics  # noqa: E402
from evalkit.labelled import SHARED_DATA, image_path, read_cases  # noqa: E402

SPLIT = ROOT / "configs" / "splits" / "ham10000_lesion_split.csv"


def source_ids(name: str) -> tuple[Path, list[str]]:
    """(images folder, image ids) of one named set."""
    if name.startswith("ham10000-"):
        cases, _ = read_cases(SPLIT, split=name.split("-", 1)[1])
        return SHARED_DATA / "dermoscopy" / "images", [c.image_id for c in cases]
    if name.startswith("isic2017-"):
        labels = SHARED_DATA / "isic2017" / "labels.csv"
        cases, _ = read_cases(labels, split=name.split("-", 1)[1], split_column="challenge_split")
        return SHARED_DATA / "isic2017" / "images", [c.image_id for c in cases]
    if name == "derm7pt":
        cases, _ = read_cases(SHARED_DATA / "derm7pt" / "labels.csv")
        return SHARED_DATA / "derm7pt" / "images", [c.image_id for c in cases]
    raise SystemExit(f"unknown set {name!r}")


def statistics(name: str, ids: list[str], images: Path, cache: Path) -> dict[str, np.ndarray]:
    """image id -> its 13 picture statistics, computed through the app's decoder, cached per set."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{name}.csv"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with open(path, newline="") as f:
            for row in csv.reader(f):
                known[row[0]] = np.array([float(v) for v in row[1:]])
    todo = [i for i in ids if i not in known]
    t0 = time.perf_counter()
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        for k, image_id in enumerate(todo, 1):
            s = image_statistics(read_image(image_path(images, image_id)).rgb)
            known[image_id] = s
            w.writerow([image_id, *(f"{v:.9g}" for v in s)])
            if k % 100 == 0:
                f.flush()
                print(f"  {name}: {k}/{len(todo)} images, {(time.perf_counter() - t0) / k * 1000:.0f} ms each",
                      file=sys.stderr)  # fmt: skip
    return known


def batches(ids: list[str], n_batches: int, size: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [list(rng.choice(ids, size=min(size, len(ids)), replace=False)) for _ in range(n_batches)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--size", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bundle", default=str(default_bundle_path()))
    ap.add_argument("--cache", default="../cache/camera-check")
    ap.add_argument("--calibration", action="store_true", help="also the training sources the limits came from")
    ap.add_argument("--sets", nargs="*", default=None)
    args = ap.parse_args(argv)
    check = load_bundle(args.bundle, verify=False).manifest.ood
    if check is None or not check.has_image_part:
        raise SystemExit("the bundle has no picture statistics in its intake check")
    sets = args.sets or (
        (["ham10000-val", "isic2017-val", "isic2017-train"] if args.calibration else [])
        + ["ham10000-test", "isic2017-test", "derm7pt"]
    )
    print(f"camera check: {args.batches} random batches of {args.size} per set, seed {args.seed}")
    print(
        f"{'set':16s} {'fired':>10s} {'median shift':>13s} {'max shift':>10s} {'median share':>13s}  most common words"
    )
    for name in sets:
        images, ids = source_ids(name)
        stats = statistics(name, ids, images, Path(args.cache))
        fired, shifts, shares, words = 0, [], [], {}
        for batch in batches(ids, args.batches, args.size, args.seed):
            result = check_statistics(np.array([stats[i] for i in batch]), check)
            fired += result.fired
            shifts.append(result.shift)
            shares.append(result.unfamiliar_share)
            if result.fired:
                words[result.differences] = words.get(result.differences, 0) + 1
        common = max(words, key=words.get) if words else "-"
        median_shift, max_shift, median_share = np.median(shifts), np.max(shifts), np.median(shares)
        print(
            f"{name:16s} {fired:>3d} of {args.batches:<4d} {median_shift:13.2f} {max_shift:10.2f} {median_share:13.1%}"
            f"  {common}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
