"""The patient worklist, a lesion's visits side by side (same zoom, panned together), and the
per-patient PDF report."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import pytest

from core.inference.bundle import load_bundle
from core.records.store import ReviewStore
from core.screening import Screener, screen_folder
from tests.support.lesion_pictures import lesion

SHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


def cell(table, row: int, column: int) -> str:
    """The text a table view shows in a cell (the Patients tab's tables are Qt models)."""
    return table.model().index(row, column).data()


def column(table, column: int) -> list[str]:
    return [cell(table, r, column) for r in range(table.model().rowCount())]


def test_worklist_lesions_and_a_synchronised_timeline(qtbot, store, tmp_path):
    from desktop.views.patients import PatientWorklistView

    view = PatientWorklistView(lambda: store, lambda: "dr a")
    qtbot.addWidget(view)
    view.resize(1300, 800)
    view.show()
    with qtbot.waitSignal(view.shown, timeout=10_000):  # the worklist, lesions and visits are read on a worker
        view.refresh()
    assert view.patient_table.model().rowCount() == 2
    assert cell(view.patient_table, 0, 0) == "P1"  # its July picture is the riskiest waiting case
    assert view.current_patient() == "P1"
    assert column(view.lesion_table, 1)[0] == "L1"
    assert cell(view.lesion_table, 0, 2) == "left shin"
    tl = view.timeline
    with qtbot.waitSignal(view.shown, timeout=10_000):
        view.select_lesion(view.lesions[0].lesion_key)
    qtbot.waitUntil(lambda: all(not v._item.pixmap().isNull() for v in tl.views), timeout=10_000)  # read on a worker
    assert len(tl.views) == 2
    assert "2024-01-10" in tl.captions[0].text() and "2024-07-10" in tl.captions[1].text()
    assert tl.rise.isVisible() and "rose from" in tl.rise.text()
    qtbot.wait(50)
    SHOTS.mkdir(parents=True, exist_ok=True)
    view.grab().save(str(SHOTS / "patients-worklist.png"))
    a, b = tl.views
    a.scale(2.0, 2.0)
    a.centerOn(40, 50)
    a.view_changed.emit(a)
    za, xa, ya = a.relative_view()
    zb, xb, yb = b.relative_view()
    assert zb == pytest.approx(za, rel=0.02) and za > 1.5
    assert (xb, yb) == (pytest.approx(xa, abs=0.03), pytest.approx(ya, abs=0.03))
    view.grab().save(str(SHOTS / "patients-timeline-zoomed.png"))


def test_body_map_pins_each_lesion_and_a_click_opens_its_timeline(qtbot, store):
    from PySide6.QtCore import Qt

    from desktop.views.patients import PatientWorklistView

    view = PatientWorklistView(lambda: store)
    qtbot.addWidget(view)
    view.resize(1300, 800)
    view.show()
    with qtbot.waitSignal(view.shown, timeout=10_000):
        view.refresh()
    assert view.current_patient() == "P1"
    body = view.body_map
    by_key = {le.lesion_key: le.label for le in view.lesions}
    pinned = {by_key[p.key] for p in body.figure.pins}
    assert pinned == {"L1", "L2"} and not body.off_map.isVisible()
    assert "2 of 2 lesion(s) placed" in body.title.text()
    back = next(p for p in body.figure.pins if by_key[p.key] == "L2")
    assert back.view == "back"
    assert column(view.lesion_table, 0) == ["1", "2"]
    qtbot.mouseClick(body.figure, Qt.MouseButton.LeftButton, pos=body.figure.pin_position(back).toPoint())
    rows = view.lesion_table.selectionModel().selectedRows()
    assert rows and view.lesions[rows[0].row()].label == "L2"
    qtbot.waitUntil(lambda: "lesion L2" in view.timeline.title.text(), timeout=10_000)
    assert body.figure.selected == back.key
    with qtbot.waitSignal(view.shown, timeout=10_000):
        view.select_patient("P2")
    assert {by_key.get(p.key, "other") for p in body.figure.pins} == {"other"} and len(body.figure.pins) == 1


def test_a_lesion_at_an_unknown_site_is_listed_not_guessed(qtbot, tmp_path, synthetic_bundle):
    from desktop.views.patients import PatientWorklistView

    day = tmp_path / "odd"
    day.mkdir()
    lesion(day / "a.png", 60)
    lesion(day / "b.png", 140)
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\na.png,PX,L1,behind the moon,2024-07-10\n"
        "b.png,PX,L2,Forearm (left),2024-07-10\n"
    )
    with ReviewStore.open(tmp_path / "r.sqlite") as s:
        screen_folder(Screener(load_bundle(synthetic_bundle)), day, s)
        view = PatientWorklistView(lambda: s)
        qtbot.addWidget(view)
        with qtbot.waitSignal(view.shown, timeout=10_000):  # read on a worker
            view.refresh()
        body = view.body_map
        assert len(body.figure.pins) == 2  # the left forearm, seen from the front and from the back
        assert not body.off_map.isHidden() and "'behind the moon' is not a known body site" in body.off_map.text()
        assert "1 of 2 lesion(s) placed" in body.title.text()


