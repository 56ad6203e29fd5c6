"""Activations of the frozen pretrained backbone, computed once per flip view and shared by all
ensemble members (they start from the same weights).

Phase 1 (head only) trains on the pooled features; phase 2 (last blocks) on the activations of
the frozen prefix in front of those blocks. On a CPU this replaces most of the forward passes of
those phases with one pass per view.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.data import apply_view_hwc, normalise
from training.models import Units

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrozenFeatures:
    """prefix[v]: float16 [N, C, H, W] (input of the first trainable unit) for view v;
    pooled[v]: float32 [N, D] (pre-logits features of the whole frozen backbone)."""

    views: tuple[str, ...]
    prefix: tuple[np.ndarray, ...]
    pooled: tuple[np.ndarray, ...]


def features_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def _compute_view(
    model: nn.Module,
    units: Units,
    tail_start: int,
    images: np.ndarray,
    rows: np.ndarray,
    view: str,
    mean: tuple,
    std: tuple,
    batch_size: int,
    channels_last: bool,
    prefix_path: Path,
    pooled_path: Path,
) -> None:
    prefix_out = pooled_out = None
    start = time.time()
    for b in range(0, len(rows), batch_size):
        idx = rows[b : b + batch_size]
        batch = np.stack(
            [apply_view_hwc(view, np.asarray(images[i])) if view != "id" else np.asarray(images[i]) for i in idx]
        )
        x = normalise(batch, mean, std)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = Units.run(units.modules[:tail_start], x)
        f = model.forward_head(Units.run(units.modules[tail_start:], h), pre_logits=True)
        if prefix_out is None:
            prefix_out = np.lib.format.open_memmap(
                prefix_path, mode="w+", dtype=np.float16, shape=(len(rows),) + tuple(h.shape[1:])
            )
            pooled_out = np.lib.format.open_memmap(
                pooled_path, mode="w+", dtype=np.float32, shape=(len(rows),) + tuple(f.shape[1:])
            )
        prefix_out[b : b + len(idx)] = h.float().contiguous().numpy().astype(np.float16)
        pooled_out[b : b + len(idx)] = f.float().numpy()
        done = b + len(idx)
        if (done // batch_size) % 20 == 0 or done == len(rows):
            log.info("  view %s: %d/%d images, %.1f images/s", view, done, len(rows), done / (time.time() - start))
    prefix_out.flush()
    pooled_out.flush()


def frozen_features(
    model: nn.Module,
    units: Units,
    tail_start: int,
    images: np.ndarray,
    rows: np.ndarray,
    views: tuple[str, ...],
    mean: tuple,
    std: tuple,
    folder: Path,
    batch_size: int = 64,
    channels_last: bool = True,
) -> FrozenFeatures:
    """Compute (or reuse) the frozen activations of images[rows] for each view; one file pair per
    view, written under a temporary name and renamed, so an interrupted run resumes by view."""
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    prefixes, pooleds = [], []
    for view in views:
        pre, pool = folder / f"prefix-{view}.npy", folder / f"pooled-{view}.npy"
        if not (pre.exists() and pool.exists()):
            t = time.time()
            tmp_pre, tmp_pool = folder / f"prefix-{view}.partial.npy", folder / f"pooled-{view}.partial.npy"
            _compute_view(
                model, units, tail_start, images, rows, view, mean, std, batch_size, channels_last, tmp_pre, tmp_pool
            )
            os.replace(tmp_pool, pool)
            os.replace(tmp_pre, pre)
            log.info("frozen features for view %s: %d images in %.0f s", view, len(rows), time.time() - t)
        prefixes.append(np.load(pre, mmap_mode="r"))
        pooleds.append(np.load(pool, mmap_mode="r"))
    return FrozenFeatures(tuple(views), tuple(prefixes), tuple(pooleds))
