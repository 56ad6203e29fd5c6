"""Screening a folder through the real worker: rows, failures, cancel, reuse, filter, sort, export."""

from __future__ import annotations

import csv
import time

from PySide6.QtCore import Qt

from core.records.store import ReviewStore
from desktop.models import ResultsModel
from desktop.table_cells import DECISION_ROLE

IMAGES_IN_CLINIC = 10  # see the clinic_folder fixture: 10 images, a cut-off JPEG, a text file
FILES_IN_CLINIC = 12


def _table_texts(view, column: int) -> list[str]:
    return [view.proxy.data(view.proxy.index(r, column)) for r in range(view.proxy.rowCount())]


def test_screening_fills_the_table_and_lists_failures(make_window, screen, clinic_folder):
    w = make_window()
    summary = screen(w, clinic_folder)
    assert not summary.cancelled and summary.total == FILES_IN_CLINIC and summary.errors == 2
    view = w.screening
    assert view.model.rowCount() == FILES_IN_CLINIC
    files = _table_texts(view, ResultsModel.FILE)
    assert "zz_broken.jpg" in files and "zz_notes.txt" in files
    decisions = _table_texts(view, ResultsModel.DECISION)
    assert decisions.count("not screened") == 2
    assert all(
        d.startswith(("no cancer suspected", "review", "suspicious for "))
        for f, d in zip(files, decisions)
        if not f.startswith("zz_")
    )
    # Highest p(malignant) first by default; the files that could not be screened last.
    ps = _table_texts(view, ResultsModel.P)
    assert ps[-2:] == ["—", "—"] and [float(p) for p in ps[:-2]] == sorted((float(p) for p in ps[:-2]), reverse=True)
    assert all(t and t != "—" for t in _table_texts(view, ResultsModel.LIKELY)[:-2])
    # Each failure is listed with its reason.
    failures = [view.failures.item(i).text() for i in range(view.failures.count())]
    assert len(failures) == 2
    assert any(f.startswith("zz_notes.txt: not an image file") for f in failures)
    assert any(f.startswith("zz_broken.jpg: ") and len(f) > 20 for f in failures)
    assert view.failures_widget.isVisibleTo(w)
    # Counts per decision agree with the table and with the store's run.
    counts = view.model.counts()
    run = w.store.get_run(summary.run_id)
    assert (counts["benign"], counts["uncertain"], counts["suspicious"], counts["error"]) == (
        run.counts.benign,
        run.counts.uncertain,
        run.counts.suspicious,
        run.counts.error,
    )
    assert view.filter_buttons["error"].text() == "Not screened: 2"
    # Good rows know their id in the store and show a thumbnail.
    ok_rows = [r for r in view.model.rows if r.result.ok]
    assert len(ok_rows) == IMAGES_IN_CLINIC and all(r.result_id is not None for r in ok_rows)
    idx = view.model.index(view.model.rows.index(ok_rows[0]), ResultsModel.THUMB)
    assert view.model.data(idx, Qt.ItemDataRole.DecorationRole) is not None
    # The decision cell carries text and a colour.
    idx = view.model.index(0, ResultsModel.DECISION)
    assert (
        view.model.data(idx, Qt.ItemDataRole.DisplayRole)
        and view.model.data(idx, Qt.ItemDataRole.BackgroundRole) is not None
    )


def test_second_screening_reuses_stored_results(make_window, screen, clinic_folder):
    w = make_window()
    first = screen(w, clinic_folder)
    second = screen(w, clinic_folder)
    assert first.reused == 0 and second.reused == IMAGES_IN_CLINIC
    sources = _table_texts(w.screening, ResultsModel.SOURCE)
    files = _table_texts(w.screening, ResultsModel.FILE)
    assert {s for s, f in zip(sources, files) if not f.startswith("zz_")} == {"from earlier run"}
    assert "from earlier runs" in w.screening.summary_label.text()
    # Screening twice never queues an image twice.
    assert len(w.store.queue()) == sum(
        1 for r in w.screening.model.rows if r.result.ok and r.result.decision.needs_review
    )


