"""Changing the confidence without running the models again: the gate re-applied to stored results.

The confidence only moves the gate's thresholds; the ensemble's calibrated probabilities, the member
spread, the quality flags and the intake check's level do not depend on it. So a new confidence is a
new decision per stored result, made in milliseconds, never a new model run (issue 24, item 3).

Two uses:
- the clinic's standard confidence changed (Settings): `regate_run(..., record=True)` stores the run
  again as a new run at that confidence (results keyed by models + gate, as screening stores them),
  so the record, the patient views and the reports say which confidence made each outcome;
- a trial confidence: `regate_run(..., record=False)` decides the run's results in memory only,
  each marked `trial=True`; nothing is stored, so the record keeps the standard confidence.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

from core.decision.gate import Thresholds
from core.decision.intake_check import IntakeFinding
from core.decision.results import Prediction, ScreeningResult, named_class
from core.screening.deciding import decide_finding
from core.screening.holding import hold
from core.screening.settings import GateChoice, result_key
from core.screening.summary import RunSummary, summarize, summary_dict

_SPREAD = re.compile(r"member spread ([0-9.]+)")


class RegateError(ValueError):
    """A stored run that cannot be decided again with this bundle (other models, no recorded confidence)."""


def run_confidence(run) -> float | None:
    """The confidence recorded with a stored run (`core.records.store.RunInfo`), or None."""
    c = (run.settings or {}).get("confidence")
    return float(c) if isinstance(c, (int, float)) and not isinstance(c, bool) else None


def _prediction(r: ScreeningResult) -> Prediction:
    """The ensemble's output as stored. The members' p(malignant) are not stored, only the spread the gate
    measured (written in the details by core.decision.gate.decide); without it, the stored spread stands in."""
    m = _SPREAD.search(r.details or "")
    spread = float(m.group(1)) if m else float(r.spread or 0.0)
    return Prediction(
        p_melanoma=float(r.p_melanoma if r.p_melanoma is not None else r.p_malignant or 0.0),
        member_p=tuple(r.member_p),
        spread=spread,
        class_probs=dict(r.class_probs),
        p_malignant=r.p_malignant,
        likely_class=r.likely_class,
        malignant_class=r.malignant_class,
        ood_score=r.ood_score,
    )


def regate(result: ScreeningResult, bundle, thresholds: Thresholds) -> ScreeningResult:
    """One stored result decided again at other thresholds (errors are returned as they are)."""
    if not result.ok or result.p_malignant is None:
        return result
    m = bundle.manifest
    intake = (
        None if result.intake is None or result.ood_score is None else IntakeFinding(result.ood_score, result.intake)
    )
    out = decide_finding(m, _prediction(result), thresholds, result.quality, intake)
    decided = replace(result, decision=out.decision, reason=out.reason, band=out.band, details=out.details)
    if decided.named_cam_class and named_class(decided, m.positive_class) != decided.named_cam_class:
        # The new outcome names another class, whose map was not kept: only melanoma's is left (and said so).
        decided = replace(decided, named_cam=None, named_cam_class="")
    return decided


def _held(result: ScreeningResult, held: bool, why: str) -> ScreeningResult:
    return hold(result, why) if held else result  # the same hold as screening applies


def regate_run(
    bundle, store, run_id: int, gate: GateChoice, record: bool = True
) -> tuple[list[ScreeningResult], RunSummary]:
    """Decide a stored run again at `gate`'s confidence, with no model run.

    record=True: stored as a new run (same folder, the old run's settings with the new confidence and
    "regated_from"); reviews follow the images as always. record=False: a trial, in memory only.
    Raises RegateError when the run was screened with other models than `bundle`.
    """
    run = store.get_run(run_id)
    if run is None:
        raise RegateError(f"there is no run {run_id} in {store.path}")
    old_confidence = run_confidence(run)
    # A run whose clearing was off (core/screening/auto_clearing.py: the camera check or the clinic's setting) stays
    # so: the new confidence moves the thresholds, never the reason clearing was held back.
    clearing = (run.settings or {}).get("clearing") or {}
    held = clearing.get("auto_clearing") == "off"
    why = str(clearing.get("why") or "")
    held_choice: dict[str, Any] = {"auto_clearing": False, "held_reason": why} if held else {}
    gate = replace(gate, **held_choice)
    if old_confidence is not None and result_key(
        bundle, GateChoice(old_confidence, cascade=True, **held_choice)
    ) == run.result_key != result_key(bundle, GateChoice(old_confidence, **held_choice)):
        # Stage 1's numbers settle an outcome only at the confidence they were screened at (core/decision/cascade.py).
        raise RegateError(
            f"run {run_id} was screened with the cascade: its early decisions hold only at the confidence it was "
            "screened with; screen its folder again (cascade on or off) to decide it at another confidence"
        )
    if old_confidence is None or result_key(bundle, GateChoice(old_confidence, **held_choice)) != run.result_key:
        raise RegateError(
            f"run {run_id} was screened with other models ({run.bundle_name} {run.bundle_version}) or without a "
            "recorded confidence: screen its folder again to decide it with the models loaded now"
        )
    start = time.perf_counter()
    confidence = gate.confidence_in(bundle)
    thresholds = bundle.manifest.gate.thresholds(confidence)
    key = result_key(bundle, gate)
    entries = store.run_entries(run_id, with_cam=record)  # heat maps travel with a recorded result
    decided = [
        (e, replace(_held(regate(e.result, bundle, thresholds), held, why), confidence=confidence, trial=not record))
        for e in entries
    ]
    new_run = None
    if record:
        settings = {**run.settings, "confidence": confidence, "regated_from": run_id}
        new_run = store.start_run(run.folder, run.bundle_name, run.bundle_version, key, settings)
        for e, r in decided:
            thumb = store.thumbnail(e.result_id) if r.ok else None
            store.add_result(new_run, r, key, thumbnail=thumb)
    results = [replace(r, cam=None, named_cam=None) for _, r in decided]
    summary = summarize(results, new_run, elapsed_s=time.perf_counter() - start)
    if record:
        old_summary = run.summary or {}
        extra = {k: old_summary[k] for k in ("intake_issues",) if k in old_summary}
        store.finish_run(new_run, "finished", {**summary_dict(summary), **extra})
    return results, summary
