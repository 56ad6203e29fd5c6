"""Benchmark: today's pipeline (the whole ensemble) vs the cascade, on the same images, in one run.

    python benchmarks/bench_cascade.py [--bundle PATH] [--n 200] [--engine openvino] [--batch-images 4]
        [--workers 1] [--trust-key PUB]

The images: the first n/2 of the HAM10000 test split (configs/splits/ham10000_lesion_split.csv) and the
first n/2 of Derm7pt, by image id (../shared/data); synthetic images when those are absent. Each pipeline
runs in its own process (core.screening.screener.Screener.screen, no store, heat maps on, as the CLI runs), so each
peak RSS is its own. Prints images/s, peak RSS, the share of images stage 1 settled, and the agreement of
the outcome (decision; not-dermoscopy counted as its own outcome) between the two. A bundle without cascade
margins runs the whole ensemble twice (the cascade line then says so).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def pick_images(n: int) -> list[str]:
    split = ROOT / "configs/splits/ham10000_lesion_split.csv"
    derm = DATA / "derm7pt" / "labels.csv"
    if (DATA / "dermoscopy" / "images").is_dir() and (DATA / "derm7pt" / "images").is_dir():
        with open(split, newline="") as fh:
            ham = sorted(r["image_id"] for r in csv.DictReader(fh) if r["split"] == "test")[: n // 2]
        with open(derm, newline="") as fh:
            d7 = sorted(r["image_id"] for r in csv.DictReader(fh))[: n - n // 2]
        return [str(DATA / "dermoscopy" / "images" / f"{i}.jpg") for i in ham] + [
            str(DATA / "derm7pt" / "images" / f"{i}.jpg") for i in d7
        ]
    from tests.support.image_folders import make_folder

    folder = make_folder(Path(tempfile.mkdtemp(prefix="melascreen-bench-")), n, broken=False)
    return sorted(str(p) for p in folder.iterdir())


def child(args) -> None:
    from core.inference.bundle import default_bundle_path, load_bundle
    from core.inference.ensemble import EnsembleSettings
    from core.inference.signing import Trust
    from core.screening import GateChoice, RunSettings, Screener, cascade_status

    bundle_path = Path(args.bundle) if args.bundle else default_bundle_path()
    bundle = load_bundle(bundle_path, trust=Trust.default(extra_keys=tuple(args.trust_key)))
    screener = Screener(bundle, EnsembleSettings(engine=args.engine))
    gate = GateChoice(confidence=args.confidence, cascade=args.child == "on")
    run = RunSettings(batch_images=args.batch_images, workers=args.workers)
    images = json.loads(Path(args.images).read_text())
    start = time.perf_counter()
    outcomes, stages = [], []
    for p in screener.screen(images, gate=gate, run=run):
        r = p.result
        outcomes.append(r.outcome_code)
        stages.append(r.cascade)
    elapsed = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "status": cascade_status(bundle, gate),
                "engine": screener.engine_in_use,
                "elapsed_s": elapsed,
                "rss_mib": rss_mib,
                "outcomes": outcomes,
                "stages": stages,
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--engine", default="openvino")
    ap.add_argument("--confidence", type=float, default=None)
    ap.add_argument("--batch-images", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--trust-key", action="append", default=[], help="a publisher's public key to trust")
    ap.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    ap.add_argument("--images", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    images = pick_images(args.n)
    listing = Path(tempfile.mkdtemp(prefix="melascreen-bench-")) / "images.json"
    listing.write_text(json.dumps(images))
    runs = {}
    for mode in ("off", "on"):  # today's pipeline first: the page cache then favours the cascade no more
        cmd = [sys.executable, __file__, "--child", mode, "--images", str(listing), "--engine", args.engine]
        cmd += ["--batch-images", str(args.batch_images), "--workers", str(args.workers)]
        cmd += ["--bundle", args.bundle] if args.bundle else []
        cmd += ["--confidence", str(args.confidence)] if args.confidence is not None else []
        for key in args.trust_key:
            cmd += ["--trust-key", key]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    off, on = runs["off"], runs["on"]
    n = len(images)
    agree = sum(a == b for a, b in zip(off["outcomes"], on["outcomes"]))
    stopped = sum(s == "stopped" for s in on["stages"])
    print(
        f"{n} images (HAM10000 test + Derm7pt), engine {off['engine']}, batch {args.batch_images}, "
        f"workers {args.workers}"
    )
    for name, r in (("whole ensemble", off), ("cascade", on)):
        print(f"{name:15s} {n / r['elapsed_s']:6.2f} images/s  peak RSS {r['rss_mib']:7.0f} MiB  ({r['status']})")
    print(
        f"speed-up {off['elapsed_s'] / on['elapsed_s']:.2f}x; stage 1 settled {stopped} of {n}; "
        f"outcome agreement {agree}/{n}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
