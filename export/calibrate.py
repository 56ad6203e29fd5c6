"""Calibration fitted on the validation split: per-member temperature, then the gate's thresholds.

Both are fitted on what the app computes: raw member logits averaged over the bundle's TTA views,
from the exported ONNX files run by `core.inference.ensemble.Ensemble`. p(melanoma) is then the mean over
members of softmax(logits / T_m)[melanoma], exactly as `Ensemble.to_predictions` computes it.

Gate thresholds for a confidence c (see core.decision.gate.GateSettings):
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
be called benign. The gate must also be able to hold a case (core.decision.gate.GateSettings.check_can_hold,
issue 26): low stays below 0.5 and at least 0.05 under high (or is 0: nothing cleared), and a stricter
level never clears above a looser one's low; low is lowered until it does, and the fit records it
(`low_clamped`).
Thresholds are only as good as the number of validation cases behind them: the fit reports them.

The product's gate (issue 11) uses the same rules on p(malignant), the sum of the malignant
classes' calibrated probabilities, with melanomas bounded on their own as well, and splits review
into risk bands: `fit_malignancy_gate` (rules in `fit_malignancy_thresholds`). `fit_gate` /
`fit_thresholds` remain for melanoma-only figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.decision.gate import CLEAR_BELOW_MAX, MIN_REVIEW_WIDTH, GateSettings, Thresholds, check_confidence
from core.inference.calibration import calibrated_probs, malignant_sum
from core.inference.manifest import TEMPERATURE_RANGE

CONFIDENCES = (0.9, 0.95, 0.98, 0.99)
TEMPERATURE_BOUNDS = TEMPERATURE_RANGE  # a fit never leaves the range a bundle accepts


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
        temperature=t,
        nll_before=nll(logits, labels),
        nll_after=nll(logits, labels, t),
        n=len(labels),
        at_bound=at_bound,
    )


def fit_temperatures(member_logits: np.ndarray, labels: np.ndarray) -> tuple[TemperatureFit, ...]:
    """One temperature per member: member_logits is M x N x K (TTA-averaged, raw)."""
    member_logits = np.asarray(member_logits)
    if member_logits.ndim != 3:
        raise ValueError(f"member logits must be M x N x K, got shape {member_logits.shape}")
    return tuple(fit_temperature(m, labels) for m in member_logits)


def ensemble_probability(member_logits: np.ndarray, temperatures, positive_index: int) -> np.ndarray:
    """p(positive) per case: mean over members of softmax(logits / T_m), as core's Ensemble does."""
    probs = calibrated_probs(np.asarray(member_logits, np.float32), temperatures)
    return probs[:, :, positive_index].mean(axis=0)


def holding_low(low: float, high: float, max_low: float = 1.0) -> float:
    """The largest low <= `low` a bundle's gate may have (core.decision.gate.GateSettings.check_can_hold): below
    CLEAR_BELOW_MAX, at least MIN_REVIEW_WIDTH under high, not above `max_low` (a looser level's low);
    0.0 (nothing cleared) when no positive low is."""
    cap = min(high - MIN_REVIEW_WIDTH, math.nextafter(CLEAR_BELOW_MAX, 0.0), max_low)
    return max(0.0, min(low, cap))


def _distinct(ps: np.ndarray) -> tuple[list[float], list[int]]:
    """The distinct values of ascending `ps`, and for each how many cases lie below it. Thresholds only
    matter where the sets {p < t} and {p >= t} change: at these values."""
    values, first = np.unique(ps, return_index=True)
    return values.tolist(), first.tolist()


def _largest_low(ps: np.ndarray, clears: Callable[[int], bool]) -> tuple[float, int]:
    """The largest low whose cleared set {p < low} (the j lowest of ascending `ps`) `clears(j)` accepts, and
    j; (0.0, 0) when no non-empty set qualifies: nothing is cleared. low = 1.0 takes every case below 1."""
    values, first = _distinct(ps)
    candidates = list(zip(values, first))
    if ps[-1] < 1.0:
        candidates.append((1.0, len(ps)))
    low, n_low = 0.0, 0
    for t, j in candidates:  # ascending t: the last that qualifies is the largest
        if j > 0 and clears(j):
            low, n_low = t, j
    return low, n_low


