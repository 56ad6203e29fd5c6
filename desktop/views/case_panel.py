"""A case and its review: the case view above, the review form and the review history below.

Loading a case (database read + image decode, its review history), saving a review (then reading the history
again) and recording a confirmed diagnosis run on workers. Reviews are never edited: a second review of a case
is a new entry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QLabel,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core import (
    MAX_FOLLOW_UP_MONTHS,
    REVIEW_CHOICES,
    ReviewStore,
    ScreeningResult,
    add_confirmed,
    confirmed_for_images,
)

from ..workers import Worker, WorkerPool
from .case_data import CaseData, load_case
from .case_view import CaseView
from .review_form import ReviewForm, history_line
from .similar_strip import SimilarStrip
from .timeline import LesionTimelineView

CASE_KEYS_HELP = (
    "Keys: N / P next / previous row of the results · Backspace back to the results · "
    "1 no action · 2 monitor (then the months, e.g. 2 1 2 = 12) · 3 excise · 4 refer · 5 retake · "
    "E note (Esc back) · Ctrl+Enter save · H heat map · + / − / 0 zoom · L this lesion's visits (Patients)"
)
MONTHS_TYPING_S = 2.5  # after "2" (monitor), digits typed within this many seconds set the months


@dataclass(frozen=True)
class CaseRef:
    """Which case to open: its id in the store and the result as the list showed it."""

    result_id: int | None
    shown: ScreeningResult


def confirm_job(store, case: CaseData, entered_by: str, where: dict, values: dict):
    """Record the confirmed diagnosis, then read what the case's pictures now carry (sha256 -> confirmed)."""
    sha256 = case.result.sha256
    assert sha256, "record_confirmed makes no job for a picture without its sha256"

    def job(report, should_stop) -> tuple:
        confirmed = add_confirmed(store, entered_by=entered_by, **where, **values)
        shas = [sha256, *(e.sha256 for e in case.visits)]
        return confirmed, confirmed_for_images(store, shas)

    return job