def multi_lesion_store(folder: Path, bundle: Path, db: Path) -> ReviewStore:
    """Patient P9 with 5 lesions of 2 visits each, one reviewed 'excise', one 'monitor': several pages."""
    folder.mkdir()
    rows = ["file,patient_id,lesion_id,body_site,visit_date,age,sex"]
    for i, site in enumerate(("left forearm", "back", "scalp", "right shin", "chest")):
        for v, when in enumerate(("2024-01-10", "2024-07-10")):
            name = f"l{i}-v{v}.png"
            lesion(folder / name, 25 + 40 * i + 17 * v, size=150 + 10 * v)
            rows.append(f"{name},P9,L{i + 1},{site},{when},{61 + v},M")
    (folder / "melascreen.csv").write_text("\n".join(rows) + "\n")
    store = ReviewStore.open(db)
    screen_folder(Screener(load_bundle(bundle)), folder, store)
    from core.records.patients import lesion_timeline, patient_lesions

    for le in patient_lesions(store, "P9"):
        last = lesion_timeline(store, le.lesion_key)[-1]
        if le.label == "L1":
            store.add_review(last.result_id, "Dr B", "excise")
        elif le.label == "L2":
            store.add_review(last.result_id, "Dr B", "monitor", follow_up_months=3)
    return store


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler-utils (pdftotext, pdfimages)")
def test_patient_pdf_has_the_patient_on_every_page_and_no_cut_picture(
    patient_report, qtbot, tmp_path, synthetic_bundle
):
    from core.records.clinic import Clinic, save_clinic
    from desktop.views.patients import PatientWorklistView

    save_clinic(Clinic("Example Skin Clinic", "1 High Street, Town", "0123 456"))
    with multi_lesion_store(tmp_path / "p9", synthetic_bundle, tmp_path / "r.sqlite") as s:
        view = PatientWorklistView(lambda: s, lambda: "Dr B")
        qtbot.addWidget(view)
        with qtbot.waitSignal(view.shown, timeout=10_000):  # read on a worker
            view.refresh()
        out = patient_report(view, ".pdf", tmp_path / "P9.pdf", summary="Excise L1; see L2 in 3 months.")
    assert out is not None and out.read_bytes()[:5] == b"%PDF-"
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, timeout=60).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages >= 2
    for n in range(1, pages + 1):
        text = subprocess.run(
            ["pdftotext", "-f", str(n), "-l", str(n), "-layout", str(out), "-"], capture_output=True, text=True
        ).stdout
        assert "Patient P9 · age 62 · sex M (male)" in text, f"page {n}"
        assert "Example Skin Clinic" in text and f"Page {n} of {pages}" in text
    whole = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
    whole = whole.replace("\ufb01", "fi").replace("\ufb02", "fl")  # the PDF's ligatures, as pdftotext keeps them
    for words in ("URGENT", "follow-up by", "heat map of melanoma", "body diagram: left forearm", "Signature:"):
        assert words in whole, words
    assert "Excise L1; see L2 in 3 months." in whole and "confidence 0.99" in whole
    # Every picture, heat map and diagram is drawn once, whole, on one page: a picture cut by a page
    # break would be drawn twice (once on each page).
    listing = subprocess.run(["pdfimages", "-list", str(out)], capture_output=True, text=True).stdout.splitlines()[2:]
    images = [line.split() for line in listing if line.strip()]
    assert len(images) == 5 + 10 + 10  # 5 body diagrams, 10 pictures, 10 heat maps
    assert {int(i[3]) for i in images if int(i[3]) == 440} == {440}  # the diagrams, at full size
    shots = tmp_path / "pages"
    shots.mkdir()
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(out), str(shots / "p")], check=True, timeout=120)
    rendered = sorted(shots.glob("p*.png"))
    assert len(rendered) == pages
    for page in rendered:
        img = cv2.imread(str(page))
        assert img is not None and (img < 128).any()


