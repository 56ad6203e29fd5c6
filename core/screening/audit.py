"""The local audit: how the gate did on the clinic's own confirmed cases.

For every screened image with a confirmed diagnosis (core/records/evidence.py), grouped by what made its
result (bundle and gate: the store's result key), the audit gives: every confirmed malignancy the
gate cleared ("no cancer suspected"), by patient, lesion and date, first (a missed cancer is never
a statistic only); the malignancies that auto-clearing-off held back from clearing; sensitivity and
specificity at each outcome; the p(malignant) AUC with its bootstrap interval and the number of
cases behind it; the share of images cleared; the bundle's own validation figures beside them;
and a what-if table at the bundle's other confidence levels (the gate re-applied to the stored
probabilities by core/screening/regate.py, no model run). The AUC and its interval are evalkit.metrics' (in
core/common/auc.py, which core may import): the same images, bundle and gate give the evaluation's figures
(evalkit, which decides through the same gate path). Writing it out (HTML, CSV) is core/screening/audit_report.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import cast

import numpy as np

from core.common.auc import bootstrap_auc_ci, roc_auc
from core.decision.results import Decision, ScreeningResult
from core.records.evidence import ConfirmedDiagnosis, confirmed_for_images
from core.records.patients import identities_of
from core.records.store import ReviewStore
from core.screening.holding import HELD_MARK
from core.screening.regate import regate
from core.screening.settings import GateChoice, result_key

N_BOOTSTRAP = 2000
MIN_CASES = 100  # fewer confirmed cases, or fewer than MIN_MALIGNANT malignancies: too few to conclude
MIN_MALIGNANT = 20
CLEARED, REVIEW, SUSPICIOUS = Decision.NO_CANCER_SUSPECTED.value, Decision.REVIEW.value, Decision.SUSPICIOUS.value


@dataclass(frozen=True)
class AuditCase:
    result_id: int
    result: ScreeningResult
    confirmed: ConfirmedDiagnosis
    patient: str = ""
    lesion: str = ""
    lesion_key: int | None = None
    visit_date: date | None = None
    screened: str = ""  # when the result was made (UTC ISO-8601)

    @property
    def malignant(self) -> bool:
        return self.confirmed.malignant

    @property
    def melanoma(self) -> bool:
        return self.confirmed.diagnosis == "mel"

    @property
    def cleared(self) -> bool:
        return self.result.decision == Decision.NO_CANCER_SUSPECTED

    @property
    def held(self) -> bool:
        """Would have been cleared, but auto-clearing was off."""
        return HELD_MARK in (self.result.details or "")

    @property
    def when(self) -> str:
        return self.visit_date.isoformat() if self.visit_date else self.screened[:10]


@dataclass(frozen=True)
class GroupAudit:
    """One bundle + gate (result key) on the clinic's confirmed cases."""

    result_key: str
    bundle: str  # "name version"
    confidence: float | None
    cases: tuple[AuditCase, ...]
    figures: dict
    what_if: tuple[dict, ...] = ()
    what_if_note: str = ""
    claimed: dict = field(default_factory=dict)

    @property
    def missed(self) -> list[AuditCase]:
        return [c for c in self.cases if c.malignant and c.cleared]

    @property
    def held_malignant(self) -> list[AuditCase]:
        return [c for c in self.cases if c.malignant and c.held]

    @property
    def enough(self) -> bool:
        return self.figures["n"] >= MIN_CASES and self.figures["n_malignant"] >= MIN_MALIGNANT

    @property
    def verdict(self) -> str:
        f = self.figures
        if not self.enough:
            return (
                f"too few confirmed cases to conclude anything: {f['n']} cases, {f['n_malignant']} malignant "
                f"(needs at least {MIN_CASES} cases with {MIN_MALIGNANT} malignant); the figures below are counts, "
                "not evidence"
            )
        return f"{f['n']} confirmed cases, {f['n_malignant']} malignant"


