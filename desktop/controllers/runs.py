"""Loading a stored run for the Screening tab: its rows, their latest reviews and where its pictures were
filed, read from the results file on a worker; the latest request wins (choosing another run, starting a
screening or trying a confidence makes an older load moot)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Signal

from core import FilingSummary, Review, ReviewStore, RunInfo, filing_summary, identities_of, run_confidence

from ..workers import ResultRow, Worker, WorkerPool, case_shas


@dataclass(frozen=True)
class StoredRun:
    run: RunInfo
    rows: tuple[ResultRow, ...]  # each result at the run's recorded confidence
    reviews: dict[str, Review]  # sha256 -> the image's latest review
    identities: dict  # sha256 -> where the image is filed (its cases only)
    filing: FilingSummary  # where its pictures were filed, and its identity problems


def stored_run_job(store: ReviewStore, run_id: int):
    """Read a stored run as the results table shows it (None when the run is not in the results file)."""

    def job(report, should_stop) -> StoredRun | None:
        run = store.get_run(run_id)
        if run is None:
            return None
        confidence = run_confidence(run)
        rows = tuple(
            ResultRow(replace(e.result, confidence=confidence), e.result_id if e.result.ok else None)
            for e in store.run_entries(run_id, with_cam=False)
        )
        results = [r.result for r in rows]
        reviews = store.latest_reviews([r.sha256 for r in results if r.sha256])
        problems = (run.summary or {}).get("intake_issues", [])
        identities = identities_of(store, case_shas(rows))
        return StoredRun(run, rows, reviews, identities, filing_summary(store, results, problems))

    return job


class StoredRuns(QObject):
    """`load(run_id)` reads the run on a worker; `loaded(StoredRun)` follows unless a newer request came."""

    loaded = Signal(object)  # StoredRun

    def __init__(self, pool: WorkerPool, store: Callable[[], ReviewStore | None], parent=None):
        super().__init__(parent)
        self.pool, self.store = pool, store
        self._request = 0

    def load(self, run_id: int) -> Worker | None:
        store = self.store()
        self._request += 1
        if store is None:
            return None
        job, request = stored_run_job(store, run_id), self._request
        worker = Worker(lambda report, should_stop: (request, job(report, should_stop)), name="stored run")
        worker.signals.result.connect(self._arrived)  # a bound method: dropped if this controller is gone
        return self.pool.start(worker)

    def forget(self) -> None:
        """What is on screen changed another way (a screening, a trial): a load still under way is moot."""
        self._request += 1

    def _arrived(self, arrived: tuple[int, StoredRun | None]) -> None:
        request, value = arrived
        if request == self._request and value is not None:
            self.loaded.emit(value)
