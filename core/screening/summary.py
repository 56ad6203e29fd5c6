"""A run in numbers: the progress of a run as it goes, and its summary (as stored with the run)."""

from __future__ import annotations

from dataclasses import dataclass

from core.decision.results import Decision, ScreeningResult
from core.decision.vocabulary import NOT_DERMOSCOPY
from core.files.identity import IdentityIssue

RATE_MIN_ELAPSED_S = 1.0  # below this a files-per-second figure says more about the first file than the run
# The outcomes a summary counts, in the order a stored summary lists them.
COUNTED_OUTCOMES = (
    Decision.NO_CANCER_SUSPECTED.value,
    Decision.SUSPICIOUS.value,
    Decision.REVIEW.value,
    NOT_DERMOSCOPY.code,
)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None  # None: screening an iterable of unknown length
    result: ScreeningResult
    elapsed_s: float

    @property
    def rate(self) -> float | None:
        """Files per second so far; None while too little time has passed to tell (a first file that
        fails fast would otherwise show as thousands of images per second)."""
        finished = self.total is not None and self.done >= self.total
        if self.elapsed_s <= 0 or (self.elapsed_s < RATE_MIN_ELAPSED_S and not finished):
            return None
        return self.done / self.elapsed_s

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate and self.total is not None else None


@dataclass(frozen=True)
class RunSummary:
    run_id: int | None
    total: int
    errors: int
    counts: dict[str, int]  # outcome code -> number of files
    reused: int  # results taken from earlier runs instead of screened again
    cancelled: bool
    elapsed_s: float
    intake_issues: tuple[IdentityIssue, ...] = ()  # bad sidecar rows, filing conflicts: reported, never dropped
    intake_flagged: int = 0  # images the intake check found unlike the training images (all sent to review)
    clearing: dict | None = None  # the camera check and whether the run could clear (core/screening/auto_clearing.py)


def summarize(results: list[ScreeningResult], run_id=None, cancelled=False, elapsed_s=0.0) -> RunSummary:
    counts = dict.fromkeys(COUNTED_OUTCOMES, 0)
    for r in results:
        if r.ok and r.decision is not None:
            counts[r.outcome_code] += 1  # a picture that is not dermoscopy is not a case to review
    return RunSummary(
        run_id=run_id,
        total=len(results),
        errors=sum(1 for r in results if not r.ok),
        counts=counts,
        reused=sum(1 for r in results if r.from_store),
        intake_flagged=sum(1 for r in results if r.ok and r.intake not in (None, "familiar")),
        cancelled=cancelled,
        elapsed_s=elapsed_s,
    )


def summary_dict(s: RunSummary) -> dict:
    return {
        "total": s.total,
        "errors": s.errors,
        "reused": s.reused,
        "elapsed_s": round(s.elapsed_s, 2),
        **s.counts,
        **({"intake_flagged": s.intake_flagged} if s.intake_flagged else {}),
        **({"intake_issues": [str(i) for i in s.intake_issues]} if s.intake_issues else {}),
        **({"clearing": s.clearing} if s.clearing else {}),
    }