def _smallest_high(ps: np.ndarray, cum: np.ndarray, confidence: float) -> tuple[float, int] | None:
    """The smallest high whose set {p >= high} is positive at least `confidence` of the time (cum[j]: positives
    among the j lowest of ascending `ps`), and that set's size; None when no threshold reaches it."""
    n = len(ps)
    for t, j in zip(*_distinct(ps)):  # smallest first
        k = n - j
        if k > 0 and (cum[n] - cum[j]) >= confidence * k - 1e-9:
            return t, k
    return None


def _held_low(low: float, high: float, max_low: float) -> tuple[float, bool]:
    """low lowered to high where they cross (cases in [high, low) are mostly positive: they must not be
    cleared), then to what a gate may hold (holding_low); and whether it was lowered."""
    clamped = low > high
    if clamped:
        low = high
    held = holding_low(low, high, max_low)  # the gate must be able to hold a case (issue 26)
    return held, clamped or held < low


def fit_thresholds(p: np.ndarray, positive: np.ndarray, confidence: float, max_low: float = 1.0) -> ThresholdFit:
    """The gate thresholds for one confidence level (rules in the module docstring)."""
    check_confidence(confidence)
    p = np.asarray(p, np.float64)
    positive = np.asarray(positive).astype(bool)
    if p.shape != positive.shape or p.ndim != 1 or len(p) == 0:
        raise ValueError(f"need one probability per case and one label per case, got {p.shape} and {positive.shape}")
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], positive[order]
    n = len(ps)
    cum_pos = np.concatenate([[0], np.cumsum(ys)])  # cum_pos[j]: melanomas among the j lowest
    low, n_low = _largest_low(
        ps,
        lambda j: (
            cum_pos[j] <= (1.0 - confidence) * j + 1e-9  # melanoma share among the cleared
            and cum_pos[j] <= (1.0 - confidence) * cum_pos[n] + 1e-9  # share of all melanomas cleared
        ),
    )
    found = _smallest_high(ps, cum_pos, confidence)
    high, n_high = found if found is not None else (1.0, int(np.sum(ps >= 1.0)))
    held, clamped = _held_low(low, high, max_low)
    if held != min(low, high) or clamped:
        n_low = int(np.sum(ps < held))
    low = held
    return ThresholdFit(
        confidence=confidence,
        thresholds=Thresholds(low=float(low), high=float(high)),
        n_benign=n_low,
        melanoma_below_low=int(cum_pos[n_low]),
        n_suspicious=n_high,
        melanoma_at_or_above_high=int(np.sum(ys[n - n_high :])) if n_high else 0,
        high_found=found is not None,
        low_clamped=clamped,
    )


def fit_gate(
    p: np.ndarray, positive: np.ndarray, confidences=CONFIDENCES, base: GateSettings | None = None
) -> tuple[GateSettings, tuple[ThresholdFit, ...]]:
    """GateSettings with fitted thresholds for each confidence level, and the fits' figures."""
    return _monotonic_gate(lambda c, max_low: fit_thresholds(p, positive, c, max_low), confidences, base)


# -- malignancy triage (issue 11): the gate on p(malignant), with risk bands inside review ---------

HIGH_BAND_RATE = 0.5  # the "high" band: review cases at or above its cut are malignant at least this often
LOW_BAND_RATE = 0.05  # the "low" band: review cases below its cut are malignant at most this often


@dataclass(frozen=True)
class MalignancyFit:
    """One confidence level of the malignancy gate, with the validation counts behind it."""

    confidence: float
    thresholds: Thresholds  # low / high on p(malignant), with band cut points
    n: int
    n_malignant: int
    n_melanoma: int
    n_cleared: int  # validation cases with p < low ("no cancer suspected")
    malignant_cleared: int
    melanoma_cleared: int
    n_suspicious: int  # cases with p >= high
    malignant_suspicious: int
    melanoma_suspicious: int
    band_counts: dict[str, tuple[int, int]]  # band -> (cases, malignancies) inside review
    high_found: bool
    low_clamped: bool

    def to_dict(self) -> dict:
        t = self.thresholds
        return {
            "confidence": self.confidence,
            "low": t.low,
            "high": t.high,
            "bands": {"moderate": t.moderate_from, "high": t.high_risk_from},
            "n": self.n,
            "n_malignant": self.n_malignant,
            "n_melanoma": self.n_melanoma,
            "n_cleared": self.n_cleared,
            "malignant_cleared": self.malignant_cleared,
            "melanoma_cleared": self.melanoma_cleared,
            "n_suspicious": self.n_suspicious,
            "malignant_suspicious": self.malignant_suspicious,
            "melanoma_suspicious": self.melanoma_suspicious,
            # the names of the melanoma-only fit (ThresholdFit), read by the model card writer
            "n_benign": self.n_cleared,
            "melanoma_below_low": self.melanoma_cleared,
            "melanoma_at_or_above_high": self.melanoma_suspicious,
            "band_counts": {k: {"n": v[0], "malignant": v[1]} for k, v in self.band_counts.items()},
            "high_found": self.high_found,
            "low_clamped": self.low_clamped,
        }


