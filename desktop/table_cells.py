"""What the app's tables share: the item roles, thumbnails decoded once, and the cells (outcome badge, most
likely class, a probability) that the results, queue and patient tables draw alike."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QFont, QPixmap

from core import (
    BAND_CODES,
    Decision,
    Review,
    ScreeningResult,
    band,
    class_name,
    local_time,
    percent,
    review_choice,
    review_words,
    risk_order,
)

from .style import DECISION_LOOKS, decision_key, qcolor, result_short_words, result_words

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
                    pm = pm.scaled(
                        THUMB_W, THUMB_H, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                    )
                else:
                    pm = None
            self._pixmaps[result_id] = pm
        return self._pixmaps[result_id]


def badge_cell(text: str, background: str, foreground: str, tooltip: str, role: int):
    if role == Qt.ItemDataRole.DisplayRole:
        return text
    if role == Qt.ItemDataRole.BackgroundRole:
        return QBrush(qcolor(background))
    if role == Qt.ItemDataRole.ForegroundRole:
        return QBrush(qcolor(foreground))
    if role == Qt.ItemDataRole.ToolTipRole:
        return tooltip
    if role == Qt.ItemDataRole.FontRole:
        f = QFont()
        f.setBold(True)
        return f
    if role == Qt.ItemDataRole.TextAlignmentRole:
        return int(Qt.AlignmentFlag.AlignCenter)
    return None


def outcome_cell(result: ScreeningResult, review: Review | None, role: int):
    """The clinician's decision once there is one (the machine's outcome in the tooltip), else the outcome."""
    machine = result_words(result)
    if review is not None:
        choice = review_choice(review.decision)
        tip = f"Clinician: {review.words} ({review.reviewer}, {local_time(review.created)})\nMelaScreen said: {machine}"
        short = review_words(review.decision, review.follow_up_months, short=True)
        return badge_cell(f"✓ {short}", choice.colour, "#ffffff", tip, role)
    look = DECISION_LOOKS[decision_key(result)]
    colour = look.colour
    if look.code == Decision.REVIEW.value and result.band in BAND_CODES:  # the band's own shade: open "high" first
        colour = band(result.band).colour
    tip = f"{machine}: {look.hint}"
    return badge_cell(result_short_words(result), colour, look.text_colour, tip, role)


def likely_cell(likely_class: str, class_probs: dict, role: int):
    if role == Qt.ItemDataRole.DisplayRole:
        if not likely_class:
            return "—"
        p = class_probs.get(likely_class)
        return class_name(likely_class) + ("" if p is None else f" ({percent(p)})")
    if role == Qt.ItemDataRole.ToolTipRole and class_probs:
        top = sorted(class_probs.items(), key=lambda kv: -kv[1])[:4]
        return "\n".join(f"{class_name(k)}: {percent(v)}" for k, v in top)
    if role == SORT_ROLE:
        return class_name(likely_class).casefold()
    return None


def p_cell(p: float | None, role: int):
    if role == Qt.ItemDataRole.DisplayRole:
        return "—" if p is None else f"{p:.3f}"
    if role == Qt.ItemDataRole.TextAlignmentRole:
        return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if role == SORT_ROLE:
        return -1.0 if p is None else float(p)
    return None


class ListTableModel(QAbstractTableModel):
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


def urgency(code: str | None, band_code: str | None, p: float) -> float:
    """core's risk order (most urgent first, then the higher p) as one number for Qt's sort role, which
    compares numbers, not tuples; `p` in [0, 1] (0 for a row without one)."""
    rank, minus_p = risk_order(code, band_code, p)
    return rank * 2.0 + 1.0 + minus_p
