"""Lesion-grouped train/val/test splits of HAM10000 (no torch). The split file format, its reader
and its dataclass are evalkit.labelled's, shared with export and evaluation."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from evalkit.labelled import LabelledCase, LabelsError, read_cases, read_split, write_split

# HAM10000 diagnosis codes, in the fixed order of the model outputs.
CLASS_NAMES: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
MELANOMA_INDEX = CLASS_NAMES.index("mel")


def class_index(case: LabelledCase) -> int:
    """The case's position in the model outputs."""
    return CLASS_NAMES.index(case.dx)


def load_labels(labels_csv: str | Path, max_images: int | None = None) -> list[LabelledCase]:
    """HAM10000's labels.csv (image_id, lesion_id, dx), every diagnosis one of CLASS_NAMES."""
    cases, _ = read_cases(labels_csv)
    for c in cases:
        if c.dx not in CLASS_NAMES:
            raise LabelsError(f"{labels_csv}: unknown diagnosis {c.dx!r} for {c.image_id}")
        if not c.lesion_id:
            raise LabelsError(f"{labels_csv}: {c.image_id} has no lesion_id; splits are grouped by lesion")
    return cases[:max_images] if max_images is not None else cases


def make_split(
    images: list[LabelledCase], seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> list[LabelledCase]:
    """Assign whole lesions to train/val/test, stratified by diagnosis (counted in lesions).

    All images of one lesion share a split, so no lesion is seen in training and scored in test.
    """
    lesion_dx: dict[str, str] = {}
    for im in images:
        if lesion_dx.setdefault(im.lesion_id, im.dx) != im.dx:
            raise LabelsError(f"lesion {im.lesion_id} has more than one diagnosis")
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
    return [LabelledCase(im.image_id, im.dx, im.melanoma, im.lesion_id, assigned[im.lesion_id]) for im in images]


def resolve_split(
    labels_csv: str | Path,
    run_dir: Path,
    split_file: str | None,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    max_images: int | None = None,
) -> list[LabelledCase]:
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


__all__ = [
    "CLASS_NAMES",
    "MELANOMA_INDEX",
    "LabelledCase",
    "class_index",
    "load_labels",
    "make_split",
    "read_split",
    "resolve_split",
    "write_split",
]
