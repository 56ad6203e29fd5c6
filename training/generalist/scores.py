"""Cached features and member logits -> aligned p(melanoma) arrays for a set of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.inference.bundle import load_bundle
from core.inference.calibration import softmax

from . import features as feat
from . import members as mem
from .sets import ImageSet

MEL = 4  # index of "mel" in the bundles' class order (akiec, bcc, bkl, df, mel, nv, vasc)


def member_logits_for(
    cache: Path, bundle: Path, image_set: ImageSet, view: str = "id", override: dict | None = None
) -> tuple[np.ndarray, tuple]:
    """M x N x K logits, in the order of the ids the cache holds (failed images left out)."""
    identity = str(load_bundle(bundle, allow_unsigned=True).identity)
    got = mem.read(mem.cache_path(cache, identity, view, image_set.name, override))
    return got.logits, got.image_ids


def aligned(image_set: ImageSet, *id_lists) -> tuple[np.ndarray, list[np.ndarray]]:
    """Indices of the images every source has, in the set's order: (set rows, [rows of each source])."""
    common = set(image_set.image_ids)
    for ids in id_lists:
        common &= set(ids)
    rows = np.array([i for i, iid in enumerate(image_set.image_ids) if iid in common])
    out = []
    for ids in id_lists:
        where = {iid: i for i, iid in enumerate(ids)}
        out.append(np.array([where[image_set.image_ids[r]] for r in rows]))
    return rows, out


def features_for(cache: Path, key: feat.FeatureKey, image_set: ImageSet) -> feat.Features:
    return feat.load_features(cache, key, image_set.name)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the 7-class NLL (golden-section search on log T in [-2, 2])."""

    def nll(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t))
        return float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean())

    lo, hi = -2.0, 2.0
    g = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))
