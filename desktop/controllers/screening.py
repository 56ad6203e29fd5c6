"""The Screening tab's runs: screening a folder on a worker, showing a stored run, trying another confidence on
the run shown (decided again in memory, nothing recorded) and recording the clinic's new standard.

The view (desktop/views/screening.py) only shows and asks; this controller runs core's jobs and feeds it.
What other tabs must do when a run ends or is recorded, the window does on `ended`, `failed` and `recorded`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core import GateChoice, ReviewStore, RunSummary, filing_summary, identities_of, regate_run, run_confidence

from ..settings import AppSettings
from ..views.screening import ScreeningView
from ..workers import LoadedModel, ResultRow, ScreeningBatch, Worker, WorkerPool, case_shas, screening_job
from .exports import ShownRun
from .runs import StoredRun, StoredRuns


class ScreeningRuns(QObject):
    ended = Signal(object)  # RunSummary: a screening finished or was cancelled
    failed = Signal(object)  # the exception that stopped a screening
    shown = Signal(int)  # a stored run's id, once its rows are on screen
    recorded = Signal(int)  # the id of a run decided again at the clinic's new standard
    trial_shown = Signal(float)  # the confidence a trial decided the run on screen at

    def __init__(
        self,
        view: ScreeningView,
        pool: WorkerPool,
        store: Callable[[], ReviewStore | None],
        model: Callable[[], LoadedModel | None],
        settings: Callable[[], AppSettings],
        notify: Callable[..., None],
        parent=None,
    ):
        super().__init__(parent)
        self.view, self.pool, self.store, self.model = view, pool, store, model
        self.settings, self.notify = settings, notify
        self.worker: Worker | None = None  # the screening under way
        self.trial_confidence: float | None = None  # a confidence tried on screen, never recorded
        self.stored = StoredRuns(pool, store, self)
        self._regate_request = 0  # the latest trial or recording: an older one arriving late is dropped
        self._ending = 0  # the latest run's end: its reviews and filing are shown only if nothing came since
        self.stored.loaded.connect(self._stored_run_arrived)

    # -- screening a folder -----------------------------------------------------------------------

    def start(self, folder: str, recursive: bool) -> Worker | None:
        store, model = self.store(), self.model()
        if model is None or store is None or self.worker is not None:
            return None
        self.trial_confidence = None
        self.stored.forget()
        self._regate_request += 1  # a trial under way is moot
        self._ending += 1
        self.view.run_started(folder)
        job = screening_job(model.screener, folder, store, recursive, self.settings().gate())
        worker = Worker(job, name="screening")
        worker.signals.progress.connect(self._progress)
        worker.signals.result.connect(self._finished)
        worker.signals.failed.connect(self._failed)
        self.worker = worker
        return self.pool.start(worker)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.view.cancelling()

    def _progress(self, batch: ScreeningBatch) -> None:
        self.view.add_batch(batch)

    def _finished(self, summary: RunSummary) -> None:
        self.worker = None
        self.view.run_finished(summary)
        clearing = summary.clearing or {}
        if clearing.get("auto_clearing") == "off" or clearing.get("camera_check", {}).get("fired"):
            self.notify(f"Camera check: {clearing.get('words', '')}", error=True)  # prominent, never silent
        store = self.store()
        if store is None:
            self.view.set_runs([])
            self.update_legend()
            self.ended.emit(summary)
            return
        # The run's reviews, the runs list and where its pictures were filed are read on a worker; `ended` follows.
        self._ending += 1
        ending, results = self._ending, [r.result for r in self.view.model.rows]
        issues = getattr(summary, "intake_issues", ())

        def read(report, should_stop):
            reviews = store.latest_reviews([r.sha256 for r in results if r.sha256])
            return ending, summary, reviews, store.runs(), filing_summary(store, results, issues)

        worker = Worker(read, name="run end")
        worker.signals.result.connect(self._run_read)
        worker.signals.failed.connect(lambda exc, done=summary: self._run_not_read(done, exc))
        self.pool.start(worker)

    def _run_read(self, value) -> None:
        ending, summary, reviews, runs, f = value
        if ending == self._ending:  # nothing else was put on screen since
            self.view.model.set_reviews(reviews)
            self.view.set_runs(runs)
            self.update_legend()
            # Bad sidecar rows are never dropped in silence: listed beside the files that could not be screened.
            self.view.set_filing(f.words, list(f.problems), f.alarming)
            if f.problems or f.alarming:  # the status bar says it too, every problem in its tooltip
                self.notify(f"{f.words} (listed on the Screening tab)", error=f.alarming, details="\n".join(f.problems))
        self.ended.emit(summary)

    def _run_not_read(self, summary: RunSummary, exc: BaseException) -> None:
        self.notify(str(exc), 12_000, error=True)
        self.ended.emit(summary)

    def _failed(self, exc: BaseException) -> None:
        self.worker = None
        self.view.run_failed(str(exc))
        self.list_runs()
        self.failed.emit(exc)

    # -- stored runs -----------------------------------------------------------------------------

    def list_runs(self, show_latest: bool = False) -> Worker | None:
        """The runs list read again on a worker; `show_latest`: then show the latest run, where the user left
        off (unless something else is on screen by then)."""
        store = self.store()
        if store is None:
            self.view.set_runs([])
            return None
        worker = Worker(lambda report, should_stop: (store, show_latest, store.runs()), name="runs")
        worker.signals.result.connect(self._runs_listed)
        return self.pool.start(worker)

    def _runs_listed(self, listed) -> None:
        store, show_latest, runs = listed
        if store is not self.store():
            return  # another results file was opened since
        self.view.set_runs(runs)
        if show_latest and runs and self.worker is None and self.view.current_run_id is None:
            self.show_stored_run(runs[0].id)

    def show_latest_run_of(self, folder: str) -> bool:
        """A folder screened before with these models: show its stored results straight away."""
        store, model = self.store(), self.model()
        if store is None or model is None:
            return False
        key = model.screener.result_key(self.settings().gate())
        run = store.latest_run_for_folder(str(Path(folder).resolve()), key)
        if run is None:
            return False
        self.show_stored_run(run.id)
        return True

    def show_stored_run(self, run_id: int) -> Worker | None:
        """Read a stored run on a worker (desktop/controllers/runs.py); it is shown, and `shown(run_id)`
        emitted, when it arrives."""
        if self.store() is None:
            return None
        self._regate_request += 1  # a trial under way is moot
        self._ending += 1
        return self.stored.load(run_id)

    def _stored_run_arrived(self, stored: StoredRun) -> None:
        if self.worker is not None:
            return  # a screening started meanwhile: its rows are on screen
        self.trial_confidence = None
        self.view.show_run(stored.run, list(stored.rows), stored.identities)
        self.view.model.set_reviews(stored.reviews)
        self.update_legend()
        f = stored.filing
        self.view.set_filing(f.words, list(f.problems), f.alarming)
        self.shown.emit(stored.run.id)

    def shown_run(self) -> ShownRun | None:
        """The run on screen for its exports: the rows shown (a trial's decisions) and their confidence."""
        run_id = self.view.current_run_id
        if self.store() is None or run_id is None:
            return None
        confidence, trial = self.shown_confidence()
        return ShownRun(run_id, tuple(r.result for r in self.view.model.rows), confidence, trial)

    # -- the confidence of the results on screen -----------------------------------------------------

    def standard_confidence(self) -> float | None:
        """The clinic's standard confidence (Settings), or the bundle's default; None without a model."""
        model, settings = self.model(), self.settings()
        if model is None:
            return settings.confidence
        return settings.confidence or model.bundle.manifest.gate.default_confidence

    def shown_confidence(self) -> tuple[float | None, bool]:
        """(the confidence of the results on screen, whether it is a trial)."""
        if self.trial_confidence is not None:
            return self.trial_confidence, True
        store, run_id = self.store(), self.view.current_run_id
        run = store.get_run(run_id) if (store is not None and run_id is not None) else None
        c = run_confidence(run) if run is not None else None
        return (c if c is not None else self.standard_confidence()), False

    def update_legend(self) -> None:
        """The legend shows the thresholds of the results on screen, never only the setting's."""
        model = self.model()
        if model is None:
            self.view.set_legend(None)
            return
        m = model.bundle.manifest
        confidence, trial = self.shown_confidence()
        try:
            thresholds = m.gate.thresholds(confidence)
        except ValueError:
            thresholds = m.gate.thresholds()
        self.view.set_legend(thresholds, m.risk_scope, confidence, trial)
        standard = self.settings().confidence or m.gate.default_confidence  # a model is loaded: never None
        self.view.set_confidences(list(m.gate.fitted), standard, confidence if confidence else standard)

    def try_confidence(self, confidence: float | None) -> Worker | None:
        """A trial confidence: the shown run decided again in memory on a worker (no model run, nothing
        recorded); `trial_shown` follows. None: back to the clinic's standard, as recorded."""
        store, model, run_id = self.store(), self.model(), self.view.current_run_id
        if store is None or model is None or run_id is None:
            return None
        run = store.get_run(run_id)
        if confidence is None or (run is not None and run_confidence(run) == confidence):
            self.trial_confidence = None
            return self.show_stored_run(run_id)
        bundle = model.bundle

        def trial(report, should_stop):
            results, _ = regate_run(bundle, store, run_id, GateChoice(confidence), record=False)
            entries = store.run_entries(run_id, with_cam=False)
            rows = [ResultRow(r, e.result_id if r.ok else None) for e, r in zip(entries, results)]
            reviews = store.latest_reviews([r.result.sha256 for r in rows if r.result.sha256])
            return rows, reviews, identities_of(store, case_shas(rows))

        self.stored.forget()
        return self._regate_job(lambda report, should_stop: (confidence, trial(report, should_stop)), "trial")

    def _regate_job(self, job, name: str) -> Worker:
        """Decide the run on screen again on a worker; the latest request wins (a stored run or a screening
        asked for since makes it moot)."""
        self._regate_request += 1
        request = self._regate_request
        worker = Worker(lambda report, should_stop: (request, name, job(report, should_stop)), name=name)
        worker.signals.result.connect(self._regated)
        worker.signals.failed.connect(lambda exc, n=request: self._regate_failed(n, name, exc))
        return self.pool.start(worker)

    def _regated(self, value) -> None:
        request, name, (confidence, found) = value
        current = request == self._regate_request and self.worker is None
        if name == "record":  # recorded whatever happened since; shown only if nothing else was asked
            self._recorded(confidence, found, show=current)
            return
        if not current:
            return
        rows, reviews, identities = found
        self.trial_confidence = confidence
        self.view.model.set_rows(rows, reviews, identities)
        self.update_legend()
        self.notify(
            f"Trial: this run decided again at confidence {confidence:g} (no model run; not recorded). "
            "The clinic's standard is set in Settings.",
            12_000,
        )
        self.trial_shown.emit(confidence)

    def _regate_failed(self, request: int, name: str, exc: BaseException) -> None:
        if request != self._regate_request:
            return
        self.notify(str(exc), 12_000, error=True)
        if name == "trial":
            self.update_legend()

    def regate(self, confidence: float) -> Worker | None:
        """The clinic's standard changed: the shown run decided again at it on a worker and recorded as a new
        run (seconds: no model runs); `recorded(run_id)` follows, then the new run is shown."""
        store, model, run_id = self.store(), self.model(), self.view.current_run_id
        if store is None or model is None or run_id is None:
            return None
        bundle = model.bundle

        def record(report, should_stop):
            return confidence, regate_run(bundle, store, run_id, GateChoice(confidence), record=True)[1]

        return self._regate_job(record, "record")

    def _recorded(self, confidence: float, summary, show: bool = True) -> None:
        self.list_runs()
        if show:
            self.trial_confidence = None
            self.show_stored_run(summary.run_id)
        self.recorded.emit(summary.run_id)
        self.notify(
            f"Run decided again at the clinic's confidence {confidence:g} in {summary.elapsed_s:.1f} s "
            "(no model run) and recorded.",
            12_000,
        )
