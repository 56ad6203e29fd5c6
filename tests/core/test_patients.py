"""Patients, lesions and visits in the store: migration from the released schema, attaching images,
the patient worklist, a lesion's timeline."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import date

import pytest

from core.decision.results import Decision, ScreeningResult
from core.files.identity import FolderIdentities, Identity, path_key
from core.records.patients import (
    AttachConflict,
    attach,
    attach_results,
    identity_of,
    lesion_timeline,
    patient_lesions,
    patient_queue,
    worklist,
)
from core.records.store import MIGRATIONS, SCHEMA_VERSION, ReviewStore, migrate

KEY = "key-A"


def sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def result(name: str, p: float) -> ScreeningResult:
    decision = Decision.NO_CANCER_SUSPECTED if p < 0.1 else Decision.SUSPICIOUS if p > 0.9 else Decision.REVIEW
    return ScreeningResult(
        path=f"/day/{name}.jpg",
        sha256=sha(name),
        status="ok",
        decision=decision,
        reason="",
        p_melanoma=p,
        p_malignant=p,
        class_probs={"mel": p, "nv": 1 - p},
        malignant_class="mel",
    )


@pytest.fixture
def store(tmp_path):
    with ReviewStore.open(tmp_path / "r.sqlite") as s:
        yield s


def screened(store, *items: tuple[str, float]) -> dict[str, int]:
    run = store.start_run("/day", "b", "1", KEY, {})
    return {name: store.add_result(run, result(name, p), KEY) for name, p in items}


def test_a_database_of_the_released_schema_upgrades_with_every_result_and_review(tmp_path):
    path = tmp_path / "released.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:1], str(path)) == 1  # exactly what the current release writes
    conn.executescript(f"""
        INSERT INTO runs (id, folder, bundle_name, bundle_version, bundle_fingerprint, settings_json, started, status)
            VALUES (1, '/day', 'default', '2026.11.26b', 'fp1', '{{}}', '2026-11-26T10:00:00.000+00:00', 'finished');
        INSERT INTO results (id, sha256, bundle_fingerprint, first_run_id, path, status, decision, reason, p_melanoma,
                             class_probs_json, created)
            VALUES (1, '{sha("a")}', 'fp1', 1, '/day/a.jpg', 'ok', 'uncertain', 'p=0.4', 0.4,
                    '{{"mel": 0.3, "bcc": 0.1, "nv": 0.6}}', '2026-11-26T10:00:01.000+00:00'),
                   (2, NULL, 'fp1', 1, '/day/b.txt', 'error', NULL, 'not an image', NULL, '{{}}',
                    '2026-11-26T10:00:02.000+00:00');
        INSERT INTO run_items VALUES (1, '/day/a.jpg', 1, 1, '2026-11-26T10:00:01.000+00:00'),
                                     (1, '/day/b.txt', 2, 2, '2026-11-26T10:00:02.000+00:00');
        INSERT INTO review_queue VALUES (1, '2026-11-26T10:00:01.000+00:00');
        INSERT INTO reviews (result_id, reviewer, decision, note, created)
            VALUES (1, 'dr a', 'refer', 'dark dot', '2026-11-26T11:00:00.000+00:00');
    """)
    conn.close()
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION >= 3
        assert s.integrity_check() == "ok"
        assert [(r.path, r.status) for r in s.run_results(1)] == [("/day/a.jpg", "ok"), ("/day/b.txt", "error")]
        assert s.get_result(1).p_melanoma == pytest.approx(0.4)
        assert [(h.reviewer, h.decision, h.note) for h in s.history(1)] == [("dr a", "refer", "dark dot")]
        # the old image can be filed under a patient, and its review follows it
        attach(s, sha("a"), Identity("P1", "L1", "back", date(2026, 11, 26)))
        assert identity_of(s, sha("a")).patient_id == "P1"
        (entry,) = lesion_timeline(s, identity_of(s, sha("a")).lesion_key)
        assert entry.review.decision == "refer" and entry.result_id == 1


def test_attach_is_idempotent_and_never_moves_an_image(store):
    screened(store, ("a", 0.3))
    first = attach(store, sha("a"), Identity("P1", "L1", "left arm", date(2024, 1, 5)))
    assert attach(store, sha("a"), Identity("P1", "L1", "left arm", date(2024, 1, 5))) == first
    with pytest.raises(AttachConflict, match="already filed under patient 'P1', lesion 'L1', visit 2024-01-05"):
        attach(store, sha("a"), Identity("P2", "L1", None, date(2024, 1, 5)))
    with pytest.raises(AttachConflict, match="recorded at 'left arm'"):
        attach(store, sha("b"), Identity("P1", "L1", "back", date(2024, 6, 5)))
    assert identity_of(store, sha("a")) == first
    assert identity_of(store, sha("b")) is None  # a refused attach leaves nothing behind


def test_pictures_without_lesion_id_are_never_grouped(store):
    a = attach(store, sha("a"), Identity("P1", None, "back", date(2024, 1, 5), source="dicom"))
    b = attach(store, sha("b"), Identity("P1", None, "back", date(2024, 1, 5), source="dicom"))
    assert a.lesion_key != b.lesion_key and not a.labelled
    assert a.lesion_label.startswith("unlabelled ")


def test_worklist_puts_the_patient_with_the_riskiest_waiting_case_first(store):
    ids = screened(store, ("p1-old", 0.2), ("p1-new", 0.5), ("p2", 0.95), ("p3", 0.05), ("p4", 0.3))
    attach(store, sha("p1-old"), Identity("P1", "L1", "arm", date(2024, 1, 5)))
    attach(store, sha("p1-new"), Identity("P1", "L1", "arm", date(2024, 7, 5)))
    attach(store, sha("p2"), Identity("P2", "L1", "back", date(2024, 7, 5)))
    attach(store, sha("p3"), Identity("P3", "L1", "leg", date(2024, 7, 5)))
    attach(store, sha("p4"), Identity("P4", "L9", "leg", date(2024, 7, 5)))
    store.add_review(ids["p4"], "dr a", "no_action")  # reviewed: no longer waiting
    order = worklist(store)
    assert [s.patient_id for s in order] == ["P2", "P1", "P3", "P4"]
    p2, p1 = order[0], order[1]
    assert p2.top_decision is Decision.SUSPICIOUS and p2.waiting == 1
    assert p2.top_words == "suspicious for melanoma"
    assert p1.waiting == 2 and p1.top_p_malignant == pytest.approx(0.5) and p1.images == 2 and p1.lesions == 1
    assert p1.last_visit == date(2024, 7, 5)
    assert [q.sha256 for q in patient_queue(store, "P1")] == [sha("p1-new"), sha("p1-old")]


def test_lesion_timeline_is_in_visit_order_and_says_when_p_rose(store):
    ids = screened(store, ("v1", 0.20), ("v2", 0.45), ("v3", 0.44), ("other", 0.9))
    for name, d in (("v3", date(2025, 1, 2)), ("v1", date(2024, 1, 2)), ("v2", date(2024, 6, 2))):
        attach(store, sha(name), Identity("P1", "L1", "scalp", d))
    attach(store, sha("other"), Identity("P1", "L2", "chest", date(2025, 1, 2)))
    store.add_review(ids["v2"], "dr b", "monitor", follow_up_months=6)
    key = identity_of(store, sha("v1")).lesion_key
    t = lesion_timeline(store, key)
    assert [e.visit_date for e in t] == [date(2024, 1, 2), date(2024, 6, 2), date(2025, 1, 2)]
    assert [e.rose_from for e in t] == [None, pytest.approx(0.20), None]  # 0.45 -> 0.44 is no rise
    assert t[1].review.decision == "monitor" and t[1].decision is Decision.REVIEW
    lesions = patient_lesions(store, "P1")
    assert [(le.label, le.body_site, le.visits) for le in lesions] == [("L2", "chest", 1), ("L1", "scalp", 3)]
    assert lesions[1].latest_p_malignant == pytest.approx(0.44) and lesions[1].last_visit == date(2025, 1, 2)


def test_attach_results_reports_conflicts_as_issues(store, tmp_path):
    screened(store, ("a", 0.3), ("b", 0.3))
    attach(store, sha("a"), Identity("P1", "L1", None, date(2024, 1, 1)))
    intake = FolderIdentities(
        identities={
            path_key("/day/a.jpg"): Identity("P2", "L1", None, date(2024, 1, 1)),
            path_key("/day/b.jpg"): Identity("P2", "L1", None, date(2024, 1, 1)),
        }
    )
    issues = attach_results(store, [result("a", 0.3), result("b", 0.3)], intake)
    assert [i.file for i in issues] == ["/day/a.jpg"] and "already filed" in issues[0].message
    assert identity_of(store, sha("b")).patient_id == "P2"


def test_a_picture_that_is_not_dermoscopy_is_never_filed_under_the_patient(store, tmp_path):
    from dataclasses import replace

    from core.records.patients import PatientFiling

    (tmp_path / "photo.png").write_bytes(b"x")
    (tmp_path / "melascreen.csv").write_text("file,patient_id,lesion_id\nphoto.png,P1,L1\n")
    filing = PatientFiling(tmp_path, [tmp_path / "photo.png"])
    photo = replace(result("photo", 0.4), path=str(tmp_path / "photo.png"), intake="not_dermoscopy")
    run = store.start_run(str(tmp_path), "b", "1", KEY, {})
    store.add_result(run, photo, KEY)
    assert filing.file(store, photo) is None and identity_of(store, photo.sha256) is None
    assert "not filed under patient 'P1'" in str(filing.issues[-1])
    assert patient_lesions(store, "P1") == []