@dataclass(frozen=True)
class Audit:
    since: date | None
    groups: tuple[GroupAudit, ...]
    n_confirmed: int  # confirmed images, screened or not in the audited period

    @property
    def missed(self) -> list[tuple[GroupAudit, AuditCase]]:
        return [(g, c) for g in self.groups for c in g.missed]


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def figures(cases: list[AuditCase], n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> dict:
    """The group's figures, computed as evalkit.evaluation.triage_metrics computes them."""

    mal = np.array([c.malignant for c in cases], dtype=bool)
    mel = np.array([c.melanoma for c in cases], dtype=bool)
    d = np.array([c.result.decision.value for c in cases])  # type: ignore[union-attr]  # audit cases are screened results: decision is set
    p = np.array([c.result.p_malignant for c in cases], dtype=np.float64)
    p_mel = np.array([c.result.p_melanoma for c in cases], dtype=np.float64)
    cleared, suspicious = d == CLEARED, d == SUSPICIOUS
    held = np.array([c.held for c in cases], dtype=bool)
    # Images of one lesion are not independent: resample whole lesions when every case is filed to one.
    lesions = [c.lesion_key for c in cases]
    groups = [str(k) for k in lesions] if cases and all(k is not None for k in lesions) else None
    lo, hi = bootstrap_auc_ci(mal, p, groups, n_bootstrap, seed)
    mlo, mhi = bootstrap_auc_ci(mel, p_mel, groups, n_bootstrap, seed)
    benign = ~mal
    n_mal, n_ben = int(mal.sum()), int(benign.sum())
    return {
        "n": len(cases),
        "n_malignant": n_mal,
        "n_melanoma": int(mel.sum()),
        "n_benign": n_ben,
        "n_lesions": len(set(lesions)) if groups else None,
        "ci_method": f"percentile bootstrap, {n_bootstrap} resamples of " + ("lesions" if groups else "images"),
        "malignant_auc": roc_auc(mal, p) if len(cases) else float("nan"),
        "malignant_auc_ci95": [lo, hi],
        "melanoma_auc": roc_auc(mel, p_mel) if len(cases) else float("nan"),
        "melanoma_auc_ci95": [mlo, mhi],
        "malignant_cleared_n": int((cleared & mal).sum()),
        "melanoma_cleared_n": int((cleared & mel).sum()),
        "benign_cleared_n": int((cleared & benign).sum()),
        "cleared_n": int(cleared.sum()),
        "cleared_share": _share(int(cleared.sum()), len(cases)),
        "suspicious_n": int(suspicious.sum()),
        "review_n": int((d == REVIEW).sum()),
        "held_n": int(held.sum()),
        "held_malignant_n": int((held & mal).sum()),
        # At each outcome: "not cleared" (sent to a clinician) and "suspicious" as the positive call.
        "sensitivity_not_cleared": _share(int((~cleared & mal).sum()), n_mal),
        "specificity_not_cleared": _share(int((cleared & benign).sum()), n_ben),
        "sensitivity_suspicious": _share(int((suspicious & mal).sum()), n_mal),
        "specificity_suspicious": _share(int((~suspicious & benign).sum()), n_ben),
    }


def _what_if(cases: list[AuditCase], bundle, levels) -> tuple[dict, ...]:
    rows = []
    mal = np.array([c.malignant for c in cases], dtype=bool)
    mel = np.array([c.melanoma for c in cases], dtype=bool)
    for level in levels:
        t = bundle.manifest.gate.thresholds(level)
        d = np.array([regate(c.result, bundle, t).decision.value for c in cases])  # type: ignore[union-attr]  # audit cases are screened results: decision is set
        cleared = d == CLEARED
        rows.append(
            {
                "confidence": level,
                "low": t.low,
                "high": t.high,
                "malignant_cleared_n": int((cleared & mal).sum()),
                "melanoma_cleared_n": int((cleared & mel).sum()),
                "benign_cleared_n": int((cleared & ~mal).sum()),
                "cleared_share": _share(int(cleared.sum()), len(cases)),
                "suspicious_n": int((d == SUSPICIOUS).sum()),
                "review_n": int((d == REVIEW).sum()),
            }
        )
    return tuple(rows)


def claimed_figures(bundle, confidence: float | None) -> dict:
    """What the bundle's own validation says at this confidence (export.refit's record), or {}."""
    refit = (bundle.manifest.provenance or {}).get("gate_refit") or {}
    fit = next(
        (
            f
            for f in refit.get("fits", [])
            if confidence is not None and abs(f.get("confidence", -1) - confidence) < 1e-9
        ),
        None,
    )
    out = {}
    if fit:
        n, n_mal = fit.get("n", 0), fit.get("n_malignant", 0)
        cleared, mal_cleared = fit.get("n_cleared", 0), fit.get("malignant_cleared", 0)
        out = {
            "source": "the bundle's validation images (export.refit)",
            "n": n,
            "n_malignant": n_mal,
            "malignant_cleared_n": mal_cleared,
            "benign_cleared_n": cleared - mal_cleared,
            "cleared_share": _share(cleared, n),
            "sensitivity_not_cleared": _share(n_mal - mal_cleared, n_mal),
            "specificity_not_cleared": _share(cleared - mal_cleared, n - n_mal),
            "sensitivity_suspicious": _share(fit.get("malignant_suspicious", 0), n_mal),
        }
    aucs = {k: v.get("malignant_auc") for k, v in (refit.get("ensemble_validation") or {}).items()}
    if aucs:
        out["malignant_auc_by_source"] = aucs
    return out


def _cases(store: ReviewStore, since: date | None) -> tuple[dict[str, list[AuditCase]], dict[str, tuple], int]:
    confirmed = confirmed_for_images(store)
    keys: dict[str, tuple] = {}
    for key, name, version, settings in store.run_labels():
        conf = settings.get("confidence")
        keys.setdefault(key, (f"{name} {version}", conf if isinstance(conf, (int, float)) else None))
    by_key: dict[str, list[AuditCase]] = defaultdict(list)
    shas = sorted(confirmed)
    identities = identities_of(store, shas)
    for rid, key, created in store.good_results_of_images(shas):
        if since is not None and created[:10] < since.isoformat():
            continue
        r = cast(ScreeningResult, store.get_result(int(rid)))  # the row was just selected
        ident = identities.get(r.sha256)  # type: ignore[arg-type]  # selected by sha256: it is set
        by_key[key].append(
            AuditCase(
                int(rid),
                r,
                confirmed[r.sha256],  # type: ignore[index]  # selected by sha256: it is set
                ident.patient_id if ident else "",
                ident.lesion_label if ident else "",
                ident.lesion_key if ident else None,
                ident.visit_date if ident else None,
                created,
            )
        )
    return by_key, keys, len(confirmed)


def run_audit(store: ReviewStore, bundle=None, since: date | None = None, n_bootstrap: int = N_BOOTSTRAP) -> Audit:
    """The audit of every bundle + gate that screened confirmed cases. With `bundle` (the one that made a
    group's results), that group also gets its what-if table and the bundle's claimed figures."""
    by_key, keys, n_confirmed = _cases(store, since)
    groups = []
    for key, cases in by_key.items():
        name, conf = keys.get(key, ("unknown bundle", None))
        what_if: tuple[dict, ...]
        what_if, note, claimed = (), "", {}
        made_here = (
            bundle is not None
            and conf is not None
            and key in (result_key(bundle, GateChoice(conf)), result_key(bundle, GateChoice(conf, auto_clearing=False)))
        )
        if made_here:
            gate = bundle.manifest.gate
            levels = sorted({gate.default_confidence, *gate.fitted})
            what_if = _what_if(cases, bundle, levels)
            claimed = claimed_figures(bundle, conf)
        else:
            note = "what-if and claimed figures need the bundle that made these results (--bundle)"
        groups.append(GroupAudit(key, name, conf, tuple(cases), figures(cases, n_bootstrap), what_if, note, claimed))
    groups.sort(key=lambda g: -len(g.cases))
    return Audit(since, tuple(groups), n_confirmed)
