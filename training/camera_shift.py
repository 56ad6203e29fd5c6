"""What differs between image sources before any model looks at them: colour, framing, vignetting,
hair, resolution. Label-free, so it may be run on the evaluation-only set (Derm7pt) too.

    python -m training.camera_shift [--n 200] [--out reports/camera-shift.md]

For each source it samples n images and reports, through the app's own decoder and
preprocessing: the mean colour and its cast (Shades of Gray, p=6, illuminant estimate), the share
of dark border pixels (black corners, vignetting), the share the hair mask takes, the share the
lesion takes (Otsu on the L channel inside the frame: how close the crop sits to the lesion),
sharpness, and the native size.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from core.files.images import read_image
from core.imaging.preprocess import (
    PreprocessParams,
    colour_constancy,
    corner_mask,
    hair_mask,
    illuminant,
    to_working_size,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {
    "HAM10000": ("dermoscopy", lambda r: True),
    "ISIC 2017": ("isic2017", lambda r: True),
    "Derm7pt": ("derm7pt", lambda r: True),
}


def lesion_share(rgb: np.ndarray, frame: np.ndarray) -> float:
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    light = cv2.GaussianBlur(lab[..., 0], (7, 7), 0)
    inside = light[~frame]
    if inside.size == 0:
        return 0.0
    t, _ = cv2.threshold(inside.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float((inside < t).mean())


def describe(paths: list[Path], params: PreprocessParams) -> dict[str, float]:
    rows = []
    for p in paths:
        image = read_image(p)
        small = to_working_size(image.rgb, params.working_size)
        frame = corner_mask(small, params) > 0
        illum = illuminant(small, 6.0, frame)
        balanced = colour_constancy(small, 6.0, frame)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        rows.append(
            {
                "width": image.width,
                "height": image.height,
                "mean_r": small[..., 0].mean(),
                "mean_g": small[..., 1].mean(),
                "mean_b": small[..., 2].mean(),
                "cast_r": illum[0],
                "cast_b": illum[2],
                "dark_border": frame.mean(),
                "hair_mask": (hair_mask(small, params) > 0).mean(),
                # Threshold 20 (the candidate's): how much texture a gentler hair removal still takes.
                "hair_mask_20": (hair_mask(small, replace(params, hair_threshold=20)) > 0).mean(),
                # After Shades of Gray: what is left of the colour difference between sources.
                "balanced_r": balanced[..., 0].mean(),
                "balanced_g": balanced[..., 1].mean(),
                "balanced_b": balanced[..., 2].mean(),
                "lesion_share": lesion_share(small, frame),
                "sharpness": cv2.Laplacian(grey, cv2.CV_64F).var(),
            }
        )
    # Shares (border, hair, lesion) as means: most images have no black border, so its median is 0.
    shares = ("dark_border", "hair_mask", "hair_mask_20", "lesion_share")
    return {k: float((np.mean if k in shares else np.median)([r[k] for r in rows])) for k in rows[0]}


def sample(source_dir: Path, n: int, seed: int = 0) -> list[Path]:
    ids = [r["image_id"] for r in csv.DictReader(open(source_dir / "labels.csv", newline=""))]
    pick = np.random.default_rng(seed).choice(len(ids), min(n, len(ids)), replace=False)
    return [source_dir / "images" / f"{ids[i]}.jpg" for i in sorted(pick)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="label-free comparison of image sources")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    params = PreprocessParams()
    table = {name: describe(sample(args.data / folder, args.n), params) for name, (folder, _) in SOURCES.items()}
    keys = list(next(iter(table.values())))
    lines = [
        f"Medians (shares: means) over {args.n} images per source (`python -m training.camera_shift --n {args.n}`):",
        "",
        "| measure | " + " | ".join(table) + " |",
        "| --- | " + " | ".join("---" for _ in table) + " |",
    ]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{table[s][k]:.3g}" for s in table) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
