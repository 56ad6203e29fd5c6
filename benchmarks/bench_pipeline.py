"""Benchmark: the whole screening pipeline on a folder, with time per stage.

    python benchmarks/bench_pipeline.py [--folder DIR | --n 40] [--bundle PATH] [--threads 2]
        [--engine onnxruntime|openvino|auto] [--torch-run RUN_DIR]

One image at a time (no pipelining): what each stage costs on its own. For the engines side by side
and the pipelined batch, see bench_engines.py.

Prints images/s and mean milliseconds per image for decode, quality, preprocess, inference
(all members x all TTA views, logits and the in-graph CAM), CAM assembly and store. With
--torch-run (a training run folder with member-*/best.pt, torch installed), also runs the same
members in torch eager with the grad-cam package's GradCAM on the same views, and prints the
ratio measured in this run. A script, not a test: figures vary with the machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data" / "dermoscopy" / "images"


def pick_folder(args) -> Path:
    if args.folder:
        return Path(args.folder)
    tmp = Path(tempfile.mkdtemp(prefix="melascreen-bench-"))
    if SHARED.is_dir():
        for p in sorted(SHARED.glob("*.jpg"))[: args.n]:
            shutil.copy(p, tmp / p.name)
    else:
        from tests.support.image_folders import make_folder  # synthetic images when the shared data set is absent

        make_folder(tmp, args.n, broken=False)
    return tmp


def pick_bundle(args):
    from core.inference.bundle import default_bundle_path, load_bundle

    if args.bundle:
        return load_bundle(args.bundle)
    if (default_bundle_path() / "manifest.json").exists():
        return load_bundle(default_bundle_path())
    from tests.support.synthetic_bundle import make_bundle

    print("no default bundle: using a synthetic test bundle (figures are for the plumbing only)")
    views = ("id", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270", "zoom")
    # Signed with the tests' key, which this machine need not trust: fine for timing.
    folder = make_bundle(Path(tempfile.mkdtemp()) / "b", input_size=224, tta_views=views)
    return load_bundle(folder, allow_unsigned=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--bundle")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--engine", choices=("auto", "onnxruntime", "openvino"), default="onnxruntime")
    ap.add_argument("--torch-run", help="training run folder: also time torch eager + grad-cam")
    args = ap.parse_args()

    from core.inference.ensemble import EnsembleSettings
    from core.records.store import ReviewStore
    from core.screening import Screener

    folder = pick_folder(args)
    bundle = pick_bundle(args)
    m = bundle.manifest
    screener = Screener(bundle, EnsembleSettings(engine=args.engine, provider="cpu", threads=args.threads))
    paths = sorted(p for p in folder.iterdir() if p.is_file())
    print(
        f"bundle {m.name} {m.version}: {len(m.members)} members x {len(m.tta_views)} views at {m.input_size}px; "
        f"{len(paths)} images from {folder}; engine {screener.engine_in_use}"
    )
    stages: dict[str, list[float]] = {}
    db = Path(tempfile.mkdtemp()) / "bench.sqlite"
    with ReviewStore.open(db) as store:
        run_id = store.start_run(str(folder), m.name, m.version, bundle.identity, {})
        screener.screen_image(paths[0])  # warm-up: first session run allocates
        t_all = time.perf_counter()
        for p in paths:
            result, thumb = screener.screen_image(p)
            t = time.perf_counter()
            store.add_result(run_id, result, bundle.identity, thumbnail=thumb or None)
            stages.setdefault("store", []).append(time.perf_counter() - t)
            for k, v in result.timings.items():
                stages.setdefault(k, []).append(v)
        total = time.perf_counter() - t_all
    print(f"\nwhole pipeline: {len(paths) / total:.2f} images/s ({1000 * total / len(paths):.0f} ms per image)")
    for k in ("decode", "quality", "preprocess", "inference", "cam", "store"):
        if k in stages:
            mean, median = 1000 * statistics.mean(stages[k]), 1000 * statistics.median(stages[k])
            print(f"  {k:11s} {mean:8.1f} ms (median {median:.1f})")
    onnx_ms = 1000 * (statistics.mean(stages["inference"]) + statistics.mean(stages["cam"]))
    if args.torch_run:
        torch_ms = torch_reference(Path(args.torch_run), bundle, paths, args.threads)
        print(f"\ntorch eager + grad-cam GradCAM, same members and views: {torch_ms:.0f} ms per image")
        print(
            f"{screener.engine_in_use} ensemble with in-graph CAM: {onnx_ms:.0f} ms per image; "
            f"ratio torch/engine = {torch_ms / onnx_ms:.2f}"
        )


def torch_reference(run_dir: Path, bundle, paths, threads: int) -> float:
    """Per image: every member on every view, logits and GradCAM of the melanoma class, in torch."""
    import numpy as np
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from core.files.images import read_image
    from core.imaging.preprocess import preprocess, to_model_input
    from core.imaging.tta import apply_view
    from export.heads import inspect_head
    from export.package import build_model, find_checkpoints, load_checkpoint

    if threads:
        torch.set_num_threads(threads)
    m = bundle.manifest
    models = [build_model(*load_checkpoint(p)).eval() for p in find_checkpoints(run_dir)]
    # The package's plain GradCAM (full backward pass), as a torch user would run it.
    cams = [GradCAM(model=mod, target_layers=[mod.get_submodule(inspect_head(mod).feature_layer)]) for mod in models]
    times = []
    for p in paths[: min(10, len(paths))]:
        img = read_image(p)
        x = to_model_input(preprocess(img.rgb, m.preprocessing), m.input_size, m.mean, m.std)
        views = torch.from_numpy(np.stack([apply_view(v, x) for v in m.tta_views]))
        t = time.perf_counter()
        for mod, cam in zip(models, cams):
            with torch.no_grad():
                mod(views)
            cam(input_tensor=views, targets=[ClassifierOutputTarget(m.positive_index)] * len(views))
        times.append(time.perf_counter() - t)
    return 1000 * statistics.mean(times)


if __name__ == "__main__":
    main()
