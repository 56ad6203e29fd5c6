"""A lesion's timeline: its pictures from every visit side by side, at the same zoom, panned together.

Each picture is labelled with its visit date, p(malignant), the outcome of the gate then and the
clinician's review; a red line says when p(malignant) rose between visits, because change over
time is one of the strongest signs of melanoma. The pictures are read (and their bytes hashed) on a
worker: the captions come at once, the pictures when they are read.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core import ConfirmedDiagnosis, TimelineEntry, case_picture, decode_thumbnail, outcome, resize_longest_side

from ..workers import Worker, WorkerPool
from .image_view import ImageView, rgb_to_pixmap

DISPLAY_SIDE = 1024  # pictures are shown at most this large: enough to compare, light on memory
MAX_SHOWN = 6  # the latest visits; older ones stay in the report


def entry_picture(entry: TimelineEntry, thumbnail: Callable[[int], bytes | None]) -> np.ndarray | None:
    """The picture as RGB (core.imaging.pictures.case_picture: the file when it still holds the screened bytes,
    else the stored thumbnail); a file's picture at most DISPLAY_SIDE pixels on its longest side."""
    data = thumbnail(entry.result_id) if entry.result_id is not None else None
    if not entry.path:
        return decode_thumbnail(data)
    picture = case_picture(entry.path, entry.sha256, data)
    if picture.rgb is None or picture.from_thumbnail:
        return picture.rgb
    return resize_longest_side(picture.rgb, DISPLAY_SIDE, enlarge=False)


def pictures_job(entries: Sequence[TimelineEntry], thumbnail: Callable[[int], bytes | None]):
    """Read the entries' pictures on a worker (full-size files are decoded and hashed: seconds for six)."""

    def job(report, should_stop) -> list[np.ndarray | None]:
        return [None if should_stop() else entry_picture(e, thumbnail) for e in entries]

    return job


def rise_text(entries: Sequence[TimelineEntry]) -> str:
    """ "p(malignant) rose from 0.20 (2024-01-10) to 0.45 (2024-07-10)", one clause per rise; "" if none."""
    clauses = []
    # (visit date, p(malignant), rose from) of the entries with a date and a p(malignant)
    dated = [
        (e.visit_date, e.p_malignant, e.rose_from)
        for e in entries
        if e.visit_date is not None and e.p_malignant is not None
    ]
    for day, p, rose_from in dated:
        if rose_from is None:
            continue
        before = max((d for d, _, _ in dated if d < day), default=None)
        clauses.append(
            f"p(malignant) rose from {rose_from:.2f}"
            + (f" ({before.isoformat()})" if before else "")
            + f" to {p:.2f} ({day.isoformat()})"
        )
    return "; ".join(clauses)


class SyncedImageView(ImageView):
    """A picture that zooms with the wheel; `view_changed` lets its siblings follow."""

    view_changed = Signal(object)  # self

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(220, 220)
        self.horizontalScrollBar().valueChanged.connect(lambda _v: self.view_changed.emit(self))
        self.verticalScrollBar().valueChanged.connect(lambda _v: self.view_changed.emit(self))

    def set_picture(self, rgb: np.ndarray | None) -> None:
        self.set_pixmap(rgb_to_pixmap(rgb) if rgb is not None else None)

    def wheelEvent(self, event) -> None:
        super().wheelEvent(event)
        self.view_changed.emit(self)

    def mouseDoubleClickEvent(self, event) -> None:
        self.fit()  # back to the whole picture, and the siblings follow
        self.view_changed.emit(self)

    def relative_view(self) -> tuple[float, float, float]:
        """(zoom relative to fit, centre x, centre y as fractions of the picture): the same for every picture,
        whatever its size, so that the same region of the lesion is shown in each."""
        rect = self._item.boundingRect()
        if rect.isEmpty():
            return 1.0, 0.5, 0.5
        fit = min(self.viewport().width() / rect.width(), self.viewport().height() / rect.height())
        centre = self.mapToScene(self.viewport().rect().center())
        return self.transform().m11() / max(fit, 1e-9), centre.x() / rect.width(), centre.y() / rect.height()

    def apply_relative_view(self, zoom: float, cx: float, cy: float) -> None:
        rect = self._item.boundingRect()
        if rect.isEmpty():
            return
        fit = min(self.viewport().width() / rect.width(), self.viewport().height() / rect.height())
        self._fit = abs(zoom - 1.0) < 1e-3
        self.blockSignals(True)
        self.horizontalScrollBar().blockSignals(True)
        self.verticalScrollBar().blockSignals(True)
        try:
            self.resetTransform()
            self.scale(fit * zoom, fit * zoom)
            self.centerOn(cx * rect.width(), cy * rect.height())
        finally:
            self.horizontalScrollBar().blockSignals(False)
            self.verticalScrollBar().blockSignals(False)
            self.blockSignals(False)


