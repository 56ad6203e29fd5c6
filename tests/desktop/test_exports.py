"""Exports from the app carry the clinicians' decisions: CSV highest risk first, HTML and PDF reports."""

from __future__ import annotations

import csv
import shutil
import subprocess

import pytest

from desktop.models import ResultsModel


def _review_first_queued(w, decision: str, months=None):
    item = w.store.queue()[0]
    return w.store.add_review(item.result_id, "Dr. Export", decision, "seen in clinic", months)


def test_csv_export_is_highest_risk_first_with_reviews(export_csv, make_window, screen, clinic_folder, tmp_path):
    w = make_window()
    screen(w, clinic_folder)
    review = _review_first_queued(w, "monitor", 6)
    out = export_csv(w, tmp_path / "run.csv")
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ok = [r for r in rows if r["status"] == "ok"]
    ps = [float(r["p_malignant"]) for r in ok]
    assert ps == sorted(ps, reverse=True) and rows[0] is ok[0]  # errors last
    # The first row is the case the app shows first (results table sorted by p(malignant)).
    first_shown = w.screening.proxy.data(w.screening.proxy.index(0, ResultsModel.FILE))
    assert rows[0]["path"].endswith(first_shown)
    reviewed = [r for r in rows if r["sha256"] == review.sha256]
    assert reviewed and reviewed[0]["review_decision"] == "monitor (follow up in 6 months)"
    assert reviewed[0]["reviewer"] == "Dr. Export" and reviewed[0]["review_note"] == "seen in clinic"
    assert all(r["outcome"] and r["likely_class"] for r in ok)


def test_pdf_report_shows_the_reviews_and_renders(make_window, screen, qtbot, clinic_folder, tmp_path):
    w = make_window()
    screen(w, clinic_folder)
    _review_first_queued(w, "excise")
    pdf = tmp_path / "report.pdf"
    with qtbot.waitSignal(w.export_done, timeout=60_000):
        w.export_pdf(str(pdf))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000  # pictures are embedded
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "excise / biopsy" in text and "Dr. Export" in text
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the PDF was written but not rendered")
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True, timeout=60
    )
    pages = list(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 1000


def test_screen_a_folder_starts_screening_once_the_folder_is_picked(make_window, qtbot, clinic_folder, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    w = make_window()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(clinic_folder))
    with qtbot.waitSignal(w.run_done, timeout=60_000):
        w.choose_folder()
    assert w.screening.model.rowCount() > 0 and w.screening.folder == str(clinic_folder)


def test_status_messages_are_elided_with_the_full_text_in_the_tooltip(make_window, qtbot):
    w = make_window()
    w.resize(1800, 700)
    w.show()
    qtbot.waitExposed(w)
    long_path = "/home/clinic/" + "very-long-folder-name/" * 12 + "run3.csv"
    w.notify(f"CSV written: {long_path}")
    label = w.message_label
    assert label.toolTip() == f"CSV written: {long_path}" == label.full_text()
    shown = label.text()
    assert shown.startswith("CSV written: /") and shown.endswith("run3.csv") and "…" in shown


def test_legend_names_the_bands_and_their_fitted_cut_points():
    from core.decision.gate import MELANOMA_ONLY, Thresholds
    from desktop.views.run_words import legend_html

    text = legend_html(Thresholds(0.03, 0.8, 0.1, 0.4))
    assert "Gate on p(malignant)" in text and "below 0.030" in text and "from 0.800" in text
    assert "high risk" in text and "≥ 0.400" in text and "0.100–0.400" in text and "&lt; 0.100" in text
    old = legend_html(Thresholds(0.03, 0.8), scope=MELANOMA_ONLY)
    assert "Gate on p(melanoma)" in old and "melanoma-only gate" in old and "no risk bands" in old
