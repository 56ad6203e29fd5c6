"""Identity at intake: sidecar CSV (checked row by row), folder layout, DICOM tags, precedence."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest
from dicom_files import write_dicom

from core.intake import Identity, read_sidecar, resolve_intake


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
    intake = resolve_intake(tmp_path, [a, b, tmp_path / "melascreen.csv"])
    assert intake.issues == ()
    assert intake.identity_for(a) == Identity(
        "P1", "L1", "left forearm", date(2024, 3, 15), 54, "F", "itchy", "sidecar"
    )
    assert intake.identity_for(b) == Identity("P2", None, "back", None, source="sidecar")
    assert intake.identity_for(tmp_path / "melascreen.csv") is None


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
    intake = resolve_intake(tmp_path, [tmp_path / "a.png"])
    assert not intake.identities
    assert any("no column patient_id" in i.message for i in intake.issues)


def test_folder_layout_gives_patient_visit_and_lesion(tmp_path):
    files = [
        picture(tmp_path / "P1" / "2024-03-15" / "L1" / "x.png"),
        picture(tmp_path / "P1" / "20240915" / "y.png"),
        picture(tmp_path / "P2" / "L7" / "z.png"),
        picture(tmp_path / "P3" / "w.png"),
        picture(tmp_path / "top.png"),
        picture(tmp_path / "P4" / "a" / "b" / "c" / "deep.png"),
    ]
    intake = resolve_intake(tmp_path, files, layout="patient-visit")
    got = {Path(k).name: (i.patient_id, i.lesion_id, i.visit_date) for k, i in intake.identities.items()}
    assert got == {
        "x.png": ("P1", "L1", date(2024, 3, 15)),
        "y.png": ("P1", None, date(2024, 9, 15)),
        "z.png": ("P2", "L7", None),
        "w.png": ("P3", None, None),
    }
    assert [Path(i.file).name for i in intake.issues] == ["deep.png"]
    # layout "none" (the default) reads nothing from folders
    assert not resolve_intake(tmp_path, files).identities


def test_dicom_tags_and_precedence(tmp_path):
    rgb = np.full((40, 40, 3), 150, np.uint8)
    dcm = write_dicom(tmp_path / "P9" / "img.dcm", rgb, patient_id="MRN-1", study_date="20240102", lesion_number=4)
    plain = write_dicom(tmp_path / "plain.dcm", rgb, patient_id=None)
    intake = resolve_intake(tmp_path, [dcm, plain])
    ident = intake.identity_for(dcm)
    assert (ident.patient_id, ident.lesion_id, ident.visit_date, ident.source) == (
        "MRN-1",
        "4",
        date(2024, 1, 2),
        "dicom",
    )
    assert intake.identity_for(plain) is None  # no PatientID: "no patient"
    # the folder layout outranks the DICOM tags, and the sidecar outranks both
    assert resolve_intake(tmp_path, [dcm], layout="patient-visit").identity_for(dcm).patient_id == "P9"
    (tmp_path / "melascreen.csv").write_text("file,patient_id\nP9/img.dcm,SIDE-1\n")
    assert resolve_intake(tmp_path, [dcm], layout="patient-visit").identity_for(dcm).patient_id == "SIDE-1"


def test_bad_layout_name_is_refused(tmp_path):
    with pytest.raises(ValueError, match="patient-visit"):
        resolve_intake(tmp_path, [], layout="by-patient")