class LesionTimelineView(QWidget):
    """Pictures of one lesion, oldest visit left; zoom and pan in one moves them all. `pictures_shown` follows
    once the pictures of the lesion shown last are in place."""

    pictures_shown = Signal()

    def __init__(self, thumbnail: Callable[[int], bytes | None], parent=None, pool: WorkerPool | None = None):
        super().__init__(parent)
        self.thumbnail = thumbnail
        self.pool = pool if pool is not None else WorkerPool(max_threads=1)
        self._request = 0  # the latest lesion shown: pictures read for an older one are dropped
        self.views: list[SyncedImageView] = []
        self.captions: list[QLabel] = []
        self.title = QLabel("Choose a lesion to see its visits side by side.")
        self.title.setStyleSheet("font-weight:bold;")
        self.title.setWordWrap(True)
        self.rise = QLabel()
        self.rise.setStyleSheet("color:#c62828; font-weight:bold;")
        self.rise.setWordWrap(True)
        self.rise.hide()
        # What the lesion turned out to be (core.records.evidence): above the pictures, as in the report.
        self.confirmed = QLabel()
        self.confirmed.setStyleSheet("color:#4a148c; font-weight:bold;")
        self.confirmed.setWordWrap(True)
        self.confirmed.hide()
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.strip)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.rise)
        lay.addWidget(self.confirmed)
        lay.addWidget(scroll, 1)
        self._syncing = False

    def clear(self, text: str = "Choose a lesion to see its visits side by side.") -> None:
        while self.strip_layout.count():
            item = self.strip_layout.takeAt(0)  # never None while count() says there is one
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()  # at once: deleteLater alone leaves it drawn until the event loop runs
                widget.setParent(None)
                widget.deleteLater()
        self._request += 1
        self.views, self.captions = [], []
        self.title.setText(text)
        self.rise.hide()
        self.confirmed.hide()

    def show_timeline(
        self, title: str, entries: Sequence[TimelineEntry], confirmed: Mapping[str, ConfirmedDiagnosis] | None = None
    ) -> None:
        """`confirmed`: sha256 -> core.records.evidence.ConfirmedDiagnosis that applies to each picture (if any)."""
        self.clear(title)
        confirmed = confirmed or {}
        said = list(dict.fromkeys(confirmed[e.sha256].shown for e in entries if e.sha256 in confirmed))
        self.confirmed.setText("\n".join(said))
        self.confirmed.setVisible(bool(said))
        shown = list(entries)[-MAX_SHOWN:]
        hidden = len(entries) - len(shown)
        if hidden:
            self.title.setText(f"{title} (the latest {len(shown)} of {len(entries)} pictures; all are in the report)")
        text = rise_text(entries)
        self.rise.setText(f"▲ {text}" if text else "")
        self.rise.setVisible(bool(text))
        for e in shown:
            box = QWidget()
            col = QVBoxLayout(box)
            col.setContentsMargins(2, 2, 2, 2)
            caption = QLabel(self._caption(e, confirmed.get(e.sha256)))
            caption.setWordWrap(True)
            caption.setTextFormat(Qt.TextFormat.RichText)
            view = SyncedImageView()
            view.view_changed.connect(self._follow)
            col.addWidget(caption)
            col.addWidget(view, 1)
            self.strip_layout.addWidget(box, 1)
            self.views.append(view)
            self.captions.append(caption)
        self._read_pictures(shown)

    def _read_pictures(self, entries: Sequence[TimelineEntry]) -> Worker:
        job, request = pictures_job(entries, self.thumbnail), self._request
        worker = Worker(lambda report, should_stop: (request, job(report, should_stop)), name="timeline pictures")
        # A bound method, not a lambda: Qt drops the delivery when this view is gone before the pictures arrive.
        worker.signals.result.connect(self._pictures_read)
        return self.pool.start(worker)

    def _pictures_read(self, read: tuple[int, list[np.ndarray | None]]) -> None:
        request, pictures = read
        if request != self._request:
            return
        for view, rgb in zip(self.views, pictures):
            view.set_picture(rgb)
        self.fit_all()
        self.pictures_shown.emit()

    @staticmethod
    def _caption(e: TimelineEntry, confirmed=None) -> str:
        o = outcome(e.decision)
        p = "—" if e.p_malignant is None else f"{e.p_malignant:.3f}"
        when = e.visit_date.isoformat() if e.visit_date else "undated visit"
        words = e.words if e.decision is not None else "not screened"
        review = f"review: {e.review.words} ({e.review.reviewer})" if e.review else "not reviewed"
        rose = f" <span style='color:#c62828'>▲ from {e.rose_from:.3f}</span>" if e.rose_from is not None else ""
        sure = f"<br><b style='color:#4a148c'>{html.escape(confirmed.shown)}</b>" if confirmed is not None else ""
        return (
            f"<b>{when}</b> · p(malignant) {p}{rose}<br>"
            f"<span style='background:{o.colour};color:{o.text_colour}'>&nbsp;{words}&nbsp;</span> · {review}{sure}"
        )

    def fit_all(self) -> None:
        for v in self.views:
            v.fit()

    def _follow(self, source: SyncedImageView) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            zoom, cx, cy = source.relative_view()
            for v in self.views:
                if v is not source:
                    v.apply_relative_view(zoom, cx, cy)
        finally:
            self._syncing = False

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.fit_all()