def fit_malignancy_thresholds(
    p_malignant: np.ndarray,
    is_malignant: np.ndarray,
    is_melanoma: np.ndarray,
    confidence: float,
    high_band_rate: float = HIGH_BAND_RATE,
    low_band_rate: float = LOW_BAND_RATE,
    max_low: float = 1.0,
) -> MalignancyFit:
    """The malignancy gate for one confidence level c, from validation cases (one entry per case).

    - `low`: the largest threshold such that the cases with p < low hold at most 1 - c of ALL
      validation malignancies, at most 1 - c of ALL validation melanomas, and are at most 1 - c
      malignant themselves (0.0 when no non-empty set qualifies: nothing is cleared);
    - `high`: the smallest threshold such that the cases with p >= high are at least c malignant
      (1.0 when none: nothing is called suspicious); low is lowered to high if they cross;
    - bands inside review [low, high): "high" from the smallest cut h such that the review cases
      with h <= p < high are malignant at least `high_band_rate` of the time (h = high: empty band);
      "low" below the largest cut m <= h such that the review cases with low <= p < m are malignant
      at most `low_band_rate` of the time (m = low: empty band); "moderate" between.
    The gate (core.decision.gate.decide) compares p(malignant) with these; melanomas count as malignancies
    and are also bounded on their own so that the melanoma promise of earlier bundles still holds.
    """
    check_confidence(confidence)
    p, mal, mel = _malignancy_cases(p_malignant, is_malignant, is_melanoma)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    n = len(ps)
    cum_mal = np.concatenate([[0], np.cumsum(mal[order])])
    cum_mel = np.concatenate([[0], np.cumsum(mel[order])])
    eps, risk = 1e-9, 1.0 - confidence
    low, _ = _largest_low(
        ps,
        lambda j: (
            cum_mal[j] <= risk * j + eps
            and cum_mal[j] <= risk * cum_mal[n] + eps
            and cum_mel[j] <= risk * cum_mel[n] + eps
        ),
    )
    found = _smallest_high(ps, cum_mal, confidence)
    high = found[0] if found is not None else 1.0
    low, clamped = _held_low(low, high, max_low)
    n_low = int(np.searchsorted(ps, low, side="left"))
    n_high = n - int(np.searchsorted(ps, high, side="left"))
    a, b = n_low, n - n_high  # review cases are ps[a:b]
    moderate_from, high_risk_from = _band_cuts(ps, cum_mal, (low, high), (a, b), (high_band_rate, low_band_rate))
    i_mod = int(np.searchsorted(ps, moderate_from, side="left"))
    i_high = int(np.searchsorted(ps, high_risk_from, side="left"))
    bands = {"low": (a, i_mod), "moderate": (i_mod, i_high), "high": (i_high, b)}
    return MalignancyFit(
        confidence=confidence,
        thresholds=Thresholds(float(low), float(high), float(moderate_from), float(high_risk_from)),
        n=n,
        n_malignant=int(cum_mal[n]),
        n_melanoma=int(cum_mel[n]),
        n_cleared=n_low,
        malignant_cleared=int(cum_mal[n_low]),
        melanoma_cleared=int(cum_mel[n_low]),
        n_suspicious=n_high,
        malignant_suspicious=int(cum_mal[n] - cum_mal[n - n_high]),
        melanoma_suspicious=int(cum_mel[n] - cum_mel[n - n_high]),
        band_counts={k: (int(j - i), int(cum_mal[j] - cum_mal[i])) for k, (i, j) in bands.items()},
        high_found=found is not None,
        low_clamped=clamped,
    )


