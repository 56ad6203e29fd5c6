"""Lesion-grouped splits, the preprocessed-image cache, and the training Dataset.

Every image goes through core.preprocess once (the same code the app runs), is resized to the
model's square input and is stored as uint8 in one .npy file keyed by a hash of what produced it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from core.errors import ImageReadError
from core.preprocess import PreprocessParams

log = logging.getLogger(__name__)

# HAM10000 diagnosis codes, in the fixed order of the model outputs.
CLASS_NAMES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MELANOMA_INDEX = CLASS_NAMES.index("mel")
SPLITS = ("train", "val", "test")
CACHE_FORMAT = 1  # bump when the cache layout or the resize changes
DATA_IMAGE_SUFFIX = ".jpg"  # HAM10000: images/<image_id>.jpg


@dataclass(frozen=True)
class LabelledImage:
    image_id: str
    lesion_id: str
    dx: str
    split: str = ""

    @property
    def label(self) -> int:
        return CLASS_NAMES.index(self.dx)

    @property
    def melanoma(self) -> int:
        return int(self.dx == "mel")


def load_labels(labels_csv: str | Path, max_images: int | None = None) -> list[LabelledImage]:
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        if row["dx"] not in CLASS_NAMES:
            raise ValueError(f"{labels_csv}: unknown diagnosis {row['dx']!r} for {row['image_id']}")
        out.append(LabelledImage(row["image_id"], row["lesion_id"], row["dx"]))
    if max_images is not None:
        out = out[:max_images]
    return out


def make_split(
    images: list[LabelledImage], seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> list[LabelledImage]:
    """Assign whole lesions to train/val/test, stratified by diagnosis (counted in lesions).

    All images of one lesion share a split, so no lesion is seen in training and scored in test.
    """
    lesion_dx: dict[str, str] = {}
    for im in images:
        if lesion_dx.setdefault(im.lesion_id, im.dx) != im.dx:
            raise ValueError(f"lesion {im.lesion_id} has more than one diagnosis")
    by_dx: dict[str, list[str]] = defaultdict(list)
    for lesion, dx in sorted(lesion_dx.items()):
        by_dx[dx].append(lesion)
    rng = random.Random(seed)
    assigned: dict[str, str] = {}
    for dx in sorted(by_dx):
        lesions = by_dx[dx]
        rng.shuffle(lesions)
        n = len(lesions)
        n_test = int(round(n * test_fraction))
        n_val = int(round(n * val_fraction))
        for i, lesion in enumerate(lesions):
            assigned[lesion] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return [LabelledImage(im.image_id, im.lesion_id, im.dx, assigned[im.lesion_id]) for im in images]


def write_split(path: str | Path, images: list[LabelledImage]) -> None:
    tmp = Path(str(path) + ".partial")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "lesion_id", "dx", "melanoma", "split"])
        for im in images:
            w.writerow([im.image_id, im.lesion_id, im.dx, im.melanoma, im.split])
    os.replace(tmp, path)


def read_split(path: str | Path) -> list[LabelledImage]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = [LabelledImage(r["image_id"], r["lesion_id"], r["dx"], r["split"]) for r in rows]
    bad = {im.split for im in out} - set(SPLITS)
    if bad:
        raise ValueError(f"{path}: unknown split names {sorted(bad)}")
    return out


def resolve_split(
    labels_csv: str | Path,
    run_dir: Path,
    split_file: str | None,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    max_images: int | None = None,
) -> list[LabelledImage]:
    """The run's split: the given file, else the run's own split.csv, else a new one (saved)."""
    target = run_dir / "split.csv"
    if split_file:
        images = read_split(split_file)
    elif target.exists():
        return read_split(target)
    else:
        images = make_split(load_labels(labels_csv, max_images), seed, val_fraction, test_fraction)
    write_split(target, images)
    return images


# ---------------------------------------------------------------- preprocessed-image cache


def decode_rgb(path: str | Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageReadError(str(path), "cannot be decoded as an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def prepare_image(path: str, params: PreprocessParams | None, input_size: int) -> np.ndarray:
    """Decode, preprocess (core, as in the app) and resize to the square model input."""
    from core.preprocess import preprocess, resize_square

    rgb = decode_rgb(path)
    if params is not None:
        rgb = preprocess(rgb, params)
    return resize_square(rgb, input_size)


def _prepare_job(job: tuple[str, dict | None, int]) -> np.ndarray:
    path, params, size = job
    return prepare_image(path, PreprocessParams.from_dict(params) if params is not None else None, size)


def cache_key(params: PreprocessParams | None, input_size: int, image_ids: list[str]) -> str:
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "params": params.to_dict() if params is not None else None,
            "size": input_size,
            "images": image_ids,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def image_cache(
    image_ids: list[str],
    images_dir: str | Path,
    params: PreprocessParams | None,
    input_size: int,
    cache_root: str | Path,
    workers: int = 2,
) -> np.ndarray:
    """uint8 [N, S, S, 3] array of the preprocessed images, built once, then memory-mapped."""
    root = Path(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(params, input_size, image_ids)
    target = root / f"images-{input_size}-{key}.npy"
    if target.exists():
        return np.load(target, mmap_mode="r")
    partial = root / f"images-{input_size}-{key}.partial.npy"
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(image_ids), input_size, input_size, 3))
    pdict = params.to_dict() if params is not None else None
    jobs = [(str(Path(images_dir) / f"{i}{DATA_IMAGE_SUFFIX}"), pdict, input_size) for i in image_ids]
    start = time.time()
    log.info("building image cache %s: %d images at %d px, %d workers", target.name, len(jobs), input_size, workers)
    if workers > 1:
        with Pool(workers) as pool:
            for n, arr in enumerate(pool.imap(_prepare_job, jobs, chunksize=8)):
                out[n] = arr
                if (n + 1) % 1000 == 0:
                    log.info("  %d/%d images, %.1f images/s", n + 1, len(jobs), (n + 1) / (time.time() - start))
    else:
        for n, job in enumerate(jobs):
            out[n] = _prepare_job(job)
    out.flush()
    del out
    os.replace(partial, target)
    log.info("image cache ready in %.0f s", time.time() - start)
    # Also record what produced it, for people browsing the cache folder.
    (root / f"images-{input_size}-{key}.json").write_text(
        json.dumps({"params": pdict, "size": input_size, "n": len(image_ids)}, indent=1)
    )
    return np.load(target, mmap_mode="r")


# ---------------------------------------------------------------- datasets

FLIP_VIEWS = ("id", "flip", "flip_rot180", "rot180")  # core.tta names: none, h, v, h+v
DIHEDRAL_VIEWS = ("id", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270")


def apply_view_hwc(view: str, hwc: np.ndarray) -> np.ndarray:
    """A core.tta view of an H x W x C image (same geometry as core.tta.apply_view on C x H x W)."""
    from core.tta import apply_view

    return apply_view(view, hwc.transpose(2, 0, 1)).transpose(1, 2, 0)


def normalise(batch_hwc_uint8: np.ndarray, mean: tuple, std: tuple) -> torch.Tensor:
    """uint8 [N, S, S, 3] (or one image) -> float32 [N, 3, S, S] normalised."""
    x = torch.from_numpy(np.array(batch_hwc_uint8, dtype=np.uint8, order="C")).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32)
    s = torch.tensor(std, dtype=torch.float32)
    x = (x - m) / s
    return x.movedim(-1, -3).contiguous()


def random_resized_crop(
    img: np.ndarray, rnd: random.Random, scale: tuple[float, float] = (0.65, 1.0), ratio: tuple[float, float] = (0.8, 1.25)
) -> np.ndarray:
    """A random crop covering `scale` of the area with aspect in `ratio`, resized back to the input size.

    Milder than ImageNet's (0.08-1): a dermoscopy lesion fills the frame and a melanoma's cues
    (asymmetry, border, veil) live at its edge, which a tight crop would cut away.
    """
    h, w = img.shape[:2]
    area = rnd.uniform(*scale) * h * w
    aspect = math.exp(rnd.uniform(math.log(ratio[0]), math.log(ratio[1])))
    ch = min(h, max(1, round(math.sqrt(area / aspect))))
    cw = min(w, max(1, round(math.sqrt(area * aspect))))
    y0, x0 = rnd.randint(0, h - ch), rnd.randint(0, w - cw)
    return cv2.resize(np.ascontiguousarray(img[y0 : y0 + ch, x0 : x0 + cw]), (w, h), interpolation=cv2.INTER_LINEAR)


def colour_jitter(
    img: np.ndarray, rnd: random.Random, brightness: float = 0.15, contrast: float = 0.15, saturation: float = 0.15
) -> np.ndarray:
    """Brightness, contrast and saturation scaled by up to +-15% (dermatoscopes and cameras differ).

    Hue is left alone: colour (blue-white veil, regression) is a diagnostic cue in itself.
    """
    x = img.astype(np.float32)
    x *= rnd.uniform(1 - brightness, 1 + brightness)
    mean = x.mean()
    x = (x - mean) * rnd.uniform(1 - contrast, 1 + contrast) + mean
    grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - grey[..., None]) * rnd.uniform(1 - saturation, 1 + saturation) + grey[..., None]
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


class DermoscopyDataset(Dataset):
    """Cached images with labels. Augmentation draws one view per item: flips, dihedral, or rich
    (dihedral + random-resized crop + brightness/contrast/saturation jitter)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: list[int] | np.ndarray,
        mean: tuple,
        std: tuple,
        augment: str | None = None,
        rows: np.ndarray | None = None,
    ):
        if augment not in (None, "none", "flips", "dihedral", "rich"):
            raise ValueError(f"unknown augmentation {augment!r}: use none, flips, dihedral or rich")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rows = np.arange(len(self.labels)) if rows is None else np.asarray(rows)
        self.mean, self.std = tuple(mean), tuple(std)
        self.views = {"flips": FLIP_VIEWS, "dihedral": DIHEDRAL_VIEWS, "rich": DIHEDRAL_VIEWS}.get(augment or "none", ("id",))
        self.rich = augment == "rich"

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        row = int(self.rows[i])
        img = np.asarray(self.images[row])
        view = self.views[random.randrange(len(self.views))] if len(self.views) > 1 else "id"
        if view != "id":
            img = apply_view_hwc(view, img)
        if self.rich:
            img = colour_jitter(random_resized_crop(img, random), random)
        return normalise(img, self.mean, self.std), int(self.labels[row])


def balanced_rows(labels: np.ndarray, max_per_class: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of one epoch: every class capped at max_per_class images (drawn fresh each epoch)."""
    labels = np.asarray(labels)
    if max_per_class is None:
        return rng.permutation(len(labels))
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) > max_per_class:
            idx = rng.choice(idx, size=max_per_class, replace=False)
        keep.append(idx)
    return rng.permutation(np.concatenate(keep))


def class_counts(labels: np.ndarray) -> np.ndarray:
    c = Counter(int(x) for x in labels)
    return np.array([c.get(k, 0) for k in range(len(CLASS_NAMES))], dtype=np.int64)