class CasePanel(QWidget):
    """Case view + review form. `reviewer()` returns the reviewer's name, or None to cancel a save."""

    reviewed = Signal(int, object)  # result_id, Review (saved on a worker)
    loaded = Signal(object)  # CaseData
    confirmed = Signal(object)  # core.records.evidence.ConfirmedDiagnosis, recorded on a worker

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
        self.reviewer = reviewer
        self.case_view = CaseView(opacity)
        self.form = ReviewForm()
        self._request = 0
        self._saving: int | None = None  # the result id whose review is being saved (one save at a time)
        self._reviewer_name = ""
        self._months_until = 0.0  # monitor's months being typed until this time (time.monotonic)
        self._months_typed = ""
        self.current: CaseRef | None = None
        # The lesion's other visits beside the picture (the Patients tab's timeline view).
        self.visits = LesionTimelineView(self._thumbnail)
        self.visits.setMinimumWidth(150)
        self.visits.hide()
        self.similar = SimilarStrip()  # shown only when the bundle carries a similar-cases index
        self.similar_cases = None  # core.inference.similar.SimilarCases of the loaded bundle, built on a worker
        column = QWidget()
        column_lay = QVBoxLayout(column)
        column_lay.setContentsMargins(0, 0, 0, 0)
        column_lay.addWidget(self.case_view, 1)
        column_lay.addWidget(self.similar)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(column)
        top.addWidget(self.visits)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 2)
        top.setChildrenCollapsible(False)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.form)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        self.form.save_requested.connect(self._save)
        self.form.confirm.clicked.connect(lambda: self.record_confirmed())
        self.case: CaseData | None = None
        self.cam_provider: Callable | None = None  # (rgb, class code) -> heat map; set when models are loaded
        self.case_view.heat_class_wanted.connect(self._compute_class_cam)
        self.form.note.escaped.connect(self.setFocus)
        self._shortcuts()

    def _shortcuts(self) -> None:
        ctx = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(seq), self, self.form._on_save, context=ctx)
        for digit in range(10):  # 1-5: a decision; after 2 (monitor), digits are its months; 0 alone: fit
            QShortcut(QKeySequence(str(digit)), self, lambda d=digit: self.digit_key(d), context=ctx)
        QShortcut(QKeySequence("E"), self, self.focus_note, context=ctx)
        QShortcut(QKeySequence("Escape"), self, self.end_months_typing, context=ctx)
        QShortcut(QKeySequence("H"), self, self.case_view.toggle_heat_map, context=ctx)
        QShortcut(QKeySequence("+"), self, lambda: self.case_view.view.zoom(1.25), context=ctx)
        QShortcut(QKeySequence("="), self, lambda: self.case_view.view.zoom(1.25), context=ctx)
        QShortcut(QKeySequence("-"), self, lambda: self.case_view.view.zoom(0.8), context=ctx)

    def digit_key(self, digit: int) -> None:
        """1-5 choose a decision; "2" (monitor) then digits types the months: 2 1 2 = monitor, 12 months."""
        now = time.monotonic()
        monitor = next((c for c in REVIEW_CHOICES if c.asks_months), None)
        if now < self._months_until and monitor is not None and self.form.chosen() == monitor.code:
            typed = self._months_typed + str(digit)
            if typed.lstrip("0") and int(typed) <= MAX_FOLLOW_UP_MONTHS:
                self._months_typed = typed
                self.form.months.setValue(int(typed))
                self._months_until = now + MONTHS_TYPING_S
                return
        self._months_until = 0.0
        choice = next((c for c in REVIEW_CHOICES if c.key == digit), None)
        if choice is None:
            if digit == 0:
                self.case_view.view.fit()
            return
        self.form.choose(choice.code)
        if choice.asks_months:
            self._months_typed = ""
            self._months_until = now + MONTHS_TYPING_S

    def set_models(self, ensemble) -> None:
        """The loaded models compute the heat map of any class on request (core/inference/class_cam.py)."""
        from core import class_heat_map

        self.cam_provider = None if ensemble is None else (lambda rgb, code: class_heat_map(ensemble, rgb, code))
        if ensemble is not None:
            self.case_view.positive_class = ensemble.manifest.positive_class
        self.set_similar_bundle(getattr(ensemble, "bundle", None))

    def set_similar_bundle(self, bundle) -> None:
        """Load the bundle's similar-cases index on a worker; a bundle without one: no strip."""
        from core import SimilarCases, has_index

        self.similar_cases = None
        self.similar.clear()
        if bundle is None or not has_index(bundle):
            return
        worker = Worker(lambda report, should_stop: SimilarCases(bundle), name="similar cases index")
        worker.signals.result.connect(self._similar_ready)
        self.pool.start(worker)

    def _similar_ready(self, similar) -> None:
        self.similar_cases = similar
        if self.case is not None:
            self._find_similar(self.case)

    def _find_similar(self, case: CaseData) -> None:
        similar, request = self.similar_cases, self._request
        if similar is None or case.rgb is None or not case.result.ok:
            self.similar.clear()
            return
        from core import InputSpec, model_input

        spec, rgb = InputSpec.from_manifest(similar.manifest), case.rgb
        worker = Worker(lambda report, should_stop: similar.query(model_input(rgb, spec)), name="similar cases")
        worker.signals.result.connect(
            lambda found, n=request: self.similar.show_neighbours(found) if n == self._request else None
        )
        self.pool.start(worker)

    def _compute_class_cam(self, code: str) -> None:
        case = self.case_view.case
        if self.cam_provider is None or case is None or case.rgb is None:
            return
        provider, rgb, request = self.cam_provider, case.rgb, self._request
        worker = Worker(lambda report, should_stop: provider(rgb, code), name="class heat map")
        worker.signals.result.connect(
            lambda cam, n=request: self.case_view.set_class_cam(code, cam) if n == self._request else None
        )
        self.pool.start(worker)

    def end_months_typing(self) -> None:
        """Esc: the next digit is a decision again, not more months."""
        self._months_until = 0.0

    def _thumbnail(self, result_id: int) -> bytes | None:
        store = self.store_fn()
        return None if store is None else store.thumbnail(result_id)

    def _show_visits(self, case: CaseData) -> None:
        others = [e for e in case.visits if e.sha256 != case.result.sha256]
        if not others or case.identity is None:
            self.visits.clear("")
            self.visits.hide()
            return
        a = case.identity
        site = f" ({a.body_site})" if a.body_site else ""
        n = len(others)
        title = f"Lesion {a.lesion_label}{site}: {n} other picture{'s' if n != 1 else ''}, oldest left"
        self.visits.show_timeline(title, others, case.confirmed)
        self.visits.show()

    def focus_note(self) -> None:
        if self.form.note.isEnabled():
            self.form.note.setFocus()

    def clear(self, text: str = "") -> None:
        self._request += 1
        self.current = None
        self.case_view.show_placeholder(text)
        self.similar.clear()
        self.visits.hide()
        self.form.set_case(None, [])

    def open(self, ref: CaseRef) -> None:
        """Load the case on a worker; a newer request replaces an older one still loading."""
        self._request += 1
        request = self._request
        self.current = ref
        self.case_view.message.setText("Loading…")
        self.case_view.message.show()
        store = self.store_fn()

        def job(report, should_stop) -> tuple[CaseData, list]:
            case = load_case(store, ref.result_id, ref.shown)
            history = store.history(case.result_id) if (store is not None and case.result_id is not None) else []
            return case, history

        worker = Worker(job, name="load case")
        worker.signals.result.connect(lambda loaded, n=request: self._loaded(n, *loaded))
        worker.signals.failed.connect(lambda exc, n=request: self._failed(n, exc))
        self.pool.start(worker)

    def _loaded(self, request: int, case: CaseData, history: list) -> None:
        if request != self._request:
            return  # the user has moved on
        self.case = case
        self.case_view.show_case(case, history[-1] if history else None)  # reviews follow the image
        self._show_visits(case)
        self._find_similar(case)
        self.form.set_case(case.result_id if case.result.ok else None, history)
        self.form.confirm.setEnabled(case.result.ok and bool(case.result.sha256))
        self.form.set_reviewer(self.reviewer_name())
        self.loaded.emit(case)

    def record_confirmed(self, values: dict | None = None) -> Worker | None:
        """Record a confirmed diagnosis for the case's lesion (every picture of it), or for the picture when it
        is filed under no patient; `values` (diagnosis, method, confirmed_on, note) skip the dialog. It is written
        on a worker: `confirmed` (core.records.evidence.ConfirmedDiagnosis) follows, or a message says why not.
        Returns None when there is nothing to record or the dialog was cancelled."""
        from .confirm_dialog import ConfirmDiagnosisDialog

        store, case = self.store_fn(), self.case
        if store is None or case is None or not case.result.ok or not case.result.sha256:
            return None
        name = self.reviewer_name() or (self.reviewer() or "")
        a = case.identity
        what = (
            f"patient {a.patient_id}, lesion {a.lesion_label} (every picture of it)"
            if a is not None
            else "this picture (it is filed under no patient)"
        )
        if values is None:
            dialog = ConfirmDiagnosisDialog(what, name, case.result.malignant_class, self)
            if not dialog.exec():
                return None
            values = dialog.values()
        where = {"lesion": a.lesion_key} if a is not None else {"sha256": case.result.sha256}
        job, request = confirm_job(store, case, name, where, values), self._request
        worker = Worker(lambda report, should_stop: (request, case, *job(report, should_stop)), name="confirmed")
        worker.signals.result.connect(self._confirmed)  # bound methods: dropped if this panel is gone
        worker.signals.failed.connect(self._not_confirmed)
        return self.pool.start(worker)

    def _confirmed(self, recorded: tuple) -> None:
        """Recorded: the case (when it is still the one open) and its lesion's visits say so."""
        request, case, confirmed, shown = recorded
        if request == self._request:
            self.case = replace(case, confirmed=shown)
            self.case_view.case = self.case
            self.case_view.details.set_confirmed(self.case.confirmed.get(case.result.sha256))
            self._show_visits(self.case)
            self.form.status.setText(f"<span style='color:#4a148c'>Recorded: {confirmed.shown}</span>")
        self.confirmed.emit(confirmed)

    def _not_confirmed(self, exc: BaseException) -> None:  # EvidenceError, StoreError, ValueError: nothing written
        QMessageBox.warning(self, "Not recorded", f"The confirmed diagnosis could not be recorded:\n{exc}")

    def _failed(self, request: int, exc: BaseException) -> None:
        if request == self._request:
            self.case_view.show_placeholder(f"This case could not be opened: {exc}")

    def reviewer_name(self) -> str:
        return self._reviewer_name

    def set_reviewer_name(self, name: str) -> None:
        self._reviewer_name = name
        self.form.set_reviewer(name)

    def _save(self, decision: str, note: str, months: int | None = None) -> Worker | None:
        """Save the review on a worker (then read the case's history again); `reviewed` follows."""
        store = self.store_fn()
        result_id = self.form.result_id
        if store is None or result_id is None or self._saving is not None:
            return None  # nothing to save, or a save in flight (a second Ctrl+Enter must not save it twice)
        name = self.reviewer()
        if not name:
            self.form.status.setText("<span style='color:#c62828'>A review needs your name: set it in Settings.</span>")
            return None
        self.set_reviewer_name(name)
        self._saving, request = result_id, self._request

        def job(report, should_stop) -> tuple:
            review = store.add_review(result_id, name, decision, note, months)
            return request, result_id, review, store.history(result_id)

        worker = Worker(job, name="save review")
        worker.signals.result.connect(self._saved)  # bound methods: dropped if this panel is gone
        worker.signals.failed.connect(self._not_saved)
        return self.pool.start(worker)

    def _saved(self, saved: tuple) -> None:
        request, result_id, review, history = saved
        self._saving = None
        if request == self._request:  # still the case open: its form and history show the review
            self.form.set_case(result_id, history)
            self.case_view.details.set_review(review)
            self.form.status.setText(f"<span style='color:#2e7d32'>Saved: {history_line(review)}</span>")
            self.setFocus()
        self.reviewed.emit(result_id, review)

    def _not_saved(self, exc: BaseException) -> None:  # StoreError / ValueError: said, the form kept as it is
        self._saving = None
        QMessageBox.warning(self, "Review not saved", f"The review could not be saved:\n{exc}")


def with_keys_help(panel: CasePanel, text: str = CASE_KEYS_HELP) -> QWidget:
    """The Case tab: the panel over the keys it answers to."""
    tab = QWidget()
    lay = QVBoxLayout(tab)
    lay.addWidget(panel, 1)
    keys = QLabel(text)
    keys.setStyleSheet("color:#455a64;")
    keys.setWordWrap(True)
    lay.addWidget(keys)
    return tab
