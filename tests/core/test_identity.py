"""Patient identity: sidecar CSV (checked row by row), folder layout, DICOM tags, precedence."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.files.identity import Identity, path_key
from core.files.identity_sources import resolve_identities
from core.files.sidecar import FIELD_LIMITS, read_sidecar
from tests.support.dicom_files import write_dicom


def picture(path: Path, shade: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((40, 40, 3), shade, np.uint8))
    return path


def test_sidecar_rows_become_identities(tmp_path):
    a, b = picture(tmp_path / "a.png"), picture(tmp_path / "sub" / "b.png")
    (tmp_path / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date,age,sex,note\n"
        "a.png,P1,L1,left forearm,2024-03-15,54,female,itchy\n"
        "sub/b.png,P2,,back,,,,\n"
    )
    found = resolve_identities(tmp_path, [a, b, tmp_path / "melascreen.csv"])
    assert found.issues == ()
    assert found.identity_for(a) == Identity("P1", "L1", "left forearm", date(2024, 3, 15), 54, "F", "itchy", "sidecar")
    assert found.identity_for(b) == Identity("P2", None, "back", None, source="sidecar")
    assert found.identity_for(tmp_path / "melascreen.csv") is None


def test_every_bad_row_is_reported_and_good_rows_still_count(tmp_path):
    picture(tmp_path / "a.png")
    picture(tmp_path / "b.png")
    picture(tmp_path / "c.png")
    picture(tmp_path / "d.png")
    picture(tmp_path / "e.png")
    sidecar = tmp_path / "clinic.csv"
    sidecar.write_text(
        "file;patient_id;lesion_id;body_site;visit_date;colour\n"  # semicolons, as spreadsheets save them
        "a.png;P1;L1;arm;2024-03-15;x\n"
        "missing.png;P1;L2;arm;2024-03-15;\n"
        "b.png;P1;L3;arm;15/03/2024;\n"
        "c.png;;L4;arm;2024-03-15;\n"
        "d.png;P1;L1;leg;2024-03-15;\n"
        "a.png;P1;L1;arm;2024-03-15;\n"
        "../outside.png;P1;L5;arm;2024-03-15;\n"
        "e.png;P1;L1;arm;2024-03-15;\n"
    )
    identities, issues = read_sidecar(sidecar, tmp_path)
    by_line = {i.row: i for i in issues}
    assert "unknown column 'colour'" in by_line[1].message
    assert "unknown file" in by_line[3].message and by_line[3].file == "missing.png"
    assert "bad visit_date '15/03/2024'" in by_line[4].message
    assert "no patient_id" in by_line[5].message
    assert "duplicate lesion on one visit" in by_line[6].message and "'arm' on line 2" in by_line[6].message
    assert "already listed on line 2" in by_line[7].message
    assert "outside the screened folder" in by_line[8].message
    assert sorted(by_line) == [1, 3, 4, 5, 6, 7, 8]
    # a second picture of lesion L1 on the same visit is fine; the first row stands
    assert {Path(k).name for k in identities} == {"a.png", "e.png"}


def test_sidecar_without_patient_column_is_one_clear_issue(tmp_path):
    picture(tmp_path / "a.png")
    (tmp_path / "melascreen.csv").write_text("file,patient,visit_date\na.png,P1,2024-01-01\n")
    found = resolve_identities(tmp_path, [tmp_path / "a.png"])
    assert not found.identities
    assert any("no column patient_id" in i.message for i in found.issues)


def test_folder_layout_gives_patient_visit_and_lesion(tmp_path):
    files = [
        picture(tmp_path / "P1" / "2024-03-15" / "L1" / "x.png"),
        picture(tmp_path / "P1" / "20240915" / "y.png"),
        picture(tmp_path / "P2" / "L7" / "z.png"),
        picture(tmp_path / "P3" / "w.png"),
        picture(tmp_path / "top.png"),
        picture(tmp_path / "P4" / "a" / "b" / "c" / "deep.png"),
    ]
    found = resolve_identities(tmp_path, files, layout="patient-visit")
    got = {Path(k).name: (i.patient_id, i.lesion_id, i.visit_date) for k, i in found.identities.items()}
    assert got == {
        "x.png": ("P1", "L1", date(2024, 3, 15)),
        "y.png": ("P1", None, date(2024, 9, 15)),
        "z.png": ("P2", "L7", None),
        "w.png": ("P3", None, None),
    }
    assert [Path(i.file).name for i in found.issues] == ["deep.png"]
    # layout "none" (the default) reads nothing from folders
    assert not resolve_identities(tmp_path, files).identities


def test_dicom_tags_and_precedence(tmp_path):
    rgb = np.full((40, 40, 3), 150, np.uint8)
    dcm = write_dicom(tmp_path / "P9" / "img.dcm", rgb, patient_id="MRN-1", study_date="20240102", lesion_number=4)
    plain = write_dicom(tmp_path / "plain.dcm", rgb, patient_id=None)
    found = resolve_identities(tmp_path, [dcm, plain])
    ident = found.identity_for(dcm)
    assert (ident.patient_id, ident.lesion_id, ident.visit_date, ident.source) == (
        "MRN-1",
        "4",
        date(2024, 1, 2),
        "dicom",
    )
    assert found.identity_for(plain) is None  # no PatientID: "no patient"
    # the folder layout outranks the DICOM tags, and the sidecar outranks both
    assert resolve_identities(tmp_path, [dcm], layout="patient-visit").identity_for(dcm).patient_id == "P9"
    (tmp_path / "melascreen.csv").write_text("file,patient_id\nP9/img.dcm,SIDE-1\n")
    assert resolve_identities(tmp_path, [dcm], layout="patient-visit").identity_for(dcm).patient_id == "SIDE-1"


def test_bad_layout_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="patient-visit"):
        resolve_identities(tmp_path, [], layout="by-patient")


def test_sidecar_as_spreadsheets_write_it(tmp_path):
    """Quoted fields, "" inside quotes, notes over several lines, CRLF and a byte-order mark."""
    for name in ("a.png", "b, c.png", "d.png"):
        picture(tmp_path / name)
    text = (
        "file,patient_id,lesion_id,body_site,note\r\n"
        'a.png,P1,L1,"back, left","the ""dark"" one,\r\nsecond line\r\nthird line"\r\n'
        '"b, c.png","P 2",,arm,\r\n'
        "d.png,,L3,leg,\r\n"  # no patient: reported on its own line, after the 3-line note
    )
    (tmp_path / "melascreen.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    identities, issues = read_sidecar(tmp_path / "melascreen.csv", tmp_path)
    a = identities[path_key(tmp_path / "a.png")]
    assert (a.patient_id, a.body_site) == ("P1", "back, left")
    assert a.note == 'the "dark" one,\nsecond line\nthird line'
    assert identities[path_key(tmp_path / "b, c.png")].patient_id == "P 2"
    (issue,) = issues
    assert issue.file == "d.png" and issue.row == 6 and "no patient_id" in issue.message


def test_sidecar_saved_as_unicode_text_utf16_with_tabs(tmp_path):
    picture(tmp_path / "a.png")
    (tmp_path / "melascreen.csv").write_bytes('file\tpatient_id\tnote\na.png\tP-ü\t"tab\there"\n'.encode("utf-16"))
    identities, issues = read_sidecar(tmp_path / "melascreen.csv", tmp_path)
    assert issues == []
    assert identities[path_key(tmp_path / "a.png")].patient_id == "P-ü"
    assert identities[path_key(tmp_path / "a.png")].note == "tab\there"


def test_sidecar_values_are_bounded_and_said_so(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        picture(tmp_path / name)
    long_id = "H" * 100_002
    (tmp_path / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,note\n"
        f"a.png,{long_id},L1,\n"
        f"b.png,P2,L2,{'n' * 5000}\n"
        f'c.png,"P\x1b]0;owned\x07",L3,\n'
        f"d.png,{'P' * FIELD_LIMITS['patient_id']},{'L' * 65},\n"
    )
    identities, issues = read_sidecar(tmp_path / "melascreen.csv", tmp_path)
    by_file = {i.file: i.message for i in issues}
    assert FIELD_LIMITS["patient_id"] == 64 and FIELD_LIMITS["note"] == 2000
    assert "patient_id is 100002 characters long; the limit is 64" in by_file["a.png"]
    assert "control characters" in by_file["c.png"] and "\x1b" not in by_file["c.png"]
    assert "lesion_id is 65 characters long" in by_file["d.png"]
    assert "only its first 2000 are kept" in by_file["b.png"]
    assert {Path(k).name for k in identities} == {"b.png"}  # a long note is cut, the identity kept
    assert len(identities[path_key(tmp_path / "b.png")].note) == 2000
    assert all(len(i.message) < 400 for i in issues)  # a bad value is never repeated whole


def test_broken_sidecar_quoting_or_a_giant_cell_is_an_issue_not_a_crash(tmp_path):
    picture(tmp_path / "a.png")
    picture(tmp_path / "b.png")
    (tmp_path / "melascreen.csv").write_text('file,patient_id,note\na.png,P1,fine\nb.png,P2,"never closed\n')
    identities, issues = read_sidecar(tmp_path / "melascreen.csv", tmp_path)
    assert {Path(k).name for k in identities} == {"a.png"}
    (issue,) = issues
    assert issue.row == 3 and "quoting is broken" in issue.message and "not used" in issue.message
    (tmp_path / "melascreen.csv").write_text(f"file,patient_id,note\na.png,P1,fine\nb.png,P2,{'x' * 200_000}\n")
    identities, issues = read_sidecar(tmp_path / "melascreen.csv", tmp_path)
    assert {Path(k).name for k in identities} == {"a.png"}
    assert issues[0].row == 3 and "longer than" in issues[0].message and len(issues[0].message) < 400


def test_a_dicom_without_patient_id_is_an_identity_issue(tmp_path):
    rgb = np.full((40, 40, 3), 150, np.uint8)
    plain = write_dicom(tmp_path / "plain.dcm", rgb, patient_id=None)
    named = write_dicom(tmp_path / "named.dcm", rgb, patient_id="MRN-2")
    found = resolve_identities(tmp_path, [plain, named])
    assert found.identity_for(plain) is None and found.identity_for(named).patient_id == "MRN-2"
    (issue,) = found.issues
    assert Path(issue.file) == plain and "no PatientID" in issue.message and "sidecar" in issue.message
    (tmp_path / "melascreen.csv").write_text("file,patient_id\nplain.dcm,SIDE-1\n")
    found = resolve_identities(tmp_path, [plain])  # named by the sidecar: nothing to report
    assert found.issues == () and found.identity_for(plain).patient_id == "SIDE-1"


def test_a_sidecar_that_is_a_pipe_is_an_issue_and_never_blocks(tmp_path):
    fifo = tmp_path / "melascreen.csv"
    os.mkfifo(fifo)
    entries, issues = read_sidecar(fifo, tmp_path)
    assert entries == {}
    assert "not a regular file" in issues[0].message
