"""The labelled image sets the generalist work reads, by name, and which of them may be used for choice.

HAM10000 in the default bundle's lesion-grouped split; ISIC 2017 in its challenge's own parts;
Derm7pt whole. Derm7pt (and PH2, ISIC 2018 val/test, which are not read here) only ever test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalkit.labelled import PROJECT_ROOT, SHARED_DATA, LabelsError, read_cases

HAM_SPLIT = PROJECT_ROOT / "configs" / "splits" / "ham10000_lesion_split.csv"
# name -> (labels file, split column, split value or None, images folder)
_SETS = {
    "ham10000_train": (HAM_SPLIT, "split", "train", SHARED_DATA / "dermoscopy" / "images"),
    "ham10000_val": (HAM_SPLIT, "split", "val", SHARED_DATA / "dermoscopy" / "images"),
    "ham10000_test": (HAM_SPLIT, "split", "test", SHARED_DATA / "dermoscopy" / "images"),
    "isic2017_train": (
        SHARED_DATA / "isic2017" / "labels.csv",
        "challenge_split",
        "train",
        SHARED_DATA / "isic2017" / "images",
    ),
    "isic2017_val": (
        SHARED_DATA / "isic2017" / "labels.csv",
        "challenge_split",
        "val",
        SHARED_DATA / "isic2017" / "images",
    ),
    "isic2017_test": (
        SHARED_DATA / "isic2017" / "labels.csv",
        "challenge_split",
        "test",
        SHARED_DATA / "isic2017" / "images",
    ),
    "derm7pt": (SHARED_DATA / "derm7pt" / "labels.csv", "split", None, SHARED_DATA / "derm7pt" / "images"),
}
SET_NAMES = tuple(_SETS)
# Sets that test the product and are never read to fit, calibrate or choose.
TEST_ONLY = frozenset({"ham10000_test", "isic2017_test", "derm7pt"})


@dataclass(frozen=True)
class ImageSet:
    name: str
    image_ids: tuple[str, ...]
    dx: tuple[str, ...]
    lesion_ids: tuple[str, ...]
    images_dir: Path

    @property
    def melanoma(self) -> np.ndarray:
        return np.array([d == "mel" for d in self.dx])

    @property
    def source(self) -> str:
        return self.name.split("_")[0]

    @property
    def base(self) -> str:
        return self.name.partition("@")[0]


def load_set(name: str) -> ImageSet:
    """A named set; "NAME@N" is a seeded random subset of N whole lesions' images of it (CPU time)."""
    base, _, limit = name.partition("@")
    if base not in _SETS:
        raise LabelsError(f"unknown image set {name!r}; known: {', '.join(SET_NAMES)} (optionally @N)")
    labels, column, split, images = _SETS[base]
    cases, _ = read_cases(labels, split, split_column=column)
    if limit:
        lesions = sorted({c.lesion_id or c.image_id for c in cases})
        keep = set(np.random.default_rng(0).permutation(lesions)[: int(limit)].tolist())
        cases = [c for c in cases if (c.lesion_id or c.image_id) in keep]
    return ImageSet(
        name,
        tuple(c.image_id for c in cases),
        tuple(c.dx for c in cases),
        tuple(c.lesion_id or c.image_id for c in cases),
        Path(images),
    )
