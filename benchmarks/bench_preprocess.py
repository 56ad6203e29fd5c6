"""Time each preprocessing stage on real dermoscopy images, at several working sizes.

    .venv/bin/python benchmarks/bench_preprocess.py                      # 50 images, sizes 448 256 768
    .venv/bin/python benchmarks/bench_preprocess.py -n 20 --sizes 448 600 --source-side 1600

Stages are timed exactly as `core.imaging.preprocess.preprocess` runs them: `resize` is the shrink to the
working size plus the final `resize_square` to the model input; masked pixels are counted with the
same mask functions the stages use (outside the timed region). `--source-side` enlarges the images
first (bicubic) to stand in for a camera with more pixels than the 384 x 288 HAM10000 copies: the
working size never enlarges, so without it every size above 384 behaves like 384.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.imaging.preprocess import (  # noqa: E402
    PreprocessParams,
    apply_clahe,
    corner_mask,
    hair_mask,
    remove_corners,
    remove_hair,
    resize_square,
    scaled_sizes,
    to_working_size,
)

# The HAM10000 copy beside the checkout (../shared), wherever the checkout is.
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "dermoscopy" / "images"
STAGES = ("resize", "corners", "hair", "clahe")


def load(folder: Path, count: int, source_side: int) -> list[np.ndarray]:
    paths = sorted(folder.glob("*.jpg"))[:count]
    if not paths:
        raise SystemExit(f"no .jpg images in {folder}")
    images = []
    for path in paths:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if source_side and source_side > max(rgb.shape[:2]):
            scale = source_side / max(rgb.shape[:2])
            size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        images.append(rgb)
    return images


def run(images: list[np.ndarray], params: PreprocessParams, input_size: int) -> dict:
    times = {stage: [] for stage in STAGES}
    corner_px, hair_px, pixels, with_corners = [], [], [], 0
    for rgb in images:
        t0 = time.perf_counter()
        image = to_working_size(rgb, params.working_size)
        t_resize = time.perf_counter() - t0
        sizes = scaled_sizes(max(image.shape[:2]), params)

        corners = int(np.count_nonzero(corner_mask(image, params, sizes)))
        t0 = time.perf_counter()
        image = remove_corners(image, params, sizes)
        times["corners"].append(time.perf_counter() - t0)

        hairs = int(np.count_nonzero(hair_mask(image, params, sizes)))
        t0 = time.perf_counter()
        image = remove_hair(image, params, sizes)
        times["hair"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        image = apply_clahe(image, params)
        times["clahe"].append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        resize_square(image, input_size)
        times["resize"].append(t_resize + time.perf_counter() - t0)

        corner_px.append(corners)
        hair_px.append(hairs)
        pixels.append(image.shape[0] * image.shape[1])
        with_corners += corners > 0
    return {
        "times": times,
        "corner_px": corner_px,
        "hair_px": hair_px,
        "pixels": pixels,
        "with_corners": with_corners,
        "shape": image.shape[:2],
        "sizes": sizes,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("-n", "--count", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="working sizes (default: 448 256 768)")
    parser.add_argument("--source-side", type=int, default=0, help="enlarge images to this longest side first")
    parser.add_argument("--input-size", type=int, default=224)
    args = parser.parse_args(argv)

    base = PreprocessParams()
    sizes = args.sizes or [base.working_size, 256, 768]
    images = load(args.folder, args.count, args.source_side)
    h, w = images[0].shape[:2]
    print(
        f"{len(images)} images from {args.folder}, source {w} x {h}, OpenCV {cv2.__version__}, "
        f"{cv2.getNumThreads()} threads; times in ms per image: mean (median)"
    )
    header = f"{'working':>8} {'image':>9} {'kernels':>15} " + " ".join(f"{s:>14}" for s in STAGES + ("total",))
    print(header + f" {'corner px':>17} {'hair px':>15} {'with corners':>12}")
    for size in sizes:
        result = run(images, replace(base, working_size=size), args.input_size)
        sz = result["sizes"]
        cells = []
        for stage in STAGES:
            ms = [t * 1000 for t in result["times"][stage]]
            cells.append(f"{statistics.mean(ms):7.1f} ({statistics.median(ms):4.1f})")
        total = [sum(result["times"][s][i] for s in STAGES) * 1000 for i in range(len(images))]
        cells.append(f"{statistics.mean(total):7.1f} ({statistics.median(total):4.1f})")
        fraction = [c / p for c, p in zip(result["corner_px"], result["pixels"])]
        hair_fraction = [c / p for c, p in zip(result["hair_px"], result["pixels"])]
        shape = f"{result['shape'][1]}x{result['shape'][0]}"
        kernels = f"h{sz.hair_kernel} r{sz.corner_inpaint_radius}/{sz.hair_inpaint_radius}"
        print(
            f"{size:>8} {shape:>9} {kernels:>15} "
            + " ".join(f"{c:>14}" for c in cells)
            + f" {statistics.mean(result['corner_px']):8.0f} ({100 * statistics.mean(fraction):4.1f}%)"
            + f" {statistics.mean(result['hair_px']):6.0f} ({100 * statistics.mean(hair_fraction):4.1f}%)"
            + f" {result['with_corners']:>5}/{len(images)}"
        )


if __name__ == "__main__":
    main()
