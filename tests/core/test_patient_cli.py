"""The command line with patients: screen --sidecar/--layout, review list --patient, report --patient."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli.main import main
from tests.support.dicom_files import write_dicom


def picture(path: Path, shade: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:96, 0:96]
    img = np.full((96, 96, 3), 200, np.uint8)
    img[(yy - 48) ** 2 + (xx - 48) ** 2 < 900] = shade  # darker blobs score higher on the synthetic bundle
    cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def clinic_day(tmp_path):
    day = tmp_path / "day"
    picture(day / "p1-jan.png", 150)
    picture(day / "p1-jul.png", 20)
    picture(day / "p2.png", 120)
    picture(day / "anon.png", 100)
    write_dicom(day / "scope.dcm", np.full((80, 80, 3), 90, np.uint8), patient_id="MRN-9", study_date="20240301")
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date,note\n"
        "p1-jan.png,P1,L1,left shin,2024-01-10,\n"
        "p1-jul.png,P1,L1,left shin,2024-07-10,bigger\n"
        "p2.png,P2,L1,back,2024-07-10,\n"
        "gone.png,P2,L2,back,2024-07-10,\n"
    )
    return day


def test_screen_files_patients_and_reports_bad_rows(tmp_path, clinic_day, synthetic_bundle, capsys):
    db, report = tmp_path / "r.sqlite", tmp_path / "out.csv"
    assert (
        main(
            [
                "screen",
                str(clinic_day),
                "--bundle",
                str(synthetic_bundle),
                "--allow-unsigned",
                "--db",
                str(db),
                "--report",
                str(report),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "intake: gone.png (sidecar line 5): unknown file" in err
    assert "4 images filed under 3 patients; 1 intake issues" in err
    rows = list(csv.DictReader(report.open()))
    by_file = {Path(r["path"]).name: r for r in rows}
    assert sorted(by_file) == ["anon.png", "gone.png", "p1-jan.png", "p1-jul.png", "p2.png", "scope.dcm"]
    assert (
        by_file["p1-jul.png"]["patient_id"],
        by_file["p1-jul.png"]["lesion_id"],
        by_file["p1-jul.png"]["body_site"],
        by_file["p1-jul.png"]["visit_date"],
    ) == ("P1", "L1", "left shin", "2024-07-10")
    assert by_file["scope.dcm"]["status"] == "ok" and by_file["scope.dcm"]["patient_id"] == "MRN-9"
    assert by_file["anon.png"]["patient_id"] == ""
    assert by_file["gone.png"]["status"] == "intake" and "unknown file" in by_file["gone.png"]["reason"]

    capsys.readouterr()
    assert main(["review", "list", "--all", "--patient", "P1", "--db", str(db)]) == 0
    listed = capsys.readouterr().out
    assert "p1-jul.png" in listed and "p1-jan.png" in listed and "p2.png" not in listed

    html_out, csv_out = tmp_path / "P1.html", tmp_path / "P1.csv"
    assert main(["report", "--patient", "P1", "--out", str(html_out), "--db", str(db), "--reviewer", "dr a"]) == 0
    text = html_out.read_text()
    assert "patient P1" in text and "left shin" in text and "2024-01-10" in text and "2024-07-10" in text
    assert "rose from" in text  # the darker July picture scores higher than January's
    assert main(["report", "--patient", "P1", "--out", str(csv_out), "--db", str(db)]) == 0
    prow = list(csv.DictReader(csv_out.open()))
    assert [r["visit_date"] for r in prow] == ["2024-01-10", "2024-07-10"] and prow[1]["p_rose_from"]

    capsys.readouterr()
    assert main(["report", "--patient", "P1", "--out", str(tmp_path / "P1.pdf"), "--db", str(db)]) == 1
    assert "PDF needs the desktop part" in capsys.readouterr().err
    assert main(["report", "--patient", "nobody", "--out", str(html_out), "--db", str(db)]) == 1


def test_layout_option_reads_patient_folders(tmp_path, synthetic_bundle, capsys):
    folder = tmp_path / "clinic"
    picture(folder / "P7" / "2024-02-02" / "L3" / "a.png", 60)
    picture(folder / "P7" / "2024-09-02" / "L3" / "b.png", 70)
    db = tmp_path / "r.sqlite"
    assert (
        main(
            [
                "screen",
                str(folder),
                "--bundle",
                str(synthetic_bundle),
                "--allow-unsigned",
                "--db",
                str(db),
                "--layout",
                "patient-visit",
            ]
        )
        == 0
    )
    assert "2 images filed under 1 patients" in capsys.readouterr().err
    out = tmp_path / "P7.csv"
    assert main(["report", "--patient", "P7", "--out", str(out), "--db", str(db)]) == 0
    assert [(r["lesion_id"], r["visit_date"]) for r in csv.DictReader(out.open())] == [
        ("L3", "2024-02-02"),
        ("L3", "2024-09-02"),
    ]


def test_missing_sidecar_file_is_a_clear_error(tmp_path, synthetic_bundle, capsys):
    picture(tmp_path / "d" / "a.png", 50)
    assert (
        main(
            [
                "screen",
                str(tmp_path / "d"),
                "--bundle",
                str(synthetic_bundle),
                "--allow-unsigned",
                "--db",
                str(tmp_path / "r.sqlite"),
                "--sidecar",
                str(tmp_path / "nope.csv"),
            ]
        )
        == 2  # a wrong argument: said before the bundle loads, nothing written
    )
    assert "sidecar file" in capsys.readouterr().err
    assert not (tmp_path / "r.sqlite").exists()
