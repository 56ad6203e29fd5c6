"""A run's results as a table: highest risk first, each column sorted by its own key, filtered by outcome;
a double-click or Enter opens the case."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from ..models import DecisionFilter, ResultsModel
from ..table_cells import ITEM_ROLE, THUMB_H, THUMB_W, ThumbnailCache
from ..workers import ResultRow
from .case_panel import CaseRef

COLUMN_WIDTHS = {
    ResultsModel.THUMB: THUMB_W + 12,
    ResultsModel.PATIENT: 210,
    ResultsModel.FILE: 150,
    ResultsModel.P: 100,
    ResultsModel.DECISION: 230,
    ResultsModel.LIKELY: 200,
    ResultsModel.SOURCE: 120,
}


class ResultsTable(QTableView):
    open_case = Signal(object)  # CaseRef

    def __init__(self, store_thumbnail, parent=None):
        super().__init__(parent)
        self.results = ResultsModel(ThumbnailCache(store_thumbnail))
        self.proxy = DecisionFilter()
        self.proxy.setSourceModel(self.results)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        # Highest risk first; every column sorts by its SORT_ROLE.
        self.sortByColumn(ResultsModel.P, Qt.SortOrder.DescendingOrder)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setIconSize(QSize(THUMB_W, THUMB_H))
        self.verticalHeader().setDefaultSectionSize(THUMB_H + 6)
        self.verticalHeader().hide()
        self.setWordWrap(False)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in COLUMN_WIDTHS.items():
            header.resizeSection(column, width)
        header.setSectionResizeMode(ResultsModel.REASON, QHeaderView.ResizeMode.Stretch)
        self.doubleClicked.connect(self._open_index)
        self.activated.connect(self._open_index)

    def show_outcomes(self, keys: Iterable[str]) -> None:
        """Only rows with these outcome codes (the filter buttons)."""
        self.proxy.set_shown(keys)

    def _open_index(self, index) -> None:
        row: ResultRow = self.proxy.data(index, ITEM_ROLE)
        if row is not None:
            self.open_case.emit(CaseRef(row.result_id, row.result))

    def visible_rows(self) -> list[ResultRow]:
        return [self.proxy.data(self.proxy.index(i, 0), ITEM_ROLE) for i in range(self.proxy.rowCount())]

    def neighbour(self, ref: CaseRef, step: int) -> CaseRef | None:
        """The case before or after `ref` as sorted and filtered now (N / P in the case tab), selected."""
        rows = self.visible_rows()
        ids = [(r.result_id, r.result.path) for r in rows]
        try:
            i = ids.index((ref.result_id, ref.shown.path))
        except ValueError:
            return None
        j = i + step
        if 0 <= j < len(rows):
            self.selectRow(j)
            return CaseRef(rows[j].result_id, rows[j].result)
        return None
