"""One patient's report (HTML and CSV, no Qt): clinic header, patient, body sites, each visit's picture
and heat map, decisions with urgency and follow-up, what made each result (UNSIGNED BUNDLE said),
written whole and private; and the clinic's details shared by the app and the command line."""

from __future__ import annotations

import csv
import errno
import os
import re
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.common.paths import FileWriteError
from core.inference.bundle import load_bundle
from core.records.clinic import Clinic, load_clinic, save_clinic
from core.records.followup import add_months
from core.records.patient_pages import paged_report
from core.records.patient_record import URGENT, build_patient_report
from core.records.patient_report import patient_html, write_patient_report
from core.records.patients import lesion_timeline, patient_lesions
from core.records.provenance import UNSIGNED
from core.records.store import ReviewStore
from core.screening import Screener, screen_folder

CLINIC = Clinic("Example Skin Clinic", "1 High Street\nTown", "0123 456")


def picture(path: Path, shade: int) -> None:
    yy, xx = np.mgrid[0:120, 0:160]
    img = np.full((120, 160, 3), (150, 170, 205), np.uint8)
    img[((yy - 60) / 40.0) ** 2 + ((xx - 80) / 55.0) ** 2 < 1] = (shade // 3, shade // 2, shade)
    cv2.imwrite(str(path), img)


def _screen(tmp_path, bundle, allow_unsigned=False) -> ReviewStore:
    day = tmp_path / "day"
    day.mkdir()
    picture(day / "a-jan.png", 170)
    picture(day / "a-jul.png", 30)
    picture(day / "b.png", 110)
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date,age,sex\n"
        "a-jan.png,P7,L1,L forearm,2024-01-10,53,F\n"
        "a-jul.png,P7,L1,L forearm,2024-07-10,54,F\n"
        "b.png,P7,L2,back,2024-07-10,54,F\n"
    )
    store = ReviewStore.open(tmp_path / "r.sqlite")
    screen_folder(Screener(load_bundle(bundle, allow_unsigned=allow_unsigned)), day, store)
    return store


@pytest.fixture
def store(tmp_path, synthetic_bundle):
    s = _screen(tmp_path, synthetic_bundle)
    lesions = {le.label: le for le in patient_lesions(s, "P7")}
    jul = lesion_timeline(s, lesions["L1"].lesion_key)[-1]
    s.add_review(jul.result_id, "Dr A", "excise", note="irregular network")
    back = lesion_timeline(s, lesions["L2"].lesion_key)[-1]
    s.add_review(back.result_id, "Dr A", "monitor", follow_up_months=6)
    yield s
    s.close()


def test_the_report_holds_what_a_clinic_files(store):
    report = build_patient_report(store, "P7", reviewer="Dr A", clinic=CLINIC, summary="Refer L1.")
    assert report.who == "Patient P7 · age 54 · sex F (female)"
    by_label = {le.lesion.label: le for le in report.lesions}
    assert [le.lesion.label for le in report.lesions][0] == "L1"  # the urgent lesion first
    l1, l2 = by_label["L1"], by_label["L2"]
    assert l1.urgency is URGENT and l1.site.site.label == "left forearm"
    assert l2.urgency.words == "follow-up" and l2.site.site.label == "back"
    follow = l2.visits[-1].follow_up
    reviewed = l2.visits[-1].entry.review.created[:10]
    assert follow is not None and (follow.year * 12 + follow.month) - (int(reviewed[:4]) * 12 + int(reviewed[5:7])) in (
        5,
        6,
        7,
    )  # six months after the review, in local time
    for v in (*l1.visits, *l2.visits):
        assert v.picture_jpeg[:2] == b"\xff\xd8" and v.heat_map_jpeg[:2] == b"\xff\xd8"
        assert v.heat_map_words.startswith("heat map of melanoma")
        assert v.provenance is not None and v.provenance.bundle_name == "synthetic-test-bundle"
        assert not v.provenance.unsigned and v.provenance.confidence == 0.99

    page = paged_report(report)
    html = page.html()
    for words in (
        "Example Skin Clinic · 1 High Street, Town · tel. 0123 456",
        "Patient P7 · age 54 · sex F (female)",
        "Lesion L1: left forearm (written: L forearm)",
        "URGENT: excise / biopsy",
        "follow-up by ",
        "Dr A",
        "irregular network",
        "Refer L1.",
        "Signature:",
        "Date:",
        "synthetic-test-bundle, version 0.0.1, signed by key",
        "confidence 0.99",
        "research tool",
        "heat map of melanoma",
        "body diagram: left forearm",
    ):
        assert words in html, words
    assert UNSIGNED not in html
    # every picture, heat map and body diagram is embedded: the file stands alone
    assert len(re.findall(r"src='data:image/jpeg;base64,", html)) == 6
    assert len(re.findall(r"src='data:image/svg\+xml;base64,", html)) == 2
    assert page.blocks[1].keep_with_next  # a lesion's heading never ends a page alone


