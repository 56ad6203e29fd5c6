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


def _opens_recorded(monkeypatch, store_class) -> tuple[list[bool], list]:
    """Wrap store_class.open: whether each call ran on the GUI thread, and the stores it opened."""
    real, on_gui, opened = store_class.open, [], []

    def spy(path):
        on_gui.append(threading.current_thread() is threading.main_thread())
        opened.append(real(path))
        return opened[-1]

    monkeypatch.setattr(store_class, "open", spy)
    return on_gui, opened


def _closed(store) -> bool:
    from core import StoreError

    try:
        return store.schema_version < 0  # any query: a closed file refuses it
    except StoreError as exc:
        return "Cannot operate on a closed database" in str(exc)


def test_the_results_file_is_opened_on_a_worker_and_the_latest_request_wins(
    make_window, screen, qtbot, monkeypatch, clinic_folder, tmp_path
):
    import desktop.controllers.results_file as results_file

    w = make_window()
    summary = screen(w, clinic_folder)
    first = w.settings
    on_gui, opened = _opens_recorded(monkeypatch, results_file.ReviewStore)
    a, b = tmp_path / "a" / "results.sqlite", tmp_path / "b" / "results.sqlite"
    with qtbot.waitSignal(w.store_opened, timeout=10_000) as done:
        w.apply_settings(replace(first, database_path=str(a)))
        w.apply_settings(replace(first, database_path=str(b)))  # chosen again before the first could open
        assert w.store is None  # nothing yet: being opened (and created)
    assert w.pool.pool.waitForDone(10_000)
    qtbot.wait(50)  # the first file, had it been kept, would have arrived by now
    assert done.args == [w.store] and w.store.path == b and on_gui == [False, False]
    by_path = {s.path: s for s in opened}  # both were being opened at once: either may have come first
    assert by_path[b] is w.store and _closed(by_path[a])  # the file asked for first was closed, not used
    assert w.store_label.toolTip() == str(b) and w.screening.runs_combo.itemText(0) == "no runs yet"  # the new file
    with qtbot.waitSignal(w.run_shown, timeout=10_000):  # back to the first file: its latest run, as before
        w.apply_settings(first)
    assert on_gui == [False, False, False] and w.screening.current_run_id == summary.run_id


def test_a_results_file_that_cannot_be_opened_is_refused_on_a_worker_and_said(
    make_window, qtbot, monkeypatch, tmp_path
):
    import desktop.controllers.results_file as results_file
    from desktop.main_window import QMessageBox

    w = make_window()
    first = w.settings
    said = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text: said.append((title, text)))
    on_gui, _ = _opens_recorded(monkeypatch, results_file.ReviewStore)
    with qtbot.waitSignal(w.store_opened, timeout=10_000) as done:
        w.apply_settings(replace(first, database_path=str(tmp_path)))  # a folder, not a file
        assert said == []  # nothing yet: being opened
    assert done.args == [None] and w.store is None and on_gui == [False] and "is a folder" in w.store_error
    assert said == [("Results file", f"{w.store_error}\n\nChoose another location in Settings.")]
    assert w.screening.banner.text() == f"The results file cannot be used: {w.store_error}"
    with qtbot.waitSignal(w.store_opened, timeout=10_000):  # a good file again: opened, the refusal forgotten
        w.apply_settings(first)
    assert w.store is not None and w.store_error == "" and on_gui == [False, False]


def test_a_cases_history_is_read_with_it_and_a_review_saved_on_a_worker(
    make_window, screen, qtbot, monkeypatch, clinic_folder
):
    from desktop.views.case_panel import CaseRef

    w = make_window()
    screen(w, clinic_folder)
    row = next(r for r in w.screening.model.rows if r.result.ok)
    reads = _on_threads(monkeypatch, w.store, "history")
    saves = _on_threads(monkeypatch, w.store, "add_review")
    panel = w.case_panel
    with qtbot.waitSignal(panel.loaded, timeout=10_000):
        w.open_case(CaseRef(row.result_id, row.result))
    assert reads and not any(reads) and panel.form.history.item(0).text() == "No reviews yet."
    read_before = len(reads)
    panel.form.choose("excise")
    with qtbot.waitSignal(panel.reviewed, timeout=10_000) as done:
        panel.form._on_save()
        panel.form._on_save()  # Ctrl+Enter again while it is being saved: saved once
        assert panel.form.history.item(0).text() == "No reviews yet."  # nothing yet: being saved
    assert saves == [False] and len(reads) > read_before and not any(reads)  # the history read again, off the GUI
    review = done.args[1]
    assert done.args[0] == row.result_id and review.decision == "excise"
    assert [r.decision for r in w.store.history(row.result_id)] == ["excise"]
    assert panel.form.history.count() == 1 and review.words in panel.form.history.item(0).text()
    assert panel.form.status.text().startswith("<span style='color:#2e7d32'>Saved: ")
    assert review.words in panel.case_view.details.review_label.text()


