"""Qt table models over core's values: a run's results and the review queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QFont, QPixmap

from core.store import QueueItem

from .style import DECISION_LOOKS, REVIEW_LABELS, decision_key, qcolor
from .workers import ResultRow

SORT_ROLE = Qt.ItemDataRole.UserRole
DECISION_ROLE = Qt.ItemDataRole.UserRole + 1
ITEM_ROLE = Qt.ItemDataRole.UserRole + 2

THUMB_W, THUMB_H = 80, 60


class ThumbnailCache:
    """Thumbnails from the store, decoded once, on the GUI thread (QPixmap lives there)."""

    def __init__(self, source: Callable[[int], bytes | None] | None):
        self.source = source
        self._pixmaps: dict[int, QPixmap | None] = {}

    def get(self, result_id: int | None) -> QPixmap | None:
        if result_id is None or self.source is None:
            return None
        if result_id not in self._pixmaps:
            data = self.source(result_id)
            pm = None
            if data:
                pm = QPixmap()
                if pm.loadFromData(data):
                    pm = pm.scaled(THUMB_W, THUMB_H, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
                else:
                    pm = None
            self._pixmaps[result_id] = pm
        return self._pixmaps[result_id]


def _decision_cell(key: str, role: int):
    look = DECISION_LOOKS[key]
    if role == Qt.ItemDataRole.DisplayRole:
        return look.label
    if role == Qt.ItemDataRole.BackgroundRole:
        return QBrush(qcolor(look.background))
    if role == Qt.ItemDataRole.ForegroundRole:
        return QBrush(qcolor(look.foreground))
    if role == Qt.ItemDataRole.ToolTipRole:
        return look.hint
    if role == Qt.ItemDataRole.FontRole:
        f = QFont()
        f.setBold(True)
        return f
    if role == Qt.ItemDataRole.TextAlignmentRole:
        return int(Qt.AlignmentFlag.AlignCenter)
    return None


# Sorting by decision puts the most urgent first.
_DECISION_RANK = {"suspicious": 0, "uncertain": 1, "benign": 2, "error": 3}


class _ListTableModel(QAbstractTableModel):
    """A flat table over a Python list: the row/column counts and headers both tables share."""

    COLUMNS: tuple[str, ...] = ()

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None):
        super().__init__(parent)
        self.thumbnails = thumbnails or ThumbnailCache(None)

    def _entries(self) -> list:
        raise NotImplementedError

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._entries())

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None


class ResultsModel(_ListTableModel):
    COLUMNS = ("", "File", "p(melanoma)", "Decision", "Reason", "Source")
    THUMB, FILE, P, DECISION, REASON, SOURCE = range(6)

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None):
        super().__init__(thumbnails, parent)
        self.rows: list[ResultRow] = []

    def _entries(self) -> list:
        return self.rows

    # -- changing the rows -----------------------------------------------------------------

    def set_rows(self, rows: Iterable[ResultRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def append_rows(self, rows: Iterable[ResultRow]) -> None:
        rows = list(rows)
        if not rows:
            return
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()

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
        r = row.result
        col = index.column()
        key = decision_key(r)
        if role == ITEM_ROLE:
            return row
        if role == DECISION_ROLE:
            return key
        if col == self.THUMB:
            if role == Qt.ItemDataRole.DecorationRole:
                return self.thumbnails.get(row.result_id)
            if role == SORT_ROLE:
                return index.row()
            return None
        if col == self.FILE:
            if role == Qt.ItemDataRole.DisplayRole:
                return Path(r.path).name
            if role == Qt.ItemDataRole.ToolTipRole:
                return r.path
            if role == SORT_ROLE:
                return Path(r.path).name.casefold()
        elif col == self.P:
            if role == Qt.ItemDataRole.DisplayRole:
                return "—" if r.p_melanoma is None else f"{r.p_melanoma:.3f}"
            if role == SORT_ROLE:
                return -1.0 if r.p_melanoma is None else float(r.p_melanoma)
            if role == Qt.ItemDataRole.TextAlignmentRole:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif col == self.DECISION:
            if role == SORT_ROLE:
                return _DECISION_RANK[key]
            return _decision_cell(key, role)
        elif col == self.REASON:
            if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
                return r.reason
            if role == SORT_ROLE:
                return r.reason
        elif col == self.SOURCE:
            text = "from earlier run" if r.from_store else "new"
            if role == Qt.ItemDataRole.DisplayRole:
                return text
            if role == Qt.ItemDataRole.ToolTipRole:
                return (
                    "This image (same file contents) was screened before with the same models; "
                    "the stored result is shown instead of screening it again."
                    if r.from_store
                    else "Screened in this run"
                )
            if role == SORT_ROLE:
                return text
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


class QueueModel(_ListTableModel):
    """The review queue (oldest first, as core returns it)."""

    COLUMNS = ("", "File", "Decision", "p(melanoma)", "Queued", "Last review")
    THUMB, FILE, DECISION, P, QUEUED, LAST = range(6)

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None):
        super().__init__(thumbnails, parent)
        self.items: list[QueueItem] = []

    def _entries(self) -> list:
        return self.items

    def set_items(self, items: Iterable[QueueItem]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        col = index.column()
        if role == ITEM_ROLE:
            return item
        if role == DECISION_ROLE:
            return item.decision.value
        if col == self.THUMB and role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(item.result_id)
        if col == self.FILE:
            if role == Qt.ItemDataRole.DisplayRole:
                return Path(item.path).name
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{item.path}\nqueued {item.queued_at[:19].replace('T', ' ')} UTC\n{item.reason}"
        if col == self.DECISION:
            return _decision_cell(item.decision.value, role)
        if col == self.P and role == Qt.ItemDataRole.DisplayRole:
            return "—" if item.p_melanoma is None else f"{item.p_melanoma:.3f}"
        if col == self.QUEUED and role == Qt.ItemDataRole.DisplayRole:
            return item.queued_at[:16].replace("T", " ") + " UTC"
        if col == self.LAST and role == Qt.ItemDataRole.DisplayRole:
            if item.last_review is None:
                return "not reviewed"
            return f"{REVIEW_LABELS.get(item.last_review.decision, item.last_review.decision)} ({item.last_review.reviewer})"
        return None
