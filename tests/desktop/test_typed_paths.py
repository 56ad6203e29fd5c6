"""Paths the type checker asked to narrow (mypy over desktop/): what each gives is pinned here, so the narrowing
changed no behaviour: a lesion's rise text, a confirmed diagnosis by patient and lesion or with no date, and the
application the desktop runs in."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate
from PySide6.QtWidgets import QApplication

from core import TimelineEntry, confirmed_for_images, lesion_key, lesion_timeline
from desktop.app import application
from desktop.views.confirm_dialog import ConfirmDiagnosisDialog
from desktop.views.evidence import EvidenceView
from desktop.views.timeline import rise_text


def _entry(day: date | None, p: float | None, rose_from: float | None = None) -> TimelineEntry:
    return TimelineEntry(day, f"sha-{day}-{p}", None, "", p, None, None, rose_from=rose_from)


def test_a_rise_names_the_latest_earlier_dated_visit_and_skips_undated_or_unscored_ones():
    entries = [
        _entry(date(2024, 1, 10), 0.20),
        _entry(None, 0.30),  # no date: neither a rise nor the visit before one
        _entry(date(2024, 3, 1), None),  # no p(malignant): left out too
        _entry(date(2024, 7, 10), 0.45, rose_from=0.20),
        _entry(date(2024, 1, 1), 0.50, rose_from=0.40),  # a rise with no earlier dated visit
    ]
    assert rise_text(entries) == (
        "p(malignant) rose from 0.20 (2024-01-10) to 0.45 (2024-07-10); "
        "p(malignant) rose from 0.40 to 0.50 (2024-01-01)"
    )
    assert rise_text([_entry(date(2024, 1, 10), 0.2)]) == ""


def test_the_confirm_dialog_gives_the_chosen_date_or_none(qtbot):
    dialog = ConfirmDiagnosisDialog("this picture", "Dr. Test", "mel")
    qtbot.addWidget(dialog)
    dialog.when.setDate(QDate(2024, 2, 29))
    values = dialog.values()
    assert values["confirmed_on"] == date(2024, 2, 29) and type(values["confirmed_on"]) is date
    assert values["diagnosis"] == "mel"
    dialog.date_known.setChecked(False)
    assert dialog.values()["confirmed_on"] is None


def test_a_confirmed_diagnosis_entered_by_patient_and_lesion_names_the_lesion(qtbot, store):
    view = EvidenceView(lambda: store, lambda: "Dr. Test", lambda: None)
    qtbot.addWidget(view)
    view.patient_edit.setText("P1")
    view.lesion_edit.setText("L1")
    view.diagnosis.setCurrentIndex(view.diagnosis.findData("nv"))
    with qtbot.waitSignal(view.entry_done, timeout=10_000) as done:
        view.record()
    assert done.args == [True] and "recorded:" in view.entry_message.text()
    key = lesion_key(store, "P1", "L1")
    shas = [e.sha256 for e in lesion_timeline(store, key)]
    confirmed = confirmed_for_images(store, shas)
    assert len(shas) == 2 and set(confirmed) == set(shas)  # both visits of the lesion carry it
    c = confirmed[shas[0]]
    assert (c.lesion_key, c.sha256, c.diagnosis, c.entered_by) == (key, None, "nv", "Dr. Test")


def test_the_desktop_uses_the_application_already_running(qapp):
    app = application([])
    assert app is QApplication.instance() and isinstance(app, QApplication)
    assert (app.applicationName(), app.organizationName(), app.desktopFileName()) == (
        "MelaScreen",
        "MelaScreen",
        "melascreen",
    )
