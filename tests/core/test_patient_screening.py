"""Screening a clinic's folder files every image under its patient, lesion and visit: sidecar CSV,
PATIENT/VISIT/ folders and DICOM tags, with bad sidecar rows reported while the batch goes on."""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.files.identity import IdentitySettings
from core.inference.bundle import load_bundle
from core.records.patients import identity_of, worklist
from core.records.store import ReviewStore
from core.screening import RunSettings, Screener, screen_folder
from tests.support.dicom_files import write_dicom

ROOT = Path(__file__).resolve().parents[2]
HAM = ROOT.parent / "shared" / "data" / "dermoscopy"


@pytest.fixture(scope="module")
def screener(synthetic_bundle):
    return Screener(load_bundle(synthetic_bundle))


def picture(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    img = np.clip(rng.normal(150, 30, (96, 96, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
    return path


def attachments(store, results) -> dict[str, tuple]:
    out = {}
    for r in results:
        a = identity_of(store, r.sha256) if r.sha256 else None
        if a is not None:
            out[r.sha256] = (a.patient_id, a.lesion_label, a.visit_date)
    return out


def test_sidecar_dicom_and_a_missing_file_row(tmp_path, screener):
    day = tmp_path / "day"
    picture(day / "a.png", 1)
    picture(day / "b.png", 2)
    picture(day / "c.png", 3)
    rgb = cv2.cvtColor(cv2.imread(str(picture(tmp_path / "src.png", 4))), cv2.COLOR_BGR2RGB)
    write_dicom(
        day / "export.dcm", rgb, patient_id="MRN-5", study_date="20240610", lesion_number=1, patient_name="Secret^Name"
    )
    (day / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,body_site,visit_date\n"
        "a.png,P1,L1,back,2024-01-10\n"
        "gone.png,P1,L2,back,2024-01-10\n"
        "b.png,P1,L1,back,2024-07-10\n"
    )
    with ReviewStore.open(tmp_path / "r.sqlite") as store:
        results, summary = screen_folder(screener, day, store)
        names = sorted(Path(r.path).name for r in results)
        assert names == ["a.png", "b.png", "c.png", "export.dcm"]  # the sidecar is not screened
        assert all(r.ok for r in results), [r.reason for r in results if not r.ok]
        by_name = {Path(r.path).name: r for r in results}
        got = {n: identity_of(store, by_name[n].sha256) for n in names}
        assert (got["a.png"].patient_id, got["a.png"].lesion_label, got["a.png"].visit_date) == (
            "P1",
            "L1",
            date(2024, 1, 10),
        )
        assert got["b.png"].lesion_key == got["a.png"].lesion_key and got["b.png"].visit_date == date(2024, 7, 10)
        assert got["c.png"] is None  # no patient: screened exactly as before
        dcm = got["export.dcm"]
        assert (dcm.patient_id, dcm.visit_date, dcm.lesion_label, dcm.source) == (
            "MRN-5",
            date(2024, 6, 10),
            "1",
            "dicom",
        )
        assert by_name["export.dcm"].width == 96
        (issue,) = summary.intake_issues
        assert issue.file == "gone.png" and issue.row == 3 and "unknown file" in issue.message
        assert "gone.png" in store.get_run(summary.run_id).summary["intake_issues"][0]
        assert {p.patient_id for p in worklist(store)} == {"P1", "MRN-5"}
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("r.sqlite*"))
    assert b"MRN-5" in stored and b"Secret" not in stored  # the patient's name is never stored


def ham_lesions(n: int) -> list[tuple[str, list[str]]]:
    """n HAM10000 lesions with at least 2 images present on disk: (lesion_id, [image_id, image_id])."""
    groups: dict[str, list[str]] = {}
    with open(HAM / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            if (HAM / "images" / f"{row['image_id']}.jpg").is_file():
                groups.setdefault(row["lesion_id"], []).append(row["image_id"])
    picked = [(lesion, sorted(ids)[:2]) for lesion, ids in sorted(groups.items()) if len(ids) >= 2]
    return picked[:n]


@pytest.mark.skipif(not (HAM / "labels.csv").is_file(), reason="needs ../shared/data/dermoscopy (HAM10000)")
def test_real_repeat_images_by_sidecar_and_by_folders_attach_alike(tmp_path, screener):
    """3 patients x 2 lesions x 2 visits of real HAM10000 repeat images of one lesion."""
    lesions = ham_lesions(6)
    assert len(lesions) == 6
    flat, nested = tmp_path / "flat", tmp_path / "nested"
    flat.mkdir()
    rows, expected = [], {}
    visits = (date(2024, 2, 1), date(2024, 8, 1))
    for i, (ham_lesion, images) in enumerate(lesions):
        patient, lesion = f"P{i // 2 + 1}", ham_lesion
        for visit, image_id in zip(visits, images):
            src = HAM / "images" / f"{image_id}.jpg"
            shutil.copy(src, flat / src.name)
            target = nested / patient / visit.isoformat() / lesion / src.name
            target.parent.mkdir(parents=True)
            shutil.copy(src, target)
            rows.append(f"{src.name},{patient},{lesion},,{visit.isoformat()}")
            expected[src.name] = (patient, lesion, visit)
    (flat / "melascreen.csv").write_text("file,patient_id,lesion_id,body_site,visit_date\n" + "\n".join(rows) + "\n")

    with ReviewStore.open(tmp_path / "a.sqlite") as store:
        results, summary = screen_folder(screener, flat, store)
        assert summary.total == 12 and summary.errors == 0 and not summary.intake_issues
        by_sidecar = attachments(store, results)
        names = {r.sha256: Path(r.path).name for r in results}
        assert {names[s]: v for s, v in by_sidecar.items()} == expected
        assert len(worklist(store)) == 3
    with ReviewStore.open(tmp_path / "b.sqlite") as store:
        results, summary = screen_folder(
            screener, nested, store, run=RunSettings(intake=IdentitySettings(layout="patient-visit"))
        )
        assert summary.total == 12 and summary.errors == 0 and not summary.intake_issues
        assert attachments(store, results) == by_sidecar


def test_a_spreadsheet_sidecar_and_a_dicom_without_patient_id_in_one_run(tmp_path, screener):
    """Quoted cells with commas, "" and a note over two lines, as a spreadsheet saves them (with a BOM);
    a DICOM export that names no patient is screened and said, never silently filed as "no patient"."""
    day = tmp_path / "day"
    picture(day / "a, left.png", 11)
    rgb = cv2.cvtColor(cv2.imread(str(picture(tmp_path / "src.png", 12))), cv2.COLOR_RGB2BGR)
    write_dicom(day / "anonymous.dcm", rgb, patient_id=None, study_date="20240610")
    (day / "melascreen.csv").write_bytes(
        b"\xef\xbb\xbffile;patient_id;lesion_id;body_site;note\r\n"
        b'"a, left.png";P1;L1;upper back;"the ""new"" one; itchy\r\nsince May"\r\n'
    )
    with ReviewStore.open(tmp_path / "r.sqlite") as store:
        results, summary = screen_folder(screener, day, store)
        assert sorted(Path(r.path).name for r in results) == ["a, left.png", "anonymous.dcm"]
        by_name = {Path(r.path).name: r for r in results}
        a = identity_of(store, by_name["a, left.png"].sha256)
        assert (a.patient_id, a.lesion_label, a.body_site) == ("P1", "L1", "upper back")
        assert identity_of(store, by_name["anonymous.dcm"].sha256) is None
        (issue,) = summary.intake_issues
        assert Path(issue.file).name == "anonymous.dcm" and "no PatientID" in issue.message
        assert "anonymous.dcm" in store.get_run(summary.run_id).summary["intake_issues"][0]
