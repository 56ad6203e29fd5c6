"""Benchmark: the whole screening pipeline with each engine, side by side, on the same images.

    .venv/bin/python benchmarks/bench_engines.py                 # 100 HAM10000 images, the default bundle
    .venv/bin/python benchmarks/bench_engines.py --n 5           # a quick look
    .venv/bin/python benchmarks/bench_engines.py --batch-images 1 2 4 --workers 2
    .venv/bin/python benchmarks/bench_engines.py --repeat 2000 --configs openvino-f32   # memory over a long list

For each configuration (onnxruntime = the reference, OpenVINO f32 = `--precision exact`, OpenVINO bf16 =
`--precision fast`; bf16 runs f32 on a CPU without bf16, and the line says so) it prints what really ran,
the load time, whole-pipeline images/s (decode -> quality -> preprocess -> engine -> CAM -> gate -> store,
pipelined as the app runs it), mean ms per image for each stage, the peak memory (RSS) of that
configuration, and, against the onnxruntime reference, the share of images whose outcome differs and the
largest probability difference (any class, p(melanoma), p(malignant)). Each configuration runs in its own
process, so peak memory and start-up are its own. The decode/quality/preprocess stages run on worker
threads, overlapped with the engine: their times are CPU time spent, not wall time added.

--repeat N screens a list of N entries cycling the images (no store, so every entry is screened) and
prints RSS every --every entries: memory must stay flat. A script, not a test: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data" / "dermoscopy" / "images"  # the HAM10000 copy beside the checkout
CONFIGS = {  # name -> (engine, precision)
    "onnxruntime": ("onnxruntime", "exact"),
    "openvino-f32": ("openvino", "exact"),
    "openvino-bf16": ("openvino", "fast"),
}
STAGES = ("decode", "quality", "preprocess", "inference", "cam", "store")


def rss_mb() -> float:
    """Current resident memory (Linux /proc; elsewhere the peak)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def pick_images(args) -> list[str]:
    if args.folder:
        folder = Path(args.folder)
        paths = sorted(p for p in folder.iterdir() if p.is_file())[: args.n]
    elif SHARED.is_dir():
        paths = sorted(SHARED.glob("*.jpg"))[: args.n]
    else:
        from tests.support.image_folders import make_folder  # synthetic images when the shared data set is absent

        print(f"no {SHARED}: using synthetic images (figures are for the plumbing only)")
        folder = make_folder(Path(tempfile.mkdtemp(prefix="melascreen-bench-")), args.n, broken=False)
        paths = sorted(folder.iterdir())
    if not paths:
        raise SystemExit("no images to screen")
    return [str(p) for p in paths]


