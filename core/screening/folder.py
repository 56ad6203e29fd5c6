"""A folder screened as one stored run: its files found, their patients filed, the camera check and
auto-clearing settled for the run, every file screened, and the run's summary stored."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from core.decision.results import ScreeningResult
from core.files.scan import scan_candidates
from core.records.patients import PatientFiling
from core.records.runs import owner_stamp
from core.screening.auto_clearing import RunClearing, run_clearing
from core.screening.screener import Screener
from core.screening.settings import GateChoice, RunSettings
from core.screening.summary import Progress, RunSummary, summarize, summary_dict


def _start_run(
    screener: Screener, folder: str | Path, store, gate: GateChoice, run: RunSettings, clearing: RunClearing
) -> int:
    m = screener.bundle.manifest
    return store.start_run(
        str(Path(folder).resolve()),
        m.name,
        m.version,
        screener.result_key(gate),
        {
            "confidence": gate.confidence or m.gate.default_confidence,
            "bundle": screener.bundle.trust_text,  # "unsigned bundle (...)" follows the run into reports
            "engine": screener.engine_in_use,
            "provider": screener.provider_in_use,
            "recursive": run.recursive,
            "clearing": clearing.to_dict(),
            **owner_stamp(),  # pid + host: a killed run can be shown as interrupted (core/records/runs.py)
        },
    )


def screen_folder(
    screener: Screener,
    folder: str | Path,
    store=None,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    gate: GateChoice = GateChoice(),
    run: RunSettings = RunSettings(),
) -> tuple[list[ScreeningResult], RunSummary]:
    """Screen every file in a folder as one run; returns the results and a summary.

    Every file found is reported, including files that are not images, so nothing in the folder
    goes unmentioned. The run is marked finished or cancelled in the store even on an exception.
    The returned results carry no heat maps (memory stays flat on a large folder): `on_progress`
    sees each full result, and the store keeps the heat maps.
    """
    paths = scan_candidates(folder, recursive=run.recursive or run.intake.needs_subfolders)
    filing = PatientFiling(folder, paths, run.intake)  # identities resolved up front; the sidecar is not screened
    paths = filing.paths
    clearing = run_clearing(screener.bundle, paths, gate.auto_clearing, store)  # the camera check (issue 25)
    gate = replace(gate, auto_clearing=clearing.allowed, held_reason=clearing.why)
    run_id = _start_run(screener, folder, store, gate, run, clearing) if store is not None else None
    results: list[ScreeningResult] = []
    start = time.perf_counter()
    status = "failed"
    try:
        for progress in screener.screen(paths, store, run_id, should_stop, gate, run):
            results.append(replace(progress.result, cam=None, named_cam=None))
            filing.file(store, progress.result)
            if on_progress is not None:
                on_progress(progress)
        status = "cancelled" if len(results) < len(paths) else "finished"
    finally:
        summary = summarize(results, run_id, cancelled=status != "finished", elapsed_s=time.perf_counter() - start)
        summary = replace(summary, intake_issues=tuple(filing.issues), clearing=clearing.to_dict())
        if store is not None:
            store.finish_run(run_id, status, summary_dict(summary))
    return results, summary
