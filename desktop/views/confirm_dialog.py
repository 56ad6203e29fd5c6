"""Entering a confirmed diagnosis from the case view: diagnosis, how it was confirmed, when, a note.

What it names: the case's lesion (every picture of it) when the picture is filed under a patient, else
the picture itself. Who entered it is the reviewer's name, as for reviews. Recording is core.records.evidence's
add_confirmed (append-only: a correction is a newer entry).
"""

from __future__ import annotations

import html
from datetime import date

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from core import DIAGNOSES, METHODS, diagnosis_words


class ConfirmDiagnosisDialog(QDialog):
    def __init__(self, what: str, entered_by: str, suggested: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Record a confirmed diagnosis")
        self.setMinimumWidth(520)
        intro = QLabel(
            f"<b>For {what}.</b><br>Appended to the results file with your name; a correction is a newer entry "
            "(nothing is overwritten). The audit (Evidence tab) counts it."
        )
        intro.setWordWrap(True)
        self.diagnosis = QComboBox()
        for code in DIAGNOSES:
            self.diagnosis.addItem(diagnosis_words(code), code)
        if suggested in DIAGNOSES:
            self.diagnosis.setCurrentIndex(self.diagnosis.findData(suggested))
        self.method = QComboBox()
        for code, words in METHODS.items():
            self.method.addItem(words, code)
        self.when = QDateEdit(QDate.currentDate())
        self.when.setCalendarPopup(True)
        self.when.setDisplayFormat("yyyy-MM-dd")
        self.when.setMaximumDate(QDate.currentDate())
        self.date_known = QCheckBox("date known")
        self.date_known.setChecked(True)
        self.date_known.toggled.connect(self.when.setEnabled)
        date_row = QWidget()
        dl = QHBoxLayout(date_row)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.when)
        dl.addWidget(self.date_known, 1)
        self.note = QLineEdit()
        self.note.setPlaceholderText("optional, e.g. the pathology report's number")
        no_name = "<span style='color:#c62828'>no name set: set it in Settings</span>"
        who = QLabel(f"<b>{html.escape(entered_by)}</b>" if entered_by else no_name)
        form = QFormLayout()
        form.addRow("Diagnosis:", self.diagnosis)
        form.addRow("Confirmed by:", self.method)
        form.addRow("Date:", date_row)
        form.addRow("Note:", self.note)
        form.addRow("Entered by:", who)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(bool(entered_by))
        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(buttons)

    def values(self) -> dict:
        """Keyword arguments for core.records.evidence.add_confirmed (besides the store, who and what it names)."""
        d = self.when.date()
        when = date(d.year(), d.month(), d.day()) if self.date_known.isChecked() else None
        return {
            "diagnosis": self.diagnosis.currentData(),
            "method": self.method.currentData(),
            "confirmed_on": when,
            "note": self.note.text().strip(),
        }
