"""The Screening tab's words: how long a run took, a stored run in the runs list, and the gate's legend."""

from __future__ import annotations

from pathlib import Path

from core import (
    BANDS,
    MALIGNANCY,
    Decision,
    RiskScope,
    RunInfo,
    RunSummary,
    Thresholds,
    local_time,
    outcome_words,
    shown_status,
)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def run_label(run: RunInfo) -> str:
    status = shown_status(run.status, run.settings)  # "interrupted" once the run's process is gone
    return f"{local_time(run.started)} · {Path(run.folder).name or run.folder} · {run.counts.total} files · {status}"


def legend_html(
    thresholds: Thresholds | None,
    scope: RiskScope = MALIGNANCY,
    confidence: float | None = None,
    trial: bool = False,
) -> str:
    """What the outcomes and the review bands mean at the gate of the results on screen, with its cut points
    and the confidence that made them ("trial" when it is not the clinic's standard, nothing recorded). `scope`:
    what the gate's probability is of (the bundle's manifest.risk_scope)."""
    if thresholds is None:
        return ""
    what = scope.probability
    level = ""
    if confidence is not None:
        level = f" at confidence {confidence:g}" + (
            " <b style='color:#c62828'>(TRIAL: not recorded; the record keeps the clinic's standard)</b>"
            if trial
            else ""
        )
    parts = [
        f"<b>{outcome_words(Decision.NO_CANCER_SUSPECTED.value)}</b> below {thresholds.low:.3f}",
        f"<b>{outcome_words(Decision.SUSPICIOUS.value)}</b> from {thresholds.high:.3f}",
    ]
    review = outcome_words(Decision.REVIEW.value)
    if thresholds.has_bands:
        cuts = {
            "high": f"≥ {thresholds.high_risk_from:.3f}",
            "moderate": f"{thresholds.moderate_from:.3f}–{thresholds.high_risk_from:.3f}",
            "low": f"&lt; {thresholds.moderate_from:.3f}",
        }
        bands = ", ".join(
            f"<span style='background:{b.colour}'>&nbsp;{b.name}&nbsp;</span> {cuts[b.code]}" for b in BANDS
        )
        parts.insert(1, f"<b>{review}</b> between, by risk: {bands}")
    else:
        parts.insert(1, f"<b>{review}</b> between (no risk bands fitted for this confidence)")
    note = f" · {scope.note}" if scope.note else ""
    return f"Gate on {what}{level}: " + "; ".join(parts) + note


def finished_words(summary: RunSummary) -> tuple[str, str]:
    """(beside the progress bar, under it) once a screening ended or was cancelled."""
    if summary.cancelled:
        progress = f"Cancelled after {summary.total} files"
        text = f"Cancelled. The {summary.total} results screened so far are kept in the results file."
    else:
        progress = f"Done: {summary.total} files in {format_duration(summary.elapsed_s)}"
        text = f"Finished: {summary.total} files screened in {format_duration(summary.elapsed_s)}."
    if summary.reused:
        text += f" {summary.reused} taken from earlier runs (same image, same models), not screened again."
    if summary.errors:
        text += f" {summary.errors} could not be screened (listed below)."
    return progress, text


STORED_RUN_STATES = {
    "finished": "",
    "cancelled": " This run was cancelled before the end.",
    "interrupted": " This run was interrupted before the end.",
    "running": " This run is still going on in another window or process.",
    "failed": " This run stopped with an error.",
}


def stored_run_words(run: RunInfo) -> tuple[str, str]:
    """(beside the progress bar, under it) for a stored run shown again."""
    status = shown_status(run.status, run.settings)
    progress = f"Stored run of {local_time(run.started)} ({status})"
    text = (
        f"Stored results of this folder ({run.counts.total} files, {run.counts.reused} of them from earlier runs)."
        f"{STORED_RUN_STATES.get(status, '')} Press Screen to check the folder for new or changed files; stored "
        "results are reused, not computed again."
    )
    return progress, text
