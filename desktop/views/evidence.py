"""The clinic's evidence: record what lesions turned out to be, import a file of them, and read the audit.

Everything here is core's: confirmed diagnoses from core.records.evidence, the audit from core.screening.audit
(its HTML is shown as it is written to a file; PDF through desktop/pdf.py, the Qt writer the other reports use).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from core import (
    DIAGNOSES,
    METHODS,
    EvidenceError,
    add_confirmed,
    atomic_target,
    audit_html,
    diagnosis_words,
    image_of_file,
    import_csv,
    lesion_key,
    run_audit,
    write_audit_csv,
    write_file_atomically,
)

from ..pdf import html_to_pdf
from ..workers import Worker, WorkerPool


class EvidenceView(QWidget):
    """Confirmed-diagnosis entry (a picture, or a patient's lesion), CSV import, and the audit (run on a worker:
    it reads every confirmed case and bootstraps its figures; `audit_ready` and `audit_saved` follow)."""

    audit_ready = Signal(object)  # core.screening.audit.Audit
    entry_done = Signal(bool)  # a confirmed diagnosis recorded (True) or refused (False, the form says why)
    imported = Signal(int, int)  # confirmed diagnoses imported, rows refused
    audit_saved = Signal(str)  # the path written

    def __init__(
        self,
        store: Callable,
        reviewer: Callable[[], str],
        bundle: Callable,
        auto_clearing: Callable[[], bool] = lambda: True,
        set_auto_clearing: Callable[[bool], None] | None = None,
        parent=None,
        pool: WorkerPool | None = None,
    ):
        super().__init__(parent)
        self._store, self._reviewer, self._bundle = store, reviewer, bundle
        self.pool = pool if pool is not None else WorkerPool(max_threads=1)
        self._audit = None
        self.private_exports: Callable[[], bool] = lambda: True  # the app's Settings (share exported files)
        self.clearing = QComboBox()
        self.clearing.addItem("on", True)
        self.clearing.addItem("off until this camera is validated", False)
        self.clearing.setCurrentIndex(0 if auto_clearing() else 1)
        self.clearing.setToolTip(
            "Off: no image is 'no cancer suspected'; each is 'review (low risk)' with the reason, and the audit "
            "counts what would have been cleared. A run turns it off by itself when its pictures differ from the "
            "training images (camera check), unless this camera is validated."
        )
        if set_auto_clearing is not None:
            self.clearing.currentIndexChanged.connect(lambda _i: set_auto_clearing(bool(self.clearing.currentData())))
        clearing_row = QHBoxLayout()
        clearing_row.addWidget(QLabel("Auto-clearing:"))
        clearing_row.addWidget(self.clearing)
        clearing_row.addStretch(1)
        entry = self._entry_form()

        audit_bar = QHBoxLayout()
        self.audit_button = QPushButton("Run audit")
        self.audit_button.clicked.connect(self.refresh_audit)
        self.save_button = QPushButton("Save audit…")
        self.save_button.clicked.connect(self._choose_save)
        audit_bar.addWidget(self.audit_button)
        audit_bar.addWidget(self.save_button)
        audit_bar.addStretch(1)
        self.audit_view = QTextBrowser()
        layout = QVBoxLayout(self)
        layout.addLayout(clearing_row)
        layout.addWidget(entry)
        layout.addLayout(audit_bar)
        layout.addWidget(self.audit_view, 1)

    def _entry_form(self) -> QGroupBox:
        """A confirmed diagnosis: of a picture, or of a patient's lesion; recorded or imported from a CSV."""
        entry = QGroupBox("Record a confirmed diagnosis (appended; a correction is a newer entry)")
        form = QFormLayout(entry)
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("a screened picture (or leave empty and give patient + lesion)")
        browse = QPushButton("Choose picture…")
        browse.clicked.connect(self._choose_file)
        row = QHBoxLayout()
        row.addWidget(self.file_edit, 1)
        row.addWidget(browse)
        form.addRow("Picture", row)
        self.patient_edit, self.lesion_edit = QLineEdit(), QLineEdit()
        form.addRow("or patient id", self.patient_edit)
        form.addRow("and lesion id", self.lesion_edit)
        self.diagnosis = QComboBox()
        for code in DIAGNOSES:
            self.diagnosis.addItem(diagnosis_words(code), code)
        form.addRow("Diagnosis", self.diagnosis)
        self.method = QComboBox()
        for code, words in METHODS.items():
            self.method.addItem(words, code)
        form.addRow("Confirmed by", self.method)
        self.date = QDateEdit(QDate.currentDate())
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("yyyy-MM-dd")
        form.addRow("Date", self.date)
        self.note = QLineEdit()
        form.addRow("Note", self.note)
        buttons = QHBoxLayout()
        self.record_button = QPushButton("Record")
        self.record_button.clicked.connect(self.record)
        self.import_button = QPushButton("Import CSV…")
        self.import_button.clicked.connect(self._choose_import)
        buttons.addWidget(self.record_button)
        buttons.addWidget(self.import_button)
        buttons.addStretch(1)
        form.addRow(buttons)
        self.entry_message = QLabel("")
        self.entry_message.setWordWrap(True)
        form.addRow(self.entry_message)
        return entry

    # -- entry -----------------------------------------------------------------------------------

    def show_auto_clearing(self, on: bool) -> None:
        """Follow a change made elsewhere (Settings) without sending it back."""
        self.clearing.blockSignals(True)
        self.clearing.setCurrentIndex(0 if on else 1)
        self.clearing.blockSignals(False)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The screened picture")
        if path:
            self.file_edit.setText(path)

    def record(self) -> Worker | None:
        """Record the confirmed diagnosis entered, on a worker (a picture is found by its bytes: read and
        hashed); `entry_done(recorded)` follows once the form says what happened."""
        store = self._store()
        if store is None:
            self._say("no results file is open", error=True)
            return None
        picture, patient, lesion = self.file_edit.text().strip(), self.patient_edit.text(), self.lesion_edit.text()
        diagnosis, method, by = self.diagnosis.currentData(), self.method.currentData(), self._reviewer() or ""
        day, note = self.date.date().toString("yyyy-MM-dd"), self.note.text()

        def enter(report, should_stop):
            sha256: str | None = None  # the picture's, or
            key: int | None = None  # the lesion's
            if picture:
                sha256 = image_of_file(store, picture)
            elif patient.strip() and lesion.strip():
                key = lesion_key(store, patient, lesion)
            else:
                raise EvidenceError("choose a screened picture, or give the patient id and the lesion id")
            return add_confirmed(store, diagnosis, method, by, lesion=key, sha256=sha256, confirmed_on=day, note=note)

        worker = Worker(enter, name="confirmed diagnosis")
        worker.signals.result.connect(self._recorded)
        worker.signals.failed.connect(self._entry_failed)
        return self.pool.start(worker)

    def _recorded(self, c) -> None:
        self._say(f"recorded: {c.words}, entered by {c.entered_by}")
        self.file_edit.clear()
        self.note.clear()
        self.entry_done.emit(True)

    def _entry_failed(self, exc: BaseException) -> None:
        self._say(str(exc), error=True)
        self.entry_done.emit(False)

    def _choose_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Confirmed diagnoses (CSV)", filter="CSV (*.csv)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> Worker | None:
        """Import a CSV of confirmed diagnoses on a worker (each picture it names is read and hashed);
        `imported(done, refused)` follows once the form says what happened."""
        store = self._store()
        if store is None:
            self._say("no results file is open", error=True)
            return None
        by = self._reviewer() or "import"
        worker = Worker(lambda report, should_stop: (path, import_csv(store, path, by)), name="import confirmed")
        worker.signals.result.connect(self._imported)
        worker.signals.failed.connect(self._import_failed)
        return self.pool.start(worker)

    def _imported(self, found: tuple) -> None:
        path, report = found
        text = f"imported {len(report.imported)} confirmed diagnoses from {Path(path).name}"
        if report.problems:
            text += f"; {len(report.problems)} rows not imported:\n" + "\n".join(str(p) for p in report.problems[:20])
            if len(report.problems) > 20:
                text += f"\n… and {len(report.problems) - 20} more"
        self._say(text, error=bool(report.problems))
        self.imported.emit(len(report.imported), len(report.problems))

    def _import_failed(self, exc: BaseException) -> None:
        self._say(str(exc), error=True)
        self.imported.emit(0, 0)

    def _say(self, text: str, error: bool = False) -> None:
        self.entry_message.setText(text)
        self.entry_message.setStyleSheet("color:#b71c1c;" if error else "color:#1b5e20;")

    # -- audit -----------------------------------------------------------------------------------

    def refresh_audit(self) -> Worker | None:
        """Run the audit on a worker; it is shown (and `audit_ready` emitted) when it is done."""
        store = self._store()
        if store is None:
            self.audit_view.setPlainText("No results file is open.")
            return None
        bundle = self._bundle()
        worker = Worker(lambda report, should_stop: run_audit(store, bundle), name="audit")
        worker.signals.result.connect(self._audit_arrived)
        worker.signals.failed.connect(lambda exc: self.audit_view.setPlainText(f"The audit could not be run: {exc}"))
        return self.pool.start(worker)

    def _audit_arrived(self, audit) -> None:
        self._audit = audit
        self.audit_view.setHtml(audit_html(audit))
        self.audit_ready.emit(audit)

    def _choose_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the audit", filter="PDF (*.pdf);;HTML (*.html);;CSV (*.csv)")
        if path:
            self.save_audit(path)

    def save_audit(self, path: str) -> Worker | None:
        """Save the audit shown (run first when there is none yet) as CSV, HTML or PDF, whole or not at all,
        owner-only unless the user chose to share exports (Settings); `audit_saved(path)` follows."""
        store, audit, bundle = self._store(), self._audit, self._bundle()
        if audit is None and store is None:
            self.audit_view.setPlainText("No results file is open.")
            return None
        out, private = Path(path), self.private_exports()

        def job(report, should_stop):
            done = audit if audit is not None else run_audit(store, bundle)
            if out.suffix.lower() == ".pdf":
                return done, False  # not written yet: Qt's PDF writer draws on the GUI thread
            if out.suffix.lower() == ".csv":
                write_audit_csv(done, out, private=private)
            else:
                write_file_atomically(out, audit_html(done), private=private)
            return done, True

        worker = Worker(job, name="save audit")
        worker.signals.result.connect(lambda value: self._audit_written(value, out, private))
        worker.signals.failed.connect(lambda exc: self._not_saved(out, exc))
        return self.pool.start(worker)

    def _audit_written(self, value, out: Path, private: bool) -> None:
        audit, written = value
        if self._audit is None:
            self._audit_arrived(audit)
        if not written:
            try:
                with atomic_target(out, private=private) as temp:
                    html_to_pdf(audit_html(audit), temp)
            except OSError as exc:
                self._not_saved(out, exc)
                return
        self.audit_saved.emit(str(out))

    def _not_saved(self, out: Path, exc: BaseException) -> None:
        words = (exc.strerror or exc) if isinstance(exc, OSError) else exc
        QMessageBox.warning(self, "Audit not saved", f"{out}: {words}")