def test_csv_and_html_are_written_whole_and_private(store, tmp_path):
    out_csv = write_patient_report(store, "P7", tmp_path / "out" / "P7.csv", reviewer="Dr A", clinic=CLINIC)
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert len(rows) == 3 and {r["patient_id"] for r in rows} == {"P7"}
    l1 = [r for r in rows if r["lesion_id"] == "L1"]
    assert {r["body_site_vocabulary"] for r in l1} == {"left forearm"} and {r["age"] for r in l1} == {"53", "54"}
    assert {r["urgency"] for r in l1} == {"URGENT"} and {r["sex"] for r in rows} == {"F"}
    assert all(r["signature"].startswith("signed by key") and r["confidence"] == "0.99" for r in rows)
    assert any(r["follow_up_by"] for r in rows if r["lesion_id"] == "L2")
    out_html = write_patient_report(store, "P7", tmp_path / "P7.html", clinic=CLINIC)
    for p in (out_csv, out_html):
        assert os.stat(p).st_mode & 0o777 == 0o600
    assert [f.name for f in out_csv.parent.iterdir()] == ["P7.csv"]  # no temporary file left behind


def test_a_full_disk_leaves_the_earlier_report_and_names_the_file(store, tmp_path):
    out = tmp_path / "P7.pdf"

    def writer(page, path):
        Path(path).write_bytes(b"%PDF-1.4 first")
        return path

    write_patient_report(store, "P7", out, writer)
    assert out.read_bytes() == b"%PDF-1.4 first"

    def full_disk(page, path):
        Path(path).write_bytes(b"%PDF-1.4 half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(FileWriteError) as caught:
        write_patient_report(store, "P7", out, full_disk)
    assert str(out) in str(caught.value) and "disk is full" in str(caught.value)
    assert out.read_bytes() == b"%PDF-1.4 first"  # the earlier report is still there, whole
    assert sorted(f.name for f in tmp_path.iterdir() if f.suffix == ".pdf") == ["P7.pdf"]
    with pytest.raises(ValueError, match="desktop part"):
        write_patient_report(store, "P7", tmp_path / "x.pdf")
    with pytest.raises(ValueError, match="no patient 'NOPE'"):
        write_patient_report(store, "NOPE", tmp_path / "x.csv")


def test_an_unsigned_bundle_is_said_on_every_surface(tmp_path):
    from tests.support.synthetic_bundle import make_bundle

    bundle = make_bundle(tmp_path / "unsigned", sign_key=None)
    with _screen(tmp_path, bundle, allow_unsigned=True) as store:
        html = patient_html(store, "P7", clinic=CLINIC)
        assert UNSIGNED in html and "Do not file this report as a clinical record" in html
        out = write_patient_report(store, "P7", tmp_path / "u.csv")
        rows = list(csv.DictReader(out.open(encoding="utf-8")))
        assert rows and all(r["signature"] == UNSIGNED for r in rows)


def test_clinic_details_are_kept_for_the_app_and_the_command_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MELASCREEN_HOME", str(tmp_path / "home"))
    assert load_clinic() == Clinic() and "clinic not set" in Clinic().header_line()
    path = save_clinic(Clinic("Clinic\x07 One", "Road 1\nCity", "+44 1"))
    assert path.parent == tmp_path / "home" / "config"
    assert load_clinic() == Clinic("Clinic One", "Road 1\nCity", "+44 1")
    path.write_text("{not json")
    assert load_clinic() == Clinic()  # a damaged file never stops a report


def test_months_are_added_as_a_calendar_does():
    from datetime import date

    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 11, 15), 6) == date(2025, 5, 15)
    assert add_months(date(2024, 3, 1), 12) == date(2025, 3, 1)


