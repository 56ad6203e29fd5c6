"""The review queue: exactly the review and suspicious results, highest risk first; a keyboard-only
review loop; reviews stored, shown in the history, in the results table and kept when the window is rebuilt."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.records.store import ReviewStore
from desktop.queue_model import QueueModel


def _needs_review_ids(window) -> set[int]:
    return {r.result_id for r in window.screening.model.rows if r.result.ok and r.result.decision.needs_review}


def _wait_case(qtbot, panel, result_id=None):
    qtbot.waitUntil(
        lambda: panel.case_view.case is not None and (result_id is None or panel.case_view.case.result_id == result_id),
        timeout=10_000,
    )


def _activate(qtbot, window):
    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5_000)


def test_queue_holds_exactly_uncertain_and_suspicious(make_window, screen, clinic_folder):
    w = make_window()
    screen(w, clinic_folder)
    expected = _needs_review_ids(w)
    assert expected, "the synthetic models should leave something to review in this folder"
    queued = [item.result_id for item in w.queue_view.model.items]
    assert sorted(queued) == sorted(expected)
    assert len(queued) == len(set(queued))
    # Highest p(malignant) first, in the store's order and in the table as shown.
    ps = [item.p_malignant for item in w.queue_view.model.items]
    assert ps == sorted(ps, reverse=True)
    proxy = w.queue_view.proxy
    shown = [proxy.data(proxy.index(r, QueueModel.P)) for r in range(proxy.rowCount())]
    assert shown == [f"{p:.3f}" for p in ps]
    # Every column sorts: by file name, then back to risk.
    w.queue_view.table.sortByColumn(QueueModel.FILE, Qt.SortOrder.AscendingOrder)
    names = [proxy.data(proxy.index(r, QueueModel.FILE)) for r in range(proxy.rowCount())]
    assert names == sorted(names, key=str.casefold)
    assert w.tabs.tabText(2) == f"Review queue ({len(expected)})"


def test_keyboard_review_loop_and_history_survive_a_restart(make_window, screen, qtbot, clinic_folder):
    w = make_window()
    screen(w, clinic_folder)
    queue = w.queue_view
    n = queue.model.rowCount()
    assert n >= 2, "need two queued cases to walk the queue"
    w.tabs.setCurrentWidget(queue)
    _activate(qtbot, w)
    first_id = queue.model.items[0].result_id
    second_id = queue.model.items[1].result_id
    _wait_case(qtbot, queue.panel, first_id)
    queue.panel.setFocus()

    # N / P walk the queue.
    QTest.keyClick(queue.panel, Qt.Key.Key_N)
    _wait_case(qtbot, queue.panel, second_id)
    QTest.keyClick(queue.panel, Qt.Key.Key_P)
    _wait_case(qtbot, queue.panel, first_id)

    # 2 = monitor and the months typed after it (2 1 2 = 12 months: 3 keys, not 16), Esc ends the months,
    # 3 = excise, E to the note, type, Esc back, Ctrl+Enter to save.
    QTest.keyClick(queue.panel, Qt.Key.Key_2)
    assert queue.panel.form.chosen() == "monitor" and queue.panel.form.months.value() == 6
    QTest.keyClick(queue.panel, Qt.Key.Key_1)
    QTest.keyClick(queue.panel, Qt.Key.Key_2)
    assert queue.panel.form.chosen() == "monitor" and queue.panel.form.months.value() == 12
    QTest.keyClick(queue.panel, Qt.Key.Key_Escape)
    QTest.keyClick(queue.panel, Qt.Key.Key_3)
    assert queue.panel.form.chosen() == "excise"
    QTest.keyClick(queue.panel, Qt.Key.Key_E)
    assert queue.panel.form.note.hasFocus()
    QTest.keyClicks(queue.panel.form.note, "Pen and paper: asymmetric, 2 colours")  # N and P typed, not shortcuts
    assert queue.panel.form.note.toPlainText() == "Pen and paper: asymmetric, 2 colours"
    assert queue.panel.current.result_id == first_id
    QTest.keyClick(queue.panel.form.note, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)

    # The reviewed case left the queue and the next one opened.
    qtbot.waitUntil(lambda: queue.model.rowCount() == n - 1, timeout=5_000)
    assert first_id not in [i.result_id for i in queue.model.items]
    _wait_case(qtbot, queue.panel, second_id)
    assert w.tabs.tabText(2) == f"Review queue ({n - 1})"

    # It is in the database, with the reviewer's name.
    with ReviewStore.open(w.settings.resolved_database_path()) as other:
        history = other.history(first_id)
    assert [(r.reviewer, r.decision, r.note) for r in history] == [
        ("Dr. Test", "excise", "Pen and paper: asymmetric, 2 colours")
    ]

    # A new window on the same files: the review is still there and the case stays out of the queue.
    settings = w.settings
    w.shutdown()
    w2 = make_window(settings)
    qtbot.waitUntil(lambda: w2.queue_view.model.rowCount() > 0, timeout=10_000)  # the queue is read on a worker
    assert first_id not in [i.result_id for i in w2.queue_view.model.items]
    with qtbot.waitSignal(w2.queue_view.refreshed, timeout=10_000):
        w2.queue_view.include_reviewed.setChecked(True)
    row = [i.result_id for i in w2.queue_view.model.items].index(first_id)
    w2.queue_view.select_row(row)
    _wait_case(qtbot, w2.queue_view.panel, first_id)
    lines = [w2.queue_view.panel.form.history.item(i).text() for i in range(w2.queue_view.panel.form.history.count())]
    assert len(lines) == 1 and "Dr. Test" in lines[0] and "excise / biopsy" in lines[0] and "asymmetric" in lines[0]
    assert "excise / biopsy" in w2.queue_view.panel.case_view.details.review_label.text()

    # A second review is added beside the first, never over it; monitor keeps its months.
    form = w2.queue_view.panel.form
    form.choose("monitor")
    form.months.setValue(3)
    with qtbot.waitSignal(w2.queue_view.panel.reviewed, timeout=10_000):  # saved on a worker
        form._on_save()
    qtbot.waitUntil(lambda: len(w2.store.history(first_id)) == 2, timeout=5_000)
    assert [(r.decision, r.follow_up_months) for r in w2.store.history(first_id)] == [("excise", None), ("monitor", 3)]
    assert "monitor (follow up in 3 months)" in w2.queue_view.panel.case_view.details.review_label.text()


def test_saving_without_a_decision_asks_for_one(make_window, screen, qtbot, clinic_folder):
    w = make_window()
    screen(w, clinic_folder)
    panel = w.queue_view.panel
    _wait_case(qtbot, panel)
    rid = panel.current.result_id
    panel.form._on_save()
    assert "Choose a decision" in panel.form.status.text()
    assert w.store.history(rid) == []


def test_case_view_shows_heat_map_and_details(make_window, screen, qtbot, clinic_folder):
    w = make_window()
    screen(w, clinic_folder)
    row = next(r for r in w.screening.model.rows if r.result.ok)
    idx = w.screening.proxy.mapFromSource(w.screening.model.index(w.screening.model.rows.index(row), 1))
    w.screening.table.doubleClicked.emit(idx)
    assert w.tabs.currentWidget() is w.case_tab
    _wait_case(qtbot, w.case_panel, row.result_id)
    view = w.case_panel.case_view
    case = view.case
    assert case.rgb is not None and case.result.cam is not None
    with_heat = view.composed_rgb()
    assert with_heat.shape == case.rgb.shape and (with_heat != case.rgb).any()
    view.heat_toggle.setChecked(False)
    assert (view.composed_rgb() == case.rgb).all()
    view.heat_toggle.setChecked(True)
    view.opacity.setValue(0)
    assert (view.composed_rgb() == case.rgb).all()  # opacity 0 shows the bare image
    # Every class probability, the members and the gate reason are on screen.
    d = view.details
    assert d.class_grid.count() == 3 * len(case.result.class_probs)
    assert f"{len(case.result.member_p)} models" in d.members.text()
    assert d.reason.text() == case.result.reason
    assert d.badge.text().startswith(("no cancer suspected", "review", "suspicious for "))
    assert d.likely.text().startswith("Most likely: ")  # the most likely class, in words
    # The numbers are one click away.
    assert not d.details_box.isVisibleTo(d)
    d.details_toggle.click()
    assert d.details_box.isVisibleTo(d) and "p(malignant) = " in d.p_label.text()
    # Heat map modes: side by side doubles the width, contours keep the size.
    view.opacity.setValue(45)
    view.heat_mode.setCurrentText("side by side")
    assert view.composed_rgb().shape[1] > 2 * case.rgb.shape[1]
    view.heat_mode.setCurrentText("contour")
    assert view.composed_rgb().shape == case.rgb.shape
    view.heat_mode.setCurrentText("overlay")
    # Zoom and fit.
    view.view.zoom(2.0)
    assert view.view.scale_factor() > 1.0
    view.view.fit()
    # Reviews can be recorded from here too, and reach the queue view.
    w.case_panel.form.choose("no_action")
    with qtbot.waitSignal(w.case_panel.reviewed, timeout=10_000):  # saved on a worker
        w.case_panel.form._on_save()
    assert [r.decision for r in w.store.history(row.result_id)] == ["no_action"]
    # The table and the case now show the clinician's decision, not the machine's.
    cell = w.screening.model.index(w.screening.model.rows.index(row), 2)
    assert w.screening.model.data(cell) == "✓ no action"
    assert "Clinician: no action (benign)" in w.screening.model.data(cell, Qt.ItemDataRole.ToolTipRole)
    assert "no action (benign)" in d.review_label.text()


def test_case_falls_back_to_thumbnail_when_file_is_gone(make_window, screen, qtbot, clinic_folder):
    w = make_window()
    screen(w, clinic_folder)
    row = next(r for r in w.screening.model.rows if r.result.ok)
    from pathlib import Path

    Path(row.result.path).unlink()
    from desktop.views.case_panel import CaseRef

    w.open_case(CaseRef(row.result_id, row.result))
    _wait_case(qtbot, w.case_panel, row.result_id)
    case = w.case_panel.case_view.case
    assert case.rgb is not None and max(case.rgb.shape[:2]) <= 160
    assert "thumbnail" in case.image_note
