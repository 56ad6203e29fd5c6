"""Benchmark: today's pipeline (the whole ensemble) vs the cascade, on the same images, in one run.

    python benchmarks/bench_cascade.py [--bundle PATH] [--n 200] [--engine openvino] [--batch-images 4]
        [--workers 1] [--trust-key PUB] [--baseline-bundle PATH] [--save RESULT.json]

With --baseline-bundle (e.g. core/models/default, today's default) three pipelines run: the baseline bundle
with the cascade off (today's pipeline), then --bundle (a candidate, e.g. with fewer views) with the cascade
off and with it on; speed-ups are against the baseline and each outcome is compared with its own bundle's
whole ensemble (and, for information, with the baseline's).

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
                "bundle": f"{bundle.manifest.version}, {len(bundle.manifest.tta_views)} views",
                "engine": screener.engine_in_use,
                "elapsed_s": elapsed,
                "rss_mib": rss_mib,
                "outcomes": outcomes,
                "stages": stages,
            }
        )
    )


def run_child(args, listing: Path, bundle: str | None, mode: str) -> dict:
    """One pipeline in its own process (its own peak RSS): the child's JSON line."""
    cmd = [sys.executable, __file__, "--child", mode, "--images", str(listing), "--engine", args.engine]
    cmd += ["--batch-images", str(args.batch_images), "--workers", str(args.workers)]
    cmd += ["--bundle", bundle] if bundle else []
    cmd += ["--confidence", str(args.confidence)] if args.confidence is not None else []
    for key in args.trust_key:
        cmd += ["--trust-key", key]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the {mode} run of {bundle or 'the default bundle'} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _agree(a: dict, b: dict) -> int:
    return sum(x == y for x, y in zip(a["outcomes"], b["outcomes"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--engine", default="openvino")
    ap.add_argument("--confidence", type=float, default=None)
    ap.add_argument("--batch-images", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--trust-key", action="append", default=[], help="a publisher's public key to trust")
    ap.add_argument("--baseline-bundle", help="today's pipeline: this bundle, cascade off (three runs, not two)")
    ap.add_argument("--save", help="write every run's figures and outcomes here (JSON)")
    ap.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    ap.add_argument("--images", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return 0
    images = pick_images(args.n)
    listing = Path(tempfile.mkdtemp(prefix="melascreen-bench-")) / "images.json"
    listing.write_text(json.dumps(images))
    # today's pipeline first: the page cache then favours the others no more
    plan = [("whole ensemble", args.bundle, "off"), ("cascade", args.bundle, "on")]
    if args.baseline_bundle:
        plan = [("baseline", args.baseline_bundle, "off"), ("candidate, whole", args.bundle, "off")] + [
            ("candidate, cascade", args.bundle, "on")
        ]
    runs = {}
    for name, bundle, mode in plan:
        runs[name] = run_child(args, listing, bundle, mode)
    n = len(images)
    print(
        f"{n} images (HAM10000 test + Derm7pt), engine {runs[plan[0][0]]['engine']}, batch {args.batch_images}, "
        f"workers {args.workers}"
    )
    base = runs[plan[0][0]]
    for name, r in runs.items():
        speed, rss = base["elapsed_s"] / r["elapsed_s"], r["rss_mib"] / base["rss_mib"] - 1
        rate = n / r["elapsed_s"]
        print(f"{name:19s} {rate:6.2f} images/s ({speed:.2f}x)  peak RSS {r['rss_mib']:7.0f} MiB ({rss:+.0%})")
        print(f"{'':19s} {r['bundle']}: {r['status']}")
    # each cascade against its own bundle's whole ensemble first; then the candidate against today's outcomes
    pairs = [("cascade", "whole ensemble")]
    if args.baseline_bundle:
        pairs = [("candidate, cascade", "candidate, whole"), ("candidate, whole", "baseline")]
        pairs += [("candidate, cascade", "baseline")]
    for name, ref in pairs:
        print(f"outcome agreement, {name} vs {ref}: {_agree(runs[name], runs[ref])}/{n}")
    stopped = sum(s == "stopped" for s in runs[plan[-1][0]]["stages"])
    print(f"stage 1 settled {stopped} of {n}")
    if args.save:
        Path(args.save).write_text(json.dumps({"images": images, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
