"""One image -> one model input: the single path the app, training, export and evaluation share.

    file --read_image--> upright RGB uint8 --preprocess--> --resize_square--> square uint8
         [--augment (training only)-->] --normalize--> float32 3 x S x S

The square uint8 image is the seam: training caches it on disk (keyed by the preprocessing and
the size) and augments it there, so a model sees in training exactly the pixels the app gives it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.files.image_file import ImageLimits
from core.files.images import read_image
from core.imaging.preprocess import PreprocessParams, normalize, preprocess, resize_square

# A training augmentation: square uint8 H x W x 3 in, an image of the same shape and type out.
Augment = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class InputSpec:
    """What a bundle's members take as input; `preprocessing` None skips core.imaging.preprocess."""

    preprocessing: PreprocessParams | None
    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 8:
            raise ValueError(f"model input size must be an integer of at least 8 pixels, got {self.size!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError(f"mean and std need three values each, std positive: {self.mean}, {self.std}")

    @classmethod
    def from_manifest(cls, manifest) -> InputSpec:
        """The input a bundle's manifest describes (duck-typed: core.inference.bundle.Manifest)."""
        return cls(manifest.preprocessing, int(manifest.input_size), tuple(manifest.mean), tuple(manifest.std))


def square_image(rgb: np.ndarray, preprocessing: PreprocessParams | None, size: int) -> np.ndarray:
    """Upright RGB uint8 -> preprocessed, size x size RGB uint8 (what training caches)."""
    image = preprocess(rgb, preprocessing) if preprocessing is not None else rgb
    return resize_square(image, size)


def square_from_file(
    path: str | os.PathLike, preprocessing: PreprocessParams | None, size: int, limits: ImageLimits = ImageLimits()
) -> np.ndarray:
    """A file, decoded as the app decodes it (EXIF orientation, alpha, 16-bit, CMYK), as a square."""
    return square_image(read_image(path, limits).rgb, preprocessing, size)


def normalized(square: np.ndarray, spec: InputSpec, augment: Augment | None = None) -> np.ndarray:
    """A square uint8 image (optionally augmented first) -> float32 3 x S x S."""
    if augment is not None:
        augmented = augment(square)
        if augmented.shape != square.shape or augmented.dtype != np.uint8:
            raise ValueError(
                f"an augmentation must return a {square.shape} uint8 image, got {augmented.shape} {augmented.dtype}"
            )
        square = augmented
    return normalize(square, spec.mean, spec.std)


def model_input(rgb: np.ndarray, spec: InputSpec, augment: Augment | None = None) -> np.ndarray:
    """Upright RGB uint8 (any size) -> float32 3 x S x S, as every member of the bundle expects."""
    return normalized(square_image(rgb, spec.preprocessing, spec.size), spec, augment)


def model_input_from_file(
    path: str | os.PathLike, spec: InputSpec, limits: ImageLimits = ImageLimits(), augment: Augment | None = None
) -> np.ndarray:
    """A file -> float32 3 x S x S; raises core.common.errors.ImageReadError when the file cannot be used."""
    return normalized(square_from_file(path, spec.preprocessing, spec.size, limits), spec, augment)
