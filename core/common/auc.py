"""ROC AUC (ties count one half) and its percentile bootstrap interval, resampling whole lesions.

The app's audit (core/screening/audit.py) needs them and core may not import evalkit, so they live here; the
code is evalkit.metrics' own (the functions training.evaluate uses), and tests/core/test_audit.py
checks them. evalkit.metrics imports them from here: one implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def tie_groups(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort order of `score` and, for each sorted position, the index of its group of equal scores."""
    order = np.argsort(score, kind="mergesort")
    sorted_scores = score[order]
    group = np.concatenate([[0], np.cumsum(np.diff(sorted_scores) != 0)])
    return order, group


def weighted_auc(positive: np.ndarray, group: np.ndarray, weights: np.ndarray) -> float:
    """Mann-Whitney AUC on pre-sorted data; ties count one half. `group` indexes equal scores."""
    n_groups = int(group[-1]) + 1
    w_pos = np.bincount(group, weights * positive, minlength=n_groups)
    w_neg = np.bincount(group, weights * (~positive), minlength=n_groups)
    total_pos, total_neg = w_pos.sum(), w_neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    neg_below = np.cumsum(w_neg) - w_neg
    return float((w_pos * (neg_below + 0.5 * w_neg)).sum() / (total_pos * total_neg))


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (probability a positive outscores a negative); NaN with one class."""
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    if len(score) == 0:
        return float("nan")
    order, group = tie_groups(score)
    return weighted_auc(positive[order], group, np.ones(len(score)))


def bootstrap_auc_ci(
    positive: np.ndarray,
    score: np.ndarray,
    groups: Sequence[str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC.

    With `groups` (lesion ids), whole lesions are resampled: images of one lesion are not
    independent, and resampling them one by one would make the interval too narrow. A resample
    is a weight per image (how often its lesion was drawn), so the scores are sorted only once.
    """
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    if len(score) == 0 or positive.all() or not positive.any() or n_resamples <= 0:
        return float("nan"), float("nan")
    keys = np.arange(len(score)) if groups is None else np.asarray(groups)
    _, group_of = np.unique(keys, return_inverse=True)
    n_groups = int(group_of.max()) + 1
    order, tie = tie_groups(score)
    y_sorted, g_sorted = positive[order], group_of[order]
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_resamples):
        draws = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups).astype(np.float64)
        auc = weighted_auc(y_sorted, tie, draws[g_sorted])
        if np.isfinite(auc):
            aucs.append(auc)
    if not aucs:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(aucs, [tail, 100 - tail])
    return float(lo), float(hi)