def test_the_command_line_report_prints_the_clinic_and_summary(store, tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.setenv("MELASCREEN_HOME", str(tmp_path / "home"))
    save_clinic(CLINIC)  # what the app's Settings save
    out = tmp_path / "P7.html"
    args = ["report", "--patient", "P7", "--out", str(out), "--db", str(store.path), "--summary", "Refer L1 now."]
    assert main([*args, "--reviewer", "Dr A"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "Example Skin Clinic · 1 High Street, Town · tel. 0123 456" in page and "Refer L1 now." in page
    assert "Patient P7 · age 54 · sex F (female)" in page and "written" in capsys.readouterr().out


def test_the_stored_map_of_the_named_class_comes_first_a_source_only_for_older_results(store):
    asked = []

    def class_maps(result, class_code):
        asked.append(class_code)
        h, w = result.height or 100, result.width or 100
        return np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))

    report = build_patient_report(store, "P7", clinic=CLINIC, heat_maps=class_maps)
    visits = [v for le in report.lesions for v in le.visits]
    assert visits and all(v.named_class for v in visits)
    assert asked == []  # every result screened now keeps its named class's map (store schema 6)
    for v in visits:
        assert v.heat_map_jpeg[:2] == b"\xff\xd8"
        assert v.heat_map_class == v.named_class and "not stored" not in v.heat_map_words
    plain = build_patient_report(store, "P7", clinic=CLINIC)
    assert [v.heat_map_class for le in plain.lesions for v in le.visits] == [v.heat_map_class for v in visits]


def test_a_named_class_other_than_melanoma_gets_its_own_map(store):
    from core.records.patient_record import VisitRecord, _heat_map

    result = store.get_result(lesion_timeline(store, patient_lesions(store, "P7")[0].lesion_key)[-1].result_id)
    # a result stored before named maps (or re-decided to name another class since): melanoma's map only
    result = replace(result, named_cam=None, named_cam_class="")
    bcc = np.full((result.height, result.width), 0.5, np.float32)
    assert _heat_map(result, "bcc", lambda r, c: bcc if c == "bcc" else None) == (bcc, "bcc")
    cam, shown = _heat_map(result, "bcc", None)
    assert shown == "mel" and cam is result.cam
    words = VisitRecord(*([None] * 12))
    words = replace(words, heat_map_jpeg=b"x", heat_map_class="mel", named_class="bcc").heat_map_words
    assert words == "heat map of melanoma (the map of basal cell carcinoma is not stored with this result)"


def test_a_confirmed_diagnosis_is_in_the_report_csv_and_html(store, tmp_path):
    from datetime import date

    from core.records.evidence import add_confirmed, lesion_key
    from core.records.patient_report import write_patient_report

    add_confirmed(
        store, "bcc", "histopathology", "Dr X", lesion=lesion_key(store, "P7", "L2"), confirmed_on=date(2026, 11, 2)
    )
    words = "confirmed: basal cell carcinoma (histopathology, 2026-11-02, by Dr X)"
    report = build_patient_report(store, "P7", clinic=CLINIC)
    by_label = {le.lesion.label: le for le in report.lesions}
    assert {v.confirmed for v in by_label["L2"].visits} == {words}
    assert {v.confirmed for v in by_label["L1"].visits} == {""}
    page = write_patient_report(store, "P7", tmp_path / "p.html", clinic=CLINIC).read_text(encoding="utf-8")
    assert page.count(words) == 2  # under the lesion's heading and on its picture's row
    rows = list(csv.DictReader(write_patient_report(store, "P7", tmp_path / "p.csv").open(encoding="utf-8")))
    assert sorted(r["confirmed_diagnosis"] for r in rows) == ["", "", words]
