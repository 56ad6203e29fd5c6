"""The clinician's day in the real window (issue 24): 45 files of 5 patients seen at two visits, with 3
pictures that are not dermoscopy and 2 broken files.

- the review queue is grouped by patient and shows patient, lesion, body site, visit, age and sex, with the
  file name second; the 3 pictures are not in it, but under "Images to check" beside the failures;
- the identity line says how many images were filed under how many patients;
- the app's CSV has the CLI's columns, and no class word on the 3 pictures;
- a new confidence (trial, then the clinic's standard) re-decides the 45 results with no model run, in
  seconds, and the legend shows the thresholds of the results on screen;
- the case view names the patient before the file and shows the lesion's other visit beside it;
- the Follow-up tab lists a lesion whose monitor interval has run out.
"""

from __future__ import annotations

import csv
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from core.decision.gate import GateSettings, Thresholds
from core.decision.vocabulary import CLASS_NAMES, NOT_DERMOSCOPY
from core.inference.ensemble import Ensemble
from core.records.report import CSV_COLUMNS, IDENTITY_COLUMNS, PROVENANCE_COLUMNS
from desktop.queue_model import QueueModel
from tests.support.clinic_day import make_clinic_day
from tests.support.intake_bundle import make_intake_bundle

GATE = GateSettings(
    fitted={0.99: Thresholds(0.39, 0.47, 0.42, 0.43), 0.95: Thresholds(0.415, 0.465, 0.42, 0.43)},
    max_member_spread=0.5,
)


@pytest.fixture(scope="module")
def intake_bundle(tmp_path_factory):
    return make_intake_bundle(tmp_path_factory.mktemp("clinic-bundle") / "bundle", gate=GATE)


@pytest.fixture
def day_window(make_window, screen, intake_bundle, tmp_path):
    from desktop.settings import AppSettings

    day = make_clinic_day(tmp_path / "day")
    w = make_window(AppSettings(bundle_path=str(intake_bundle), reviewer="Dr. Test", disclaimer_accepted=True))
    summary = screen(w, day.folder)
    assert summary.total == day.n_files == 45
    return w, day


def _column(model, col) -> list[str]:
    return [model.data(model.index(r, col)) for r in range(model.rowCount())]


def test_the_queue_is_the_clinics_patients_and_pictures_that_are_not_dermoscopy_are_listed_apart(day_window):
    w, day = day_window
    queue = w.queue_view
    proxy = queue.proxy
    patients = [proxy.data(proxy.index(r, QueueModel.PATIENT)) for r in range(proxy.rowCount())]
    files = [proxy.data(proxy.index(r, QueueModel.FILE)) for r in range(proxy.rowCount())]
    assert len(files) == len(day.lesion_files) and not set(files) & set(day.not_dermoscopy)
    # Patient column first: "P001, 54 y, F"; each patient's rows together (grouped), 5 patients.
    ids = [p.split(",")[0] for p in patients]
    assert patients[ids.index("P001")] == "P001, 54 y, F"
    groups = [p for i, p in enumerate(ids) if i == 0 or p != ids[i - 1]]
    assert len(groups) == len(set(groups)) == 5
    lesion = proxy.data(proxy.index(0, QueueModel.LESION))
    assert " · " in lesion  # "L1 · back"
    visits = [proxy.data(proxy.index(r, QueueModel.VISIT)) for r in range(2)]
    assert visits == ["2026-06-02", "2026-12-01"]  # a lesion's two visits side by side, oldest first
    assert proxy.data(proxy.index(0, QueueModel.FILE), Qt.ItemDataRole.ToolTipRole).startswith(str(day.folder))
    assert QueueModel.COLUMNS.index("Patient") < QueueModel.COLUMNS.index("File")
    # The flat order is one tick away.
    queue.flat_order.setChecked(True)
    risk = [proxy.data(proxy.index(r, QueueModel.P)) for r in range(proxy.rowCount())]
    assert risk == sorted(risk, reverse=True)

    s = w.screening
    assert s.to_check.count() == 3 and s.failures.count() == 2
    assert all(NOT_DERMOSCOPY.name in s.to_check.item(i).text() for i in range(3))
    assert "40 images filed under 5 patients, 0 identity problems" in s.filing_label.text()
    # Not in the results table by default (the chip is off), counted on it.
    shown = {Path(r.result.path).name for r in s.visible_rows()}
    assert not shown & set(day.not_dermoscopy)
    assert s.filter_buttons["not_dermoscopy"].text() == "Check file: 3"
    # The results table names the patient, lesion and visit before the file.
    from desktop.models import ResultsModel

    who = s.proxy.data(s.proxy.index(0, ResultsModel.PATIENT))
    assert who.startswith("P00") and "\nL" in who and ResultsModel.PATIENT < ResultsModel.FILE


