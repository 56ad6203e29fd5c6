"""Per-image truth and outputs (calibrated and gated by core, as in the app) and the numbers a
report is made of, for one labelled set. Each image is decided by core.screening.deciding.decide_image, the
function the screener decides with: quality flags, member spread, the bundle's risk scope and the intake
check's finding (when the scored outputs carry the check's scores)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.decision.gate import Thresholds
from core.decision.results import Decision, risk_probability
from core.inference.bundle import Bundle
from core.inference.ensemble import Ensemble, RawOutputs
from core.screening.deciding import decide_image
from evalkit.labelled import LabelledCase
from evalkit.metrics import (
    ECE_BINS,
    balanced_accuracy,
    bootstrap_auc_ci,
    brier_score,
    gate_metrics,
    reliability_bins,
    roc_auc,
)

from .scoring import ScoredSet

# The malignancies a clinic must not miss, whatever the bundle calls malignant (a melanoma-only
# bundle's p(malignant) is its p(melanoma), scored against all of them).
MALIGNANT_DX = ("akiec", "bcc", "mel")
BANDS = ("high", "moderate", "low")


@dataclass(frozen=True)
class Evaluation:
    """Per-image truth and predictions, aligned, for the scored images only."""

    image_ids: tuple[str, ...]
    lesion_ids: tuple[str, ...]
    dx: tuple[str, ...]
    melanoma: np.ndarray  # bool N
    malignant: np.ndarray  # bool N: dx in MALIGNANT_DX (or melanoma where no dx is given)
    true_class: np.ndarray  # int N, index in the bundle's class names, -1 when not one of them
    p: np.ndarray  # N, calibrated ensemble p(melanoma)
    p_malignant: np.ndarray  # N, calibrated ensemble p(malignant), the gate's score
    member_p: np.ndarray  # M x N, each member's calibrated p(melanoma)
    class_probs: np.ndarray  # N x K, ensemble mean of calibrated probabilities
    spread: np.ndarray  # N
    quality_flags: tuple[tuple[str, ...], ...]
    decisions: dict[float, tuple[str, ...]]  # confidence level -> decision per image
    reasons: dict[float, tuple[str, ...]]
    bands: dict[float, tuple[str, ...]]  # risk band inside review ("" outside review or without bands)
    thresholds: dict[float, Thresholds]
    fitted: dict[float, bool]
    default_confidence: float
    max_member_spread: float
    member_names: tuple[str, ...]
    class_names: tuple[str, ...]
    failed: dict[str, str]


def member_names(bundle: Bundle) -> tuple[str, ...]:
    return tuple(f"#{i} {m.arch} seed {m.seed}" for i, m in enumerate(bundle.manifest.members))


def build_evaluation(
    bundle: Bundle,
    ensemble: Ensemble,
    cases: Sequence[LabelledCase],
    scored: ScoredSet,
    confidence: float | None = None,
) -> Evaluation:
    """Calibrate (Ensemble.to_predictions) and gate (core.screening.deciding.decide_image) the cached outputs, at
    the default level and every fitted one: the same code the app runs, so the numbers follow it."""
    m = bundle.manifest
    gate = m.gate
    default = float(confidence if confidence is not None else gate.default_confidence)
    levels = sorted({default, *gate.fitted})
    by_id = {c.image_id: c for c in cases}
    scored = scored.subset([c.image_id for c in cases])
    chosen = [by_id[i] for i in scored.image_ids]
    predictions = ensemble.to_predictions(RawOutputs(member_logits=scored.member_logits, cams=None, ood=scored.ood))
    probs = ensemble.calibrated_member_probs(scored.member_logits)  # M x N x K
    statistics = list(scored.statistics) if scored.statistics is not None else [None] * len(predictions)
    decisions, reasons, bands, thresholds = {}, {}, {}, {}
    for level in levels:
        t = gate.thresholds(level)
        outcomes = [decide_image(m, p, t, q, stats)[0] for p, q, stats in zip(predictions, scored.quality, statistics)]
        thresholds[level] = t
        decisions[level] = tuple(o.decision.value for o in outcomes)
        reasons[level] = tuple(o.reason for o in outcomes)
        bands[level] = tuple(getattr(o, "band", None) or "" for o in outcomes)
    index = {c: k for k, c in enumerate(m.class_names)}
    n = len(chosen)
    return Evaluation(
        image_ids=scored.image_ids,
        lesion_ids=tuple(c.lesion_id for c in chosen),
        dx=tuple(c.dx for c in chosen),
        melanoma=np.array([c.melanoma for c in chosen], dtype=bool),
        malignant=np.array([(c.dx in MALIGNANT_DX) if c.dx else c.melanoma for c in chosen], dtype=bool),
        true_class=np.array([index.get(c.dx, -1) for c in chosen], dtype=np.int64),
        p=np.array([pr.p_melanoma for pr in predictions], dtype=np.float64),
        p_malignant=np.array([risk_probability(pr) for pr in predictions], dtype=np.float64),
        member_p=probs[:, :, m.positive_index].astype(np.float64).reshape(len(m.members), n),
        class_probs=probs.mean(axis=0).astype(np.float64).reshape(n, len(m.class_names)),
        spread=np.array([pr.spread for pr in predictions], dtype=np.float64),
        quality_flags=tuple(q.flags for q in scored.quality),
        decisions=decisions,
        reasons=reasons,
        bands=bands,
        thresholds=thresholds,
        fitted={level: level in gate.fitted for level in levels},
        default_confidence=default,
        max_member_spread=gate.max_member_spread,
        member_names=member_names(bundle),
        class_names=m.class_names,
        failed=scored.failed,
    )


def _round(x):
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    return x


def compute_metrics(ev: Evaluation, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    y, p = ev.melanoma, ev.p
    has_lesions = all(ev.lesion_ids) and len(ev.lesion_ids) > 0
    lo, hi = bootstrap_auc_ci(y, p, ev.lesion_ids if has_lesions else None, n_bootstrap, seed)
    known = ev.true_class >= 0
    predicted_class = ev.class_probs.argmax(axis=1) if len(p) else np.zeros(0, int)
    rel = reliability_bins(y, p, ECE_BINS)
    gate = {}
    for level, decisions in ev.decisions.items():
        t = ev.thresholds[level]
        gate[f"{level:g}"] = {
            "thresholds": {"low": t.low, "high": t.high},
            "fitted_on_validation": ev.fitted[level],
            **gate_metrics(decisions, y),
        }
    metrics = {
        "n_images": len(ev.image_ids),
        "n_melanomas": int(y.sum()),
        "n_lesions": len(set(ev.lesion_ids)) if has_lesions else None,
        "n_failed": len(ev.failed),
        "failed": ev.failed,
        "melanoma_auc": {
            "ensemble": roc_auc(y, p),
            "ensemble_ci95": [lo, hi],
            "ci_method": (
                f"percentile bootstrap, {n_bootstrap} resamples of "
                + ("lesions (all images of a drawn lesion)" if has_lesions else "images")
            ),
            "members": {name: roc_auc(y, mp) for name, mp in zip(ev.member_names, ev.member_p)},
        },
        "balanced_accuracy_7class": balanced_accuracy(ev.true_class, predicted_class),
        "balanced_accuracy_n_images": int(known.sum()),
        "ece": rel.ece,
        "ece_bins": ECE_BINS,
        "brier": brier_score(y, p),
        "gate_default_confidence": ev.default_confidence,
        "gate": gate,
    }
    return _round(metrics)


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def _auc_with_ci(
    positive: np.ndarray, score: np.ndarray, lesions: tuple[str, ...] | None, n_bootstrap: int, seed: int
) -> dict:
    lo, hi = bootstrap_auc_ci(positive, score, lesions, n_bootstrap, seed)
    return {"auc": roc_auc(positive, score), "ci95": [lo, hi], "n_positive": int(np.sum(positive))}


def triage_metrics(ev: Evaluation, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    """One column of the multi-set report: discrimination, calibration, and what the gate clears
    and sends to review at each confidence level (per malignant class too)."""
    has_lesions = len(ev.lesion_ids) > 0 and all(ev.lesion_ids)
    lesions = ev.lesion_ids if has_lesions else None
    dx = np.asarray(ev.dx)
    benign = ~ev.malignant
    gate = {}
    for level, decisions in ev.decisions.items():
        d = np.asarray(decisions)
        cleared = d == Decision.NO_CANCER_SUSPECTED.value
        review = d == Decision.REVIEW.value
        band = np.asarray(ev.bands[level])
        per_class = {c: _share(int(np.sum(cleared & (dx == c))), int(np.sum(dx == c))) for c in MALIGNANT_DX}
        gate[f"{level:g}"] = {
            "thresholds": {"low": ev.thresholds[level].low, "high": ev.thresholds[level].high},
            "fitted_on_validation": ev.fitted[level],
            "melanomas_auto_cleared_n": int(np.sum(cleared & ev.melanoma)),
            "melanomas_auto_cleared_share": _share(int(np.sum(cleared & ev.melanoma)), int(ev.melanoma.sum())),
            "malignant_auto_cleared_n": int(np.sum(cleared & ev.malignant)),
            "malignant_auto_cleared_share": _share(int(np.sum(cleared & ev.malignant)), int(ev.malignant.sum())),
            "auto_cleared_share_by_class": per_class,
            "benign_cleared_n": int(np.sum(cleared & benign)),
            "benign_cleared_share": _share(int(np.sum(cleared & benign)), int(benign.sum())),
            "suspicious_n": int(np.sum(d == Decision.SUSPICIOUS.value)),
            "review_n": int(review.sum()),
            "review_by_band": {b: int(np.sum(review & (band == b))) for b in BANDS}
            | {"no band": int(np.sum(review & (band == "")))},
            "malignant_by_band": {b: int(np.sum(review & (band == b) & ev.malignant)) for b in BANDS},
        }
    return _round(
        {
            "n_images": len(ev.image_ids),
            "n_melanomas": int(ev.melanoma.sum()),
            "n_malignant": int(ev.malignant.sum()),
            "n_malignant_by_class": {c: int(np.sum(dx == c)) for c in MALIGNANT_DX},
            "n_failed": len(ev.failed),
            "ci_method": f"percentile bootstrap, {n_bootstrap} resamples of "
            + ("lesions" if has_lesions else "images"),
            "melanoma_auc": _auc_with_ci(ev.melanoma, ev.p, lesions, n_bootstrap, seed),
            "malignant_auc": _auc_with_ci(ev.malignant, ev.p_malignant, lesions, n_bootstrap, seed),
            "ece_melanoma": reliability_bins(ev.melanoma, ev.p, ECE_BINS).ece,
            "ece_malignant": reliability_bins(ev.malignant, ev.p_malignant, ECE_BINS).ece,
            "ece_bins": ECE_BINS,
            "gate_default_confidence": ev.default_confidence,
            "gate": gate,
        }
    )