def _malignancy_cases(p_malignant, is_malignant, is_melanoma) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The validation cases as arrays, checked: p(malignant) clipped to [0, 1], the two labels as booleans."""
    p = np.asarray(p_malignant, np.float64)
    mal = np.asarray(is_malignant).astype(bool)
    mel = np.asarray(is_melanoma).astype(bool)
    if p.ndim != 1 or len(p) == 0 or mal.shape != p.shape or mel.shape != p.shape:
        raise ValueError(
            f"need one p(malignant), one is_malignant and one is_melanoma per case, got "
            f"{p.shape}, {mal.shape}, {mel.shape}"
        )
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0 + 1e-6:
        raise ValueError("p(malignant) must be finite probabilities in [0, 1]")
    if np.any(mel & ~mal):
        raise ValueError("every melanoma must also be marked malignant")
    return np.clip(p, 0.0, 1.0), mal, mel


def _band_cuts(
    ps: np.ndarray, cum_mal: np.ndarray, gate: tuple[float, float], review: tuple[int, int], rates: tuple[float, float]
) -> tuple[float, float]:
    """(moderate_from, high_risk_from) inside review [low, high) (`gate`), whose cases are ps[a:b] (`review`);
    `rates`: (high_band_rate, low_band_rate), rules in fit_malignancy_thresholds."""
    (low, high), (a, b), (high_band_rate, low_band_rate) = gate, review, rates
    eps = 1e-9
    # Cut points: candidates are the review cases' distinct p values, plus the ends of the range.
    cuts = sorted({low, high, *ps[a:b].tolist()})
    high_risk_from = high
    for t in cuts:  # ascending: the first that qualifies makes the largest high band
        j = int(np.searchsorted(ps, t, side="left"))
        k = b - j
        if k > 0 and (cum_mal[b] - cum_mal[j]) >= high_band_rate * k - eps:
            high_risk_from = t
            break
    moderate_from = low
    for t in cuts:  # ascending: the last that qualifies makes the largest low band
        if t > high_risk_from:
            break
        j = int(np.searchsorted(ps, t, side="left"))
        k = j - a
        if k > 0 and (cum_mal[j] - cum_mal[a]) <= low_band_rate * k + eps:
            moderate_from = t
    return moderate_from, high_risk_from


def fit_malignancy_gate(
    p_malignant: np.ndarray,
    is_malignant: np.ndarray,
    is_melanoma: np.ndarray,
    confidences=CONFIDENCES,
    base: GateSettings | None = None,
    high_band_rate: float = HIGH_BAND_RATE,
    low_band_rate: float = LOW_BAND_RATE,
) -> tuple[GateSettings, tuple[MalignancyFit, ...]]:
    """GateSettings for the malignancy gate at each confidence level, and the fits' figures.

    Pure: arrays in (validation p(malignant) = sum of the malignant classes' calibrated ensemble
    probabilities, as core.inference.ensemble computes it; is_malignant; is_melanoma), settings out. `base`
    supplies default_confidence and max_member_spread (GateSettings() defaults otherwise).
    """
    return _monotonic_gate(
        lambda c, max_low: fit_malignancy_thresholds(
            p_malignant, is_malignant, is_melanoma, c, high_band_rate, low_band_rate, max_low
        ),
        confidences,
        base,
    )


def _monotonic_gate(fit, confidences, base: GateSettings | None) -> tuple[GateSettings, tuple]:
    """fit(c, max_low) for each confidence, loosest first so that a stricter level's low never exceeds a
    looser one's (the fits returned in the order given), and GateSettings holding their thresholds; `base`
    supplies default_confidence and max_member_spread (GateSettings() defaults otherwise)."""
    base = base or GateSettings()
    by_level, max_low = {}, 1.0
    for c in sorted(confidences):
        by_level[c] = fit(c, max_low)
        max_low = by_level[c].thresholds.low
    fits = tuple(by_level[c] for c in confidences)
    settings = GateSettings(
        default_confidence=base.default_confidence,
        fitted={f.confidence: f.thresholds for f in fits},
        max_member_spread=base.max_member_spread,
    )
    return settings, fits


def ensemble_malignancy(member_logits: np.ndarray, temperatures, malignant_indices) -> np.ndarray:
    """p(malignant) per case: mean over members of the summed calibrated malignant-class probabilities."""
    probs = calibrated_probs(np.asarray(member_logits, np.float32), temperatures)
    return malignant_sum(probs, malignant_indices).mean(axis=0)
