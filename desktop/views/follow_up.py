"""The Follow-up tab: lesions whose "monitor" interval has run out or runs out by a date (this month's end
by default), with the patient, body site and last visit; exportable as CSV. The list is core's
(core/records/followup.py, the same as `melascreen review due`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.records.followup import FollowUp, due_follow_ups, end_of_month, write_follow_up_csv

COLUMNS = ("Due", "Patient", "Lesion", "Body site", "Last visit", "Interval", "Reviewed", "File")


class FollowUpView(QWidget):
    open_result = Signal(int)  # the reviewed picture's result id
    exported = Signal(str)

    def __init__(self, store_fn: Callable[[], object], today: Callable[[], date] = date.today, parent=None):
        super().__init__(parent)
        self.store_fn = store_fn
        self.today = today
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
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
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
        self.table.cellDoubleClicked.connect(self._open_row)
        self.refresh()

    def cutoff(self) -> date:
        d = self.before.date()
        return date(d.year(), d.month(), d.day())

    def refresh(self) -> None:
        store = self.store_fn()
        today = self.today()
        self.items = due_follow_ups(store, self.cutoff(), today) if store is not None else []
        overdue = sum(1 for f in self.items if f.overdue(today))
        self.title.setText(
            f"Follow-up: {len(self.items)} lesion{'s' if len(self.items) != 1 else ''} due by "
            f"{self.cutoff().isoformat()}" + (f" ({overdue} overdue)" if overdue else "")
            if store is not None
            else "Follow-up: no results file open"
        )
        self.table.setRowCount(len(self.items))
        for row, f in enumerate(self.items):
            cells = (
                f.due.isoformat() + ("  overdue" if f.overdue(today) else ""),
                f.patient_id or "no patient",
                f.lesion_label or "—",
                f.body_site or "—",
                f.last_visit.isoformat() if f.last_visit else "—",
                f"monitor, {f.months} mo",
                f"{f.reviewed.isoformat()}, {f.reviewer}",
                Path(f.path).name,
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == len(cells) - 1:
                    item.setToolTip(f.path)
                if col == 0 and f.overdue(today):
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.table.setItem(row, col, item)
        self.export_button.setEnabled(bool(self.items))

    def export_csv(self, path: str | None = None) -> Path | None:
        if path is None:
            name = f"melascreen-follow-up-{self.cutoff().isoformat()}.csv"
            path, _ = QFileDialog.getSaveFileName(self, "Export the follow-up list", name, "CSV (*.csv)")
            if not path:
                return None
        out = write_follow_up_csv(self.items, path, self.today(), private=self.private_exports())
        self.exported.emit(str(out))
        return out

    def _open_row(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.items):
            self.open_result.emit(self.items[row].result_id)
