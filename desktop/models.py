"""The results table: a run's results as a Qt model, and the filter-and-sort proxy over it (the review queue's
model: desktop/queue_model.py; the cells both draw alike: desktop/table_cells.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush

from core import Review, ScreeningResult, risk_probability

from .style import DECISION_LOOKS, NOT_SCREENED_KEY, decision_key, qcolor
from .table_cells import (
    DECISION_ROLE,
    ITEM_ROLE,
    SORT_ROLE,
    ListTableModel,
    ThumbnailCache,
    likely_cell,
    outcome_cell,
    p_cell,
    urgency,
)
from .workers import ResultRow, case_shas

SOURCE_TIPS = {
    True: (
        "This image (same file contents) was screened before with the same models; "
        "the stored result is shown instead of screening it again."
    ),
    False: "Screened in this run",
}


def _risk_sort(result: ScreeningResult) -> float:
    """p(malignant) for sorting (p(melanoma) for old rows); not screened lowest."""
    p = risk_probability(result)
    return -1.0 if (p is None or not result.ok) else float(p)


class ResultsModel(ListTableModel):
    """A run's results. The view sorts it (DecisionFilter) by p(malignant), highest first, by default."""

    COLUMNS = (
        "",
        "Patient · lesion · visit",
        "Outcome / decision",
        "Most likely",
        "p(malignant)",
        "File",
        "Reason",
        "Source",
    )
    THUMB, PATIENT, DECISION, LIKELY, P, FILE, REASON, SOURCE = range(8)

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None):
        super().__init__(thumbnails, parent)
        self.rows: list[ResultRow] = []
        self.reviews: dict[str, Review] = {}  # sha256 -> the image's latest review
        self.identity_fn: Callable[[list[str]], dict] | None = None  # sha256s -> where they are filed
        self._identities: dict[str, object] = {}  # sha256 -> core.records.patients.AttachedIdentity (or None)
        self._cells = {
            self.THUMB: self._thumb_cell,
            self.PATIENT: self._patient_cell,
            self.DECISION: self._decision_cell,
            self.LIKELY: lambda row, _i, role: likely_cell(row.result.likely_class, row.result.class_probs, role),
            self.P: self._p_cell,
            self.FILE: self._file_cell,
            self.REASON: self._reason_cell,
            self.SOURCE: self._source_cell,
        }

    def identity(self, result: ScreeningResult):
        """Where the picture is filed (looked up once per image; files are filed as a run goes)."""
        sha = result.sha256
        if not sha or self.identity_fn is None or not result.is_case:
            return None
        if sha not in self._identities:
            pending = [
                r.result.sha256 for r in self.rows if r.result.sha256 and r.result.sha256 not in self._identities
            ]
            found = self.identity_fn(pending)
            self._identities.update({s: found.get(s) for s in pending})
        return self._identities.get(sha)

    def forget_identities(self) -> None:
        self._identities = {}

    def _entries(self) -> list:
        return self.rows

    # -- changing the rows -----------------------------------------------------------------

    def set_rows(
        self, rows: Iterable[ResultRow], reviews: dict[str, Review] | None = None, identities: dict | None = None
    ) -> None:
        """`identities`: where the rows' cases are filed, read on a worker (case_shas); else looked up here."""
        self.beginResetModel()
        self.rows = list(rows)
        self._identities = {}
        self._know(self.rows, identities)
        if reviews is not None:
            self.reviews = dict(reviews)
        self.endResetModel()

    def append_rows(self, rows: Iterable[ResultRow], identities: dict | None = None) -> None:
        rows = list(rows)
        if not rows:
            return
        self._know(rows, identities)
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()

    def _know(self, rows: list[ResultRow], identities: dict | None) -> None:
        if identities is not None:  # read for every case among `rows`: the ones missing are filed nowhere
            self._identities.update({s: identities.get(s) for s in case_shas(rows)})

    def set_reviews(self, reviews: dict[str, Review]) -> None:
        """The latest review per image (ReviewStore.latest_reviews): the table shows the clinician's decision."""
        self.reviews = dict(reviews)
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(self.COLUMNS) - 1))

    def add_review(self, review: Review) -> None:
        if review.sha256:
            self.set_reviews({**self.reviews, review.sha256: review})

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in DECISION_LOOKS}
        for r in self.rows:
            out[decision_key(r.result)] += 1
        return out

    # -- Qt model API ------------------------------------------------------------------------

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role == ITEM_ROLE:
            return row
        if role == DECISION_ROLE:
            return decision_key(row.result)
        return self._cells[index.column()](row, index, role)

    def _thumb_cell(self, row: ResultRow, index, role: int):
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(row.result_id)
        if role == SORT_ROLE:
            return index.row()
        return None

    def _file_cell(self, row: ResultRow, _index, role: int):
        r = row.result
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(r.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            return r.path
        if role == SORT_ROLE:
            return Path(r.path).name.casefold()
        return None

    def _patient_cell(self, row: ResultRow, _index, role: int):
        r = row.result
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(qcolor("#9e9e9e")) if (r.is_case and self.identity(r) is None) else None
        if role not in (Qt.ItemDataRole.DisplayRole, SORT_ROLE, Qt.ItemDataRole.ToolTipRole):
            return None
        a = self.identity(r)
        if role == Qt.ItemDataRole.DisplayRole:
            if a is None:
                return "no patient" if r.is_case else "—"
            where = " · ".join(x for x in (a.lesion_label, a.body_site or "") if x)
            when = a.visit_date.isoformat() if a.visit_date else "visit date unknown"
            return f"{a.who}\n{where} · {when}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return None if a is None else f"Patient {a.patient_id}, lesion {a.lesion_label}\n{r.path}"
        return "\uffff" if a is None else f"{a.patient_id}\t{a.lesion_label}\t{a.visit_date or ''}"

    def _p_cell(self, row: ResultRow, _index, role: int):
        r = row.result
        if role == SORT_ROLE:
            return _risk_sort(r)
        if role == Qt.ItemDataRole.ToolTipRole and r.p_melanoma is not None:
            return f"p(malignant) {risk_probability(r):.4f}; p(melanoma) {r.p_melanoma:.4f}"
        return p_cell(risk_probability(r), role)

    def _decision_cell(self, row: ResultRow, _index, role: int):
        r = row.result
        if role == SORT_ROLE:  # most urgent first when sorted ascending; then by p(malignant)
            key = decision_key(r)
            return urgency(key if key != NOT_SCREENED_KEY else None, r.band, max(_risk_sort(r), 0.0))
        review = self.reviews.get(r.sha256) if r.sha256 else None
        return outcome_cell(r, review, role)

    @staticmethod
    def _reason_cell(row: ResultRow, _index, role: int):
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, SORT_ROLE):
            return row.result.reason
        return None

    @staticmethod
    def _source_cell(row: ResultRow, _index, role: int):
        from_store = bool(row.result.from_store)
        if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
            return "from earlier run" if from_store else "new"
        if role == Qt.ItemDataRole.ToolTipRole:
            return SOURCE_TIPS[from_store]
        return None


class DecisionFilter(QSortFilterProxyModel):
    """Sorts by each column's SORT_ROLE and shows only the chosen decisions."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self._shown = set(DECISION_LOOKS)

    def set_shown(self, keys: Iterable[str]) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter is deprecated there
            self.beginFilterChange()
            self._shown = set(keys)
            self.endFilterChange()
        else:
            self._shown = set(keys)
            self.invalidateFilter()

    @property
    def shown(self) -> set[str]:
        return set(self._shown)

    def filterAcceptsRow(self, source_row, source_parent) -> bool:
        idx = self.sourceModel().index(source_row, 0, source_parent)
        return self.sourceModel().data(idx, DECISION_ROLE) in self._shown
