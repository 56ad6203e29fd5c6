"""Confirmed diagnoses (core/records/evidence.py): append-only, newest wins, image over lesion, CSV import by line."""

from __future__ import annotations

import sqlite3

import cv2
import numpy as np
import pytest

from core.common.errors import StoreError
from core.inference.bundle import load_bundle
from core.records.evidence import (
    EvidenceError,
    add_confirmed,
    all_confirmed,
    confirmed_for_images,
    confirmed_for_lesion,
    import_csv,
    lesion_key,
)
from core.records.store import ReviewStore
from core.screening import Screener, screen_folder


def picture(path, seed: int, level: int = 150):
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), np.clip(rng.normal(level, 30, (96, 96, 3)), 0, 255).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def clinic(synthetic_bundle, tmp_path_factory):
    """Four screened pictures: a.jpg and b.jpg filed as patient P1's lesion L1, c.jpg and d.jpg unfiled."""
    folder = tmp_path_factory.mktemp("clinic")
    for i, name in enumerate("abcd"):
        picture(folder / f"{name}.jpg", i)
    (folder / "melascreen.csv").write_text(
        "file,patient_id,lesion_id,visit_date\na.jpg,P1,L1,2026-11-01\nb.jpg,P1,L1,2026-11-20\n"
    )
    db = folder / "results.sqlite"
    with ReviewStore.open(db) as store:
        results, _ = screen_folder(Screener(load_bundle(synthetic_bundle)), folder, store)
    return folder, db, {r.path.rsplit("/", 1)[-1]: r.sha256 for r in results}


def test_a_lesion_confirmation_covers_its_pictures_and_the_image_own_one_wins(clinic):
    folder, db, sha = clinic
    with ReviewStore.open(db) as store:
        lesion = lesion_key(store, "P1", "L1")
        first = add_confirmed(store, "nv", "follow_up", "AB", lesion=lesion, confirmed_on="2026-11-25")
        assert {k: v.diagnosis for k, v in confirmed_for_images(store, [sha["a.jpg"], sha["b.jpg"]]).items()} == {
            sha["a.jpg"]: "nv",
            sha["b.jpg"]: "nv",
        }
        add_confirmed(store, "melanoma", "histopathology", "AB", lesion=lesion, note="excised")  # a correction
        add_confirmed(store, "other benign", "consensus", "CD", sha256=sha["b.jpg"])
        found = confirmed_for_images(store)
        assert found[sha["a.jpg"]].diagnosis == "mel" and found[sha["a.jpg"]].malignant
        assert found[sha["b.jpg"]].diagnosis == "other_benign" and not found[sha["b.jpg"]].malignant
        assert [c.diagnosis for c in confirmed_for_lesion(store, lesion)] == ["nv", "mel"]
        assert first.words == "melanocytic nevus (clinical follow-up on 2026-11-25)"


def test_confirmations_are_append_only_even_for_raw_sql(clinic):
    _, db, sha = clinic
    with ReviewStore.open(db) as store:
        add_confirmed(store, "bcc", "histopathology", "AB", sha256=sha["c.jpg"])
        n = len(all_confirmed(store))
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE confirmed_diagnoses SET diagnosis = 'nv'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM confirmed_diagnoses")
    conn.close()
    with ReviewStore.open(db) as store:
        assert len(all_confirmed(store)) == n


def test_bad_input_is_refused_with_a_reason(clinic):
    _, db, sha = clinic
    with ReviewStore.open(db) as store:
        with pytest.raises(EvidenceError, match="unknown diagnosis"):
            add_confirmed(store, "wart-ish", "histopathology", "AB", sha256=sha["d.jpg"])
        with pytest.raises(EvidenceError, match="unknown confirmation method"):
            add_confirmed(store, "nv", "guess", "AB", sha256=sha["d.jpg"])
        with pytest.raises(EvidenceError, match="in the future"):
            add_confirmed(store, "nv", "histopathology", "AB", sha256=sha["d.jpg"], confirmed_on="2999-01-01")
        with pytest.raises(EvidenceError, match="either a lesion or an image"):
            add_confirmed(store, "nv", "histopathology", "AB")
        with pytest.raises(EvidenceError, match="who entered"):
            add_confirmed(store, "nv", "histopathology", " ", sha256=sha["d.jpg"])
        with pytest.raises(EvidenceError, match="no lesion"):
            lesion_key(store, "P1", "L9")


def test_import_reports_every_bad_row_by_line_and_imports_the_rest(clinic, tmp_path):
    folder, db, sha = clinic
    other = picture(tmp_path / "never-screened.jpg", 99, 60)
    csv_file = folder / "outcomes.csv"
    csv_file.write_text(
        "patient,lesion,file,diagnosis,method,date,note\n"
        "P1,L1,,melanoma,histopathology,2026-11-28,excised\n"  # line 2: ok (lesion)
        ",,d.jpg,nv,follow-up,2026-11-29,\n"  # line 3: ok (file, relative to the CSV)
        ",,d.jpg,tumour,histopathology,2026-11-29,\n"  # line 4: unknown diagnosis
        f",,{other},nv,histopathology,,\n"  # line 5: never screened
        "P9,L1,,nv,histopathology,,\n"  # line 6: unknown patient
        ",,c.jpg,bcc,histopathology,30/11/2026,\n"  # line 7: bad date
        ",,,nv,histopathology,,\n"  # line 8: nothing named
    )
    with ReviewStore.open(db) as store:
        before = len(all_confirmed(store))
        report = import_csv(store, csv_file, "importer")
        assert [p.line for p in report.problems] == [4, 5, 6, 7, 8]
        reasons = [p.reason for p in report.problems]
        assert "unknown diagnosis" in reasons[0] and "not been screened" in reasons[1]
        assert "no patient" in reasons[2] and "not a date" in reasons[3] and "no lesion, file or image" in reasons[4]
        assert len(report.imported) == 2 and len(all_confirmed(store)) == before + 2
        assert confirmed_for_images(store, [sha["d.jpg"]])[sha["d.jpg"]].method == "follow_up"


def test_an_old_store_is_upgraded_to_hold_confirmations(tmp_path):
    from core.records.store import MIGRATIONS, migrate

    path = tmp_path / "v4.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:4], str(path)) == 4
    conn.close()
    with ReviewStore.open(path) as store:
        assert store.schema_version >= 5 and all_confirmed(store) == []
    with pytest.raises(StoreError, match="predates confirmed diagnoses"):
        conn = sqlite3.connect(tmp_path / "v4b.sqlite", isolation_level=None)
        migrate(conn, MIGRATIONS[:4], "v4b")
        conn.close()
        store = ReviewStore(sqlite3.connect(tmp_path / "v4b.sqlite", check_same_thread=False), tmp_path / "v4b.sqlite")
        all_confirmed(store)
