"""Confirmed diagnoses where the clinician looks (case view, lesion timeline, patient report) and entered
from the case view; the patient report's heat map of the class the outcome names (BCC), in the PDF too."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from desktop.views.case_panel import CaseRef

SHOT_DIR = os.environ.get("MELASCREEN_SHOTS", "")  # where the screenshots go when asked for (scratch)


def lesion(path: Path, shade: int) -> None:
    img = np.full((160, 200, 3), (150, 170, 205), np.uint8)
    cv2.ellipse(img, (100, 80), (53, 40), 15, 0, 360, (shade // 3, shade // 2, shade), -1)
    cv2.imwrite(str(path), img)


def bcc_picture(path: Path) -> None:
    """The synthetic bundle's most likely class for this picture is BCC (tests/core/test_class_cam.py)."""
    img = np.full((200, 240, 3), (191, 251, 190), np.uint8)
    cv2.circle(img, (120, 100), 50, (190, 250, 190), -1)
    cv2.imwrite(str(path), img)


@pytest.fixture
def day(tmp_path) -> Path:
    folder = tmp_path / "day"
    folder.mkdir()
    lesion(folder / "a-jan.png", 180)
    lesion(folder / "a-jul.png", 20)
    bcc_picture(folder / "b.png")
    (folder / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\n"
        "a-jan.png,PA,L1,left shin,2024-01-10\na-jul.png,PA,L1,left shin,2024-07-10\n"
        "b.png,PA,L2,back,2024-07-10\n"
    )
    return folder


def _open(w, qtbot, entries, name):
    entry = next(e for e in entries if e.result.path.endswith(name))
    w.open_case(CaseRef(entry.result_id, entry.result))
    panel = w.case_panel
    qtbot.waitUntil(lambda: panel.case is not None and panel.case.result_id == entry.result_id, timeout=10_000)
    return panel


def test_a_confirmed_diagnosis_entered_in_the_case_is_shown_in_case_timeline_and_report(
    patient_report, make_window, screen, day, qtbot, tmp_path
):
    from core.records.evidence import confirmed_for_images

    w = make_window()
    summary = screen(w, day)
    entries = w.store.run_entries(summary.run_id, with_cam=False)
    panel = _open(w, qtbot, entries, "a-jul.png")
    assert panel.form.confirm.isEnabled() and not panel.case_view.details.confirmed_label.isVisible()
    values = {"diagnosis": "mel", "method": "histopathology", "confirmed_on": date(2026, 11, 2), "note": "H26-1234"}
    with qtbot.waitSignal(panel.confirmed, timeout=10_000) as done:  # recorded on a worker
        assert panel.record_confirmed(values) is not None
    recorded = done.args[0]
    words = "confirmed: melanoma (histopathology, 2026-11-02, by Dr. Test)"
    assert recorded is not None and recorded.shown == words
    details = panel.case_view.details
    assert details.confirmed_label.isVisible() and details.confirmed_label.text() == words
    # the lesion's other picture (January) beside it says it too: the confirmation names the lesion
    assert panel.visits.confirmed.text() == words and words in panel.visits.captions[0].text()
    jan = next(e for e in entries if e.result.path.endswith("a-jan.png"))
    assert confirmed_for_images(w.store, [jan.result.sha256])[jan.result.sha256].diagnosis == "mel"
    if SHOT_DIR:
        w.tabs.setCurrentWidget(w.case_tab)
        qtbot.wait(200)
        w.grab().save(str(Path(SHOT_DIR) / "case-view-confirmed-diagnosis.png"))
    # the Patients tab's timeline
    w.tabs.setCurrentWidget(w.patients_view)
    view = w.patients_view
    with qtbot.waitSignal(view.shown, timeout=10_000):  # read on a worker
        view.refresh()
    view.patient_table.selectRow(0)
    row = next(i for i, le in enumerate(view.lesions) if le.label == "L1")
    view.lesion_table.selectRow(row)
    qtbot.waitUntil(lambda: view.timeline.confirmed.isVisible(), timeout=5_000)
    assert view.timeline.confirmed.text() == words
    # the patient report: HTML, CSV and PDF
    html_out = patient_report(view, ".html", tmp_path / "PA.html", summary="")
    assert words in html_out.read_text(encoding="utf-8")
    csv_out = patient_report(view, ".csv", tmp_path / "PA.csv")
    import csv

    rows = list(csv.DictReader(csv_out.open(encoding="utf-8")))
    assert {r["confirmed_diagnosis"] for r in rows if r["lesion_id"] == "L1"} == {words}
    assert {r["confirmed_diagnosis"] for r in rows if r["lesion_id"] == "L2"} == {""}
    pdf = patient_report(view, ".pdf", tmp_path / "PA.pdf", summary="")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True).stdout
        assert words in " ".join(text.replace("\ufb01", "fi").split())  # pdftotext writes the fi ligature


def test_the_patient_pdf_shows_the_bcc_map_of_a_bcc_outcome(patient_report, make_window, screen, day, qtbot, tmp_path):
    """The outcome names BCC: the report's map is BCC's (captioned so), as the app would compute it on
    demand, and nothing is said about a missing map."""
    from core.files.images import read_image
    from core.inference.class_cam import class_heat_map
    from core.records.patient_record import build_patient_report

    w = make_window()
    summary = screen(w, day)
    entries = w.store.run_entries(summary.run_id)
    b = next(e for e in entries if e.result.path.endswith("b.png")).result
    assert b.named_cam_class == "bcc"
    on_demand = class_heat_map(w.model.screener.ensemble, read_image(b.path).rgb, "bcc")
    small = cv2.resize(on_demand, b.named_cam.shape[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(b.named_cam - small).max() < 0.02
    report = build_patient_report(w.store, "PA")
    visit = next(v for le in report.lesions for v in le.visits if v.entry.path.endswith("b.png"))
    assert (visit.heat_map_class, visit.heat_map_words) == ("bcc", "heat map of basal cell carcinoma")
    view = w.patients_view
    w.tabs.setCurrentWidget(view)
    with qtbot.waitSignal(view.shown, timeout=10_000):  # read on a worker
        view.refresh()
    view.patient_table.selectRow(0)
    pdf = patient_report(view, ".pdf", tmp_path / "PA.pdf", summary="")
    assert pdf is not None and pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout.split())
        assert "heat map of basal cell carcinoma" in text and "not stored" not in text
    if SHOT_DIR and shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "80", "-png", str(pdf), str(Path(SHOT_DIR) / "patient-pdf-bcc")], check=True)


def test_for_a_result_stored_before_named_maps_the_app_asks_the_models(
    patient_report, make_window, screen, day, qtbot, tmp_path
):
    from core.records.patient_record import build_patient_report

    w = make_window()
    screen(w, day)
    w.store._conn.execute("UPDATE results SET named_cam_class = NULL, named_cam_png = NULL")  # as schema 5 left it
    plain = build_patient_report(w.store, "PA")  # the command line: melanoma's map, and it says so
    visit = next(v for le in plain.lesions for v in le.visits if v.entry.path.endswith("b.png"))
    assert (
        visit.heat_map_words == "heat map of melanoma (the map of basal cell carcinoma is not stored with this result)"
    )
    view = w.patients_view
    with qtbot.waitSignal(view.shown, timeout=10_000):  # read on a worker
        view.refresh()
    view.patient_table.selectRow(0)
    page = patient_report(view, ".html", tmp_path / "PA.html", summary="").read_text(encoding="utf-8")
    assert "heat map of basal cell carcinoma" in page and "not stored" not in page
