"""The review form under a case: the clinician's decision (no action, monitor with months, excise, refer,
retake), a note, save; and the image's review history. Reviews are never edited: a second one is a new entry."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core import DEFAULT_FOLLOW_UP_MONTHS, MAX_FOLLOW_UP_MONTHS, REVIEW_CHOICES, Review, local_time


def history_line(review: Review) -> str:
    text = f"{local_time(review.created)} — {review.reviewer} — {review.words}"
    return text + (f" — “{review.note}”" if review.note else "")


class NoteEdit(QPlainTextEdit):
    """The review note. Esc hands the keyboard back to the review loop."""

    escaped = Signal()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
            return
        super().keyPressEvent(event)


class ReviewForm(QWidget):
    save_requested = Signal(str, str, object)  # decision, note, follow-up months (monitor) or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.result_id: int | None = None
        self.group = QButtonGroup(self)
        decisions = QGroupBox("Your decision")
        dlay = QVBoxLayout(decisions)
        self.buttons: dict[str, QRadioButton] = {}
        self.months = QSpinBox()  # "monitor": follow up in N months, set here without a dialog
        self.months.setRange(1, MAX_FOLLOW_UP_MONTHS)
        self.months.setValue(DEFAULT_FOLLOW_UP_MONTHS)
        self.months.setSuffix(" months")
        self.months.setToolTip(
            "Monitor: see the lesion again after this many months. Keys: 2 then the months, e.g. 2 1 2 = 12 months"
        )
        for choice in REVIEW_CHOICES:
            b = QRadioButton(f"&{choice.key}  {choice.label}")
            b.setProperty("decision", choice.code)
            self.group.addButton(b, choice.key)
            self.buttons[choice.code] = b
            if choice.asks_months:
                row = QHBoxLayout()
                row.setContentsMargins(0, 0, 0, 0)
                row.addWidget(b)
                row.addWidget(self.months)
                row.addStretch(1)
                dlay.addLayout(row)
            else:
                dlay.addWidget(b)
        self.note = NoteEdit()
        self.note.setPlaceholderText("Note (optional). E: write a note, Esc: back, Ctrl+Enter: save")
        self.note.setTabChangesFocus(True)
        self.note.setMinimumHeight(60)
        self.reviewer = QLabel()
        self.reviewer.setStyleSheet("color:#455a64;")
        self.save = QPushButton("Save review  (Ctrl+Enter)")
        self.save.setDefault(True)
        self.save.clicked.connect(self._on_save)
        # What the lesion turned out to be (histopathology, follow-up): core.records.evidence, for the audit.
        self.confirm = QPushButton("Confirmed diagnosis…")
        self.confirm.setToolTip("Record what this lesion turned out to be (e.g. the histopathology result)")
        self.status = QLabel()
        self.status.setWordWrap(True)
        note_box = QVBoxLayout()
        note_box.addWidget(self.note, 1)
        foot = QHBoxLayout()
        foot.addWidget(self.reviewer, 1)
        foot.addWidget(self.confirm)
        foot.addWidget(self.save)
        note_box.addLayout(foot)
        note_box.addWidget(self.status)
        history_box = QGroupBox("Review history (never overwritten)")
        hlay = QVBoxLayout(history_box)
        self.history = QListWidget()
        self.history.setWordWrap(True)
        self.history.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        hlay.addWidget(self.history)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(decisions)
        lay.addLayout(note_box, 2)
        lay.addWidget(history_box, 2)
        self.set_case(None, [])

    def chosen(self) -> str | None:
        b = self.group.checkedButton()
        return None if b is None else b.property("decision")

    def choose(self, decision: str) -> None:
        if self.result_id is not None and decision in self.buttons:
            self.buttons[decision].setChecked(True)

    def set_reviewer(self, name: str) -> None:
        self.reviewer.setText(f"Reviewing as: <b>{name}</b>" if name else "Reviewer: <i>not set (Settings)</i>")

    def set_case(self, result_id: int | None, history: list[Review]) -> None:
        self.result_id = result_id
        self.group.setExclusive(False)
        for b in self.buttons.values():
            b.setChecked(False)
        self.group.setExclusive(True)
        self.note.clear()
        self.status.clear()
        enabled = result_id is not None
        for w in (*self.buttons.values(), self.note, self.save, self.months):
            w.setEnabled(enabled)
        self.show_history(history)

    def show_history(self, history: list[Review]) -> None:
        self.history.clear()
        if not history:
            self.history.addItem("No reviews yet.")
        for r in history:
            self.history.addItem(history_line(r))

    def _on_save(self) -> None:
        if self.result_id is None:
            return
        decision = self.chosen()
        if decision is None:
            self.status.setText("<span style='color:#c62828'>Choose a decision first (keys 1–5).</span>")
            return
        months = self.months.value() if self.buttons[decision] is self._monitor_button() else None
        self.save_requested.emit(decision, self.note.toPlainText().strip(), months)

    def _monitor_button(self) -> QRadioButton | None:
        return next((self.buttons[c.code] for c in REVIEW_CHOICES if c.asks_months), None)
