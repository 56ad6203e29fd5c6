"""Qt table models over core's values: a run's results and the review queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QFont, QPixmap

from core.decision.gate import percent
from core.decision.results import ScreeningResult
from core.decision.vocabulary import BAND_CODES, band, class_name, review_choice, review_words, risk_rank
from core.records.store import QueueItem, Review, local_time

from .style import DECISION_LOOKS, decision_key, qcolor, result_short_words, result_words
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
                    pm = pm.scaled(
                        THUMB_W, THUMB_H, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
                    )
                else:
                    pm = None
            self._pixmaps[result_id] = pm
        return self._pixmaps[result_id]


def _badge_cell(text: str, background: str, foreground: str, tooltip: str, role: int):
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


def _outcome_cell(result: ScreeningResult, review: Review | None, role: int):
    """The clinician's decision once there is one (the machine's outcome in the tooltip), else the outcome."""
    machine = result_words(result)
    if review is not None:
        choice = review_choice(review.decision)
        tip = f"Clinician: {review.words} ({review.reviewer}, {local_time(review.created)})\nMelaScreen said: {machine}"
        short = review_words(review.decision, review.follow_up_months, short=True)
        return _badge_cell(f"✓ {short}", choice.colour, "#ffffff", tip, role)
    look = DECISION_LOOKS[decision_key(result)]
    colour = look.colour
    if look.code == "uncertain" and result.band in BAND_CODES:  # the band's own shade: open "high" first
        colour = band(result.band).colour
    tip = f"{machine}: {look.hint}"
    return _badge_cell(result_short_words(result), colour, look.text_colour, tip, role)


def _risk_sort(result: ScreeningResult) -> float:
    """p(malignant) for sorting (p(melanoma) for old rows); not screened lowest."""
    p = result.p_malignant if result.p_malignant is not None else result.p_melanoma
    return -1.0 if (p is None or not result.ok) else float(p)


def _likely_cell(likely_class: str, class_probs: dict, role: int):
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


def _p_cell(p: float | None, role: int):
    if role == Qt.ItemDataRole.DisplayRole:
        return "—" if p is None else f"{p:.3f}"
    if role == Qt.ItemDataRole.TextAlignmentRole:
        return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    if role == SORT_ROLE:
        return -1.0 if p is None else float(p)
    return None


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
    """A run's results. The view sorts it (DecisionFilter) by p(malignant), highest first, by default."""

    COLUMNS = (
        "",
        "Patient · lesion · visit",
        "Outcome / decision",
        "Most likely",
        "p(malignant)",
        "File",
        "Reason",
        "Source",
    )
    THUMB, PATIENT, DECISION, LIKELY, P, FILE, REASON, SOURCE = range(8)

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None):
        super().__init__(thumbnails, parent)
        self.rows: list[ResultRow] = []
        self.reviews: dict[str, Review] = {}  # sha256 -> the image's latest review
        self.identity_fn: Callable[[list[str]], dict] | None = None  # sha256s -> where they are filed
        self._identities: dict[str, object] = {}  # sha256 -> core.records.patients.AttachedIdentity (or None)

    def identity(self, result: ScreeningResult):
        """Where the picture is filed (looked up once per image; files are filed as a run goes)."""
        sha = result.sha256
        if not sha or self.identity_fn is None or not result.is_case:
            return None
        if sha not in self._identities:
            pending = [
                r.result.sha256 for r in self.rows if r.result.sha256 and r.result.sha256 not in self._identities
            ]
            found = self.identity_fn(pending)
            self._identities.update({s: found.get(s) for s in pending})
        return self._identities.get(sha)

    def forget_identities(self) -> None:
        self._identities = {}

    def _entries(self) -> list:
        return self.rows

    # -- changing the rows -----------------------------------------------------------------

    def set_rows(self, rows: Iterable[ResultRow], reviews: dict[str, Review] | None = None) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self._identities = {}
        if reviews is not None:
            self.reviews = dict(reviews)
        self.endResetModel()

    def append_rows(self, rows: Iterable[ResultRow]) -> None:
        rows = list(rows)
        if not rows:
            return
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()

    def set_reviews(self, reviews: dict[str, Review]) -> None:
        """The latest review per image (ReviewStore.latest_reviews): the table shows the clinician's decision."""
        self.reviews = dict(reviews)
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, len(self.COLUMNS) - 1))

    def add_review(self, review: Review) -> None:
        if review.sha256:
            self.set_reviews({**self.reviews, review.sha256: review})

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
        elif col == self.PATIENT:
            a = (
                self.identity(r)
                if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE, Qt.ItemDataRole.ToolTipRole)
                else None
            )
            if role == Qt.ItemDataRole.DisplayRole:
                if a is None:
                    return "no patient" if r.is_case else "—"
                where = " · ".join(x for x in (a.lesion_label, a.body_site or "") if x)
                when = a.visit_date.isoformat() if a.visit_date else "visit date unknown"
                return f"{a.who}\n{where} · {when}"
            if role == Qt.ItemDataRole.ForegroundRole and r.is_case and self.identity(r) is None:
                return QBrush(qcolor("#9e9e9e"))
            if role == Qt.ItemDataRole.ToolTipRole:
                return None if a is None else f"Patient {a.patient_id}, lesion {a.lesion_label}\n{r.path}"
            if role == SORT_ROLE:
                return "\uffff" if a is None else f"{a.patient_id}\t{a.lesion_label}\t{a.visit_date or ''}"
        elif col == self.P:
            if role == SORT_ROLE:
                return _risk_sort(r)
            if role == Qt.ItemDataRole.ToolTipRole and r.p_melanoma is not None:
                return (
                    f"p(malignant) {r.p_malignant if r.p_malignant is not None else r.p_melanoma:.4f}; "
                    f"p(melanoma) {r.p_melanoma:.4f}"
                )
            return _p_cell(r.p_malignant if r.p_malignant is not None else r.p_melanoma, role)
        elif col == self.DECISION:
            if role == SORT_ROLE:  # most urgent first when sorted ascending; then by p(malignant)
                return risk_rank(key if key != "error" else None, r.band) * 2.0 + 1.0 - max(_risk_sort(r), 0.0)
            review = self.reviews.get(r.sha256) if r.sha256 else None
            return _outcome_cell(r, review, role)
        elif col == self.LIKELY:
            return _likely_cell(r.likely_class, r.class_probs, role)
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
    """The review queue, patient first: who, which lesion where, which visit, then the outcome; the file name
    comes second (full path in its tooltip). Rows come in the order given (core.records.patients.queue_by_patient:
    grouped by patient); the view's proxy sorts any column (the outcome column: a flat risk order)."""

    COLUMNS = ("", "Patient", "Lesion · site", "Visit", "Outcome", "p(malignant)", "File", "Queued", "Last review")
    THUMB, PATIENT, LESION, VISIT, DECISION, P, FILE, QUEUED, LAST = range(9)

    def __init__(self, thumbnails: ThumbnailCache | None = None, parent=None):
        super().__init__(thumbnails, parent)
        self.items: list[QueueItem] = []
        self.identities: dict = {}  # sha256 -> core.records.patients.AttachedIdentity

    def _entries(self) -> list:
        return self.items

    def set_items(self, items: Iterable[QueueItem], identities: dict | None = None) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.identities = dict(identities or {})
        self.endResetModel()

    def identity(self, item: QueueItem):
        return self.identities.get(item.sha256)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        col = index.column()
        p = item.p_malignant if item.p_malignant is not None else item.p_melanoma
        a = self.identity(item)
        if role == ITEM_ROLE:
            return item
        if role == DECISION_ROLE:
            return item.decision.value
        if col == self.THUMB:
            if role == Qt.ItemDataRole.DecorationRole:
                return self.thumbnails.get(item.result_id)
            if role == SORT_ROLE:
                return index.row()  # the grouped order core gave
        if col == self.PATIENT:
            if role == Qt.ItemDataRole.DisplayRole:
                return a.who if a is not None else "no patient"
            if role == Qt.ItemDataRole.ToolTipRole:
                return (
                    f"Patient {a.patient_id}"
                    + (f", {a.age} years" if a.age is not None else "")
                    + (f", sex {a.sex}" if a.sex else "")
                    + (f"\nNote: {a.note}" if a.note else "")
                    if a is not None
                    else "Not filed under a patient (no sidecar row, patient folder or DICOM id)"
                )
            if role == Qt.ItemDataRole.ForegroundRole and a is None:
                return QBrush(qcolor("#9e9e9e"))
            if role == SORT_ROLE:
                return (a.patient_id if a else "\uffff").casefold()
        if col == self.LESION:
            if role == Qt.ItemDataRole.DisplayRole:
                if a is None:
                    return "—"
                return f"{a.lesion_label} · {a.body_site}" if a.body_site else a.lesion_label
            if role == SORT_ROLE:
                return "" if a is None else f"{a.patient_id}\t{a.lesion_label}"
        if col == self.VISIT:
            if role == Qt.ItemDataRole.DisplayRole:
                return a.visit_date.isoformat() if (a is not None and a.visit_date) else "—"
            if role == SORT_ROLE:
                return a.visit_date.isoformat() if (a is not None and a.visit_date) else ""
        if col == self.FILE:
            if role == Qt.ItemDataRole.DisplayRole:
                return Path(item.path).name
            if role == Qt.ItemDataRole.ToolTipRole:
                return f"{item.path}\nqueued {local_time(item.queued_at)}\n{item.reason}"
            if role == SORT_ROLE:
                return Path(item.path).name.casefold()
        if col == self.DECISION:
            if role == SORT_ROLE:
                return risk_rank(item.decision.value, item.band) * 2.0 + 1.0 - (p or 0.0)
            shown = ScreeningResult(
                path=item.path,
                sha256=item.sha256,
                status="ok",
                decision=item.decision,
                malignant_class=item.malignant_class,
                band=item.band,
                likely_class=item.likely_class,
            )
            if role == Qt.ItemDataRole.ToolTipRole and item.likely_class and item.last_review is None:
                base = _outcome_cell(shown, None, role)
                return f"{base}\nMost likely: {class_name(item.likely_class)}"
            return _outcome_cell(shown, item.last_review, role)
        if col == self.P:
            return _p_cell(p, role)
        if col == self.QUEUED:
            if role == Qt.ItemDataRole.DisplayRole:
                return local_time(item.queued_at)
            if role == SORT_ROLE:
                return item.queued_at
        if col == self.LAST:
            r = item.last_review
            if role == Qt.ItemDataRole.DisplayRole:
                if r is None:
                    return "not reviewed"
                return f"{review_words(r.decision, r.follow_up_months, short=True)} ({r.reviewer})"
            if role == Qt.ItemDataRole.ToolTipRole and r is not None:
                return f"{r.words}\n{r.reviewer}, {local_time(r.created)}" + (f"\n{r.note}" if r.note else "")
            if role == SORT_ROLE:
                return "" if r is None else r.created
        return None
