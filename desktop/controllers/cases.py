"""Moving between cases: opening one (from the results, the follow-up list or the queue), N / P through the
results as sorted, L to the lesion's visits in the Patients tab, and saying when a lesion has other pictures
(looked up on a worker). Reviews saved in one place show in the others."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence, QShortcut

from core import ReviewStore, identity_of, lesion_timeline

from ..views.case_panel import CaseRef
from ..workers import Worker, WorkerPool

NOT_FILED = "This image is not filed under a patient (no sidecar row, patient folder or DICOM id)."


def earlier_visits_job(store: ReviewStore, sha256: str):
    """The words for a lesion's other pictures ("" when it has none or is not filed under a patient)."""

    def job(report, should_stop) -> str:
        filed = identity_of(store, sha256)
        if filed is None:
            return ""
        others = [e for e in lesion_timeline(store, filed.lesion_key) if e.sha256 != sha256]
        if not others:
            return ""
        return (
            f"Patient {filed.patient_id}, lesion {filed.lesion_label}: {len(others)} other picture(s) "
            "of this lesion; press L to see its visits side by side."
        )

    return job


class CaseNavigation(QObject):
    def __init__(self, window, pool: WorkerPool, store: Callable[[], ReviewStore | None], notify: Callable[..., None]):
        """`window`: the MainWindow whose tabs (case_tab, case_panel, screening, queue_view, patients_view) it moves
        between."""
        super().__init__(window)
        self.w, self.pool, self.store, self.notify = window, pool, store, notify
        self._opened = ""  # the picture opened last: its earlier visits are said only while it is open

    def shortcuts(self) -> None:
        w, ctx = self.w, Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence("N"), w.case_tab, lambda: self.step(1), context=ctx)
        QShortcut(QKeySequence("P"), w.case_tab, lambda: self.step(-1), context=ctx)
        QShortcut(QKeySequence("Backspace"), w.case_tab, lambda: w.tabs.setCurrentWidget(w.screening), context=ctx)
        QShortcut(QKeySequence("L"), w.case_tab, lambda: self.show_lesion_visits(w.case_panel), context=ctx)
        QShortcut(QKeySequence("L"), w.queue_view, lambda: self.show_lesion_visits(w.queue_view.panel), context=ctx)

    def open_case(self, ref: CaseRef) -> None:
        w = self.w
        w.case_panel.open(ref)
        w.tabs.setCurrentWidget(w.case_tab)
        w.case_panel.setFocus()
        self._say_earlier_visits(ref)

    def open_result(self, result_id: int) -> None:
        store = self.store()
        result = store.get_result(result_id) if store is not None else None
        if result is not None:
            self.open_case(CaseRef(result_id, result))

    def _say_earlier_visits(self, ref: CaseRef) -> Worker | None:
        """A dermatologist compares a lesion with its earlier pictures first: say when there are some."""
        store, sha = self.store(), ref.shown.sha256
        self._opened = sha or ""
        if store is None or not sha:
            return None
        job = earlier_visits_job(store, sha)
        worker = Worker(lambda report, should_stop: (sha, job(report, should_stop)), name="earlier visits")
        worker.signals.result.connect(self._visits_found)
        return self.pool.start(worker)

    def _visits_found(self, found: tuple[str, str]) -> None:
        sha, words = found
        if words and sha == self._opened:
            self.notify(words, 10_000)

    def show_lesion_visits(self, panel) -> None:
        """The open case's lesion in the Patients tab: its earlier visits side by side."""
        ref = panel.current
        sha = ref.shown.sha256 if ref is not None else None
        if sha and self.w.patients_view.show_lesion_of(sha):
            self.w.tabs.setCurrentWidget(self.w.patients_view)
        else:
            self.notify(NOT_FILED, 8000)

    def step(self, step: int) -> None:
        panel = self.w.case_panel
        if panel.current is None:
            return
        ref = self.w.screening.neighbour(panel.current, step)
        if ref is not None:
            panel.open(ref)

    def reviewed(self, review, from_queue: bool) -> None:
        self.notify(f"Review saved ({review.words}, by {review.reviewer}).", 6000)
        self.w.screening.model.add_review(review)
        if not from_queue:
            self.w.queue_view.refresh()