def test_pages_hold_whole_blocks():
    from desktop.pdf import _paginate

    pages = _paginate([100, 300, 50, 400, 900], [False, True, False, False, False], 500, 5)
    assert pages == [[(0, 0.0), (1, 105.0), (2, 410.0)], [(3, 0.0)], [(4, 0.0)]]
    # a heading whose next block does not fit goes with it to the next page
    assert _paginate([300, 40, 200], [False, True, False], 500, 0) == [[(0, 0.0)], [(1, 0.0), (2, 40.0)]]


def test_patient_pdf_report_renders(patient_report, qtbot, store, tmp_path):
    from desktop.views.patients import PatientWorklistView

    view = PatientWorklistView(lambda: store)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.shown, timeout=10_000):  # read on a worker
        view.refresh()
    out = patient_report(view, ".pdf", tmp_path / "P1.pdf")
    assert out is not None and out.read_bytes()[:5] == b"%PDF-"
    csv_out = patient_report(view, ".csv", tmp_path / "P1.csv")
    assert "left shin" in csv_out.read_text()
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")],
            check=True,
            timeout=60,
        )
        page = next(tmp_path.glob("page*.png"))
        img = cv2.imread(str(page))
        assert img is not None and img.shape[0] > 300 and (img < 200).any()  # something was drawn
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(page, SHOTS / "patient-report-page1.png")


HAM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dermoscopy"


@pytest.mark.skipif(not (HAM / "labels.csv").is_file(), reason="needs ../shared/data/dermoscopy (HAM10000)")
def test_real_repeat_pictures_of_one_lesion_side_by_side(qtbot, tmp_path, synthetic_bundle):
    """Two real HAM10000 pictures of one lesion, filed as two visits, shown side by side."""
    import csv as csv_module

    from desktop.views.patients import PatientWorklistView

    groups: dict[str, list[str]] = {}
    with open(HAM / "labels.csv", newline="") as f:
        for row in csv_module.DictReader(f):
            groups.setdefault(row["lesion_id"], []).append(row["image_id"])
    ham_lesion, ids = next(
        (k, sorted(v))
        for k, v in sorted(groups.items())
        if len(v) >= 2 and all((HAM / "images" / f"{i}.jpg").is_file() for i in v[:2])
    )
    day = tmp_path / "real"
    day.mkdir()
    for i in ids[:2]:
        shutil.copy(HAM / "images" / f"{i}.jpg", day / f"{i}.jpg")
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\n"
        f"{ids[0]}.jpg,H1,{ham_lesion},upper back,2024-02-01\n{ids[1]}.jpg,H1,{ham_lesion},upper back,2024-08-01\n"
    )
    with ReviewStore.open(tmp_path / "r.sqlite") as s:
        screen_folder(Screener(load_bundle(synthetic_bundle)), day, s)
        view = PatientWorklistView(lambda: s)
        qtbot.addWidget(view)
        view.resize(1300, 800)
        view.show()
        with qtbot.waitSignal(view.timeline.pictures_shown, timeout=20_000):  # read and hashed on a worker
            view.refresh()
        assert view.current_patient() == "H1" and len(view.timeline.views) == 2
        width = cv2.imread(str(day / f"{ids[0]}.jpg")).shape[1]
        assert all(v._item.pixmap().width() == width for v in view.timeline.views)  # the full picture, not a thumbnail
        qtbot.wait(50)
        SHOTS.mkdir(parents=True, exist_ok=True)
        view.grab().save(str(SHOTS / "patients-real-lesion-two-visits.png"))


