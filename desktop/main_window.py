"""The main window: tabs for screening, one case, the review queue, patients, follow-up and evidence; menus;
the status bar.

It owns the app's state (settings, the results file, the worker pool) and wires the views to the controllers
(desktop/controllers: the models, opening the results file, the Screening tab's runs, a run's exports, moving
between cases, Settings and About). Every screening, storing and reviewing rule is core's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QTabWidget

from core import ReviewStore, identities_of

from .controllers.cases import CaseNavigation
from .controllers.exports import RunExports
from .controllers.models import ModelLoader, stored_picture_heat_maps
from .controllers.results_file import ResultsFile
from .controllers.screening import ScreeningRuns
from .controllers.settings_about import SettingsAndAbout
from .menus import build_menus
from .settings import AppSettings, save_settings
from .settings_dialog import SettingsDialog
from .status_bar import StatusBar
from .table_cells import ThumbnailCache
from .views.case_panel import CasePanel, CaseRef, with_keys_help
from .views.evidence import EvidenceView
from .views.follow_up import FollowUpView
from .views.patients import PatientWorklistView
from .views.review_queue import ReviewQueueView
from .views.screening import ScreeningView
from .workers import LoadedModel, Worker, WorkerPool


class MainWindow(QMainWindow):
    model_loaded = Signal(object)  # LoadedModel
    model_failed = Signal(str)
    run_done = Signal(object)  # RunSummary, or the exception when screening failed
    export_done = Signal(str)  # path written
    run_shown = Signal(int)  # a stored run's id, once its rows are on screen (they are read on a worker)
    store_opened = Signal(object)  # the results file, opened on a worker (None: refused, store_error says why)

    def __init__(
        self, settings: AppSettings, settings_file: Path | None = None, bundle_override: str | None = None, parent=None
    ):
        super().__init__(parent)
        self.settings = settings
        self.settings_file = settings_file
        self.pool = WorkerPool(max_threads=3)  # screening, opening a case, and a report or model load
        self.store: ReviewStore | None = None
        self.store_error = ""
        self._pending_store = False  # settings changed while screening: apply when it ends
        self._pending_model = False
        self.setWindowTitle("MelaScreen — research tool, not a medical device")
        self.resize(1360, 860)
        self._tabs()
        self.status = StatusBar(self.statusBar(), self)
        bar = self.status  # its labels by the names the tests and screenshots use
        self.message_label, self.model_label, self.store_label = bar.message_label, bar.model_label, bar.store_label
        self.disclaimer_label = bar.disclaimer_label
        self._controllers(bundle_override)
        build_menus(self, self.export_csv, self.export_report, self.export_pdf)
        self._connect()
        self.case_panel.set_reviewer_name(settings.reviewer)
        self.queue_view.panel.set_reviewer_name(settings.reviewer)
        self.screening.recursive.setChecked(settings.recursive)
        if settings.last_folder:
            self.screening.set_folder(settings.last_folder)
        self.open_store()
        self.load_model()

    # -- building -------------------------------------------------------------------------------

    def _tabs(self) -> None:
        store, opacity = (lambda: self.store), self.settings.heatmap_opacity
        reviewer = lambda: self.settings.reviewer or None  # noqa: E731 - a review needs a name: None cancels the save
        self.screening = ScreeningView(self._thumbnail)
        self.case_panel = CasePanel(store, self.pool, reviewer, opacity)
        self.case_panel.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.case_tab = with_keys_help(self.case_panel)
        self.queue_view = ReviewQueueView(store, self.pool, reviewer, opacity)
        self.patients_view = PatientWorklistView(store, lambda: self.settings.reviewer, pool=self.pool)
        self.follow_up_view = FollowUpView(store, pool=self.pool)
        self.evidence_view = EvidenceView(
            store,
            lambda: self.settings.reviewer,
            lambda: self.model.bundle if self.model else None,
            lambda: self.settings.auto_clearing,
            lambda on: self.apply_settings(replace(self.settings, auto_clearing=on)),
            pool=self.pool,
        )
        self.tabs = QTabWidget()
        self.tabs.addTab(self.screening, "Screening")
        self.tabs.addTab(self.case_tab, "Case")
        self.tabs.addTab(self.queue_view, "Review queue")
        self.tabs.addTab(self.patients_view, "Patients")
        self.tabs.addTab(self.follow_up_view, "Follow-up")
        self.tabs.addTab(self.evidence_view, "Evidence")  # confirmed diagnoses and the audit (issue 25)
        for view in (self.patients_view, self.follow_up_view, self.evidence_view):
            view.private_exports = lambda: self.settings.private_exports  # Settings: share exported files
        self.setCentralWidget(self.tabs)

    def _controllers(self, bundle_override: str | None) -> None:
        self.models = ModelLoader(self.pool, self)
        self.models.override = bundle_override
        store, settings, model = (lambda: self.store), (lambda: self.settings), (lambda: self.model)
        self.runs = ScreeningRuns(self.screening, self.pool, store, model, settings, self.notify, self)
        classes = lambda: self.model.bundle.manifest.class_names if self.model else ()  # noqa: E731
        self.exports = RunExports(self, self.pool, store, self.runs.shown_run, settings, classes, self.notify)
        self.cases = CaseNavigation(self, self.pool, store, self.notify)
        self.results_file = ResultsFile(self.pool, self)
        message = lambda: self.model_message  # noqa: E731
        self.dialogs = SettingsAndAbout(self, self.pool, settings, model, message, self.apply_settings)

    def _connect(self) -> None:
        s = self.screening
        s.choose_folder.connect(self.choose_folder)
        s.screen_requested.connect(self.start_screening)
        s.cancel_requested.connect(self.cancel_screening)
        s.open_case.connect(self.open_case)
        s.run_selected.connect(self.show_stored_run)
        s.export_csv.connect(self.export_csv)
        s.export_report.connect(self.export_report)
        s.export_pdf.connect(self.export_pdf)
        s.open_settings.connect(self.open_settings)
        s.confidence_chosen.connect(self.try_confidence)
        self.follow_up_view.open_result.connect(self.cases.open_result)
        self.follow_up_view.exported.connect(lambda path: self.notify(f"Follow-up list written: {path}", 8000))
        self.queue_view.queue_changed.connect(lambda waiting: self.tabs.setTabText(2, f"Review queue ({waiting})"))
        self.queue_view.panel.reviewed.connect(lambda rid, review: self.cases.reviewed(review, from_queue=True))
        self.case_panel.reviewed.connect(lambda rid, review: self.cases.reviewed(review, from_queue=False))
        for panel in (self.case_panel, self.queue_view.panel):
            panel.case_view.opacity_changed.connect(self._remember_opacity)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.patients_view.report_written.connect(lambda path: self.notify(f"Patient report written: {path}", 8000))
        self._connect_controllers()
        self.cases.shortcuts()

    def _connect_controllers(self) -> None:
        self.models.loaded.connect(self._model_ready)
        self.models.failed.connect(self.model_failed)
        self.models.state_changed.connect(lambda state: self._update_model_state(state=state))
        self.models.trust_warning.connect(lambda text: self.notify(text, 30_000, error=True))
        self.runs.ended.connect(self._screening_ended)
        self.runs.failed.connect(self._screening_failed)
        self.runs.shown.connect(self.run_shown)
        self.runs.recorded.connect(lambda _run_id: (self.queue_view.refresh(), self.patients_view.refresh()))
        self.exports.written.connect(self.export_done)
        self.results_file.opened.connect(self._store_opened)
        self.results_file.refused.connect(self._store_refused)

    def notify(self, text: str, ms: int = 0, error: bool = False, details: str | None = None) -> None:
        """A short message in the status bar, beside the disclaimer (never instead of it); `details`: its tooltip."""
        self.status.notify(text, ms, error, details)

    def _thumbnail(self, result_id: int) -> bytes | None:
        return None if self.store is None else self.store.thumbnail(result_id)

    def _save_settings(self) -> None:
        if self.settings_file is not None:
            try:
                save_settings(self.settings, self.settings_file)
            except OSError as exc:
                self.notify(f"Settings could not be saved: {exc}", 10_000)

    def _remember_opacity(self, value: float) -> None:
        self.settings = replace(self.settings, heatmap_opacity=value)

    # -- store and model ----------------------------------------------------------------------

    def open_store(self) -> Worker:
        """Open the results file named in Settings on a worker (it may be created or upgraded first);
        `store_opened` follows once it is open, or refused and said."""
        if self.store is not None:
            self.store.close()
            self.store = None
        # Result ids belong to one results file: forget the rows and thumbnails of the last one.
        self.screening.model.thumbnails = ThumbnailCache(self._thumbnail)
        self.screening.model.identity_fn = lambda shas: identities_of(self.store, shas) if self.store else {}
        self.screening.model.set_rows([])
        self.screening.current_run_id = None
        self.runs.stored.forget()
        self.case_panel.clear("")
        return self.results_file.open(self.settings.resolved_database_path())

    def _store_opened(self, path: Path, store: ReviewStore) -> None:
        self.store, self.store_error = store, ""
        self.status.show_store(path)
        self._store_ready()

    def _store_refused(self, _path: Path, exc: BaseException) -> None:
        self.store_error = str(exc)
        self.status.show_store(None)
        QMessageBox.warning(self, "Results file", f"{exc}\n\nChoose another location in Settings.")
        self._store_ready()

    def _store_ready(self) -> None:
        self._update_model_state()
        self.runs.list_runs(show_latest=True)  # then the latest run, where the user left off
        self.queue_view.refresh()
        self._tab_changed(self.tabs.currentIndex())  # a tab shown while the file was being opened reads it now
        self.store_opened.emit(self.store)

    @property
    def model(self) -> LoadedModel | None:
        """The loaded models (None while loading, or when they could not be loaded: see model_message)."""
        return self.models.model

    @property
    def model_message(self) -> str:
        return self.models.message

    def load_model(self) -> None:
        """Load the bundle and create the sessions on a worker (desktop/controllers/models.py)."""
        self.models.load(self.settings)

    def _model_ready(self, model: LoadedModel) -> None:
        for panel in (self.case_panel, self.queue_view.panel):  # heat maps of any class, on request
            panel.set_models(model.screener.ensemble)
        self.patients_view.heat_maps = stored_picture_heat_maps(model.screener.ensemble)
        self._update_model_state()
        self.model_loaded.emit(model)

    def _update_model_state(self, state: str | None = None) -> None:
        if self.store is None and self.store_error:
            self.screening.set_model_state("error", f"The results file cannot be used: {self.store_error}")
        elif self.model is not None:
            self.screening.set_model_state("ready", "")
        else:
            self.screening.set_model_state(state or "loading", self.model_message)
        self.status.show_models(self.model, self.settings.gate())
        if self.model is not None:
            self.runs.update_legend()
        else:
            self.screening.set_legend(None)

    # -- the Screening tab (desktop/controllers/screening.py) ---------------------------------------

    @property
    def screening_worker(self) -> Worker | None:
        return self.runs.worker

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a folder of dermoscopy images", self.settings.last_folder
        )
        if not folder:
            return
        self.screening.set_folder(folder)
        self.settings = replace(self.settings, last_folder=folder)
        subfolders = [p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")]
        if subfolders and not self.screening.recursive.isChecked():
            # Let the user choose subfolders first: nothing starts until Screen is pressed.
            self.notify(
                f"This folder has {len(subfolders)} subfolder(s): tick “Include subfolders” to screen them "
                "too, then press Screen.",
                15_000,
            )
            self.show_latest_run_of(folder)
        elif self.model is not None and self.store is not None and self.screening_worker is None:
            # Picking the folder is the request: screen it (stored results are reused, not recomputed).
            self.start_screening(folder, self.screening.recursive.isChecked())
        else:
            self.show_latest_run_of(folder)

    def start_screening(self, folder: str, recursive: bool) -> Worker | None:
        if self.model is None or self.store is None or self.screening_worker is not None:
            return None
        self.tabs.setCurrentWidget(self.screening)
        self.settings = replace(self.settings, last_folder=folder, recursive=recursive)
        return self.runs.start(folder, recursive)

    def cancel_screening(self) -> None:
        self.runs.cancel()

    def _screening_ended(self, summary) -> None:
        self.patients_view.refresh()
        self.follow_up_view.refresh()
        self._apply_pending()
        self.queue_view.refresh(then=lambda: self.run_done.emit(summary))  # done once the queue is read

    def _screening_failed(self, exc: BaseException) -> None:
        self._apply_pending()
        self.queue_view.refresh(then=lambda: self.run_done.emit(exc))

    def show_latest_run_of(self, folder: str) -> bool:
        return self.runs.show_latest_run_of(folder)

    def show_stored_run(self, run_id: int) -> Worker | None:
        return self.runs.show_stored_run(run_id)

    def try_confidence(self, confidence: float | None) -> None:
        self.runs.try_confidence(confidence)

    # -- cases and reviews --------------------------------------------------------------------

    def open_case(self, ref: CaseRef) -> None:
        self.cases.open_case(ref)

    def show_lesion_visits(self, panel) -> None:
        self.cases.show_lesion_visits(panel)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.queue_view:
            self.queue_view.panel.setFocus()
        if self.tabs.widget(index) is self.patients_view:
            self.patients_view.refresh()  # reviews and runs may have changed the worklist
        if self.tabs.widget(index) is self.follow_up_view:
            self.follow_up_view.refresh()

    # -- export (desktop/controllers/exports.py) -------------------------------------------------

    def export_csv(self, path: str | None = None) -> Worker | None:
        """The run's CSV, written on a worker; export_done(path) follows."""
        return self.exports.export_csv(path)

    def export_report(self, path: str | None = None) -> Worker | None:
        return self.exports.export_report(path)

    def export_pdf(self, path: str | None = None) -> Worker | None:
        return self.exports.export_pdf(path)

    # -- settings and about -------------------------------------------------------------------------

    def settings_dialog(self) -> SettingsDialog:
        return self.dialogs.settings_dialog()

    def open_settings(self) -> None:
        self.dialogs.open_settings()

    def apply_settings(self, new: AppSettings) -> None:
        """Save and apply: reload the models or reopen the results file only when their settings changed."""
        old = self.settings
        self.settings = new
        self._save_settings()
        self.case_panel.set_reviewer_name(new.reviewer)
        self.queue_view.panel.set_reviewer_name(new.reviewer)
        self.evidence_view.show_auto_clearing(new.auto_clearing)
        if new.cascade != old.cascade:
            self._update_model_state()
        # No results file open (and none being opened): try again, e.g. after a refusal.
        unopened = self.store is None and self.results_file.opening is None
        store_changed = new.resolved_database_path() != old.resolved_database_path() or unopened
        # The confidence is passed with each run: changing only it reloads nothing.
        model_changed = new.models_from() != old.models_from()
        self._pending_store = self._pending_store or store_changed
        self._pending_model = self._pending_model or model_changed or self.model is None
        if self.screening_worker is not None:
            self.notify("The new settings apply when the screening in progress ends.", 10_000)
            return
        self._apply_pending()
        regate = new.confidence != old.confidence and not (store_changed or model_changed) and self.model is not None
        standard = self.runs.standard_confidence() if regate else None  # a float whenever a model is loaded
        if standard is not None:
            # The clinic's standard changed: the run on screen is decided again at it (no model run).
            self.runs.regate(standard)
        else:
            self.runs.update_legend()

    def _apply_pending(self) -> None:
        """Reopen the results file / reload the models for settings changed while screening ran."""
        if self._pending_store:
            self._pending_store = False
            self.open_store()
        if self._pending_model:
            self._pending_model = False
            self.models.override = None
            self.load_model()

    def open_about(self) -> Worker:
        """NOTICES read on a worker, then the About box (desktop/controllers/settings_about.py)."""
        return self.dialogs.open_about()

    # -- closing ------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        if self.screening_worker is not None:
            answer = QMessageBox.question(
                self,
                "Screening is running",
                "Stop screening and quit? The results screened so far are kept.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Cancel and wait for the workers, save the settings, close the results file."""
        self.results_file.forget()  # a results file still being opened is closed when it arrives
        self.pool.shutdown(15_000)
        self.runs.worker = None
        self._save_settings()
        if self.store is not None:
            self.store.close()
            self.store = None
