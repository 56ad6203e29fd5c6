"""The training Dataset: cached square images (training.cache), augmented, then normalised by
core.imaging.model_input exactly as the app normalises. Splits live in training.splits."""

from __future__ import annotations

import math
import random
from collections import Counter

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from core.imaging.model_input import InputSpec, normalized

from .splits import CLASS_NAMES, MELANOMA_INDEX

__all__ = ["CLASS_NAMES", "MELANOMA_INDEX", "DermoscopyDataset", "balanced_rows", "class_counts", "normalise"]

# ---------------------------------------------------------------- datasets

FLIP_VIEWS = ("id", "flip", "flip_rot180", "rot180")  # core.imaging.tta names: none, h, v, h+v
DIHEDRAL_VIEWS = ("id", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270")


def apply_view_hwc(view: str, hwc: np.ndarray) -> np.ndarray:
    """A core.imaging.tta view of an H x W x C image (same geometry as core.imaging.tta.apply_view on C x H x W)."""
    from core.imaging.tta import apply_view

    return apply_view(view, hwc.transpose(2, 0, 1)).transpose(1, 2, 0)


def _spec(square: np.ndarray, mean: tuple, std: tuple) -> InputSpec:
    return InputSpec(None, int(square.shape[-2]), tuple(mean), tuple(std))


def normalise(batch_hwc_uint8: np.ndarray, mean: tuple, std: tuple) -> torch.Tensor:
    """uint8 [N, S, S, 3] (or one image) -> float32 [N, 3, S, S], normalised by core (as the app)."""
    batch = np.asarray(batch_hwc_uint8, dtype=np.uint8)
    if batch.ndim == 3:
        return torch.from_numpy(normalized(batch, _spec(batch, mean, std)))
    spec = _spec(batch[0], mean, std) if len(batch) else None
    return torch.from_numpy(
        np.stack([normalized(im, spec) for im in batch])
        if len(batch)
        else np.zeros((0, 3, *batch.shape[1:3]), np.float32)
    )


def random_resized_crop(
    img: np.ndarray,
    rnd: random.Random,
    scale: tuple[float, float] = (0.65, 1.0),
    ratio: tuple[float, float] = (0.8, 1.25),
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


def sharpness_jitter(img: np.ndarray, rnd: random.Random, strength: float = 1.0) -> np.ndarray:
    """Blur or sharpen by a random amount: dermatoscopes differ in sharpness (Derm7pt's pictures
    measure about 4x HAM10000's Laplacian variance, training.camera_shift)."""
    amount = rnd.uniform(-strength, strength)
    if abs(amount) < 0.1:
        return img
    blurred = cv2.GaussianBlur(img, (0, 0), 1.0)
    # One formula both ways: amount < 0 mixes towards the blurred copy, amount > 0 is an unsharp mask.
    out = cv2.addWeighted(img, 1 + amount, blurred, -amount, 0)
    return np.ascontiguousarray(out)


AUGMENTATIONS = ("none", "flips", "dihedral", "rich", "camera")


class DermoscopyDataset(Dataset):
    """Cached images with labels. Augmentation draws one view per item: flips, dihedral, rich
    (dihedral + random-resized crop + brightness/contrast/saturation jitter) or camera (rich with a
    wider zoom range, stronger colour jitter and blur/sharpening: another clinic's dermatoscope)."""

    def __init__(
        self,
        images: np.ndarray,
        labels: list[int] | np.ndarray,
        mean: tuple,
        std: tuple,
        augment: str | None = None,
        rows: np.ndarray | None = None,
    ):
        if augment not in (None, *AUGMENTATIONS):
            raise ValueError(f"unknown augmentation {augment!r}: use one of {', '.join(AUGMENTATIONS)}")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)
        self.rows = np.arange(len(self.labels)) if rows is None else np.asarray(rows)
        self.mean, self.std = tuple(mean), tuple(std)
        self.views = {
            "flips": FLIP_VIEWS,
            "dihedral": DIHEDRAL_VIEWS,
            "rich": DIHEDRAL_VIEWS,
            "camera": DIHEDRAL_VIEWS,
        }.get(augment or "none", ("id",))
        self.rich = augment == "rich"
        self.camera = augment == "camera"

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        row = int(self.rows[i])
        img = np.asarray(self.images[row])
        x = normalized(img, _spec(img, self.mean, self.std), self.augment)
        return torch.from_numpy(x), int(self.labels[row])

    def augment(self, img: np.ndarray) -> np.ndarray:
        """One random view of a cached square (core.imaging.model_input's augmentation hook)."""
        view = self.views[random.randrange(len(self.views))] if len(self.views) > 1 else "id"
        if view != "id":
            img = apply_view_hwc(view, img)
        if self.rich:
            img = colour_jitter(random_resized_crop(img, random), random)
        if self.camera:
            # Zoom down to 40% of the area: Derm7pt's lesions fill 36% of the picture, HAM10000's 21%.
            img = random_resized_crop(img, random, scale=(0.4, 1.0))
            img = colour_jitter(img, random, brightness=0.2, contrast=0.2, saturation=0.2)
            img = sharpness_jitter(img, random)
        return np.ascontiguousarray(img)


def balanced_rows(
    labels: np.ndarray,
    max_per_class: int | None,
    rng: np.random.Generator,
    sources: np.ndarray | None = None,
    source_caps: tuple[int | None, ...] | None = None,
) -> np.ndarray:
    """Indices of one epoch: every class of every source capped at its source's cap (or
    max_per_class), drawn fresh each epoch."""
    labels = np.asarray(labels)
    sources = np.zeros(len(labels), np.int64) if sources is None else np.asarray(sources)
    caps = source_caps or (max_per_class,)
    if all(c is None for c in caps) and max_per_class is None:
        return rng.permutation(len(labels))
    keep = []
    for s in np.unique(sources):
        cap = caps[s] if s < len(caps) and caps[s] is not None else max_per_class
        for c in np.unique(labels[sources == s]):
            idx = np.flatnonzero((labels == c) & (sources == s))
            if cap is not None and len(idx) > cap:
                idx = rng.choice(idx, size=cap, replace=False)
            keep.append(idx)
    return rng.permutation(np.concatenate(keep))


def class_counts(labels: np.ndarray) -> np.ndarray:
    c = Counter(int(x) for x in labels)
    return np.array([c.get(k, 0) for k in range(len(CLASS_NAMES))], dtype=np.int64)
