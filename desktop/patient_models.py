"""The Patients tab's tables as Qt models: the worklist (patients, the most urgent waiting case first) and a
patient's lesions (numbered as pinned on the body map)."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from core import LesionSummary, PatientSummary, outcome, outcome_words

KEY_ROLE = Qt.ItemDataRole.UserRole  # a patient's id (worklist column 0), a lesion's key (lesions column 1)

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


def _p(p: float | None) -> str:
    return "" if p is None else f"{p:.3f}"


def _badge(code, role: int):
    """An outcome's colours and hint, as the other tables draw it (words first, colour second)."""
    o = outcome(code)
    if role == Qt.ItemDataRole.BackgroundRole:
        return QBrush(QColor(o.colour))
    if role == Qt.ItemDataRole.ForegroundRole:
        return QBrush(QColor(o.text_colour))
    if role == Qt.ItemDataRole.ToolTipRole:
        return o.hint
    return None


class _RowsModel(QAbstractTableModel):
    """A read-only table over a list of core's summaries."""

    COLUMNS: tuple[str, ...] = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list = []

    def set_rows(self, rows: Iterable) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def flags(self, index) -> Qt.ItemFlag:
        return Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled


class PatientsModel(_RowsModel):
    COLUMNS = PATIENT_COLUMNS
    BADGE = 2

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        p: PatientSummary = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(p, col)
        if role == KEY_ROLE and col == 0:
            return p.patient_id
        if col == self.BADGE and p.top_decision is not None:
            return _badge(p.top_decision, role)
        return None

    @staticmethod
    def _text(p: PatientSummary, col: int) -> str:
        if col == 2:
            return (p.top_words or outcome_words(p.top_decision)) if p.top_decision is not None else "none waiting"
        return (
            p.patient_id,
            str(p.waiting),
            "",
            _p(p.top_p_malignant),
            str(p.lesions),
            str(p.images),
            p.last_visit.isoformat() if p.last_visit else "",
        )[col]


class LesionsModel(_RowsModel):
    COLUMNS = LESION_COLUMNS
    BADGE = 5

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        le: LesionSummary = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(index.row(), le, col)
        if role == KEY_ROLE and col == 1:
            return le.lesion_key
        if col == self.BADGE:
            return _badge(le.latest_decision, role)
        return None

    @staticmethod
    def _text(row: int, le: LesionSummary, col: int) -> str:
        if col == 5:
            latest = le.latest
            return latest.words if (latest is not None and latest.decision is not None) else "not screened"
        return (
            str(row + 1),  # the lesion's number on the body map
            le.label if le.labelled else "(no lesion id)",
            le.body_site or "not recorded",
            str(le.visits),
            le.last_visit.isoformat() if le.last_visit else "undated",
            "",
            _p(le.latest_p_malignant),
            le.latest_review.words if le.latest_review else "not reviewed",
        )[col]
