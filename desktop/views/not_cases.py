"""Below the results table, what is not a patient's case, side by side: pictures to check (not dermoscopy), files
that could not be screened, and the run's identity problems (sidecar lines, filing conflicts)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QVBoxLayout, QWidget

from core import NOT_DERMOSCOPY

from .case_panel import CaseRef


def _title(colour: str) -> QLabel:
    label = QLabel()
    label.setStyleSheet(f"font-weight:bold; color:{colour};")
    return label


def _list() -> QListWidget:
    widget = QListWidget()
    widget.setWordWrap(True)
    widget.setMaximumHeight(96)  # the results table keeps the room
    return widget


class NotCasesPanel(QWidget):
    open_case = Signal(object)  # CaseRef of a picture to check

    def __init__(self, parent=None):
        super().__init__(parent)
        self.filing_label = QLabel()
        self.filing_label.setWordWrap(True)
        self.failures_title = _title("#424242")
        self.failures = _list()
        self.to_check_title = _title("#37474f")
        self.to_check = _list()
        self.to_check.itemActivated.connect(self._open_to_check)
        self.identity_title = _title("#424242")
        self.identity_problems = _list()
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
        self.setLayout(fail_box)
        self.setMaximumHeight(150)
        self.hide()

    def clear(self) -> None:
        self.failures.clear()
        self.to_check.clear()
        self.identity_problems.clear()
        self.filing_label.setText("")

    def add_rows(self, rows) -> None:
        """List the rows (desktop.workers.ResultRow) that are not a patient's case."""
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

    def show_counts(self, n_fail: int, n_check: int) -> None:
        """The lists' titles with their counts; the panel is shown only when it has something to say."""
        self.failures_title.setText(f"Files that could not be screened ({n_fail})")
        self.to_check_title.setText(f"Images to check: not dermoscopy ({n_check})")
        self.identity_title.setText(f"Identity problems ({self.identity_problems.count()})")
        self.setVisible(
            n_fail > 0 or n_check > 0 or self.identity_problems.count() > 0 or bool(self.filing_label.text())
        )

    def _open_to_check(self, item) -> None:
        row = item.data(Qt.ItemDataRole.UserRole)
        if row is not None:
            self.open_case.emit(CaseRef(row.result_id, row.result))
