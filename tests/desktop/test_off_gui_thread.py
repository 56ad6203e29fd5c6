"""Reading files, hashing them and reading many rows of the results file happen on a worker, never on the
GUI thread; the view updates when the result arrives (issue 27 item 6)."""

from __future__ import annotations

import csv
import threading
from dataclasses import replace


def _on_threads(monkeypatch, module, name: str) -> list[bool]:
    """Wrap module.name so each call records whether it ran on the GUI (main) thread."""
    real = getattr(module, name)
    calls: list[bool] = []

    def spy(*args, **kwargs):
        calls.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def test_the_timeline_reads_and_hashes_its_pictures_on_a_worker(qtbot, monkeypatch, store):
    import desktop.views.timeline as timeline
    from desktop.views.patients import PatientWorklistView

    on_gui = _on_threads(monkeypatch, timeline, "case_picture")
    view = PatientWorklistView(lambda: store)
    qtbot.addWidget(view)
    view.resize(1200, 700)
    view.show()
    with qtbot.waitSignal(view.timeline.pictures_shown, timeout=10_000):
        view.refresh()  # the first patient's first lesion: two visits
    assert on_gui and not any(on_gui)  # every picture read off the GUI thread
    assert len(view.timeline.views) == 2
    assert all(not v._item.pixmap().isNull() for v in view.timeline.views)  # the view shows what arrived


def test_pictures_of_a_lesion_no_longer_shown_are_dropped(qtbot, store):
    from core.records.patients import lesion_timeline, patient_lesions
    from desktop.views.timeline import LesionTimelineView

    timeline = LesionTimelineView(store.thumbnail)
    qtbot.addWidget(timeline)
    shown = []
    timeline.pictures_shown.connect(lambda: shown.append(len(timeline.views)))
    two, one = (
        lesion_timeline(store, le.lesion_key)
        for le in (patient_lesions(store, "P1")[0], patient_lesions(store, "P2")[0])
    )
    timeline.show_timeline("P1 L1", two)  # two pictures, being read
    timeline.show_timeline("P2 L1", one)  # chosen before they could arrive
    assert timeline.pool.pool.waitForDone(10_000)
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    qtbot.wait(50)  # the first lesion's pictures, had they been kept, would have arrived by now
    assert shown == [1] and len(two) == 2 and not timeline.views[0]._item.pixmap().isNull()


def test_the_worklist_a_patients_lesions_and_a_lesions_visits_are_read_on_a_worker(qtbot, monkeypatch, store):
    import desktop.views.patients as patients

    reads = [_on_threads(monkeypatch, patients, name) for name in ("worklist", "patient_lesions", "lesion_timeline")]
    view = patients.PatientWorklistView(lambda: store)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.shown, timeout=10_000):
        view.refresh()
        assert view.patients == [] and view.timeline.views == []  # nothing yet: being read
    assert reads == [[False], [False], [False]]
    assert view.current_patient() == "P1" and len(view.timeline.views) == 2  # shown when it arrived


def test_the_run_csv_is_written_on_a_worker(make_window, screen, export_csv, monkeypatch, clinic_folder, tmp_path):
    import desktop.controllers.exports as exports

    w = make_window()
    screen(w, clinic_folder)
    on_gui = _on_threads(monkeypatch, exports, "write_run_csv")
    reads = _on_threads(monkeypatch, exports, "identities_of")
    out = export_csv(w, tmp_path / "run.csv")
    assert on_gui == [False] and reads == [False]
    with open(out, newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == w.screening.model.rowCount()
    assert w.message_label.full_text() == f"CSV written: {out}"  # said when the worker is done


def test_a_stored_run_is_read_on_a_worker_and_then_shown(make_window, screen, qtbot, monkeypatch, clinic_folder):
    import desktop.controllers.runs as runs

    w = make_window()
    summary = screen(w, clinic_folder)
    on_gui = _on_threads(monkeypatch, runs, "filing_summary")
    w.screening.model.set_rows([])
    w.screening.current_run_id = None
    with qtbot.waitSignal(w.run_shown, timeout=10_000) as shown:
        w.show_stored_run(summary.run_id)
        assert w.screening.model.rowCount() == 0  # nothing yet: the rows are being read
    assert shown.args == [summary.run_id] and on_gui == [False]
    assert w.screening.current_run_id == summary.run_id and w.screening.model.rowCount() == summary.total


def test_a_patient_report_is_built_on_a_worker(qtbot, monkeypatch, store, patient_report, tmp_path):
    import desktop.patient_reports as reports
    from desktop.views.patients import PatientWorklistView

    built = _on_threads(monkeypatch, reports, "build_patient_report")
    written = _on_threads(monkeypatch, reports, "write_patient_report")
    view = PatientWorklistView(lambda: store)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.shown, timeout=10_000):  # read on a worker
        view.refresh()
    pdf = patient_report(view, ".pdf", tmp_path / "P1.pdf", summary="")
    csv_out = patient_report(view, ".csv", tmp_path / "P1.csv")
    assert built == [False] and written == [False]  # the PDF's pages, then the CSV, off the GUI thread
    assert pdf.read_bytes().startswith(b"%PDF") and "P1" in csv_out.read_text(encoding="utf-8")


def test_the_audit_runs_on_a_worker_and_is_then_shown(qtbot, monkeypatch, store, save_audit, tmp_path):
    import desktop.views.evidence as evidence

    on_gui = _on_threads(monkeypatch, evidence, "run_audit")
    view = evidence.EvidenceView(lambda: store, lambda: "Dr. Test", lambda: None)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.audit_ready, timeout=30_000):
        assert view.refresh_audit() is not None
        assert view.audit_view.toPlainText() == ""  # nothing yet: the audit is being run
    assert on_gui == [False] and view.audit_view.toPlainText()
    assert save_audit(view, tmp_path / "audit.csv").is_file() and on_gui == [False]  # the audit shown is saved