def test_the_apps_csv_has_the_clis_columns_and_no_class_word_for_a_picture_that_is_not_dermoscopy(
    export_csv, day_window, tmp_path
):
    w, day = day_window
    out = export_csv(w, tmp_path / "run.csv")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    classes = [f"p_{c}" for c in w.model.bundle.manifest.class_names]
    assert list(rows[0]) == [*CSV_COLUMNS, *classes, *IDENTITY_COLUMNS, *PROVENANCE_COLUMNS]
    by_name = {Path(r["path"]).name: r for r in rows}
    for name in day.not_dermoscopy:
        r = by_name[name]
        assert r["outcome"] == NOT_DERMOSCOPY.name
        text = " ".join(v for k, v in r.items() if k not in ("path", "sha256", "bundle", "engine"))
        assert not any(word in text.lower() for word in (*CLASS_NAMES, *CLASS_NAMES.values())), text
    lesion = by_name[day.lesion_files[0]]
    assert (lesion["patient_id"], lesion["age"], lesion["sex"], lesion["confidence"]) == ("P001", "54", "F", "0.99")
    assert lesion["signature"].startswith("signed by key")


def test_a_confidence_change_re_decides_45_results_in_seconds_with_no_model_run(day_window, qtbot, monkeypatch):
    w, day = day_window
    calls = []
    real_run = Ensemble.run
    monkeypatch.setattr(Ensemble, "run", lambda *a, **k: calls.append(1) or real_run(*a, **k))
    m = w.model.bundle.manifest

    def legend_matches_rows(confidence):
        t = m.gate.thresholds(confidence)
        assert w.screening.legend_thresholds == t and f"at confidence {confidence:g}" in w.screening.legend.text()
        for row in w.screening.model.rows:
            r = row.result
            if r.ok and r.intake == "familiar":
                p = r.p_malignant
                expect = "benign" if p < t.low else "suspicious" if p >= t.high else "uncertain"
                assert r.decision.value == expect, (p, t)

    legend_matches_rows(0.99)
    first_run = w.screening.current_run_id
    t0 = time.perf_counter()
    with qtbot.waitSignal(w.runs.trial_shown, timeout=10_000):  # decided again on a worker
        w.try_confidence(0.95)  # a trial: on screen, marked, not recorded
    trial_s = time.perf_counter() - t0
    assert "TRIAL" in w.screening.legend.text()
    legend_matches_rows(0.95)
    assert len(w.store.runs()) == 1
    benign_in_trial = sum(1 for r in w.screening.model.rows if r.result.ok and r.result.decision.value == "benign")
    assert benign_in_trial > 0

    t0 = time.perf_counter()
    with qtbot.waitSignal(w.run_shown, timeout=10_000):  # the new run's rows are read on a worker
        w.apply_settings(replace(w.settings, confidence=0.95))  # the clinic's standard: recorded
    standard_s = time.perf_counter() - t0
    assert calls == [] and trial_s < 5.0 and standard_s < 5.0, (trial_s, standard_s)
    assert w.screening.current_run_id != first_run and len(w.store.runs()) == 2
    assert "TRIAL" not in w.screening.legend.text()
    legend_matches_rows(0.95)
    assert len(w.screening.model.rows) == 45
    # The cleared pictures left the queue (read again on a worker).
    qtbot.waitUntil(lambda: w.queue_view.model.rowCount() == len(day.lesion_files) - benign_in_trial, timeout=10_000)


def test_the_case_names_the_patient_first_and_shows_the_lesions_other_visit(day_window, qtbot):
    w, day = day_window
    queue = w.queue_view
    queue.select_row(1)  # the second visit of the first lesion in the queue
    qtbot.waitUntil(lambda: queue.panel.case_view.case is not None, timeout=10_000)
    qtbot.waitUntil(lambda: queue.panel.case_view.case.result_id == queue.panel.current.result_id, timeout=10_000)
    details = queue.panel.case_view.details
    assert details.identity_label.text().startswith("<span style='font-size:15px'>Patient <b>P")
    assert details.file_label.text().startswith("File: IMG_")
    assert queue.panel.visits.isVisibleTo(queue.panel) and len(queue.panel.visits.views) == 1  # the other visit


