"""The numbers an evaluation report is made of: ROC and AUC (ties counted one half, bootstrap
intervals that resample whole lesions), balanced accuracy, calibration (reliability bins, ECE,
Brier) and what the gate does to melanomas. Plain numpy, checked against scikit-learn in the tests.
The AUC and its bootstrap interval are core.common.auc's (the app's audit uses them too): one implementation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.common.auc import bootstrap_auc_ci as bootstrap_auc_ci  # re-exported: evalkit's public name
from core.common.auc import roc_auc, tie_groups, weighted_auc
from core.decision.results import Decision

ECE_BINS = 15
# The stored outcome codes the gate's figures count, by name (core.decision.results.Decision).
CLEARED, REVIEW, SUSPICIOUS = Decision.NO_CANCER_SUSPECTED.value, Decision.REVIEW.value, Decision.SUSPICIOUS.value


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates as the threshold falls through every distinct score, from (0, 0)."""
    positive = np.asarray(positive, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    order = np.argsort(-score, kind="mergesort")
    s, y = score[order], positive[order]
    last_of_group = np.concatenate([np.flatnonzero(np.diff(s) != 0), [len(s) - 1]])
    tps = np.cumsum(y)[last_of_group]
    fps = last_of_group + 1 - tps
    return np.concatenate([[0.0], fps / n_neg]), np.concatenate([[0.0], tps / n_pos])


@dataclass(frozen=True)
class PairedAucDelta:
    """AUC of a candidate and a baseline scored on the same cases, and the bootstrap interval of
    their difference (candidate - baseline), each resample drawing the same lesions for both."""

    candidate: float
    baseline: float
    delta: float
    low: float
    high: float


def paired_bootstrap_auc_delta(
    positive: np.ndarray,
    candidate: np.ndarray,
    baseline: np.ndarray,
    groups: Sequence[str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedAucDelta:
    """Percentile interval of AUC(candidate) - AUC(baseline) over paired resamples (whole lesions
    with `groups`): the two scores share each resample, so case difficulty cancels in the difference."""
    positive = np.asarray(positive, dtype=bool)
    cand, base = np.asarray(candidate, np.float64), np.asarray(baseline, np.float64)
    if not (len(positive) == len(cand) == len(base)):
        raise ValueError(f"paired scores need equal lengths, got {len(positive)}, {len(cand)}, {len(base)}")
    a, b = roc_auc(positive, cand), roc_auc(positive, base)
    nan = float("nan")
    if not np.isfinite(a) or not np.isfinite(b) or n_resamples <= 0:
        return PairedAucDelta(a, b, a - b, nan, nan)
    keys = np.arange(len(cand)) if groups is None else np.asarray(groups)
    _, group_of = np.unique(keys, return_inverse=True)
    n_groups = int(group_of.max()) + 1
    order_a, tie_a = tie_groups(cand)
    order_b, tie_b = tie_groups(base)
    rng = np.random.default_rng(seed)
    deltas = []
    for _ in range(n_resamples):
        w = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups).astype(np.float64)[group_of]
        d = weighted_auc(positive[order_a], tie_a, w[order_a]) - weighted_auc(positive[order_b], tie_b, w[order_b])
        if np.isfinite(d):
            deltas.append(d)
    if not deltas:
        return PairedAucDelta(a, b, a - b, nan, nan)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(deltas, [tail, 100 - tail])
    return PairedAucDelta(a, b, a - b, float(lo), float(hi))


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows truth, columns prediction; entries with a negative truth (unknown class) are left out."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    keep = truth >= 0
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (truth[keep], predicted[keep]), 1)
    return out


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean recall over the classes present in `truth` (as sklearn's balanced_accuracy_score)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    keep = truth >= 0
    truth, predicted = truth[keep], predicted[keep]
    classes = np.unique(truth)
    if len(classes) == 0:
        return float("nan")
    return float(np.mean([np.mean(predicted[truth == c] == c) for c in classes]))


@dataclass(frozen=True)
class ReliabilityBins:
    edges: np.ndarray  # n_bins + 1 equal-width edges on [0, 1]
    mean_predicted: np.ndarray  # mean p in each bin (0 where empty)
    observed: np.ndarray  # share of positives in each bin (0 where empty)
    counts: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean |observed - predicted| gap."""
        total = self.counts.sum()
        if total == 0:
            return float("nan")
        return float((self.counts * np.abs(self.observed - self.mean_predicted)).sum() / total)


def reliability_bins(positive: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> ReliabilityBins:
    """Equal-width bins [k/n, (k+1)/n), the last one closed at 1."""
    positive = np.asarray(positive, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    index = np.clip(np.floor(p * n_bins).astype(int), 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    sums_p = np.bincount(index, p, minlength=n_bins)
    sums_y = np.bincount(index, positive, minlength=n_bins)
    safe = np.maximum(counts, 1)
    return ReliabilityBins(np.linspace(0, 1, n_bins + 1), sums_p / safe, sums_y / safe, counts)


def expected_calibration_error(positive: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> float:
    return reliability_bins(positive, p, n_bins).ece


def brier_score(positive: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of p(melanoma) against 0/1 truth."""
    positive = np.asarray(positive, dtype=np.float64)
    return float(np.mean((np.asarray(p, dtype=np.float64) - positive) ** 2)) if len(positive) else float("nan")


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def gate_metrics(decisions: Sequence[str], melanoma: np.ndarray) -> dict:
    """What the gate did to melanomas and to everything else.

    `melanomas_auto_cleared_share` is the dangerous number: melanomas the gate called benign,
    i.e. that no human would look at, out of ALL melanomas. The `confident_only` block is the
    seed's kind of figure (precision and recall over the cases the gate was confident about) and
    is only honest next to its coverage and the `all_cases` block.
    """
    d = np.asarray([str(x.value if isinstance(x, Decision) else x) for x in decisions])
    mel = np.asarray(melanoma, dtype=bool)
    n, n_mel = len(d), int(mel.sum())
    n_other = n - n_mel
    benign, suspicious, uncertain = d == CLEARED, d == SUSPICIOUS, d == REVIEW
    review = ~benign
    confident = ~uncertain
    mel_cleared = int((mel & benign).sum())
    mel_suspicious = int((mel & suspicious).sum())
    mel_confident = int((mel & confident).sum())
    return {
        "counts": {CLEARED: int(benign.sum()), REVIEW: int(uncertain.sum()), SUSPICIOUS: int(suspicious.sum())},
        "melanomas_auto_cleared_n": mel_cleared,
        "melanomas_auto_cleared_share": _share(mel_cleared, n_mel),
        "benign_auto_cleared_n": int((~mel & benign).sum()),
        "benign_auto_cleared_share": _share(int((~mel & benign).sum()), n_other),
        "sensitivity_sent_to_human": _share(int((mel & review).sum()), n_mel),
        "review_n": int(review.sum()),
        "review_share": _share(int(review.sum()), n),
        "confident_only": {
            "note": "computed only over images the gate did not call uncertain; read with its coverage",
            "coverage": _share(int(confident.sum()), n),
            "n": int(confident.sum()),
            "melanoma_precision": _share(mel_suspicious, int(suspicious.sum())),
            "melanoma_recall": _share(mel_suspicious, mel_confident),
        },
        "all_cases": {
            "note": "over every image scored; uncertain counts as not called melanoma for the suspicious-only recall",
            "melanoma_recall_suspicious_only": _share(mel_suspicious, n_mel),
            "melanoma_precision_suspicious": _share(mel_suspicious, int(suspicious.sum())),
            "melanoma_share_of_review_queue": _share(int((mel & review).sum()), int(review.sum())),
            "sensitivity_sent_to_human": _share(int((mel & review).sum()), n_mel),
        },
    }


def clearing_curve(
    p: np.ndarray, melanoma: np.ndarray, clearable: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As the benign threshold rises past each distinct p: (share of all images cleared, melanoma
    rate among the cleared, share of all melanomas cleared). Only `clearable` images (no quality
    flag, members agreeing) can ever be cleared, as in the gate."""
    p, mel, ok = np.asarray(p, float), np.asarray(melanoma, bool), np.asarray(clearable, bool)
    n, n_mel = len(p), max(int(mel.sum()), 1)
    ps, ms = p[ok], mel[ok]
    if len(ps) == 0:
        return np.zeros(1), np.zeros(1), np.zeros(1)
    order = np.argsort(ps, kind="mergesort")
    ps, ms = ps[order], ms[order]
    last = np.concatenate([np.flatnonzero(np.diff(ps) != 0), [len(ps) - 1]])
    cleared = last + 1
    mel_cleared = np.cumsum(ms)[last]
    return cleared / n, mel_cleared / cleared, mel_cleared / n_mel


def selective_risk_curve(p: np.ndarray, melanoma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Most confident first (max(p, 1 - p)): coverage k/N and error of the melanoma call among the k."""
    p, mel = np.asarray(p, float), np.asarray(melanoma, bool)
    if len(p) == 0:
        return np.zeros(1), np.zeros(1)
    order = np.argsort(-np.maximum(p, 1 - p), kind="mergesort")
    wrong = ((p >= 0.5) != mel)[order]
    k = np.arange(1, len(p) + 1)
    return k / len(p), np.cumsum(wrong) / k
