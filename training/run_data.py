"""A run's data: its split and the cached square images of every split image, in split order.

The primary source (HAM10000) is split by lesion (training.splits); each extra source
(config data.extra_sources) brings its own parts. Rows of all sources are concatenated: `sources`
says which source each row came from and `class_masks` which diagnoses that source labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.imaging.preprocess import PreprocessParams
from evalkit.labelled import LabelledCase, LabelsError, read_cases

from .cache import image_cache
from .config import SourceConfig, TrainConfig
from .distributed import Dist
from .models import model_mean_std
from .splits import CLASS_NAMES, class_index, resolve_split


@dataclass(frozen=True)
class RunData:
    images: np.ndarray  # uint8 [N, S, S, 3], all split images in split order, source after source
    train_rows: np.ndarray
    val_rows: np.ndarray
    labels: np.ndarray  # int64 [N]
    mean: tuple
    std: tuple
    preprocess: dict | None
    sources: np.ndarray | None = None  # int [N]: index into source_names (None: one source)
    source_names: tuple[str, ...] = ("HAM10000",)
    class_masks: np.ndarray | None = None  # bool [sources, classes]: the diagnoses each source labels
    source_caps: tuple[int | None, ...] = (None,)  # per-class cap of each source in a balanced epoch

    @property
    def source_of(self) -> np.ndarray:
        return self.sources if self.sources is not None else np.zeros(len(self.labels), np.int64)

    @property
    def targets(self) -> np.ndarray:
        """label + classes * source: what the source-masked loss decodes (training.losses)."""
        return self.labels + len(CLASS_NAMES) * self.source_of

    def describe(self) -> dict:
        """Per source: its images per part and the diagnoses it labels (manifest provenance, model card)."""
        out = {}
        for s, name in enumerate(self.source_names):
            rows = self.source_of == s
            out[name] = {
                "train": int(np.isin(np.flatnonzero(rows), self.train_rows).sum()),
                "val": int(np.isin(np.flatnonzero(rows), self.val_rows).sum()),
                "classes": [c for c, m in zip(CLASS_NAMES, self.masks()[s]) if m],
            }
        return out

    def masks(self) -> np.ndarray:
        if self.class_masks is not None:
            return self.class_masks
        return np.ones((1, len(CLASS_NAMES)), bool)


def source_cases(source: SourceConfig) -> list[LabelledCase]:
    """An extra source's train and val parts (its test part is never read here)."""
    cases, _ = read_cases(source.labels_csv, split_column=source.split_column)
    keep = [c for c in cases if c.split in ("train", "val")]
    unknown = sorted({c.dx for c in keep} - set(CLASS_NAMES))
    if unknown:
        raise LabelsError(f"{source.labels_csv}: diagnoses {unknown} are not among the model's {list(CLASS_NAMES)}")
    if not keep:
        raise LabelsError(f"{source.labels_csv}: no train or val rows in column {source.split_column!r}")
    return keep


def prepare_data(cfg: TrainConfig, run_dir: Path, d: Dist) -> RunData:
    """Rank 0 writes the split and builds the caches; the other ranks then read them."""
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
    parts = [(split, dc.images_dir)] + [(source_cases(s), s.images_dir) for s in dc.extra_sources]
    arrays = []
    for cases, images_dir in parts:
        ids = [c.image_id for c in cases]
        if d.main:
            arrays.append(image_cache(ids, images_dir, params, dc.input_size, cfg.cache_root(), dc.cache_workers))
        d.barrier()
        if not d.main:
            arrays.append(image_cache(ids, images_dir, params, dc.input_size, cfg.cache_root(), 1))
    mean, std = model_mean_std(cfg.model.arch)
    mean = tuple(dc.mean) if dc.mean is not None else mean
    std = tuple(dc.std) if dc.std is not None else std
    all_cases = [c for cases, _ in parts for c in cases]
    split_names = np.array([c.split for c in all_cases])
    sources = np.concatenate([np.full(len(cases), s, np.int64) for s, (cases, _) in enumerate(parts)])
    masks = np.zeros((len(parts), len(CLASS_NAMES)), bool)
    masks[0] = True  # the primary source labels every class
    for s, (cases, _) in enumerate(parts[1:], start=1):
        masks[s, sorted({class_index(c) for c in cases})] = True
    return RunData(
        # One source: the memory-mapped cache itself; several: one array in memory (about 1.5 GB).
        images=arrays[0] if len(arrays) == 1 else np.concatenate(arrays),
        train_rows=np.flatnonzero(split_names == "train"),
        val_rows=np.flatnonzero(split_names == "val"),
        labels=np.array([class_index(c) for c in all_cases], dtype=np.int64),
        mean=mean,
        std=std,
        preprocess=params.to_dict() if params is not None else None,
        sources=sources if len(parts) > 1 else None,
        source_names=(dc.name, *(s.name for s in dc.extra_sources)),
        class_masks=masks if len(parts) > 1 else None,
        source_caps=(dc.max_per_class, *(s.max_per_class or dc.max_per_class for s in dc.extra_sources)),
    )