def test_the_follow_up_list_is_read_on_a_worker(qtbot, monkeypatch, store):
    import desktop.views.follow_up as follow_up

    on_gui = _on_threads(monkeypatch, follow_up, "due_follow_ups")
    view = follow_up.FollowUpView(lambda: store)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: on_gui != [], timeout=5_000)  # the first list is asked for when the tab is built
    with qtbot.waitSignal(view.refreshed, timeout=10_000):
        view.refresh()
    assert on_gui and not any(on_gui)
    assert view.title.text().startswith("Follow-up: 0 lesions due by")


def test_a_trial_confidence_decides_the_run_again_on_a_worker(make_window, screen, qtbot, monkeypatch, clinic_folder):
    import desktop.controllers.screening as screening

    w = make_window()
    screen(w, clinic_folder)
    other = 0.9  # not the clinic's standard (the bundle's 0.99)
    on_gui = _on_threads(monkeypatch, screening, "regate_run")
    with qtbot.waitSignal(w.runs.trial_shown, timeout=10_000):
        w.try_confidence(other)
        assert w.runs.trial_confidence is None  # nothing yet: being decided
    assert on_gui == [False] and w.runs.trial_confidence == other and "TRIAL" in w.screening.legend.text()
    with qtbot.waitSignal(w.run_shown, timeout=10_000):  # the clinic's standard: recorded on a worker too
        w.apply_settings(replace(w.settings, confidence=other))
    assert on_gui == [False, False] and len(w.store.runs()) == 2 and "TRIAL" not in w.screening.legend.text()


def test_a_runs_reviews_runs_list_and_filing_are_read_on_a_worker_before_it_is_said_done(
    make_window, screen, monkeypatch, clinic_folder
):
    import desktop.controllers.screening as screening

    on_gui = _on_threads(monkeypatch, screening, "filing_summary")
    w = make_window()
    summary = screen(w, clinic_folder)  # run_done comes once they are read and shown
    assert on_gui == [False]
    assert w.screening.runs_combo.findData(summary.run_id) >= 0 and w.screening.filing_label.text()


def test_the_review_queue_is_read_on_a_worker(make_window, screen, qtbot, monkeypatch, clinic_folder):
    import desktop.views.review_queue as review_queue

    w = make_window()
    on_gui = _on_threads(monkeypatch, review_queue, "identities_of")
    screen(w, clinic_folder)  # run_done comes once the queue is read again and shown
    waiting = len(w.queue_view.model.items)
    assert on_gui == [False] and waiting > 0 and w.tabs.tabText(2) == f"Review queue ({waiting})"
    with qtbot.waitSignal(w.queue_view.refreshed, timeout=10_000):
        w.queue_view.include_reviewed.setChecked(True)
        w.queue_view.select_row(0)  # chosen while the queue is read: row 0 of the queue read
    assert on_gui == [False, False] and w.queue_view.current_row() == 0


def test_a_confirmed_diagnosis_finds_its_picture_on_a_worker(qtbot, monkeypatch, store):
    import desktop.views.evidence as evidence

    on_gui = _on_threads(monkeypatch, evidence, "image_of_file")
    view = evidence.EvidenceView(lambda: store, lambda: "Dr. Test", lambda: None)
    qtbot.addWidget(view)
    view.file_edit.setText(store.run_entries(store.runs()[0].id, with_cam=False)[0].result.path)
    with qtbot.waitSignal(view.entry_done, timeout=10_000) as done:
        view.record()
    assert done.args == [True] and on_gui == [False] and view.entry_message.text().startswith("recorded: ")


def test_where_the_results_are_filed_is_read_on_a_worker_not_while_the_table_is_drawn(
    make_window, screen, qtbot, tmp_path
):
    from desktop.models import ResultsModel
    from tests.support.lesion_pictures import lesion

    day = tmp_path / "filed"
    day.mkdir()
    lesion(day / "a.png", 60)
    lesion(day / "b.png", 140)
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\na.png,PF,L1,back,2024-07-10\nb.png,PF,L2,chest,2024-07-10\n"
    )
    w = make_window()

    def not_here(shas):
        raise AssertionError(f"looked up on the GUI thread while drawing: {shas}")

    def patients() -> list[str]:
        model = w.screening.model
        return [model.data(model.index(i, ResultsModel.PATIENT)) for i in range(model.rowCount())]

    w.screening.model.identity_fn = not_here  # the screening's batches bring where each picture is filed
    screen(w, day)
    assert len(patients()) == 2 and all("PF" in who for who in patients())
    w.screening.model.set_rows([])
    with qtbot.waitSignal(w.run_shown, timeout=10_000):  # a stored run brings them too
        w.show_latest_run_of(str(day))
    assert len(patients()) == 2 and all("PF" in who for who in patients())


def test_a_window_opens_on_the_latest_run_read_on_a_worker(make_window, screen, qtbot, clinic_folder):
    from desktop.main_window import MainWindow

    w = make_window()
    summary = screen(w, clinic_folder)
    settings = w.settings
    w.shutdown()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    assert again.screening.current_run_id is None  # nothing yet: the runs list is being read
    with qtbot.waitSignal(again.run_shown, timeout=10_000):  # where the user left off
        pass
    assert again.screening.current_run_id == summary.run_id and again.screening.runs_combo.count() == 1
    again.shutdown()
