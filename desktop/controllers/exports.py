"""A run's exports: the CSV, the printable report (HTML) and the same report as a PDF.

What is on screen (the run, a trial's decisions, their confidence) is read on the GUI thread as a ShownRun;
everything read from the results file and written to disk happens on a worker. Only Qt's PDF writer draws
on the GUI thread (it must). `written(path)` follows each file written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core import (
    ReviewStore,
    RunInfo,
    ScreeningResult,
    StoreError,
    atomic_target,
    identities_of,
    local_time,
    named_class,
    provenance_of_run,
    run_report,
    shown_status,
    write_run_csv,
    write_run_report_html,
)

from ..pdf import html_to_pdf
from ..settings import AppSettings
from ..workers import Worker, WorkerPool

NOTHING_TO_EXPORT = "Nothing to export yet: screen a folder or choose an earlier run first."
DOCUMENT_DIALOGS = {
    "html": ("Export printable report", "HTML report (*.html)"),
    "pdf": ("Export report as PDF", "PDF (*.pdf)"),
}


@dataclass(frozen=True)
class ShownRun:
    """The run on screen, read on the GUI thread: its id, the results shown (a trial's decisions; empty
    while none are listed) and their confidence."""

    run_id: int
    results: tuple[ScreeningResult, ...]
    confidence: float | None
    trial: bool  # a confidence tried on screen, not the recorded one


class _Issue:
    """A stored run's intake issue (kept as its words in the run's summary), for the CSV's intake rows."""

    def __init__(self, text: str):
        self.file, self.row, self.message = "", None, text


def _with_stored_maps(shown, stored):
    """A trial's result with the stored heat maps: melanoma's, and the named class's when the trial's outcome
    names the same class (else only melanoma's, and the report says the named map is not stored)."""
    same = stored.named_cam_class and named_class(shown) == stored.named_cam_class
    named = {"named_cam": stored.named_cam, "named_cam_class": stored.named_cam_class} if same else {}
    return replace(shown, cam=stored.cam, **named)


def _stored_run(store: ReviewStore, run_id: int) -> RunInfo:
    run = store.get_run(run_id)
    if run is None:
        raise StoreError(f"run #{run_id} is no longer in the results file")
    return run


def run_csv_job(store: ReviewStore, shown: ShownRun, path: str, classes, private: bool):
    """Write the CSV of what is on screen (a trial's rows say "trial" on each row; else the recorded run)."""

    def job(report, should_stop) -> Path:
        run = _stored_run(store, shown.run_id)
        results = list(shown.results) or store.run_results(shown.run_id, with_cam=False)
        shas = [r.sha256 for r in results if r.sha256]
        made_by = provenance_of_run(run)
        if shown.trial:
            made_by = replace(made_by, confidence=shown.confidence)
        return write_run_csv(
            results,
            path,
            classes,
            identities_of(store, shas),
            [_Issue(str(i)) for i in (run.summary or {}).get("intake_issues", [])],
            store.latest_reviews(shas),
            provenance=made_by,
            private=private,
        )

    return job


def run_report_job(store: ReviewStore, shown: ShownRun, reviewer: str, html_path: str | None, private: bool):
    """The run's report (it reads every image again to draw the heat maps): written as HTML to `html_path`,
    or returned as a document for the PDF writer when `html_path` is None."""

    def job(report, should_stop):
        run = _stored_run(store, shown.run_id)
        confidence = shown.confidence
        details = {
            "Folder": run.folder,
            "Run": f"#{run.id}, started {local_time(run.started)} ({shown_status(run.status, run.settings)})",
            "Confidence": f"{confidence:g}"
            + (" (TRIAL: not the clinic's standard, not recorded)" if shown.trial else ""),
            "Exported by": reviewer or "—",
        }
        on_screen = {r.path: r for r in shown.results} if shown.trial else {}
        entries = store.run_entries(shown.run_id, with_cam=True)
        thumbs = [store.thumbnail(e.result_id) if e.result.ok else None for e in entries]
        results = []
        for e in entries:  # a trial's decisions, with the stored heat maps
            r = on_screen.get(e.result.path)
            results.append(
                _with_stored_maps(r, e.result) if r is not None else replace(e.result, confidence=confidence)
            )
        shas = [r.sha256 for r in results if r.sha256]
        doc = run_report(
            results,
            thumbs,
            identities_of(store, shas),
            store.latest_reviews(shas),
            replace(provenance_of_run(run), confidence=confidence),
            details,
            title=f"MelaScreen screening report, run #{run.id}",
            clearing=(run.settings or {}).get("clearing") or (run.summary or {}).get("clearing"),
        )
        return doc if html_path is None else write_run_report_html(doc, html_path, private=private)

    return job