def test_the_app_files_a_sidecar_folder_under_patients(make_window, screen, tmp_path, qtbot):
    """Screening a folder with a sidecar in the app: the Patients tab lists them, riskiest first, and
    a bad sidecar row is said in the status bar; L on an open case shows its lesion's visits."""
    from desktop.views.case_panel import CaseRef

    day = tmp_path / "appday"
    day.mkdir()
    lesion(day / "a-jan.png", 180)
    lesion(day / "a-jul.png", 20)
    lesion(day / "b.png", 200)
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\n"
        "a-jan.png,PA,L1,left shin,2024-01-10\na-jul.png,PA,L1,left shin,2024-07-10\n"
        "b.png,PB,L1,back,2024-07-10\nmissing.png,PB,L2,back,2024-07-10\n"
    )
    w = make_window()
    summary = screen(w, day)
    assert summary.total == 3 and len(summary.intake_issues) == 1
    assert "missing.png" in w.message_label.toolTip()  # the label itself may be elided
    view = w.patients_view
    with qtbot.waitSignal(view.shown, timeout=10_000):
        w.tabs.setCurrentWidget(w.patients_view)
    assert [p.patient_id for p in view.patients][0] == "PA" and len(view.patients) == 2
    assert len(view.timeline.views) == 2
    qtbot.wait(100)  # let the new pictures be laid out before the screenshot
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "app-patients-tab.png"))
    entries = w.store.run_entries(summary.run_id, with_cam=False)
    jul = next(e for e in entries if e.result.path.endswith("a-jul.png"))
    w.open_case(CaseRef(jul.result_id, jul.result))  # its other visits are looked up on a worker
    qtbot.waitUntil(lambda: "1 other picture(s) of this lesion" in w.message_label.toolTip(), timeout=5_000)
    b = next(e for e in entries if e.result.path.endswith("b.png"))
    w.case_panel.current = CaseRef(b.result_id, b.result)
    w.tabs.setCurrentWidget(w.screening)
    with qtbot.waitSignal(view.shown, timeout=10_000):
        w.show_lesion_visits(w.case_panel)
    assert w.tabs.currentWidget() is view and view.current_patient() == "PB"


def test_melascreen_report_command_writes_a_pdf(qtbot, store, tmp_path, capsys):
    from desktop.launcher import main

    out = tmp_path / "P1-report.pdf"
    assert main(["report", "--patient", "P1", "--out", str(out), "--db", str(store.path)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-" and "written" in capsys.readouterr().out
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, timeout=60).stdout
        assert "MelaScreen report, patient P1" in info


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs poppler-utils (pdftotext)")
def test_a_result_of_an_unsigned_bundle_is_marked_on_every_pdf_page(qtbot, tmp_path):
    from core.records.patient_report import write_patient_report
    from desktop.pdf import html_to_pdf
    from tests.support.synthetic_bundle import make_bundle

    bundle = make_bundle(tmp_path / "unsigned", sign_key=None)
    day = tmp_path / "u"
    day.mkdir()
    rows = ["file,patient_id,lesion_id,body_site,visit_date"]
    for i in range(6):
        lesion(day / f"u{i}.png", 30 + 35 * i, size=150 + 8 * i)
        rows.append(f"u{i}.png,PU,L{i},back,2024-0{i + 1}-10")
    (day / "melascreen.csv").write_text("\n".join(rows) + "\n")
    with ReviewStore.open(tmp_path / "r.sqlite") as s:
        screen_folder(Screener(load_bundle(bundle, allow_unsigned=True)), day, s)
        out = write_patient_report(s, "PU", tmp_path / "PU.pdf", html_to_pdf)
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, text=True, timeout=60).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages >= 2
    for n in range(1, pages + 1):
        text = subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(out), "-"], capture_output=True, text=True)
        assert "UNSIGNED BUNDLE" in text.stdout and "Patient PU" in text.stdout, f"page {n}"
