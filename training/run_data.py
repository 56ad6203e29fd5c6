"""A run's data: its split and the cached square images of every split image, in split order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.preprocess import PreprocessParams

from .cache import image_cache
from .config import TrainConfig
from .distributed import Dist
from .models import model_mean_std
from .splits import class_index, resolve_split


@dataclass(frozen=True)
class RunData:
    images: np.ndarray  # uint8 [N, S, S, 3], all split images in split order
    train_rows: np.ndarray
    val_rows: np.ndarray
    labels: np.ndarray  # int64 [N]
    mean: tuple
    std: tuple
    preprocess: dict | None


def prepare_data(cfg: TrainConfig, run_dir: Path, d: Dist) -> RunData:
    """Rank 0 writes the split and builds the cache; the other ranks then read them."""
    dc = cfg.data
    split_args = (
        dc.labels_csv,
        run_dir,
        dc.split_file,
        dc.split_seed,
        dc.val_fraction,
        dc.test_fraction,
        dc.max_images,
    )
    if d.main:
        split = resolve_split(*split_args)
    d.barrier()
    if not d.main:
        split = resolve_split(*split_args)
    params = PreprocessParams.from_dict(dc.preprocess_params) if dc.preprocess else None
    ids = [im.image_id for im in split]
    if d.main:
        images = image_cache(ids, dc.images_dir, params, dc.input_size, cfg.cache_root(), dc.cache_workers)
    d.barrier()
    if not d.main:
        images = image_cache(ids, dc.images_dir, params, dc.input_size, cfg.cache_root(), 1)
    mean, std = model_mean_std(cfg.model.arch)
    mean = tuple(dc.mean) if dc.mean is not None else mean
    std = tuple(dc.std) if dc.std is not None else std
    split_names = np.array([im.split for im in split])
    return RunData(
        images=images,
        train_rows=np.flatnonzero(split_names == "train"),
        val_rows=np.flatnonzero(split_names == "val"),
        labels=np.array([class_index(im) for im in split], dtype=np.int64),
        mean=mean,
        std=std,
        preprocess=params.to_dict() if params is not None else None,
    )
