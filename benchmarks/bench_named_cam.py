"""Benchmark: composing the heat map of the class the outcome names from the raw CAMs screening keeps.

    nice -n 15 python benchmarks/bench_named_cam.py [--n 12] [--images DIR]

Screening keeps every class's raw Grad-CAM (the graphs give them all) until the gate has decided, then
composes the named class's map the way the melanoma map is composed (core.inference.ensemble.Ensemble.class_cam):
no second model run. Prints the model run per image and the composition per image (median), on the
default bundle with onnxruntime on the CPU, and the classes the outcomes named.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.inference.bundle import default_bundle_path, load_bundle  # noqa: E402
from core.inference.ensemble import EnsembleSettings  # noqa: E402
from core.screening import Screener  # noqa: E402

IMAGES = ROOT.parent / "shared" / "data" / "dermoscopy" / "images"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--images", type=Path, default=IMAGES)
    args = ap.parse_args()
    paths = sorted(args.images.glob("*.jpg"))[: args.n]
    if not paths:
        sys.exit(f"no .jpg pictures in {args.images}")
    s = Screener(load_bundle(default_bundle_path()), EnsembleSettings(engine="onnxruntime", provider="cpu"))
    m = s.bundle.manifest
    other = next(c for c in m.class_names if c != m.positive_class)
    thresholds = s.thresholds()
    run_s, compose_s, named = [], [], []
    for path in paths:
        p = s.prepare(str(path))
        t = time.perf_counter()
        raw = s.ensemble.run(p.model_input[None])
        run_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        s.ensemble.class_cam(raw, 0, other, (p.height, p.width))
        compose_s.append(time.perf_counter() - t)
        named.append(s.infer([p], thresholds)[0][0].named_cam_class)
    print(f"{len(paths)} pictures, {m.name} {m.version} ({len(m.members)} members, {len(m.tta_views)} views), CPU")
    print(f"model run per picture: median {np.median(run_s) * 1000:.0f} ms")
    print(f"the named class's map from the kept CAMs: median {np.median(compose_s) * 1000:.1f} ms")
    print("classes named:", ", ".join(f"{c} {n}" for c, n in zip(*np.unique(named, return_counts=True))))


if __name__ == "__main__":
    main()
