"""The review queue: review and suspicious results not yet reviewed, patient first.

Grouped by patient (patients with the highest-risk waiting case first), each patient's lesions inside,
then the lesion's pictures, oldest visit first, so two visits of one lesion stand side by side; a flat
highest-risk-first order is one tick away. Pictures that are not dermoscopy are never here (they are
listed as images to check on the Screening tab).

An image reviewed before (under any run, confidence or bundle) is not queued again: its review
follows it. Every column sorts (click its header).

Works without the mouse: N / P next and previous case, 1–5 a decision (2 = monitor, in the months
shown beside it), E the note (Esc back),
Ctrl+Enter save, H heat map on/off, + / − / 0 zoom. A saved case leaves the queue and the next
one opens.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QItemSelectionModel, QSize, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core import ReviewStore, identities_of, queue_by_patient

from ..queue_model import QueueModel, queued_result
from ..table_cells import ITEM_ROLE, SORT_ROLE, THUMB_H, THUMB_W, ThumbnailCache
from ..workers import Worker, WorkerPool
from .case_panel import CasePanel, CaseRef

KEYS_HELP = (
    "Keys: N / P next / previous · 1 no action · 2 monitor (then the months: 2 1 2 = 12) · 3 excise · 4 refer · "
    "5 retake · E note (Esc back) · "
    "Ctrl+Enter save · H heat map · + / − / 0 zoom"
)


class ReviewQueueView(QWidget):
    queue_changed = Signal(int)  # cases waiting
    refreshed = Signal()  # the queue read on a worker is on screen

    def __init__(
        self,
        store_fn: Callable[[], ReviewStore | None],
        pool: WorkerPool,
        reviewer: Callable[[], str | None],
        opacity: float = 0.45,
        parent=None,
    ):
        super().__init__(parent)
        self.store_fn = store_fn
        self.pool = pool
        self._asked = 0  # the latest refresh: a queue read for an older one is dropped
        self._reading = False  # a refresh is under way: a row chosen meanwhile is chosen in the new queue
        self._wanted_row: int | None = None
        self._then: list[Callable[[], None]] = []  # called once the queue asked for last is on screen
        self.model = QueueModel(ThumbnailCache(self._thumbnail))
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = self._queue_table()
        self.title = QLabel()
        self.title.setStyleSheet("font-size:14px; font-weight:bold;")
        self.include_reviewed = QCheckBox("Show reviewed cases too")
        self.include_reviewed.setToolTip(
            "Reviewed cases leave the queue; tick this to see them and add another review."
        )
        self.flat_order = QCheckBox("Highest risk first (not by patient)")
        self.flat_order.setToolTip("One list by risk instead of grouped by patient, lesion and visit")
        self.refresh_button = QPushButton("Refresh")
        self.help = QLabel(KEYS_HELP)
        self.help.setStyleSheet("color:#455a64;")
        self.help.setWordWrap(True)
        self.panel = CasePanel(store_fn, pool, reviewer, opacity)
        self.panel.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.refresh_button)
        left.addLayout(top)
        options = QHBoxLayout()
        options.addWidget(self.include_reviewed)
        options.addWidget(self.flat_order)
        options.addStretch(1)
        left.addLayout(options)
        left.addWidget(self.table, 1)
        left_w = QWidget()
        left_w.setLayout(left)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left_w)
        split.addWidget(self.panel)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 5)
        split.setSizes([760, 900])
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.help)
        self.table.selectionModel().currentRowChanged.connect(self._open_current)
        self.include_reviewed.toggled.connect(lambda _: self.refresh())
        self.flat_order.toggled.connect(self._set_order)
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.panel.reviewed.connect(self._after_review)
        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence("N"), self, self.next_case, context=ctx)
        QShortcut(QKeySequence("P"), self, self.previous_case, context=ctx)
        self.refresh()

    def _queue_table(self) -> QTableView:
        """The queue, patient first; sorted by any column (the thumbnail column: core's order, by patient)."""
        table = QTableView()
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(QueueModel.THUMB, Qt.SortOrder.AscendingOrder)  # core's order: by patient
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setDefaultSectionSize(THUMB_H + 6)
        table.verticalHeader().hide()
        table.setIconSize(QSize(THUMB_W, THUMB_H))
        # Who and what at full width; the file name takes the rest (elided, full path in its tooltip).
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(QueueModel.FILE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(QueueModel.LAST, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)  # narrow screens
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # file names keep their ends
        table.setWordWrap(False)
        table.setColumnHidden(QueueModel.QUEUED, True)  # the tooltip has the time
        table.setMinimumWidth(420)
        return table

    def _thumbnail(self, result_id: int) -> bytes | None:
        store = self.store_fn()
        return None if store is None else store.thumbnail(result_id)

    # -- the queue ---------------------------------------------------------------------------

    def refresh(self, keep_row: int | None = None, then: Callable[[], None] | None = None) -> Worker | None:
        """Read the queue again on a worker and show it; select `keep_row` (clamped), else the case open now,
        else the first. `then()` runs once it is on screen (`refreshed` follows too)."""
        store = self.store_fn()
        current = self.panel.current.result_id if self.panel.current else None
        self._asked += 1
        if then is not None:
            self._then.append(then)
        if store is None:
            self._show_queue((self._asked, keep_row, current, False, [], {}, []))
            return None
        asked, include = self._asked, self.include_reviewed.isChecked()

        def read(report, should_stop):
            items = store.queue(include_reviewed=include)
            identities = identities_of(store, [i.sha256 for i in items])
            return asked, keep_row, current, True, items, identities, queue_by_patient(items, identities)

        self._reading = True
        worker = Worker(read, name="review queue")
        worker.signals.result.connect(self._show_queue)  # a bound method: dropped if this view is gone
        return self.pool.start(worker)

    def _show_queue(self, read: tuple) -> None:
        asked, keep_row, current, store_open, items, identities, grouped = read
        if asked != self._asked:
            return
        self._reading = False
        self.model.thumbnails = ThumbnailCache(self._thumbnail)
        self.model.set_items(grouped, identities)
        self.table.setColumnHidden(QueueModel.LAST, not self.include_reviewed.isChecked())
        waiting = sum(1 for i in items if i.last_review is None)
        patients = len({identities[i.sha256].patient_id for i in items if i.sha256 in identities})
        order = "highest risk first" if self.flat_order.isChecked() else f"{patients} patients, by risk"
        self.title.setText(
            f"Review queue: {waiting} case{'s' if waiting != 1 else ''} waiting ({order})"
            if store_open
            else "Review queue: no results file open"
        )
        self.queue_changed.emit(waiting)
        wanted, self._wanted_row = self._wanted_row, None
        if not items:
            self.panel.clear("Nothing to review. Review and suspicious results appear here after screening.")
        else:
            row = 0
            if wanted is not None:
                row = min(wanted, len(items) - 1)
            elif keep_row is not None:
                row = min(keep_row, len(items) - 1)
            elif current is not None:
                ids = [
                    self.proxy.data(self.proxy.index(i, 0), ITEM_ROLE).result_id for i in range(self.proxy.rowCount())
                ]
                row = ids.index(current) if current in ids else 0
            self.select_row(row)
        then, self._then = self._then, []
        for call in then:
            call()
        self.refreshed.emit()

    def _set_order(self, flat: bool) -> None:
        if flat:
            self.table.sortByColumn(QueueModel.DECISION, Qt.SortOrder.AscendingOrder)  # most urgent first
        else:
            self.table.sortByColumn(QueueModel.THUMB, Qt.SortOrder.AscendingOrder)
        self.refresh()

    def select_row(self, row: int) -> None:
        """Select row `row` of the table as sorted now (while the queue is being read: of the queue read)."""
        if self._reading:
            self._wanted_row = row
            return
        idx = self.proxy.index(row, QueueModel.PATIENT)  # scrolls to the patient, never past it
        self.table.selectionModel().setCurrentIndex(
            idx, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        )
        self.table.scrollTo(idx)
        self._open_current(idx, None, force=True)

    def current_row(self) -> int:
        idx = self.table.currentIndex()
        return idx.row() if idx.isValid() else -1

    def _open_current(self, current, _previous, force: bool = False) -> None:
        if not current.isValid():
            return
        item = self.proxy.data(current, ITEM_ROLE)
        if not force and self.panel.current is not None and self.panel.current.result_id == item.result_id:
            return
        self.panel.open(CaseRef(item.result_id, queued_result(item)))

    def next_case(self) -> None:
        row = self.current_row()
        if row + 1 < self.proxy.rowCount():
            self.select_row(row + 1)

    def previous_case(self) -> None:
        row = self.current_row()
        if row > 0:
            self.select_row(row - 1)

    def _after_review(self, result_id: int, review) -> None:
        row = self.current_row()
        if self.include_reviewed.isChecked():
            self.refresh()  # stays on this case; its history shows the new review
            return
        # The reviewed case leaves the queue: the one after it moves into its row.
        self.refresh(keep_row=max(row, 0))
        self.panel.setFocus()
