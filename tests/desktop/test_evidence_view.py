"""The Evidence tab: record and import confirmed diagnoses, read and save the audit, switch auto-clearing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.inference.bundle import load_bundle
from core.records.store import ReviewStore
from core.screening import GateChoice, Screener, screen_folder
from desktop.settings import AppSettings
from desktop.views.evidence import EvidenceView


def test_record_import_audit_and_the_auto_clearing_switch(qtbot, synthetic_bundle, clinic_folder, tmp_path):
    bundle = load_bundle(synthetic_bundle)
    store = ReviewStore.open(tmp_path / "r.sqlite")
    results, summary = screen_folder(Screener(bundle), clinic_folder, store)
    assert summary.clearing is not None  # the run's camera check and clearing verdict travel with it
    switched = []
    view = EvidenceView(lambda: store, lambda: "Dr. Test", lambda: bundle, lambda: True, switched.append)
    qtbot.addWidget(view)
    pictures = [r.path for r in results if r.ok]
    view.file_edit.setText(pictures[0])
    view.diagnosis.setCurrentIndex(view.diagnosis.findData("mel"))
    with qtbot.waitSignal(view.entry_done, timeout=10_000) as done:  # the picture is read and hashed on a worker
        view.record()
    assert done.args == [True] and "recorded: melanoma" in view.entry_message.text()
    view.file_edit.setText(str(clinic_folder / "zz_notes.txt"))
    with qtbot.waitSignal(view.entry_done, timeout=10_000) as done:
        view.record()
    assert done.args == [False] and "not been screened" in view.entry_message.text()
    csv_file = tmp_path / "outcomes.csv"
    csv_file.write_text(f"file,diagnosis,method,date\n{pictures[1]},nv,histopathology,\n{pictures[2]},???,x,\n")
    with qtbot.waitSignal(view.imported, timeout=10_000) as imported:
        view.import_file(str(csv_file))
    assert imported.args == [1, 1] and "line 3" in view.entry_message.text()
    with qtbot.waitSignal(view.audit_ready, timeout=30_000) as ready:  # the audit runs on a worker
        view.refresh_audit()
    audit = ready.args[0]
    assert audit.groups and "too few confirmed cases" in view.audit_view.toPlainText()
    with qtbot.waitSignal(view.audit_saved, timeout=30_000) as saved:
        view.save_audit(str(tmp_path / "audit.pdf"))
    assert Path(saved.args[0]).read_bytes().startswith(b"%PDF")
    view.clearing.setCurrentIndex(1)  # "off until this camera is validated"
    assert switched == [False]
    store.close()


def test_the_setting_reaches_the_gate_and_survives_a_hand_edited_file():
    assert AppSettings(auto_clearing=False).gate() == GateChoice(auto_clearing=False)
    assert AppSettings(auto_clearing="yes").checked().auto_clearing is True
    assert AppSettings(auto_clearing=False).checked().auto_clearing is False


def test_the_command_line_audit_writes_a_pdf_through_the_apps_qt_writer(qtbot, synthetic_bundle, tmp_path):
    from cli.main import main
    from desktop.pdf import html_to_pdf

    folder = tmp_path / "scans"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), np.random.default_rng(i).integers(0, 255, (96, 96, 3), dtype=np.uint8))
    with ReviewStore.open(tmp_path / "r.sqlite") as store:
        screen_folder(Screener(load_bundle(synthetic_bundle)), folder, store)
    db = str(tmp_path / "r.sqlite")
    args = ["outcome", "add", "--db", db, "--file", str(folder / "0.png"), "--diagnosis", "bcc", "--method",
            "histopathology", "--by", "AB"]  # fmt: skip
    assert main(args) == 0
    out = tmp_path / "audit.pdf"
    assert main(["audit", "--db", db, "--out", str(out)], pdf_writer=html_to_pdf) == 0
    assert out.read_bytes().startswith(b"%PDF")
