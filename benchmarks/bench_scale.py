"""Benchmark: using the machine (issue 28 item 3): memory over a long folder, batch x worker settings, and
OpenVINO's throughput hint and streams.

    python benchmarks/bench_scale.py memory [--bundle B] [--n 2000] [--every 100] [--cascade on|off]
        [--batch-images 4] [--workers 1]
    python benchmarks/bench_scale.py grid [--bundle B] [--n 100] [--batch-images 1 2 4 8] [--workers 1 2]
        [--cascade on|off]
    python benchmarks/bench_scale.py hints [--bundle B] [--images 8] [--streams 1 2 4] [--repeats 3]

memory: screens n distinct HAM10000 images (the first n by file name in ../shared; synthetic images when
absent) the way the CLI does (core.screening.screener.Screener.screen, heat maps on, no store), samples the
process's resident memory (RSS) every 0.2 s and prints it every --every images, then the RSS after 10%, 50%
and 100% of the images, the peak, and the growth over the second half (MiB per 1,000 images): flat memory
grows by about nothing there.

grid: every batch-images x workers setting in its own process (its own start-up and peak RSS) on the same n
images: images/s and peak RSS per setting.

hints: the engine alone. core opens OpenVINO with PERFORMANCE_HINT=LATENCY and one synchronous request per
member (core.inference.engines.OpenVinoMember); this compiles the bundle's members here with LATENCY, with
THROUGHPUT and with fixed NUM_STREAMS, runs the views of --images images through each member split over the
compiled model's optimal number of infer requests (AsyncInferQueue), and prints passes/s and the implied
engine-only images/s for the bundle (members x views passes per image). Using what wins needs a core change
(a setting carried to the engine and a split over requests in OpenVinoMember.run): see the report it prints.

A script, not a test: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HAM = ROOT.parent / "shared" / "data" / "dermoscopy" / "images"


def rss_mib() -> float:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_mib()


def peak_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class Sampler:
    """RSS every `period` seconds on a thread, with the number of images done at that moment."""

    def __init__(self, period: float = 0.2):
        self.period, self.done = period, 0
        self.samples: list[tuple[float, int, float]] = []  # (seconds, images done, RSS MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def sample(self) -> None:
        self.samples.append((time.perf_counter() - self._start, self.done, rss_mib()))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def pick_images(n: int) -> list[str]:
    if HAM.is_dir():
        paths = sorted(HAM.glob("*.jpg"))[:n]
        if len(paths) < n:
            print(f"only {len(paths)} images in {HAM}")
        return [str(p) for p in paths]
    from tests.support.image_folders import make_folder

    print(f"no {HAM}: synthetic images (figures are for the plumbing only)")
    folder = make_folder(Path(tempfile.mkdtemp(prefix="melascreen-bench-")), n, broken=False)
    return sorted(str(p) for p in folder.iterdir())


def open_screener(args):
    from core.inference.bundle import default_bundle_path, load_bundle
    from core.inference.ensemble import EnsembleSettings
    from core.inference.signing import Trust
    from core.screening import Screener

    bundle = load_bundle(Path(args.bundle) if args.bundle else default_bundle_path(), trust=Trust.default())
    return bundle, Screener(bundle, EnsembleSettings(engine=args.engine))


def screen(args, images: list[str], batch_images: int, workers: int, every: int = 0) -> dict:
    from core.screening import GateChoice, RunSettings, cascade_status

    bundle, screener = open_screener(args)
    gate = GateChoice(cascade=args.cascade == "on")
    run = RunSettings(batch_images=batch_images, workers=workers)
    loaded = rss_mib()
    stopped = 0
    with Sampler() as sampler:
        start = time.perf_counter()
        for p in screener.screen(images, gate=gate, run=run):
            sampler.done = p.done
            stopped += p.result.cascade == "stopped"
            if every and p.done % every == 0:
                t = time.perf_counter() - start
                print(
                    f"{p.done:6d} images  {t:7.1f} s  {p.done / t:5.2f} images/s  RSS {rss_mib():7.0f} MiB", flush=True
                )
        elapsed = time.perf_counter() - start
        sampler.sample()  # the end of the run, whatever the period
    return {
        "bundle": f"{bundle.manifest.version}, {len(bundle.manifest.tta_views)} views",
        "engine": screener.engine_in_use,
        "cascade": cascade_status(bundle, gate),
        "images": len(images),
        "stopped": stopped,
        "elapsed_s": elapsed,
        "rss_after_load_mib": loaded,
        "peak_rss_mib": peak_mib(),
        "samples": sampler.samples,
    }


def growth_per_1000(samples: list[tuple[float, int, float]], total: int) -> float:
    """Least-squares slope of RSS against images done over the second half of the run, MiB per 1,000 images."""
    half = [(d, r) for _, d, r in samples if d >= total / 2]
    if len(half) < 3 or half[-1][0] == half[0][0]:
        return float("nan")
    n = len(half)
    mx, my = sum(d for d, _ in half) / n, sum(r for _, r in half) / n
    sxy = sum((d - mx) * (r - my) for d, r in half)
    sxx = sum((d - mx) ** 2 for d, _ in half)
    return 1000.0 * sxy / sxx if sxx else float("nan")


def rss_at(samples: list[tuple[float, int, float]], done: float) -> float:
    later = [r for _, d, r in samples if d >= done]
    return later[0] if later else float("nan")


def cmd_memory(args) -> None:
    images = pick_images(args.n)
    r = screen(args, images, args.batch_images[0], args.workers[0], every=args.every)
    n, s = r["images"], r["samples"]
    print(f"{r['bundle']}; {r['engine']}; {r['cascade']}")
    print(
        f"{n} images in {r['elapsed_s']:.0f} s ({n / r['elapsed_s']:.2f} images/s; stage 1 settled {r['stopped']}); "
        f"batch {args.batch_images[0]}, workers {args.workers[0]}"
    )
    print(
        f"RSS after load {r['rss_after_load_mib']:.0f} MiB; after 10% / 50% / 100% of the images "
        f"{rss_at(s, 0.1 * n):.0f} / {rss_at(s, 0.5 * n):.0f} / {rss_at(s, n):.0f} MiB; "
        f"peak {r['peak_rss_mib']:.0f} MiB"
    )
    print(f"growth over the second half: {growth_per_1000(s, n):+.1f} MiB per 1,000 images")
    if args.save:
        Path(args.save).write_text(json.dumps(r))


def cmd_grid(args) -> None:
    images = pick_images(args.n)
    listing = Path(tempfile.mkdtemp(prefix="melascreen-bench-")) / "images.json"
    listing.write_text(json.dumps(images))
    results = []
    for b in args.batch_images:
        for w in args.workers:
            cmd = [sys.executable, __file__, "child", "--images", str(listing), "--engine", args.engine]
            cmd += ["--batch-images", str(b), "--workers", str(w), "--cascade", args.cascade]
            cmd += ["--bundle", args.bundle] if args.bundle else []
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"batch {b} workers {w} failed:\n{out.stderr[-3000:]}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results.append({"batch_images": b, "workers": w, **r})
            print(
                f"batch {b} workers {w}: {r['images'] / r['elapsed_s']:5.2f} images/s  peak RSS "
                f"{r['peak_rss_mib']:6.0f} MiB  ({r['bundle']}; {r['cascade']})",
                flush=True,
            )
    best = max(results, key=lambda r: r["images"] / r["elapsed_s"])
    print(f"fastest: batch {best['batch_images']} workers {best['workers']}")
    if args.save:
        Path(args.save).write_text(json.dumps(results))


def cmd_child(args) -> None:
    r = screen(args, json.loads(Path(args.images).read_text()), args.batch_images[0], args.workers[0])
    r.pop("samples")
    print(json.dumps(r))


def cmd_hints(args) -> None:
    import numpy as np
    import openvino as ov

    from core.inference.bundle import default_bundle_path, load_bundle
    from core.inference.engines import verified_models
    from core.inference.signing import Trust

    bundle = load_bundle(Path(args.bundle) if args.bundle else default_bundle_path(), trust=Trust.default())
    m = bundle.manifest
    models = verified_models(bundle)
    n_views = args.images * len(m.tta_views)
    x = np.random.default_rng(0).standard_normal((n_views, 3, m.input_size, m.input_size)).astype(np.float32)
    core = ov.Core()
    configs: list[tuple[str, dict]] = [("LATENCY (core today)", {"PERFORMANCE_HINT": "LATENCY"})]
    configs.append(("THROUGHPUT", {"PERFORMANCE_HINT": "THROUGHPUT"}))
    configs += [(f"NUM_STREAMS={s}", {"NUM_STREAMS": s}) for s in args.streams]
    print(f"{os.cpu_count()} CPUs; {len(models)} members; {n_views} views per member run ({args.images} images)")
    runs = []
    for name, config in configs:
        compiled = [
            core.compile_model(core.read_model(mm.data), "CPU", {"INFERENCE_PRECISION_HINT": "f32", **config})
            for mm in models
        ]
        requests = int(compiled[0].get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queues = [ov.AsyncInferQueue(c, requests) for c in compiled]
        runs.append((name, compiled[0].get_property("NUM_STREAMS"), requests, queues, np.array_split(x, requests)))
    best = {name: float("inf") for name, *_ in runs}
    for _ in range(args.repeats + 1):  # rounds through every setting, so a change in load touches them all alike
        for name, _streams, _requests, queues, chunks in runs:
            t = time.perf_counter()
            for q in queues:
                for chunk in chunks:
                    q.start_async({"image": np.ascontiguousarray(chunk)})
                q.wait_all()
            best[name] = min(best[name], time.perf_counter() - t)
    per_image = len(models) * len(m.tta_views)
    for name, streams, requests, *_ in runs:
        passes = n_views * len(models) / best[name]
        print(
            f"{name:22s} streams {streams!s:>3s} requests {requests:2d}: {passes:7.1f} passes/s  "
            f"= {passes / per_image:5.2f} images/s engine-only ({per_image} passes per image; best of {args.repeats})"
        )
    print(
        "core change needed to use a winner: an EnsembleSettings field (e.g. performance_hint / streams) passed "
        "to core.inference.engines._openvino_members' config, and OpenVinoMember.run splitting a batch over "
        "OPTIMAL_NUMBER_OF_INFER_REQUESTS requests (AsyncInferQueue) instead of one synchronous request"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("memory", "grid", "hints", "child"))
    ap.add_argument("--bundle", help="default: core/models/default")
    ap.add_argument("--engine", default="openvino")
    ap.add_argument("--n", type=int, default=None, help="images (memory: 2000, grid: 100)")
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--cascade", choices=("on", "off"), default="on")
    ap.add_argument("--batch-images", type=int, nargs="+", default=None)
    ap.add_argument("--workers", type=int, nargs="+", default=None)
    ap.add_argument("--images", help="hints: images whose views run per member (default 8); child: a JSON list")
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--save", help="write the figures here (JSON)")
    args = ap.parse_args()
    if args.command == "hints":
        args.images = int(args.images or 8)
        cmd_hints(args)
        return 0
    grid = args.command == "grid"
    args.n = args.n or (100 if grid else 2000)
    args.batch_images = args.batch_images or ([1, 2, 4, 8] if grid else [4])
    args.workers = args.workers or ([1, 2] if grid else [1])
    {"memory": cmd_memory, "grid": cmd_grid, "child": cmd_child}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
