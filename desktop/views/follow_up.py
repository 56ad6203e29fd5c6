"""The Follow-up tab: lesions whose "monitor" interval has run out or runs out by a date (this month's end
by default), with the patient, body site and last visit; exportable as CSV. The list is core's
(core/records/followup.py, the same as `melascreen review due`), read on a worker and shown through a Qt model;
its CSV is written on a worker too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QDate, QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core import FollowUp, ReviewStore, due_follow_ups, end_of_month, write_follow_up_csv

from ..workers import Worker, WorkerPool

COLUMNS = ("Due", "Patient", "Lesion", "Body site", "Last visit", "Interval", "Reviewed", "File")


class FollowUpModel(QAbstractTableModel):
    """The lesions due, one row each; `today` decides which are overdue."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.items: list[FollowUp] = []
        self.today = date.today()

    def set_items(self, items: list[FollowUp], today: date) -> None:
        self.beginResetModel()
        self.items, self.today = list(items), today
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        f, col = self.items[index.row()], index.column()
        overdue = f.overdue(self.today)
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                f.due.isoformat() + ("  overdue" if overdue else ""),
                f.patient_id or "no patient",
                f.lesion_label or "—",
                f.body_site or "—",
                f.last_visit.isoformat() if f.last_visit else "—",
                f"monitor, {f.months} mo",
                f"{f.reviewed.isoformat()}, {f.reviewer}",
                Path(f.path).name,
            )[col]
        if role == Qt.ItemDataRole.ToolTipRole and col == len(COLUMNS) - 1:
            return f.path
        if role == Qt.ItemDataRole.ForegroundRole and col == 0 and overdue:
            return QBrush(Qt.GlobalColor.darkRed)
        return None


class FollowUpView(QWidget):
    open_result = Signal(int)  # the reviewed picture's result id
    exported = Signal(str)
    refreshed = Signal()  # the list read on a worker is on screen

    def __init__(
        self,
        store_fn: Callable[[], ReviewStore | None],
        today: Callable[[], date] = date.today,
        parent=None,
        pool: WorkerPool | None = None,
    ):
        super().__init__(parent)
        self.store_fn = store_fn
        self.today = today
        self.pool = pool if pool is not None else WorkerPool(max_threads=1)
        self._request = 0  # the latest refresh: an older list arriving late is dropped
        self.private_exports: Callable[[], bool] = lambda: True  # the app's Settings (share exported files)
        self.items: list[FollowUp] = []
        self.title = QLabel()
        self.title.setStyleSheet("font-size:14px; font-weight:bold;")
        self.before = QDateEdit()
        self.before.setCalendarPopup(True)
        self.before.setDisplayFormat("yyyy-MM-dd")
        end = end_of_month(today())
        self.before.setDate(QDate(end.year, end.month, end.day))
        self.before.setToolTip("Lesions due on or before this day (default: the end of this month)")
        self.refresh_button = QPushButton("Refresh")
        self.export_button = QPushButton("Export CSV…")
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(QLabel("Due by:"))
        top.addWidget(self.before)
        top.addWidget(self.refresh_button)
        top.addWidget(self.export_button)
        self.model = FollowUpModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        hint = QLabel(
            "A lesion is due when its latest review says “monitor” and the months since the reviewed visit have run "
            "out. A lesion seen again since is not listed: its new pictures wait in the review queue. "
            "Double-click a row to open the picture that was reviewed."
        )
        hint.setWordWrap(True)
        hint.setStyleSheet("color:#455a64;")
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        lay.addWidget(hint)
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.before.dateChanged.connect(lambda _: self.refresh())
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.table.doubleClicked.connect(lambda index: self._open_row(index.row(), index.column()))
        self.refresh()

    def cutoff(self) -> date:
        d = self.before.date()
        return date(d.year(), d.month(), d.day())

    def refresh(self) -> Worker | None:
        """Read the lesions due by the chosen day on a worker; `refreshed` follows once they are shown."""
        store, today, cutoff = self.store_fn(), self.today(), self.cutoff()
        self._request += 1
        if store is None:
            self._show(self._request, [], today, cutoff, False)
            return None
        request = self._request
        job = lambda report, should_stop: (request, due_follow_ups(store, cutoff, today), today, cutoff, True)  # noqa: E731
        worker = Worker(job, name="follow-up")
        worker.signals.result.connect(self._arrived)  # a bound method: dropped if this view is gone
        return self.pool.start(worker)

    def _arrived(self, value: tuple) -> None:
        self._show(*value)

    def _show(self, request: int, items: list[FollowUp], today: date, cutoff: date, store_open: bool) -> None:
        if request != self._request:
            return
        self.items = list(items)
        overdue = sum(1 for f in self.items if f.overdue(today))
        self.title.setText(
            f"Follow-up: {len(self.items)} lesion{'s' if len(self.items) != 1 else ''} due by "
            f"{cutoff.isoformat()}" + (f" ({overdue} overdue)" if overdue else "")
            if store_open
            else "Follow-up: no results file open"
        )
        self.model.set_items(self.items, today)
        self.export_button.setEnabled(bool(self.items))
        self.refreshed.emit()

    def export_csv(self, path: str | None = None) -> Worker | None:
        """Write the list shown as CSV on a worker; `exported(path)` follows (None: no file was chosen)."""
        if path is None:
            name = f"melascreen-follow-up-{self.cutoff().isoformat()}.csv"
            path, _ = QFileDialog.getSaveFileName(self, "Export the follow-up list", name, "CSV (*.csv)")
            if not path:
                return None
        items, today, private, where = list(self.items), self.today(), self.private_exports(), path
        write = lambda report, should_stop: write_follow_up_csv(items, where, today, private=private)  # noqa: E731
        worker = Worker(write, name="follow-up CSV")
        worker.signals.result.connect(self._written)  # bound methods: dropped if this view is gone
        worker.signals.failed.connect(self._not_written)
        return self.pool.start(worker)

    def _written(self, out: Path) -> None:
        self.exported.emit(str(out))

    def _not_written(self, exc: BaseException) -> None:  # the words name the file and the cause (FileWriteError)
        QMessageBox.warning(self, "Export failed", f"The follow-up list could not be written:\n{exc}")

    def _open_row(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.items):
            self.open_result.emit(self.items[row].result_id)