def test_the_follow_up_tab_lists_a_lesion_whose_monitor_interval_ran_out(day_window, qtbot):
    w, day = day_window
    item = next(i for i in w.queue_view.model.items if w.queue_view.model.identity(i).visit_date == date(2026, 12, 1))
    w.store.add_review(item.result_id, "Dr. Test", "monitor", follow_up_months=1)
    view = w.follow_up_view
    view.today = lambda: date(2027, 1, 20)
    with qtbot.waitSignal(view.refreshed, timeout=10_000):  # the list is read on a worker
        view.before.setDate(view.before.date().fromString("2027-01-31", "yyyy-MM-dd"))
    cell = lambda r, c: view.model.index(r, c).data()  # noqa: E731
    assert view.model.rowCount() == 1
    assert cell(0, 0) == "2027-01-01  overdue"
    a = w.queue_view.model.identity(item)
    assert cell(0, 1) == a.patient_id and cell(0, 2) == a.lesion_label
    with qtbot.waitSignal(view.refreshed, timeout=10_000):
        view.before.setDate(view.before.date().fromString("2026-12-31", "yyyy-MM-dd"))
    assert view.model.rowCount() == 0


def test_the_run_report_is_by_patient_says_what_made_it_and_names_no_class_for_images_to_check(
    day_window, qtbot, tmp_path
):
    import shutil
    import subprocess

    w, day = day_window
    html_path, pdf = tmp_path / "run.html", tmp_path / "run.pdf"
    with qtbot.waitSignal(w.export_done, timeout=60_000):
        w.export_report(str(html_path))
    page = html_path.read_text(encoding="utf-8")
    m = w.model.bundle.manifest
    assert f"Model bundle {m.name} {m.version}, signed by key" in page and "confidence 0.99" in page
    assert page.index("Patient P0") < page.index("Images to check") < page.index("Files that could not be screened")
    to_check = page[page.index("Images to check") : page.index("Files that could not be screened")]
    assert to_check.count(NOT_DERMOSCOPY.name) == 4  # the heading and the 3 rows
    assert not any(word in to_check.lower() for word in CLASS_NAMES.values())
    assert "p(malignant)" not in to_check
    with qtbot.waitSignal(w.export_done, timeout=60_000):
        w.export_pdf(str(pdf))
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed: the PDF was written but not read back")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")
    assert len(pages) > 1 and f"Page 1 of {len(pages)}" in pages[0] and f"Page {len(pages)} of {len(pages)}" in text
    assert all(m.name in p for p in pages)  # what made the results, on every page
    assert "Patient P001" in text


def test_the_heat_map_shows_the_named_class_and_any_class_on_request(day_window, qtbot):
    w, day = day_window
    queue = w.queue_view
    queue.select_row(0)
    view = queue.panel.case_view
    qtbot.waitUntil(
        lambda: view.case is not None and view.case.result_id == queue.panel.current.result_id, timeout=10_000
    )
    r = view.case.result
    named = r.malignant_class if r.decision.value == "suspicious" else r.likely_class
    assert view.heat_class_code() == named and view.heat_class.count() == len(r.class_probs)
    # screening kept the named class's map (same model run, store schema 6): shown with no model run
    assert r.named_cam_class == named and view.cams[named] is r.named_cam
    other = next(c for c in r.class_probs if c not in view.cams)
    view.heat_class.setCurrentIndex(view.heat_class.findData(other))
    view.heat_class.activated.emit(view.heat_class.currentIndex())
    qtbot.waitUntil(lambda: other in view.cams, timeout=20_000)
    assert view.cams[other].shape == view.case.rgb.shape[:2]
    assert f"Heat map of <b>{CLASS_NAMES.get(other, other)}</b>" in view.legend.text()
    assert view.shown_cam() is view.cams[other]


def test_run_exports_are_private_to_the_user(export_csv, day_window, qtbot, tmp_path):
    w, day = day_window
    csv_path, pdf = tmp_path / "run.csv", tmp_path / "run.pdf"
    export_csv(w, csv_path)
    with qtbot.waitSignal(w.export_done, timeout=60_000):
        w.export_pdf(str(pdf))
    assert pdf.stat().st_size > 0
    assert (csv_path.stat().st_mode & 0o777, pdf.stat().st_mode & 0o777) == (0o600, 0o600)
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]  # no temporary file left behind
