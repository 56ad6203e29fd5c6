"""The patient worklist: patients with the highest-risk waiting case first; a patient's lesions with
their body site and latest outcome, pinned on a body map (a click on a pin opens the lesion); the
chosen lesion's visits side by side; a report to file.

Everything it shows comes from core.records.patients; the report is core.records.patient_report's, laid out as PDF
pages by Qt (desktop/pdf.py), or its CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core import (
    LesionSummary,
    PatientSummary,
    ReviewStore,
    confirmed_for_images,
    identity_of,
    lesion_timeline,
    patient_lesions,
    worklist,
)

from ..patient_models import LesionsModel, PatientsModel
from ..patient_reports import patient_report_job, write_patient_pdf
from ..workers import Worker, WorkerPool
from .body_map import BodyMapView
from .timeline import LesionTimelineView

T = TypeVar("T")


def _table(model) -> QTableView:
    t = QTableView()
    t.setModel(model)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().hide()
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


def _selected_row(table: QTableView) -> int | None:
    rows = table.selectionModel().selectedRows()
    return rows[0].row() if rows else None


class PatientWorklistView(QWidget):
    """Patients -> lesions -> a lesion's timeline. `store_fn()` gives the open ReviewStore or None."""

    report_written = Signal(str)
    shown = Signal()  # what was asked (the worklist, a patient, a lesion) is read and on screen

    def __init__(
        self,
        store_fn: Callable[[], ReviewStore | None],
        reviewer: Callable[[], str] = lambda: "",
        parent=None,
        pool: WorkerPool | None = None,
    ):
        """`pool`: where the timeline's pictures are read (the app's; a view of its own makes its own)."""
        super().__init__(parent)
        self.store_fn = store_fn
        self.reviewer = reviewer
        self.private_exports: Callable[[], bool] = lambda: True  # the app's Settings (share exported files)
        # The models' map of a named class for results stored before screening kept it (set when loaded);
        # the map stored with a result comes first (core.records.patient_report).
        self.heat_maps: Callable | None = None
        self.patients: list[PatientSummary] = []
        self.lesions: list[LesionSummary] = []
        self.title = QLabel("Patients")
        self.title.setStyleSheet("font-size:14px; font-weight:bold;")
        self.refresh_button = QPushButton("Refresh")
        self.pdf_button = QPushButton("Patient report (PDF)…")
        self.csv_button = QPushButton("Patient report (CSV)…")
        self.patient_model = PatientsModel(self)
        self.patient_table = _table(self.patient_model)
        self.lesion_title = QLabel("Choose a patient")
        self.lesion_title.setStyleSheet("font-weight:bold;")
        self.lesion_model = LesionsModel(self)
        self.lesion_table = _table(self.lesion_model)
        self.timeline = LesionTimelineView(self._thumbnail, pool=pool)
        self.pool = self.timeline.pool
        self._asked = 0  # the latest request (refresh, a patient, a lesion)
        self._answers: dict[int, Callable[[Any], None]] = {}  # each shows what its own read returns
        self._wanted: tuple[str, int] | None = None  # (patient, lesion) to show once read (L on a case)
        self.body_map = BodyMapView()

        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        for b in (self.pdf_button, self.csv_button, self.refresh_button):
            top.addWidget(b)
        right = QSplitter(Qt.Orientation.Vertical)
        lesions_w = QWidget()
        lw = QVBoxLayout(lesions_w)
        lw.setContentsMargins(0, 0, 0, 0)
        lw.addWidget(self.lesion_title)
        lw.addWidget(self.lesion_table, 1)
        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(lesions_w)
        upper.addWidget(self.body_map)
        upper.setStretchFactor(0, 3)
        upper.setStretchFactor(1, 2)
        right.addWidget(upper)
        right.addWidget(self.timeline)
        right.setStretchFactor(1, 3)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.patient_table)
        split.addWidget(right)
        split.setStretchFactor(1, 2)
        split.setSizes([440, 860])  # the worklist's columns readable without scrolling
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)

        self.refresh_button.clicked.connect(self.refresh)
        self.patient_table.selectionModel().selectionChanged.connect(lambda *_: self._patient_chosen())
        self.lesion_table.selectionModel().selectionChanged.connect(lambda *_: self._lesion_chosen())
        self.body_map.lesion_clicked.connect(self.select_lesion)
        self.pdf_button.clicked.connect(lambda: self.export_report(".pdf"))
        self.csv_button.clicked.connect(lambda: self.export_report(".csv"))
        self._update_buttons()

    # -- data ---------------------------------------------------------------------------------

    def _thumbnail(self, result_id: int) -> bytes | None:
        store = self.store_fn()
        return store.thumbnail(result_id) if store is not None else None

    def current_patient(self) -> str | None:
        row = _selected_row(self.patient_table)
        return self.patients[row].patient_id if row is not None else None

    # The worklist, a patient's lesions and a lesion's visits are read on a worker, one request at a time: each
    # answer is shown only if nothing was asked since (`shown` follows once the chosen lesion's visits are shown).

    def _ask(self, read: Callable[[], T], show: Callable[[T], None]) -> Worker:
        self._asked += 1
        asked = self._asked
        self._answers = {asked: show}  # older requests' answers are dropped
        worker = Worker(lambda report, should_stop: (asked, read()), name="patients")
        worker.signals.result.connect(self._answered)  # a bound method: dropped if this view is gone
        return self.pool.start(worker)

    def _answered(self, answer: tuple[int, object]) -> None:
        asked, value = answer
        show = self._answers.pop(asked, None)
        if show is not None and asked == self._asked:
            show(value)

    def refresh(self) -> Worker | None:
        """Read the worklist again (on a worker) and show it, keeping the patient chosen."""
        store = self.store_fn()
        if store is None:
            self._asked += 1
            self._patients_read([])
            return None
        return self._ask(lambda: worklist(store), self._patients_read)

    def _patients_read(self, patients) -> None:
        keep = self._wanted[0] if self._wanted else self.current_patient()
        self.patients = list(patients)
        waiting = sum(1 for p in self.patients if p.waiting)
        self.title.setText(f"Patients: {len(self.patients)} ({waiting} with cases waiting for review)")
        self.patient_model.set_rows(self.patients)
        ids = [p.patient_id for p in self.patients]
        if keep in ids:
            self.select_patient(keep)
        elif ids:
            self.select_patient(ids[0])
        else:
            self.lesions = []
            self.lesion_model.set_rows([])
            self.lesion_title.setText(
                "No patient yet: screen a folder with a sidecar CSV, patient folders or DICOM files"
            )
            self.timeline.clear()
            self.body_map.clear()
            self.shown.emit()
        self._update_buttons()

    def select_patient(self, patient_id: str) -> None:
        for row, p in enumerate(self.patients):
            if p.patient_id == patient_id:
                self._select(self.patient_table, row, self._patient_chosen)
                return

    @staticmethod
    def _select(table: QTableView, row: int, chosen: Callable[[], None]) -> None:
        """Select a row and show it (a row already selected changes no selection, so no signal says so)."""
        if _selected_row(table) == row:
            chosen()
        else:
            table.selectRow(row)

    def _patient_chosen(self) -> None:
        pid = self.current_patient()
        store = self.store_fn()
        self._update_buttons()
        if pid is None or store is None:
            return
        self._ask(lambda: patient_lesions(store, pid), lambda lesions: self._lesions_read(pid, lesions))

    def _lesions_read(self, pid: str, lesions) -> None:
        self.lesions = list(lesions)
        self.lesion_title.setText(f"Patient {pid}: {len(self.lesions)} lesion(s), most urgent first")
        self.lesion_model.set_rows(self.lesions)
        self.body_map.show_lesions(pid, self.lesions)
        wanted, self._wanted = self._wanted, None
        keys = [le.lesion_key for le in self.lesions]
        if self.lesions:
            row = keys.index(wanted[1]) if (wanted and wanted[0] == pid and wanted[1] in keys) else 0
            self._select(self.lesion_table, row, self._lesion_chosen)
        else:
            self.timeline.clear()
            self.shown.emit()

    def select_lesion(self, lesion_key: int) -> None:
        for row, le in enumerate(self.lesions):
            if le.lesion_key == lesion_key:
                self._select(self.lesion_table, row, self._lesion_chosen)
                return

    def show_lesion_of(self, sha256: str) -> bool:
        """Select the patient and lesion an image is filed under (once the worklist is read again); False when
        it has none ("no patient")."""
        store = self.store_fn()
        filed = identity_of(store, sha256) if (store is not None and sha256) else None
        if filed is None:
            return False
        self._wanted = (filed.patient_id, filed.lesion_key)
        self.refresh()
        return True

    def _lesion_chosen(self) -> None:
        row = _selected_row(self.lesion_table)
        store = self.store_fn()
        if row is None or store is None:
            return
        le = self.lesions[row]
        name = le.label if le.labelled else "without a lesion id"
        title = f"Patient {le.patient_id}, lesion {name} ({le.body_site or 'body site not recorded'})"

        def read():
            entries = lesion_timeline(store, le.lesion_key)
            return entries, confirmed_for_images(store, [e.sha256 for e in entries])

        self._ask(read, lambda found: self._visits_read(title, *found))
        self.body_map.select(le.lesion_key)

    def _visits_read(self, title: str, entries, confirmed) -> None:
        self.timeline.show_timeline(title, entries, confirmed)
        self.shown.emit()

    def _update_buttons(self) -> None:
        on = self.current_patient() is not None
        self.pdf_button.setEnabled(on)
        self.csv_button.setEnabled(on)

    # -- report -------------------------------------------------------------------------------

    def export_report(self, suffix: str, path: str | None = None, summary: str | None = None) -> Worker | None:
        """Write the chosen patient's report on a worker; `report_written(path)` follows. Asked interactively (no
        `path`): the file, and for a PDF the clinician's summary printed on it. The clinic's name, address and
        phone come from Settings."""
        pid = self.current_patient()
        store = self.store_fn()
        if pid is None or store is None:
            return None
        if summary is None and path is None and suffix == ".pdf":
            summary, ok = QInputDialog.getMultiLineText(
                self, "Patient report", f"Summary for patient {pid} (printed on the report; may be left empty):"
            )
            if not ok:
                return None
        if path is None:
            kinds = {".pdf": "PDF report (*.pdf)", ".csv": "CSV table (*.csv)"}
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in pid)
            path, _ = QFileDialog.getSaveFileName(
                self, "Patient report", f"melascreen-patient-{safe}{suffix}", kinds[suffix]
            )
            if not path:
                return None
        private = self.private_exports()
        job = patient_report_job(store, pid, path, self.reviewer() or "", summary or "", self.heat_maps, private)
        worker = Worker(job, name="patient report")
        worker.signals.result.connect(lambda value: self._report_done(value, path, private))
        worker.signals.failed.connect(self._report_failed)
        return self.pool.start(worker)

    def _report_done(self, value, path: str, private: bool) -> None:
        if not isinstance(value, Path):  # a PDF's pages, laid out on the worker: Qt draws them here
            try:
                value = write_patient_pdf(value, path, private)
            except OSError as exc:
                self._report_failed(exc)
                return
        self.report_written.emit(str(value))

    def _report_failed(self, exc: BaseException) -> None:
        QMessageBox.warning(self, "Report not written", f"The report could not be written:\n{exc}")