class RunExports(QObject):
    """The File menu's and the Screening tab's exports of the run on screen."""

    written = Signal(str)  # the path of a file written

    def __init__(
        self,
        window: QWidget,
        pool: WorkerPool,
        store: Callable[[], ReviewStore | None],
        shown: Callable[[], ShownRun | None],
        settings: Callable[[], AppSettings],
        classes: Callable[[], tuple[str, ...]],
        notify: Callable[..., None],
    ):
        super().__init__(window)
        self.window, self.pool, self.store, self.shown = window, pool, store, shown
        self.settings, self.classes, self.notify = settings, classes, notify

    def export_name(self, suffix: str) -> str:
        """The file name offered: the run's number and folder, beside the last folder screened."""
        shown, store = self.shown(), self.store()
        run = store.get_run(shown.run_id) if (store is not None and shown is not None) else None
        folder = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(run.folder).name) if run else "results"
        base = Path(self.settings().last_folder or Path.home())
        return str(base / f"melascreen-run{run.id if run else ''}-{folder}{suffix}")

    def _what_to_export(self) -> tuple[ReviewStore, ShownRun] | None:
        store, shown = self.store(), self.shown()
        if store is None or shown is None:
            self.notify(NOTHING_TO_EXPORT, 8000)
            return None
        return store, shown

    def export_csv(self, path: str | None = None) -> Worker | None:
        """Write the run's CSV on a worker; `written` follows (asked for a file name when `path` is None)."""
        what = self._what_to_export()
        if what is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self.window, "Export results as CSV", self.export_name(".csv"), "CSV (*.csv)"
            )
            if not path:
                return None
        store, shown = what
        worker = Worker(run_csv_job(store, shown, path, self.classes(), self.settings().private_exports), name="csv")
        worker.signals.result.connect(self._csv_written)
        worker.signals.failed.connect(
            lambda exc: QMessageBox.warning(self.window, "Export failed", f"The CSV file could not be written:\n{exc}")
        )
        return self.pool.start(worker)

    def _csv_written(self, out: Path) -> None:
        self.notify(f"CSV written: {out}", 8000)
        self.written.emit(str(out))

    def export_report(self, path: str | None = None) -> Worker | None:
        """Write the HTML report on a worker: it reads every image again to draw the heat maps."""
        return self._export_document("html", path)

    def export_pdf(self, path: str | None = None) -> Worker | None:
        """The same report as a PDF: HTML built on a worker, drawn by Qt's PDF writer on the GUI thread."""
        return self._export_document("pdf", path)

    def _export_document(self, kind: str, path: str | None) -> Worker | None:
        what = self._what_to_export()
        if what is None:
            return None
        interactive = path is None
        if path is None:
            title, pattern = DOCUMENT_DIALOGS[kind]
            path, _ = QFileDialog.getSaveFileName(self.window, title, self.export_name(f".{kind}"), pattern)
            if not path:
                return None
        store, shown = what
        settings = self.settings()
        private = settings.private_exports
        job = run_report_job(store, shown, settings.reviewer, path if kind == "html" else None, private)
        worker = Worker(job, name="report")
        worker.signals.result.connect(lambda value: self._document_done(kind, value, path, private, interactive))
        worker.signals.failed.connect(
            lambda exc: QMessageBox.warning(self.window, "Export failed", f"The report could not be written:\n{exc}")
        )
        self.notify("Writing the report…")
        return self.pool.start(worker)

    def _document_done(self, kind: str, value, path: str, private: bool, interactive: bool) -> None:
        if kind == "pdf":
            try:
                with atomic_target(path, private=private) as temp:  # whole or not at all, 0600 unless shared
                    html_to_pdf(value, temp)
                value = Path(path)
            except OSError as exc:
                QMessageBox.warning(self.window, "Export failed", f"The PDF could not be written:\n{exc}")
                return
        self._report_written(value, open_it=interactive)

    def _report_written(self, path, open_it: bool = False) -> None:
        if open_it and not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            self.notify(
                f"Report written: {path}. It could not be opened here (no program for it is set up): "
                "open it from your file manager.",
                20_000,
                error=True,
            )
        else:
            self.notify(f"Report written: {path}", 10_000)
        self.written.emit(str(path))
