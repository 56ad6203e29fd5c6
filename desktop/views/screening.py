"""Screening a folder: choose or drop it, watch progress, cancel, read the results table.

The view only shows and asks; the main window runs the screening job and feeds the view.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.decision.gate import MALIGNANCY, RiskScope, Thresholds
from core.decision.results import Decision
from core.decision.vocabulary import BANDS, NOT_DERMOSCOPY, NOT_SCREENED, outcome_words
from core.records.runs import shown_status
from core.records.store import RunInfo, local_time
from core.screening import RunSummary

from ..models import DecisionFilter, ResultsModel
from ..style import DECISION_LOOKS, DECISION_ORDER
from ..table_cells import ITEM_ROLE, THUMB_H, THUMB_W, ThumbnailCache
from ..workers import ResultRow, ScreeningBatch
from .case_panel import CaseRef


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def run_label(run: RunInfo) -> str:
    status = shown_status(run.status, run.settings)  # "interrupted" once the run's process is gone
    return f"{local_time(run.started)} · {Path(run.folder).name or run.folder} · {run.counts.total} files · {status}"


def legend_html(
    thresholds: Thresholds | None,
    scope: RiskScope = MALIGNANCY,
    confidence: float | None = None,
    trial: bool = False,
) -> str:
    """What the outcomes and the review bands mean at the gate of the results on screen, with its cut points
    and the confidence that made them ("trial" when it is not the clinic's standard, nothing recorded). `scope`:
    what the gate's probability is of (the bundle's manifest.risk_scope)."""
    if thresholds is None:
        return ""
    what = scope.probability
    level = ""
    if confidence is not None:
        level = f" at confidence {confidence:g}" + (
            " <b style='color:#c62828'>(TRIAL: not recorded; the record keeps the clinic's standard)</b>"
            if trial
            else ""
        )
    parts = [
        f"<b>{outcome_words(Decision.NO_CANCER_SUSPECTED.value)}</b> below {thresholds.low:.3f}",
        f"<b>{outcome_words(Decision.SUSPICIOUS.value)}</b> from {thresholds.high:.3f}",
    ]
    review = outcome_words(Decision.REVIEW.value)
    if thresholds.has_bands:
        cuts = {
            "high": f"≥ {thresholds.high_risk_from:.3f}",
            "moderate": f"{thresholds.moderate_from:.3f}–{thresholds.high_risk_from:.3f}",
            "low": f"&lt; {thresholds.moderate_from:.3f}",
        }
        bands = ", ".join(
            f"<span style='background:{b.colour}'>&nbsp;{b.name}&nbsp;</span> {cuts[b.code]}" for b in BANDS
        )
        parts.insert(1, f"<b>{review}</b> between, by risk: {bands}")
    else:
        parts.insert(1, f"<b>{review}</b> between (no risk bands fitted for this confidence)")
    note = f" · {scope.note}" if scope.note else ""
    return f"Gate on {what}{level}: " + "; ".join(parts) + note


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

        # Model state banner.
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner_button = QPushButton("Open Settings…")
        self.banner_button.clicked.connect(self.open_settings)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_button)
        self.banner_frame = QFrame()
        self.banner_frame.setLayout(banner_row)

        # Folder row.
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

        # Progress row.
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

        # Counts and filter: one toggle per decision, with its count.
        self.filter_buttons: dict[str, QPushButton] = {}
        chips = QHBoxLayout()
        chips.addWidget(QLabel("Show:"))
        for key in DECISION_ORDER:
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
            self.filter_buttons[key] = b
            chips.addWidget(b)
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
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setStyleSheet("color:#37474f;")
        # Trying another confidence re-applies the gate to the stored results (seconds, no model run); the
        # clinic's standard (Settings) stays what the record shows.
        self.confidence_combo = QComboBox()
        self.confidence_combo.setToolTip(
            "See this run at another confidence: the gate is applied again to the stored results (no model "
            "runs). A trial is not recorded; the clinic's standard confidence is set in Settings."
        )
        self.confidence_combo.activated.connect(self._on_confidence_chosen)
        self.confidence_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        legend_row = QHBoxLayout()
        legend_row.addWidget(self.legend, 1)
        legend_row.addWidget(QLabel("Confidence:"))
        legend_row.addWidget(self.confidence_combo)

        # Results table.
        self.model = ResultsModel(ThumbnailCache(store_thumbnail))
        self.proxy = DecisionFilter()
        self.proxy.setSourceModel(self.model)
        self._apply_filter()
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        # Highest risk first; every column sorts by its SORT_ROLE.
        self.table.sortByColumn(ResultsModel.P, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB_W, THUMB_H))
        self.table.verticalHeader().setDefaultSectionSize(THUMB_H + 6)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.resizeSection(ResultsModel.THUMB, THUMB_W + 12)
        header.resizeSection(ResultsModel.PATIENT, 210)
        header.resizeSection(ResultsModel.FILE, 150)
        header.resizeSection(ResultsModel.P, 100)
        header.resizeSection(ResultsModel.DECISION, 230)
        header.resizeSection(ResultsModel.LIKELY, 200)
        header.resizeSection(ResultsModel.SOURCE, 120)
        header.setSectionResizeMode(ResultsModel.REASON, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self._open_index)
        self.table.activated.connect(self._open_index)
        self.open_hint = QLabel("Double-click or press Enter on a row to open the case with its heat map.")
        self.open_hint.setStyleSheet("color:#455a64;")

        # What is not a patient's case, side by side: pictures to check, files that could not be screened,
        # and the identity problems of the run (sidecar lines, filing conflicts).
        self.filing_label = QLabel()
        self.filing_label.setWordWrap(True)
        self.failures_title = QLabel()
        self.failures_title.setStyleSheet("font-weight:bold; color:#424242;")
        self.failures = QListWidget()
        self.failures.setWordWrap(True)
        self.to_check_title = QLabel()
        self.to_check_title.setStyleSheet("font-weight:bold; color:#37474f;")
        self.to_check = QListWidget()
        self.to_check.setWordWrap(True)
        self.to_check.itemActivated.connect(self._open_to_check)
        self.identity_title = QLabel()
        self.identity_title.setStyleSheet("font-weight:bold; color:#424242;")
        self.identity_problems = QListWidget()
        self.identity_problems.setWordWrap(True)
        lists = QHBoxLayout()
        lists.setContentsMargins(0, 0, 0, 0)
        for title, widget in (
            (self.to_check_title, self.to_check),
            (self.failures_title, self.failures),
            (self.identity_title, self.identity_problems),
        ):
            box = QVBoxLayout()
            box.addWidget(title)
            box.addWidget(widget)
            lists.addLayout(box, 1)
        fail_box = QVBoxLayout()
        fail_box.setContentsMargins(0, 0, 0, 0)
        fail_box.addWidget(self.filing_label)
        fail_box.addLayout(lists)
        self.failures_widget = QWidget()
        self.failures_widget.setLayout(fail_box)
        for widget in (self.failures, self.to_check, self.identity_problems):
            widget.setMaximumHeight(96)  # the results table keeps the room
        self.failures_widget.setMaximumHeight(150)
        self.failures_widget.hide()

        table_box = QVBoxLayout()
        table_box.setContentsMargins(0, 0, 0, 0)
        table_box.addWidget(self.table, 1)
        table_box.addWidget(self.open_hint)
        table_w = QWidget()
        table_w.setLayout(table_box)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(table_w)
        split.addWidget(self.failures_widget)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 0)
        split.setChildrenCollapsible(False)

        lay = QVBoxLayout(self)
        lay.addWidget(self.banner_frame)
        lay.addLayout(folder_row)
        lay.addWidget(self.progress_widget)
        lay.addWidget(self.summary_label)
        lay.addLayout(chips)
        lay.addLayout(legend_row)
        lay.addWidget(split, 1)
        self.set_model_state("loading", "Loading the models…")
        self._update_counts()
        self._update_buttons()

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
        self.legend.setText(legend_html(thresholds, scope, confidence, trial))
        self.legend.setVisible(thresholds is not None)
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
        self._clear_apart()
        self.progress.setRange(0, 0)  # busy until the first file is done (scanning)
        self.progress_label.setText("Looking for files…")
        self.summary_label.setText("")
        self._update_counts()
        self._update_buttons()

    def add_batch(self, batch: ScreeningBatch) -> None:
        self.model.append_rows(batch.rows)
        self._list_apart(batch.rows)
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
        if summary.cancelled:
            self.progress_label.setText(f"Cancelled after {summary.total} files")
            text = f"Cancelled. The {summary.total} results screened so far are kept in the results file."
        else:
            self.progress.setValue(self.progress.maximum())
            self.progress_label.setText(f"Done: {summary.total} files in {format_duration(summary.elapsed_s)}")
            text = f"Finished: {summary.total} files screened in {format_duration(summary.elapsed_s)}."
        if summary.reused:
            text += f" {summary.reused} taken from earlier runs (same image, same models), not screened again."
        if summary.errors:
            text += f" {summary.errors} could not be screened (listed below)."
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

    def show_run(self, run: RunInfo, rows: list[ResultRow]) -> None:
        """Show a stored run (e.g. chosen from the runs list)."""
        self.current_run_id = run.id
        self.progress_widget.show()
        self.set_folder(run.folder)
        self.model.set_rows(rows)
        self._clear_apart()
        self._list_apart(rows)
        self.progress.setRange(0, max(run.counts.total, 1))
        self.progress.setValue(run.counts.total)
        status = shown_status(run.status, run.settings)
        self.progress_label.setText(f"Stored run of {local_time(run.started)} ({status})")
        state = {
            "finished": "",
            "cancelled": " This run was cancelled before the end.",
            "interrupted": " This run was interrupted before the end.",
            "running": " This run is still going on in another window or process.",
            "failed": " This run stopped with an error.",
        }.get(status, "")
        self.summary_label.setText(
            f"Stored results of this folder ({run.counts.total} files, {run.counts.reused} of them from earlier runs)."
            f"{state} Press Screen to check the folder for new or changed files; stored results are reused, "
            "not computed again."
        )
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
        n_fail = counts[NOT_SCREENED.code]
        n_check = counts[NOT_DERMOSCOPY.code]
        self.failures_title.setText(f"Files that could not be screened ({n_fail})")
        self.to_check_title.setText(f"Images to check: not dermoscopy ({n_check})")
        self.identity_title.setText(f"Identity problems ({self.identity_problems.count()})")
        self.failures_widget.setVisible(
            n_fail > 0 or n_check > 0 or self.identity_problems.count() > 0 or bool(self.filing_label.text())
        )

    # -- what is not a patient's case --------------------------------------------------------------

    def _clear_apart(self) -> None:
        self.failures.clear()
        self.to_check.clear()
        self.identity_problems.clear()
        self.filing_label.setText("")

    def _list_apart(self, rows) -> None:
        for row in rows:
            r = row.result
            if not r.ok:
                self.failures.addItem(f"{Path(r.path).name}: {r.reason}")
            elif r.outcome_code == NOT_DERMOSCOPY.code:
                item_text = f"{Path(r.path).name}: {NOT_DERMOSCOPY.name}"
                self.to_check.addItem(item_text)
                self.to_check.item(self.to_check.count() - 1).setData(Qt.ItemDataRole.UserRole, row)
                self.to_check.item(self.to_check.count() - 1).setToolTip(f"{r.path}\n{r.reason}")

    def set_filing(self, summary: str, problems: list[str], red: bool) -> None:
        """The run's identity line ("40 images filed under 5 patients, 4 identity problems") and its problems,
        each with its sidecar line; red when pictures fell back to "no patient"."""
        colour = "#c62828" if red else "#1b5e20"
        self.filing_label.setText(f"<b style='color:{colour}'>{summary}</b>" if summary else "")
        self.identity_problems.clear()
        for p in problems:
            self.identity_problems.addItem(p)
        self._update_counts()

    def _open_to_check(self, item) -> None:
        row = item.data(Qt.ItemDataRole.UserRole)
        if row is not None:
            self.open_case.emit(CaseRef(row.result_id, row.result))

    # -- the confidence of the results on screen ---------------------------------------------------

    def set_confidences(self, levels: list[float], standard: float, shown: float) -> None:
        """The levels the bundle fitted (and the clinic's standard); `shown`: the results' confidence now."""
        self.confidence_combo.blockSignals(True)
        self.confidence_combo.clear()
        for c in sorted({*levels, standard}, reverse=True):
            label = f"{c:g} (clinic standard)" if abs(c - standard) < 1e-9 else f"{c:g} (trial)"
            self.confidence_combo.addItem(label, float(c))
        i = next(
            (k for k in range(self.confidence_combo.count()) if abs(self.confidence_combo.itemData(k) - shown) < 1e-9),
            -1,
        )
        if i >= 0:
            self.confidence_combo.setCurrentIndex(i)
        self.confidence_combo.blockSignals(False)
        self._standard_confidence = standard

    def _on_confidence_chosen(self, index: int) -> None:
        c = self.confidence_combo.itemData(index)
        if c is None:
            return
        standard = getattr(self, "_standard_confidence", None)
        self.confidence_chosen.emit(None if standard is not None and abs(c - standard) < 1e-9 else float(c))

    def _apply_filter(self) -> None:
        self.proxy.set_shown(k for k, b in self.filter_buttons.items() if b.isChecked())

    def _open_index(self, index) -> None:
        row: ResultRow = self.proxy.data(index, ITEM_ROLE)
        if row is not None:
            self.open_case.emit(CaseRef(row.result_id, row.result))

    def visible_rows(self) -> list[ResultRow]:
        return [self.proxy.data(self.proxy.index(i, 0), ITEM_ROLE) for i in range(self.proxy.rowCount())]

    def neighbour(self, ref: CaseRef, step: int) -> CaseRef | None:
        """The case before or after `ref` in the table as sorted and filtered now (N / P in the case tab)."""
        rows = self.visible_rows()
        ids = [(r.result_id, r.result.path) for r in rows]
        try:
            i = ids.index((ref.result_id, ref.shown.path))
        except ValueError:
            return None
        j = i + step
        if 0 <= j < len(rows):
            self.table.selectRow(j)
            return CaseRef(rows[j].result_id, rows[j].result)
        return None

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
