"""The review queue as a Qt model: patient first (who, which lesion where, which visit), then the outcome."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush

from core import QueueItem, ScreeningResult, class_name, local_time, review_words, risk_probability

from .style import qcolor
from .table_cells import (
    DECISION_ROLE,
    ITEM_ROLE,
    SORT_ROLE,
    ListTableModel,
    ThumbnailCache,
    outcome_cell,
    p_cell,
    urgency,
)

NOT_FILED = "Not filed under a patient (no sidecar row, patient folder or DICOM id)"


def _patient_tip(a) -> str:
    if a is None:
        return NOT_FILED
    return (
        f"Patient {a.patient_id}"
        + (f", {a.age} years" if a.age is not None else "")
        + (f", sex {a.sex}" if a.sex else "")
        + (f"\nNote: {a.note}" if a.note else "")
    )


def queued_result(item: QueueItem) -> ScreeningResult:
    """A queue row as the result the outcome cells and the case view read (what the queue query holds)."""
    return ScreeningResult(
        path=item.path,
        sha256=item.sha256,
        status="ok",
        decision=item.decision,
        reason=item.reason,
        p_melanoma=item.p_melanoma,
        p_malignant=item.p_malignant,
        likely_class=item.likely_class,
        malignant_class=item.malignant_class,
        band=item.band,
    )


class QueueModel(ListTableModel):
    """The review queue, patient first: who, which lesion where, which visit, then the outcome; the file name
    comes second (full path in its tooltip). Rows come in the order given (core.records.patients.queue_by_patient:
    grouped by patient); the view's proxy sorts any column (the outcome column: a flat risk order)."""

    COLUMNS = ("", "Patient", "Lesion · site", "Visit", "Outcome", "p(malignant)", "File", "Queued", "Last review")
    THUMB, PATIENT, LESION, VISIT, DECISION, P, FILE, QUEUED, LAST = range(9)

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None):
        super().__init__(thumbnails, parent)
        self.items: list[QueueItem] = []
        self.identities: dict = {}  # sha256 -> core.records.patients.AttachedIdentity
        self._cells = {
            self.THUMB: self._thumb_cell,
            self.PATIENT: self._patient_cell,
            self.LESION: self._lesion_cell,
            self.VISIT: self._visit_cell,
            self.DECISION: self._decision_cell,
            self.P: lambda item, _index, role: p_cell(risk_probability(item), role),
            self.FILE: self._file_cell,
            self.QUEUED: self._queued_cell,
            self.LAST: self._last_review_cell,
        }

    def _entries(self) -> list:
        return self.items

    def set_items(self, items: Iterable[QueueItem], identities: dict | None = None) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.identities = dict(identities or {})
        self.endResetModel()

    def identity(self, item: QueueItem):
        return self.identities.get(item.sha256)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == ITEM_ROLE:
            return item
        if role == DECISION_ROLE:
            return item.decision.value
        return self._cells[index.column()](item, index, role)

    def _thumb_cell(self, item: QueueItem, index, role: int):
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(item.result_id)
        if role == SORT_ROLE:
            return index.row()  # the grouped order core gave
        return None

    def _patient_cell(self, item: QueueItem, _index, role: int):
        a = self.identity(item)
        if role == Qt.ItemDataRole.DisplayRole:
            return a.who if a is not None else "no patient"
        if role == Qt.ItemDataRole.ToolTipRole:
            return _patient_tip(a)
        if role == Qt.ItemDataRole.ForegroundRole and a is None:
            return QBrush(qcolor("#9e9e9e"))
        if role == SORT_ROLE:
            return (a.patient_id if a else "\uffff").casefold()
        return None

    def _lesion_cell(self, item: QueueItem, _index, role: int):
        a = self.identity(item)
        if role == Qt.ItemDataRole.DisplayRole:
            if a is None:
                return "—"
            return f"{a.lesion_label} · {a.body_site}" if a.body_site else a.lesion_label
        if role == SORT_ROLE:
            return "" if a is None else f"{a.patient_id}\t{a.lesion_label}"
        return None

    def _visit_cell(self, item: QueueItem, _index, role: int):
        a = self.identity(item)
        dated = a is not None and a.visit_date
        if role == Qt.ItemDataRole.DisplayRole:
            return a.visit_date.isoformat() if dated else "—"
        if role == SORT_ROLE:
            return a.visit_date.isoformat() if dated else ""
        return None

    def _file_cell(self, item: QueueItem, _index, role: int):
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(item.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{item.path}\nqueued {local_time(item.queued_at)}\n{item.reason}"
        if role == SORT_ROLE:
            return Path(item.path).name.casefold()
        return None

    @staticmethod
    def _decision_cell(item: QueueItem, _index, role: int):
        if role == SORT_ROLE:
            return urgency(item.decision.value, item.band, risk_probability(item) or 0.0)
        shown = queued_result(item)
        if role == Qt.ItemDataRole.ToolTipRole and item.likely_class and item.last_review is None:
            base = outcome_cell(shown, None, role)
            return f"{base}\nMost likely: {class_name(item.likely_class)}"
        return outcome_cell(shown, item.last_review, role)

    @staticmethod
    def _queued_cell(item: QueueItem, _index, role: int):
        if role == Qt.ItemDataRole.DisplayRole:
            return local_time(item.queued_at)
        if role == SORT_ROLE:
            return item.queued_at
        return None

    @staticmethod
    def _last_review_cell(item: QueueItem, _index, role: int):
        r = item.last_review
        if role == Qt.ItemDataRole.DisplayRole:
            if r is None:
                return "not reviewed"
            return f"{review_words(r.decision, r.follow_up_months, short=True)} ({r.reviewer})"
        if role == Qt.ItemDataRole.ToolTipRole and r is not None:
            return f"{r.words}\n{r.reviewer}, {local_time(r.created)}" + (f"\n{r.note}" if r.note else "")
        if role == SORT_ROLE:
            return "" if r is None else r.created
        return None
