"""Calibration fitted on the validation split: per-member temperature, then the gate's thresholds.

Both are fitted on what the app computes: raw member logits averaged over the bundle's TTA views,
from the exported ONNX files run by `core.ensemble.Ensemble`. p(melanoma) is then the mean over
members of softmax(logits / T_m)[melanoma], exactly as `Ensemble.to_predictions` computes it.

Gate thresholds for a confidence c (see core.gate.GateSettings):
- `low`: the largest threshold such that, among validation cases with p < low, at most 1 - c are
  melanoma AND at most 1 - c of ALL validation melanomas fall below it (0.0 when no non-empty set
  of least suspicious cases meets both: nothing is benign). The second bound is the one that
  matters clinically: at ~11 % prevalence the first alone would let most melanomas be cleared at
  lower confidence levels;
- `high`: the smallest threshold such that, among cases with p >= high, at least c are melanoma.
  When no threshold achieves that, high = 1.0: only a probability of exactly 1.0 would be called
  suspicious, i.e. in practice every melanoma-like case goes to review as uncertain.
If the two cross (low > high: common at low confidence, where a set with up to 10 % melanoma
reaches far up), low is lowered to high: cases at or above high are mostly melanoma and must not
be called benign. Then nothing is uncertain at that level; the fit records it (`low_clamped`).
Thresholds are only as good as the number of validation cases behind them: the fit reports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.ensemble import softmax
from core.gate import GateSettings, Thresholds

CONFIDENCES = (0.9, 0.95, 0.98, 0.99)
TEMPERATURE_BOUNDS = (0.05, 20.0)


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    nll_before: float  # mean NLL at T = 1
    nll_after: float  # mean NLL at the fitted T
    n: int
    at_bound: bool = False  # the search ended at a bound: the member is far off, or the data too few


@dataclass(frozen=True)
class ThresholdFit:
    confidence: float
    thresholds: Thresholds
    n_benign: int  # validation cases with p < low
    melanoma_below_low: int
    n_suspicious: int  # validation cases with p >= high
    melanoma_at_or_above_high: int
    high_found: bool  # False: no threshold reached the confidence, high = 1.0
    low_clamped: bool  # True: the benign rule alone allowed a low above high; low was lowered to high

    def to_dict(self) -> dict:
        return {
            "confidence": self.confidence,
            "low": self.thresholds.low,
            "high": self.thresholds.high,
            "n_benign": self.n_benign,
            "melanoma_below_low": self.melanoma_below_low,
            "n_suspicious": self.n_suspicious,
            "melanoma_at_or_above_high": self.melanoma_at_or_above_high,
            "high_found": self.high_found,
            "low_clamped": self.low_clamped,
        }


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of softmax(logits / T) (float64, log-sum-exp stable)."""
    z = np.asarray(logits, np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def _check_labels(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or len(labels) == 0:
        raise ValueError(f"need N x K logits and N labels, got {logits.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be class indices in 0..{logits.shape[1] - 1}")
    return labels.astype(np.int64)


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = TEMPERATURE_BOUNDS, tol: float = 1e-5
) -> TemperatureFit:
    """T minimising the NLL of softmax(logits / T): golden-section search over log T within `bounds`.

    The NLL is unimodal in log T for fixed logits (it is convex in 1/T), so a 1-D search suffices.
    """
    logits = np.asarray(logits, np.float64)
    labels = _check_labels(logits, labels)
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    t = math.exp((lo + hi) / 2.0)
    at_bound = min(abs(math.log(t / bounds[0])), abs(math.log(bounds[1] / t))) < 1e-3
    return TemperatureFit(
        temperature=t, nll_before=nll(logits, labels), nll_after=nll(logits, labels, t), n=len(labels), at_bound=at_bound
    )


def fit_temperatures(member_logits: np.ndarray, labels: np.ndarray) -> tuple[TemperatureFit, ...]:
    """One temperature per member: member_logits is M x N x K (TTA-averaged, raw)."""
    member_logits = np.asarray(member_logits)
    if member_logits.ndim != 3:
        raise ValueError(f"member logits must be M x N x K, got shape {member_logits.shape}")
    return tuple(fit_temperature(m, labels) for m in member_logits)


def ensemble_probability(member_logits: np.ndarray, temperatures, positive_index: int) -> np.ndarray:
    """p(positive) per case: mean over members of softmax(logits / T_m), as core's Ensemble does."""
    temps = np.asarray(temperatures, np.float32)
    probs = softmax(np.asarray(member_logits, np.float32) / temps[:, None, None])
    return probs[:, :, positive_index].mean(axis=0)


def fit_thresholds(p: np.ndarray, positive: np.ndarray, confidence: float) -> ThresholdFit:
    """The gate thresholds for one confidence level (rules in the module docstring)."""
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    p = np.asarray(p, np.float64)
    positive = np.asarray(positive).astype(bool)
    if p.shape != positive.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"need one probability per case and one label per case, got {p.shape} and {positive.shape}")
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], positive[order]
    n = len(ps)
    cum_pos = np.concatenate([[0], np.cumsum(ys)])  # cum_pos[j]: melanomas among the j lowest
    # Thresholds only matter where the sets {p < t} and {p >= t} change: at the distinct p values.
    values, first = np.unique(ps, return_index=True)  # first[i]: how many cases lie below values[i]
    # low = values[i] makes {p < low} the first[i] cases; low = 1.0 takes every case below 1.
    candidates = list(zip(values.tolist(), first.tolist()))
    if ps[-1] < 1.0:
        candidates.append((1.0, n))
    low, n_low = 0.0, 0  # no non-empty set qualifies: nothing is called benign
    for t, j in candidates:  # ascending t: the last that qualifies is the largest
        if (
            j > 0
            and cum_pos[j] <= (1.0 - confidence) * j + 1e-9  # melanoma share among the cleared
            and cum_pos[j] <= (1.0 - confidence) * cum_pos[n] + 1e-9  # share of all melanomas cleared
        ):
            low, n_low = t, j
    high, n_high, found = 1.0, int(np.sum(ps >= 1.0)), False
    for t, j in zip(values.tolist(), first.tolist()):  # smallest first
        k = n - j
        if k > 0 and (cum_pos[n] - cum_pos[j]) >= confidence * k - 1e-9:
            high, n_high, found = t, k, True
            break
    clamped = low > high
    if clamped:  # cases in [high, low) are mostly melanoma: they must not be called benign
        low = high
        n_low = int(np.sum(ps < low))
    return ThresholdFit(
        confidence=confidence,
        thresholds=Thresholds(low=float(low), high=float(high)),
        n_benign=n_low,
        melanoma_below_low=int(cum_pos[n_low]),
        n_suspicious=n_high,
        melanoma_at_or_above_high=int(np.sum(ys[n - n_high :])) if n_high else 0,
        high_found=found,
        low_clamped=clamped,
    )


def fit_gate(
    p: np.ndarray, positive: np.ndarray, confidences=CONFIDENCES, base: GateSettings | None = None
) -> tuple[GateSettings, tuple[ThresholdFit, ...]]:
    """GateSettings with fitted thresholds for each confidence level, and the fits' figures."""
    base = base or GateSettings()
    fits = tuple(fit_thresholds(p, positive, c) for c in confidences)
    settings = GateSettings(
        default_confidence=base.default_confidence,
        fitted={f.confidence: f.thresholds for f in fits},
        max_member_spread=base.max_member_spread,
    )
    return settings, fits
