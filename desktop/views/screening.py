"""Screening a folder: choose or drop it, watch progress, cancel, read the results table.

The view only shows and asks; the controller (desktop/controllers/screening.py) runs the screening job and
feeds the view. Its words: run_words.py; what is not a patient's case, below the table: not_cases.py.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core import MALIGNANCY, NOT_DERMOSCOPY, NOT_SCREENED, RiskScope, RunInfo, RunSummary, Thresholds

from ..style import DECISION_LOOKS, DECISION_ORDER
from ..workers import ResultRow, ScreeningBatch
from .case_panel import CaseRef
from .gate_legend import GateLegend
from .not_cases import NotCasesPanel
from .results_table import ResultsTable
from .run_words import finished_words, format_duration, run_label, stored_run_words


class ScreeningView(QWidget):
    choose_folder = Signal()
    screen_requested = Signal(str, bool)  # folder, recursive
    cancel_requested = Signal()
    open_case = Signal(object)  # CaseRef
    run_selected = Signal(int)
    export_csv = Signal()
    export_report = Signal()
    export_pdf = Signal()
    open_settings = Signal()
    confidence_chosen = Signal(object)  # a trial confidence (float), or None: the clinic's standard

    def __init__(self, store_thumbnail, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.folder: str = ""
        self.running = False
        self.model_ready = False
        self.current_run_id: int | None = None
        lay = QVBoxLayout(self)
        lay.addWidget(self._banner())
        lay.addLayout(self._folder_row())
        lay.addWidget(self._progress_row())
        lay.addWidget(self.summary_label)
        lay.addLayout(self._chips_row())
        lay.addWidget(self._legend_row())
        lay.addWidget(self._results(store_thumbnail), 1)
        self.set_model_state("loading", "Loading the models…")
        self._update_counts()
        self._update_buttons()

    # -- building, top to bottom ----------------------------------------------------------------

    def _banner(self) -> QFrame:
        """The models' state (loading, missing, an error) with the way to Settings."""
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner_button = QPushButton("Open Settings…")
        self.banner_button.clicked.connect(self.open_settings)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_button)
        self.banner_frame = QFrame()
        self.banner_frame.setLayout(banner_row)
        return self.banner_frame

    def _folder_row(self) -> QHBoxLayout:
        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.clicked.connect(self.choose_folder)
        self.folder_label = QLabel("No folder chosen: click “Choose folder…” or drop a folder here.")
        self.folder_label.setStyleSheet("color:#37474f;")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long path must not widen the window; the full path is in the tooltip.
        self.folder_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.recursive = QCheckBox("Include subfolders")
        self.screen_button = QPushButton("Screen")
        self.screen_button.setStyleSheet("font-weight:bold; padding:4px 18px;")
        self.screen_button.clicked.connect(self._request_screen)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._request_cancel)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.choose_button)
        folder_row.addWidget(self.folder_label, 1)
        folder_row.addWidget(self.recursive)
        folder_row.addWidget(self.screen_button)
        folder_row.addWidget(self.cancel_button)
        return folder_row

    def _progress_row(self) -> QWidget:
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.progress.setMinimumWidth(240)
        self.progress_label = QLabel()
        progress_row = QHBoxLayout()
        progress_row.setContentsMargins(0, 0, 0, 0)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.progress_label, 2)
        self.progress_widget = QWidget()
        self.progress_widget.setLayout(progress_row)
        self.progress_widget.hide()  # shown once there is a run to show
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        return self.progress_widget

    def _filter_button(self, key: str) -> QPushButton:
        look = DECISION_LOOKS[key]
        b = QPushButton()
        b.setCheckable(True)
        b.setChecked(True)
        b.setToolTip(f"Show or hide “{look.name.format(cls='…')}” results: {look.hint}")
        b.setStyleSheet(
            f"QPushButton {{ border:2px solid {look.colour}; border-radius:4px; padding:3px 10px; }}"
            f"QPushButton:checked {{ background:{look.colour}; color:{look.text_colour}; font-weight:bold; }}"
        )
        if key == NOT_DERMOSCOPY.code:  # not a patient's case: listed under "Images to check"
            b.setChecked(False)
        b.toggled.connect(self._apply_filter)
        return b

    def _chips_row(self) -> QHBoxLayout:
        """Counts and filter (one toggle per outcome, with its count), the runs list and the exports."""
        self.filter_buttons: dict[str, QPushButton] = {}
        chips = QHBoxLayout()
        chips.addWidget(QLabel("Show:"))
        for key in DECISION_ORDER:
            self.filter_buttons[key] = self._filter_button(key)
            chips.addWidget(self.filter_buttons[key])
        chips.addStretch(1)
        self.runs_combo = QComboBox()
        self.runs_combo.setMinimumWidth(220)
        self.runs_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.runs_combo.setMinimumContentsLength(28)
        self.runs_combo.setToolTip("Open the results of an earlier run from the results file")
        self.runs_combo.activated.connect(self._on_run_chosen)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self.export_csv)
        self.report_button = QPushButton("HTML report…")
        self.report_button.clicked.connect(self.export_report)
        self.pdf_button = QPushButton("PDF report…")
        self.pdf_button.clicked.connect(self.export_pdf)
        chips.addWidget(QLabel("Runs:"))
        chips.addWidget(self.runs_combo)
        chips.addWidget(self.csv_button)
        chips.addWidget(self.report_button)
        chips.addWidget(self.pdf_button)
        return chips

    def _legend_row(self) -> GateLegend:
        self.gate_legend = GateLegend()
        self.gate_legend.confidence_chosen.connect(self.confidence_chosen)
        self.legend, self.confidence_combo = self.gate_legend.legend, self.gate_legend.confidence_combo
        return self.gate_legend

    def _results(self, store_thumbnail) -> QSplitter:
        """The results table over what is not a patient's case (pictures to check, files not screened)."""
        table_box = QVBoxLayout()
        table_box.setContentsMargins(0, 0, 0, 0)
        self.table = ResultsTable(store_thumbnail)
        self.model, self.proxy = self.table.results, self.table.proxy
        self.table.open_case.connect(self.open_case)
        self._apply_filter()
        table_box.addWidget(self.table, 1)
        self.open_hint = QLabel("Double-click or press Enter on a row to open the case with its heat map.")
        self.open_hint.setStyleSheet("color:#455a64;")
        table_box.addWidget(self.open_hint)
        table_w = QWidget()
        table_w.setLayout(table_box)
        self.apart = NotCasesPanel()
        self.apart.open_case.connect(self.open_case)
        # The panel's parts, by the names the tests and screenshots use.
        self.failures_widget, self.filing_label = self.apart, self.apart.filing_label
        self.failures, self.to_check, self.identity_problems = (
            self.apart.failures,
            self.apart.to_check,
            self.apart.identity_problems,
        )
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(table_w)
        split.addWidget(self.apart)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 0)
        split.setChildrenCollapsible(False)
        return split

    # -- state -----------------------------------------------------------------------------

    def set_model_state(self, state: str, text: str) -> None:
        """state: loading / ready / missing / error."""
        self.model_ready = state == "ready"
        colours = {"loading": "#e3f2fd", "ready": "#e8f5e9", "missing": "#fff3e0", "error": "#ffebee"}
        self.banner.setText(text)
        self.banner_frame.setStyleSheet(f"QFrame {{ background:{colours.get(state, '#eeeeee')}; border-radius:4px; }}")
        self.banner_button.setVisible(state in ("missing", "error"))
        self.banner_frame.setVisible(state != "ready")
        self._update_buttons()

    def set_folder(self, folder: str) -> None:
        self.folder = folder
        self.folder_label.setText(folder or "No folder chosen")
        self.folder_label.setToolTip(folder)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.screen_button.setEnabled(self.model_ready and bool(self.folder) and not self.running)
        self.choose_button.setEnabled(not self.running)
        self.recursive.setEnabled(not self.running)
        self.cancel_button.setEnabled(self.running)
        self.runs_combo.setEnabled(not self.running)
        has_rows = bool(self.model.rows) and self.current_run_id is not None
        self.csv_button.setEnabled(has_rows and not self.running)
        self.report_button.setEnabled(has_rows and not self.running)
        self.pdf_button.setEnabled(has_rows and not self.running)

    def set_legend(
        self,
        thresholds: Thresholds | None,
        scope: RiskScope = MALIGNANCY,
        confidence: float | None = None,
        trial: bool = False,
    ) -> None:
        self.gate_legend.set_legend(thresholds, scope, confidence, trial)
        self.legend_thresholds = thresholds  # what the legend says now (tests compare it with the rows)

    def set_runs(self, runs: list[RunInfo]) -> None:
        self.runs_combo.blockSignals(True)
        self.runs_combo.clear()
        if not runs:
            self.runs_combo.addItem("no runs yet", None)
        for r in runs:
            self.runs_combo.addItem(run_label(r), r.id)
            self.runs_combo.setItemData(
                self.runs_combo.count() - 1, f"{run_label(r)}\n{r.folder}", Qt.ItemDataRole.ToolTipRole
            )
        if self.current_run_id is not None:
            i = self.runs_combo.findData(self.current_run_id)
            if i >= 0:
                self.runs_combo.setCurrentIndex(i)
        self.runs_combo.blockSignals(False)

    # -- a run -----------------------------------------------------------------------------

    def run_started(self, folder: str) -> None:
        self.progress_widget.show()
        self.running = True
        self.current_run_id = None
        self.set_folder(folder)
        self.model.set_rows([])
        self.apart.clear()
        self.progress.setRange(0, 0)  # busy until the first file is done (scanning)
        self.progress_label.setText("Looking for files…")
        self.summary_label.setText("")
        self._update_counts()
        self._update_buttons()

    def add_batch(self, batch: ScreeningBatch) -> None:
        self.model.append_rows(batch.rows, batch.identities)
        self.apart.add_rows(batch.rows)
        self.progress.setRange(0, max(batch.total, 1))
        self.progress.setValue(batch.done)
        eta = (
            f", about {format_duration(batch.eta_s)} left"
            if batch.eta_s is not None and batch.done < batch.total
            else ""
        )
        rate = f" · {batch.rate:.1f} images/s" if batch.rate is not None else ""
        self.progress_label.setText(f"{batch.done} of {batch.total} files{rate}{eta}")
        self._update_counts()

    def cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.progress_label.setText(self.progress_label.text() + " · stopping after the current image…")

    def run_finished(self, summary: RunSummary) -> None:
        self.running = False
        self.current_run_id = summary.run_id
        if self.progress.maximum() == 0:
            self.progress.setRange(0, max(summary.total, 1))
        if not summary.cancelled:
            self.progress.setValue(self.progress.maximum())
        progress, text = finished_words(summary)
        self.progress_label.setText(progress)
        self.summary_label.setText(text)
        self._update_counts()
        self._update_buttons()

    def run_failed(self, message: str) -> None:
        self.running = False
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label.setText("Stopped")
        self.summary_label.setText(f"<span style='color:#c62828'>Screening stopped: {message}</span>")
        self._update_buttons()

    def show_run(self, run: RunInfo, rows: list[ResultRow], identities: dict | None = None) -> None:
        """Show a stored run (e.g. chosen from the runs list)."""
        self.current_run_id = run.id
        self.progress_widget.show()
        self.set_folder(run.folder)
        self.model.set_rows(rows, identities=identities)
        self.apart.clear()
        self.apart.add_rows(rows)
        self.progress.setRange(0, max(run.counts.total, 1))
        self.progress.setValue(run.counts.total)
        progress, summary = stored_run_words(run)
        self.progress_label.setText(progress)
        self.summary_label.setText(summary)
        i = self.runs_combo.findData(run.id)
        if i >= 0:
            self.runs_combo.setCurrentIndex(i)
        self._update_counts()
        self._update_buttons()

    # -- counts, filter, opening -------------------------------------------------------------

    def _update_counts(self) -> None:
        counts = self.model.counts()
        for key, b in self.filter_buttons.items():
            text = f"{DECISION_LOOKS[key].short.capitalize()}: {counts[key]}"
            b.setText(text)
            # The checked style is bold: size for bold text so the count is never clipped.
            bold = QFont(b.font())
            bold.setBold(True)
            b.setMinimumWidth(QFontMetrics(bold).horizontalAdvance(text) + 32)
        self.apart.show_counts(counts[NOT_SCREENED.code], counts[NOT_DERMOSCOPY.code])

    def set_filing(self, summary: str, problems: list[str], red: bool) -> None:
        """The run's identity line and its problems (desktop/views/not_cases.py)."""
        self.apart.set_filing(summary, problems, red)
        self._update_counts()

    # -- the confidence of the results on screen ---------------------------------------------------

    def set_confidences(self, levels: list[float], standard: float, shown: float) -> None:
        """The levels the bundle fitted (and the clinic's standard); `shown`: the results' confidence now."""
        self.gate_legend.set_confidences(levels, standard, shown)

    def _apply_filter(self) -> None:
        self.table.show_outcomes(k for k, b in self.filter_buttons.items() if b.isChecked())

    def visible_rows(self) -> list[ResultRow]:
        return self.table.visible_rows()

    def neighbour(self, ref: CaseRef, step: int) -> CaseRef | None:
        """The case before or after `ref` in the table as sorted and filtered now (N / P in the case tab)."""
        return self.table.neighbour(ref, step)

    def _on_run_chosen(self, index: int) -> None:
        run_id = self.runs_combo.itemData(index)
        if run_id is not None:
            self.run_selected.emit(int(run_id))

    def _request_screen(self) -> None:
        if self.folder:
            self.screen_requested.emit(self.folder, self.recursive.isChecked())

    def _request_cancel(self) -> None:
        self.cancel_requested.emit()

    # -- drag and drop -------------------------------------------------------------------------

    @staticmethod
    def _dropped_folder(event) -> str | None:
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.is_dir():
                return str(path)
        return None

    def dragEnterEvent(self, event) -> None:
        if not self.running and event.mimeData().hasUrls() and self._dropped_folder(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        folder = self._dropped_folder(event)
        if folder and not self.running:
            event.acceptProposedAction()
            self.set_folder(folder)
            if self.model_ready:
                self.screen_requested.emit(folder, self.recursive.isChecked())
