"""The patient worklist: patients with the highest-risk waiting case first; a patient's lesions with
their body site and latest outcome, pinned on a body map (a click on a pin opens the lesion); the
chosen lesion's visits side by side; a report to file.

Everything it shows comes from core.records.patients; the report is core.records.patient_report's, laid out as PDF
pages by Qt (desktop/pdf.py), or its CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
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
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.common.errors import MelaScreenError
from core.decision.vocabulary import outcome, outcome_words
from core.records.evidence import confirmed_for_images
from core.records.patient_report import write_patient_report
from core.records.patients import LesionSummary, PatientSummary, lesion_timeline, patient_lesions, worklist

from ..pdf import html_to_pdf
from .body_map import BodyMapView
from .timeline import LesionTimelineView

PATIENT_COLUMNS = (
    "Patient",
    "Waiting",
    "Most urgent waiting case",
    "p(malignant)",
    "Lesions",
    "Pictures",
    "Last visit",
)
LESION_COLUMNS = ("Pin", "Lesion", "Body site", "Visits", "Last visit", "Latest outcome", "p(malignant)", "Review")


def _item(text: str, data=None) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
    if data is not None:
        item.setData(Qt.ItemDataRole.UserRole, data)
    return item


def _badge(item: QTableWidgetItem, code) -> QTableWidgetItem:
    o = outcome(code)
    item.setBackground(QBrush(QColor(o.colour)))
    item.setForeground(QBrush(QColor(o.text_colour)))
    item.setToolTip(o.hint)
    return item


def _table(columns: tuple[str, ...]) -> QTableWidget:
    t = QTableWidget(0, len(columns))
    t.setHorizontalHeaderLabels(list(columns))
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.verticalHeader().hide()
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class PatientWorklistView(QWidget):
    """Patients -> lesions -> a lesion's timeline. `store_fn()` gives the open ReviewStore or None."""

    report_written = Signal(str)

    def __init__(self, store_fn: Callable[[], object], reviewer: Callable[[], str] = lambda: "", parent=None):
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
        self.patient_table = _table(PATIENT_COLUMNS)
        self.lesion_title = QLabel("Choose a patient")
        self.lesion_title.setStyleSheet("font-weight:bold;")
        self.lesion_table = _table(LESION_COLUMNS)
        self.timeline = LesionTimelineView(self._thumbnail)
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
        self.patient_table.itemSelectionChanged.connect(self._patient_chosen)
        self.lesion_table.itemSelectionChanged.connect(self._lesion_chosen)
        self.body_map.lesion_clicked.connect(self.select_lesion)
        self.pdf_button.clicked.connect(lambda: self.export_report(".pdf"))
        self.csv_button.clicked.connect(lambda: self.export_report(".csv"))
        self._update_buttons()

    # -- data ---------------------------------------------------------------------------------

    def _thumbnail(self, result_id: int) -> bytes | None:
        store = self.store_fn()
        return store.thumbnail(result_id) if store is not None else None

    def current_patient(self) -> str | None:
        rows = self.patient_table.selectionModel().selectedRows()
        return self.patients[rows[0].row()].patient_id if rows else None

    def refresh(self) -> None:
        store = self.store_fn()
        keep = self.current_patient()
        self.patients = worklist(store) if store is not None else []
        waiting = sum(1 for p in self.patients if p.waiting)
        self.title.setText(f"Patients: {len(self.patients)} ({waiting} with cases waiting for review)")
        t = self.patient_table
        t.blockSignals(True)
        t.setRowCount(len(self.patients))
        for row, p in enumerate(self.patients):
            t.setItem(row, 0, _item(p.patient_id, p.patient_id))
            t.setItem(row, 1, _item(str(p.waiting)))
            if p.top_decision is not None:
                t.setItem(row, 2, _badge(_item(p.top_words or outcome_words(p.top_decision)), p.top_decision))
            else:
                t.setItem(row, 2, _item("none waiting"))
            t.setItem(row, 3, _item("" if p.top_p_malignant is None else f"{p.top_p_malignant:.3f}"))
            t.setItem(row, 4, _item(str(p.lesions)))
            t.setItem(row, 5, _item(str(p.images)))
            t.setItem(row, 6, _item(p.last_visit.isoformat() if p.last_visit else ""))
        t.blockSignals(False)
        ids = [p.patient_id for p in self.patients]
        if keep in ids:
            self.select_patient(keep)
        elif ids:
            self.select_patient(ids[0])
        else:
            self.lesion_table.setRowCount(0)
            self.lesion_title.setText(
                "No patient yet: screen a folder with a sidecar CSV, patient folders or DICOM files"
            )
            self.timeline.clear()
            self.body_map.clear()
        self._update_buttons()

    def select_patient(self, patient_id: str) -> None:
        for row, p in enumerate(self.patients):
            if p.patient_id == patient_id:
                self.patient_table.selectRow(row)
                self._patient_chosen()
                return

    def _patient_chosen(self) -> None:
        pid = self.current_patient()
        store = self.store_fn()
        self._update_buttons()
        if pid is None or store is None:
            return
        self.lesions = patient_lesions(store, pid)
        self.lesion_title.setText(f"Patient {pid}: {len(self.lesions)} lesion(s), most urgent first")
        t = self.lesion_table
        t.blockSignals(True)
        t.setRowCount(len(self.lesions))
        for row, le in enumerate(self.lesions):
            t.setItem(row, 0, _item(str(row + 1)))  # the lesion's number on the body map
            t.setItem(row, 1, _item(le.label if le.labelled else "(no lesion id)", le.lesion_key))
            t.setItem(row, 2, _item(le.body_site or "not recorded"))
            t.setItem(row, 3, _item(str(le.visits)))
            t.setItem(row, 4, _item(le.last_visit.isoformat() if le.last_visit else "undated"))
            words = le.latest.words if (le.latest is not None and le.latest.decision is not None) else "not screened"
            t.setItem(row, 5, _badge(_item(words), le.latest_decision))
            t.setItem(row, 6, _item("" if le.latest_p_malignant is None else f"{le.latest_p_malignant:.3f}"))
            t.setItem(row, 7, _item(le.latest_review.words if le.latest_review else "not reviewed"))
        t.blockSignals(False)
        self.body_map.show_lesions(pid, self.lesions)
        if self.lesions:
            t.selectRow(0)
            self._lesion_chosen()
        else:
            self.timeline.clear()

    def select_lesion(self, lesion_key: int) -> None:
        for row, le in enumerate(self.lesions):
            if le.lesion_key == lesion_key:
                self.lesion_table.selectRow(row)
                self._lesion_chosen()
                return

    def show_lesion_of(self, sha256: str) -> bool:
        """Select the patient and lesion an image is filed under; False when it has none ("no patient")."""
        from core.records.patients import identity_of

        store = self.store_fn()
        filed = identity_of(store, sha256) if (store is not None and sha256) else None
        if filed is None:
            return False
        self.refresh()
        self.select_patient(filed.patient_id)
        self.select_lesion(filed.lesion_key)
        return True

    def _lesion_chosen(self) -> None:
        rows = self.lesion_table.selectionModel().selectedRows()
        store = self.store_fn()
        if not rows or store is None:
            return
        le = self.lesions[rows[0].row()]
        name = le.label if le.labelled else "without a lesion id"
        title = f"Patient {le.patient_id}, lesion {name} ({le.body_site or 'body site not recorded'})"
        entries = lesion_timeline(store, le.lesion_key)
        self.timeline.show_timeline(title, entries, confirmed_for_images(store, [e.sha256 for e in entries]))
        self.body_map.select(le.lesion_key)

    def _update_buttons(self) -> None:
        on = self.current_patient() is not None
        self.pdf_button.setEnabled(on)
        self.csv_button.setEnabled(on)

    # -- report -------------------------------------------------------------------------------

    def export_report(self, suffix: str, path: str | None = None, summary: str | None = None) -> Path | None:
        """Write the chosen patient's report; asked interactively (no `path`): the file, and for a PDF the
        clinician's summary printed on it. The clinic's name, address and phone come from Settings."""
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
        try:
            out = write_patient_report(
                store,
                pid,
                path,
                pdf_writer=html_to_pdf,
                reviewer=self.reviewer() or "",
                summary=summary or "",
                heat_maps=self.heat_maps,
                private=self.private_exports(),
            )
        except (OSError, ValueError, MelaScreenError) as exc:
            QMessageBox.warning(self, "Report not written", f"The report could not be written:\n{exc}")
            return None
        self.report_written.emit(str(out))
        return out