def bundle_path(args) -> str:
    from core.inference.bundle import default_bundle_path

    if args.bundle:
        return args.bundle
    if (default_bundle_path() / "manifest.json").exists():
        return str(default_bundle_path())
    from tests.support.synthetic_bundle import make_bundle

    print("no default bundle: using a synthetic test bundle (figures are for the plumbing only)")
    views = ("id", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270", "zoom")
    return str(make_bundle(Path(tempfile.mkdtemp()) / "b", input_size=192, tta_views=views))


# ------------------------------------------------------------------------------------ one configuration


class TimedStore:
    """The real store, with the time of each add_result recorded (the store stage)."""

    def __init__(self, store):
        self.store = store
        self.times: list[float] = []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def add_result(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.store.add_result(*args, **kwargs)
        finally:
            self.times.append(time.perf_counter() - t)


def run_config(args) -> dict:
    """Runs in a child process: load the engines, screen the images once (fresh store), report as JSON."""
    from core.inference.bundle import load_bundle
    from core.inference.ensemble import EnsembleSettings
    from core.records.store import ReviewStore
    from core.screening import RunSettings, Screener

    engine, precision = CONFIGS[args.config]
    paths = json.loads(Path(args.paths_file).read_text())
    bundle = load_bundle(args.bundle_path, allow_unsigned=True)  # timing only: a test bundle's signer may be unknown
    t = time.perf_counter()
    screener = Screener(
        bundle, EnsembleSettings(engine=engine, provider="cpu", precision=precision, threads=args.threads)
    )
    load_s = time.perf_counter() - t
    run = RunSettings(batch_images=args.batch, workers=args.workers)
    screener.screen_image(paths[0])  # warm-up: the first engine run allocates
    out = {
        "config": args.config,
        "engine_in_use": screener.engine_in_use,
        "note": screener.engine.note,
        "probe_max_diff": screener.engine.probe_max_diff,
        "load_s": load_s,
        "batch_images": args.batch,
        "workers": args.workers,
        "rss_after_load_mb": rss_mb(),
    }
    if args.repeat:
        entries = [paths[i % len(paths)] for i in range(args.repeat)]
        t = time.perf_counter()
        for p in screener.screen(entries, run=run):  # no store: every entry is screened
            if p.done % args.every == 0 or p.done == len(entries):
                print(
                    f"  {args.config}: {p.done:6d}/{len(entries)}  RSS {rss_mb():7.1f} MB  "
                    f"{p.done / (time.perf_counter() - t):.2f} images/s",
                    flush=True,
                )
        out["peak_rss_mb"] = peak_rss_mb()
        return out
    stages: dict[str, list[float]] = {k: [] for k in STAGES}
    results = {}
    with tempfile.TemporaryDirectory() as tmp, ReviewStore.open(Path(tmp) / "bench.sqlite") as real_store:
        store = TimedStore(real_store)
        run_id = store.start_run("bench", bundle.manifest.name, bundle.manifest.version, screener.result_key(), {})
        t = time.perf_counter()
        for p in screener.screen(paths, store, run_id, run=run):
            r = p.result
            for k, v in r.timings.items():
                stages.setdefault(k, []).append(v)
            results[r.path] = {
                "status": r.status,
                "decision": r.decision.value if r.decision is not None else None,
                "p_melanoma": r.p_melanoma,
                "p_malignant": getattr(r, "p_malignant", None),
                "class_probs": r.class_probs,
            }
        wall = time.perf_counter() - t
        stages["store"] = store.times
    out.update(
        n=len(paths),
        wall_s=wall,
        images_per_s=len(paths) / wall,
        peak_rss_mb=peak_rss_mb(),
        results=results,
        stages_ms={k: 1000 * statistics.mean(v) for k, v in stages.items() if v},
    )
    return out


# ------------------------------------------------------------------------------------ side by side


def compare(ref: dict, other: dict) -> tuple[float, float]:
    """(share of images whose outcome differs, largest |probability difference|) against the reference."""
    differ, worst, n = 0, 0.0, 0
    for path, a in ref["results"].items():
        b = other["results"].get(path)
        if b is None:
            continue
        n += 1
        if (a["status"], a["decision"]) != (b["status"], b["decision"]):
            differ += 1
        if a["status"] == b["status"] == "ok":
            diffs = [abs(a["class_probs"][c] - b["class_probs"][c]) for c in a["class_probs"]]
            for key in ("p_melanoma", "p_malignant"):
                if a[key] is not None and b[key] is not None:
                    diffs.append(abs(a[key] - b[key]))
            worst = max([worst, *diffs])
    return (differ / n if n else float("nan")), worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="images (default 100)")
    ap.add_argument("--folder", help="images to screen (default: the HAM10000 copy in ../shared)")
    ap.add_argument("--bundle", help="model bundle (default: the bundle in core/models/default)")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (0: the engine chooses)")
    ap.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=list(CONFIGS))
    ap.add_argument("--batch-images", type=int, nargs="+", default=[1], help="images per engine call; several: a sweep")
    ap.add_argument("--workers", type=int, default=1, help="preprocessing threads working ahead of the engine")
    ap.add_argument("--repeat", type=int, default=0, help="memory mode: screen a list of this many entries")
    ap.add_argument("--every", type=int, default=200, help="memory mode: print RSS every this many entries")
    ap.add_argument("--config", help=argparse.SUPPRESS)  # child process: one configuration
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--paths-file", help=argparse.SUPPRESS)
    ap.add_argument("--bundle-path", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.config:
        Path(args.out).write_text(json.dumps(run_config(args)))
        return

    paths = pick_images(args)
    bundle = bundle_path(args)
    tmp = Path(tempfile.mkdtemp(prefix="melascreen-bench-"))
    paths_file = tmp / "paths.json"
    paths_file.write_text(json.dumps(paths))
    print(
        f"{len(paths)} images; bundle {bundle}; threads {args.threads or 'auto'}; workers {args.workers}"
        + (f"; memory mode: {args.repeat} entries" if args.repeat else ""),
        flush=True,
    )
    runs = []
    for batch in args.batch_images:
        for name in args.configs:
            out = tmp / f"{name}-{batch}.json"
            cmd = [
                sys.executable,
                __file__,
                "--config",
                name,
                "--batch",
                str(batch),
                "--paths-file",
                str(paths_file),
                "--bundle-path",
                bundle,
                "--threads",
                str(args.threads),
                "--workers",
                str(args.workers),
                "--repeat",
                str(args.repeat),
                "--every",
                str(args.every),
                "--out",
                str(out),
            ]
            proc = subprocess.run(cmd)
            if proc.returncode != 0 or not out.exists():
                print(f"{name} (batch {batch}): could not run (exit {proc.returncode})", flush=True)
                continue
            runs.append(json.loads(out.read_text()))
            r = runs[-1]
            note = f" ({r['note']})" if r["note"] else ""
            print(
                f"{name:14s} batch {batch}: {r['engine_in_use']}{note}; load {r['load_s']:.1f}s; "
                + (f"{r['images_per_s']:.2f} images/s; " if "images_per_s" in r else "")
                + f"peak RSS {r['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    if args.repeat or not runs:
        return

    print(
        f"\n{'configuration':24s} {'engine in use':32s} {'img/s':>7s} {'x ref':>6s} "
        + " ".join(f"{s:>10s}" for s in STAGES)
        + f" {'peak MB':>8s} {'differ':>7s} {'max|dp|':>9s}"
    )
    for batch in args.batch_images:
        batch_runs = [r for r in runs if r["batch_images"] == batch]
        ref = next((r for r in batch_runs if r["config"] == "onnxruntime"), None)
        for r in batch_runs:
            speed = f"{r['images_per_s'] / ref['images_per_s']:6.2f}" if ref else f"{'-':>6s}"
            share, worst = compare(ref, r) if ref else (float("nan"), float("nan"))
            print(
                f"{r['config'] + f' (batch {batch})':24s} {r['engine_in_use']:32s} {r['images_per_s']:7.2f} {speed} "
                + " ".join(f"{r['stages_ms'].get(s, float('nan')):8.1f}ms" for s in STAGES)
                + f" {r['peak_rss_mb']:8.0f} {100 * share:6.1f}% {worst:9.2e}"
            )
    print(
        "\nstage columns: mean ms per image; decode/quality/preprocess run on worker threads alongside the "
        "engine; inference and cam are the engine call's share per image; 'differ' and 'max|dp|' are against "
        "onnxruntime with the same batch size."
    )


if __name__ == "__main__":
    main()