def test_choosing_a_screened_folder_shows_its_stored_results(make_window, screen, qtbot, clinic_folder):
    w = make_window()
    summary = screen(w, clinic_folder)
    w.screening.model.set_rows([])
    with qtbot.waitSignal(w.run_shown, timeout=10_000):  # the stored rows are read on a worker
        assert w.show_latest_run_of(str(clinic_folder))
    assert w.screening.current_run_id == summary.run_id
    assert w.screening.model.rowCount() == FILES_IN_CLINIC


def test_cancel_stops_quickly_and_keeps_what_was_done(make_window, qtbot, clinic_folder):
    w = make_window()
    cancelled_at = []

    def cancel_on_first_batch(batch):
        if not cancelled_at:
            cancelled_at.append(time.monotonic())
            w.cancel_screening()

    with qtbot.waitSignal(w.run_done, timeout=30_000) as blocker:
        worker = w.start_screening(str(clinic_folder), False)
        worker.signals.progress.connect(cancel_on_first_batch)
    stopped_after = time.monotonic() - cancelled_at[0]
    summary = blocker.args[0]
    assert summary.cancelled
    assert stopped_after < 2.0
    assert 1 <= summary.total < FILES_IN_CLINIC
    assert w.screening.model.rowCount() == summary.total
    assert "Cancelled" in w.screening.summary_label.text()
    # What was done is in the results file, and the run says it was cancelled.
    with ReviewStore.open(w.settings.resolved_database_path()) as other:
        run = other.get_run(summary.run_id)
        assert run.status == "cancelled"
        assert len(other.run_entries(summary.run_id)) == summary.total
    assert w.screening.screen_button.isEnabled() and not w.screening.cancel_button.isEnabled()


def test_filter_and_sort(make_window, screen, clinic_folder):
    w = make_window()
    screen(w, clinic_folder)
    view = w.screening
    counts = view.model.counts()
    view.filter_buttons["benign"].setChecked(False)
    view.filter_buttons["error"].setChecked(False)
    shown = {view.proxy.data(view.proxy.index(r, 0), DECISION_ROLE) for r in range(view.proxy.rowCount())}
    assert view.proxy.rowCount() == counts["uncertain"] + counts["suspicious"]
    assert shown <= {"uncertain", "suspicious"}
    for b in view.filter_buttons.values():
        b.setChecked(True)
    view.table.sortByColumn(ResultsModel.P, Qt.SortOrder.DescendingOrder)
    ps = [float(t) for t in _table_texts(view, ResultsModel.P) if t != "—"]
    assert ps == sorted(ps, reverse=True) and len(ps) == IMAGES_IN_CLINIC


def test_failed_folder_is_reported_not_crashed(make_window, qtbot, tmp_path):
    w = make_window()
    with qtbot.waitSignal(w.run_done, timeout=20_000) as blocker:
        w.start_screening(str(tmp_path / "gone"), False)
    assert isinstance(blocker.args[0], Exception)
    assert "does not exist" in w.screening.summary_label.text()
    assert w.screening.screen_button.isEnabled() or not w.screening.folder


def test_export_csv_and_printable_report(export_csv, make_window, screen, qtbot, clinic_folder, tmp_path):
    w = make_window()
    screen(w, clinic_folder)
    out = export_csv(w, tmp_path / "run.csv")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == FILES_IN_CLINIC
    assert {r["status"] for r in rows} == {"ok", "error"} and "p_mel" in rows[0]
    report = tmp_path / "report.html"
    with qtbot.waitSignal(w.export_done, timeout=30_000):
        w.export_report(str(report))
    text = report.read_text(encoding="utf-8")
    assert text.count("data:image/jpeg;base64,") == 2 * IMAGES_IN_CLINIC  # picture + heat map per image
    assert "zz_broken.jpg" in text and "not an approved medical device" in text


def test_dropping_a_folder_screens_it(make_window, qtbot, clinic_folder):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    w = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(clinic_folder))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(w.run_done, timeout=60_000):
        w.screening.dropEvent(event)
    assert w.screening.folder == str(clinic_folder)
    assert w.screening.model.rowCount() == FILES_IN_CLINIC