def test_a_confirmed_diagnosis_from_the_case_is_recorded_on_a_worker(qtbot, monkeypatch, store):
    import desktop.views.case_panel as case_panel
    from desktop.workers import WorkerPool

    recorded = _on_threads(monkeypatch, case_panel, "add_confirmed")
    reads = _on_threads(monkeypatch, case_panel, "confirmed_for_images")
    panel = case_panel.CasePanel(lambda: store, WorkerPool(), lambda: "Dr. Test")
    qtbot.addWidget(panel)
    entry = store.run_entries(store.runs()[0].id, with_cam=False)[0]
    with qtbot.waitSignal(panel.loaded, timeout=10_000):
        panel.open(case_panel.CaseRef(entry.result_id, entry.result))
    values = {"diagnosis": "nv", "method": "follow_up", "confirmed_on": None, "note": ""}
    with qtbot.waitSignal(panel.confirmed, timeout=10_000) as done:
        assert panel.record_confirmed(values) is not None
        assert panel.form.status.text() == ""  # nothing yet: being recorded
    confirmed = done.args[0]
    assert recorded == [False] and reads[-1] is False and not any(reads)
    assert panel.form.status.text() == f"<span style='color:#4a148c'>Recorded: {confirmed.shown}</span>"
    assert panel.case.confirmed[entry.result.sha256].diagnosis == "nv"
    assert panel.case_view.details.confirmed_label.text() == confirmed.shown
    with qtbot.waitSignal(panel.confirmed, timeout=10_000):  # recorded for a case no longer open
        panel.record_confirmed({**values, "diagnosis": "mel"})
        panel.clear("")
    assert panel.form.status.text() == "" and panel.case.confirmed[entry.result.sha256].diagnosis == "nv"
    assert case_panel.confirmed_for_images(store, [entry.result.sha256])[entry.result.sha256].diagnosis == "mel"
    panel.pool.shutdown()


def test_the_settings_dialog_reads_and_saves_the_clinic_on_a_worker(qtbot, monkeypatch):
    import desktop.settings_dialog as settings_dialog
    from core.records.clinic import Clinic, load_clinic
    from desktop.settings import AppSettings

    reads = _on_threads(monkeypatch, settings_dialog, "load_clinic")
    saves = _on_threads(monkeypatch, settings_dialog, "save_clinic")
    d = settings_dialog.SettingsDialog(AppSettings())
    qtbot.addWidget(d)
    with qtbot.waitSignal(d.clinic_loaded, timeout=10_000):
        assert not d.clinic_name.isEnabled()  # nothing yet: being read
    assert reads == [False] and d.clinic_name.isEnabled() and d.clinic_phone.isEnabled()
    d.clinic_name.setText("Example Skin Clinic")
    with qtbot.waitSignal(d.accepted, timeout=10_000):
        d.accept()
        assert d.result() == 0  # not closed yet: being saved
    assert saves == [False] and load_clinic() == Clinic("Example Skin Clinic")


def test_a_clinic_that_cannot_be_saved_is_said_and_the_settings_stay_open(qtbot, monkeypatch):
    import desktop.settings_dialog as settings_dialog
    from desktop.settings import AppSettings

    def refuse(clinic):
        raise PermissionError(13, "Permission denied")

    said = []
    monkeypatch.setattr(settings_dialog, "save_clinic", refuse)
    monkeypatch.setattr(settings_dialog.QMessageBox, "warning", lambda parent, title, text: said.append((title, text)))
    d = settings_dialog.SettingsDialog(AppSettings())
    qtbot.addWidget(d)
    with qtbot.waitSignal(d.clinic_loaded, timeout=10_000):
        pass
    d.clinic_name.setText("Example Skin Clinic")
    d.accept()
    qtbot.waitUntil(lambda: bool(said), timeout=10_000)
    assert said == [("Clinic not saved", "The clinic's details could not be saved:\n[Errno 13] Permission denied")]
    assert d.result() == 0 and d.clinic_name.text() == "Example Skin Clinic"  # still open, as typed


def test_the_about_box_reads_notices_on_a_worker_before_it_opens(make_window, qtbot, monkeypatch):
    import desktop.controllers.settings_about as settings_about
    from desktop.dialogs import AboutDialog, read_notices

    w = make_window()
    on_gui = _on_threads(monkeypatch, settings_about, "read_notices")
    shown = []
    monkeypatch.setattr(AboutDialog, "exec", lambda dialog: shown.append(dialog) or 0)  # no modal loop in a test
    with qtbot.waitSignal(w.dialogs.about_ready, timeout=10_000) as ready:
        assert w.open_about() is not None
        assert shown == []  # nothing yet: NOTICES being read
    assert on_gui == [False] and shown == ready.args  # opened once it was read, with its text
    notices = read_notices()
    assert shown[0].notices_path == notices.path and shown[0].notices_text.toPlainText() == notices.text
    assert w.model.bundle.manifest.name in shown[0].tabs.widget(0).toPlainText()


def test_the_follow_up_csv_is_written_on_a_worker(qtbot, monkeypatch, store, tmp_path):
    import desktop.views.follow_up as follow_up

    on_gui = _on_threads(monkeypatch, follow_up, "write_follow_up_csv")
    view = follow_up.FollowUpView(lambda: store)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.refreshed, timeout=10_000):
        view.refresh()
    with qtbot.waitSignal(view.exported, timeout=10_000) as written:
        assert view.export_csv(str(tmp_path / "follow-up.csv")) is not None
    assert on_gui == [False] and written.args == [str(tmp_path / "follow-up.csv")]
    with open(tmp_path / "follow-up.csv", newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == len(view.items)
    said = []
    monkeypatch.setattr(follow_up.QMessageBox, "warning", lambda parent, title, text: said.append((title, text)))
    view.export_csv(str(tmp_path))  # a folder: refused, and said
    qtbot.waitUntil(lambda: bool(said), timeout=10_000)
    assert on_gui == [False, False] and said[0][0] == "Export failed"
    assert said[0][1].startswith("The follow-up list could not be written:\n") and "is a folder" in said[0][1]
