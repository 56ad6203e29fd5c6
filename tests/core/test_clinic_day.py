"""The clinician's day (issue 24) from the command line and core: a sidecar with 5 patients and two visits,
40 pictures of 20 lesions, 3 pictures that are not dermoscopy and 2 broken files.

- the pictures that are not dermoscopy get their own outcome, never a class, probability or band in the CSV,
  and never enter the review queue;
- the CLI's CSV carries the patient columns and what made each row (bundle, signature, engine, confidence);
- a new confidence re-decides the stored run without any model run, in well under 5 s for 45 files;
- `review due` lists a lesion whose "monitor" interval has run out, not one whose interval has not.
"""

from __future__ import annotations

import csv
import shutil
import time
from datetime import date
from pathlib import Path

import pytest

from cli import main as cli
from core.decision.gate import GateSettings, Thresholds
from core.decision.vocabulary import CLASS_NAMES, NOT_DERMOSCOPY, outcome_label
from core.inference.bundle import load_bundle
from core.inference.ensemble import Ensemble
from core.records.followup import add_months, due_follow_ups
from core.records.patients import identities_of, lesion_timeline, queue_by_patient
from core.records.store import ReviewStore
from core.screening import GateChoice, RegateError, regate_run
from tests.support.clinic_day import make_clinic_day
from tests.support.intake_bundle import make_intake_bundle
from tests.support.synthetic_bundle import make_bundle

# The synthetic members give p(malignant) about 0.40-0.45: these gates decide differently at 0.99 and 0.95.
GATE = GateSettings(
    fitted={0.99: Thresholds(0.39, 0.47, 0.42, 0.43), 0.95: Thresholds(0.415, 0.465, 0.42, 0.43)},
    max_member_spread=0.5,
)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """(bundle path, clinic day, results file, CSV path, CLI output) after `melascreen screen --report`."""
    root = tmp_path_factory.mktemp("clinic")
    bundle = make_intake_bundle(root / "bundle", gate=GATE)
    day = make_clinic_day(root / "day")
    db, report = root / "results.sqlite", root / "run.csv"
    out = _cli(["screen", str(day.folder), "--bundle", str(bundle), "--db", str(db), "--report", str(report)])
    return bundle, day, db, report, out


def _cli(argv: list[str]) -> str:
    import contextlib
    import io

    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    assert code == 0, err.getvalue()
    return buf.getvalue() + err.getvalue()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_cli_csv_has_patients_provenance_and_no_class_words_for_pictures_that_are_not_dermoscopy(clinic):
    bundle, day, db, report, out = clinic
    assert "3 not dermoscopy images (check the file)" in out and "2 errors" in out
    assert "no cancer suspected below" in out  # the banner speaks the vocabulary of core/decision/vocabulary.py
    rows = _rows(report)
    files = {Path(r["path"]).name: r for r in rows if r["status"] != "intake"}
    assert len(files) == day.n_files == 45
    for name in day.not_dermoscopy:
        row = files[name]
        assert row["outcome"] == NOT_DERMOSCOPY.name and row["decision"] == "not_dermoscopy"
        assert row["patient_id"] == ""  # not a patient's picture
        for key, value in row.items():
            if key in ("path", "sha256", "ood_score", "intake", "bundle", "engine", "signature", "confidence"):
                continue
            assert not value or not any(c in value.lower() for c in (*CLASS_NAMES, *CLASS_NAMES.values())), key
            if key.startswith("p_") or key in ("band", "spread", "likely_class", "malignant_class", "details"):
                assert value == "", (key, value)
    lesion = files[day.lesion_files[0]]
    assert (lesion["patient_id"], lesion["lesion_id"], lesion["body_site"], lesion["visit_date"]) == (
        "P001",
        "L1",
        "back",
        "2026-06-02",
    )
    assert (lesion["age"], lesion["sex"]) == ("54", "F")
    m = load_bundle(bundle).manifest
    assert lesion["bundle"] == m.name and lesion["signature"].startswith("signed by key")
    assert lesion["confidence"] == "0.99" and lesion["engine"]
    for name in day.broken:
        assert files[name]["status"] == "error"


def test_pictures_that_are_not_dermoscopy_never_enter_the_review_queue(clinic):
    bundle, day, db, report, out = clinic
    with ReviewStore.open(db) as store:
        queue = store.queue()
        names = {Path(q.path).name for q in queue}
        assert not names & set(day.not_dermoscopy)
        assert len(queue) == len(day.lesion_files)  # every lesion picture waits for review at this gate
        ordered = queue_by_patient(queue, identities_of(store, [q.sha256 for q in queue]))
    ids = identities_of(ReviewStore.open(db), [q.sha256 for q in ordered])
    patients = [ids[q.sha256].patient_id for q in ordered]
    # grouped: each patient's cases together, and a lesion's two visits side by side, oldest first
    assert [p for i, p in enumerate(patients) if i == 0 or p != patients[i - 1]] == sorted(
        set(patients), key=patients.index
    )
    assert len(set(patients)) == 5
    for a, b in zip(ordered[::2], ordered[1::2]):
        assert ids[a.sha256].lesion_key == ids[b.sha256].lesion_key
        assert ids[a.sha256].visit_date < ids[b.sha256].visit_date


def test_a_new_confidence_re_decides_the_stored_run_in_seconds_without_running_a_model(clinic, monkeypatch):
    bundle_path, day, db, report, out = clinic
    calls = []
    monkeypatch.setattr(Ensemble, "run", lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    bundle = load_bundle(bundle_path)
    with ReviewStore.open(db) as store:
        run_id = store.runs()[0].id
        before = {Path(r.path).name: r for r in store.run_results(run_id, with_cam=False)}
        t = time.perf_counter()
        results, summary = regate_run(bundle, store, run_id, GateChoice(0.95), record=True)
        elapsed = time.perf_counter() - t
        new_run = store.get_run(summary.run_id)
        stored = {Path(r.path).name: r for r in store.run_results(summary.run_id, with_cam=False)}
        trial, _ = regate_run(bundle, store, run_id, GateChoice(0.95), record=False)
        n_runs = len(store.runs())
        ids = identities_of(store, [r.sha256 for r in results if r.sha256])
        timeline = lesion_timeline(store, ids[next(r.sha256 for r in results if r.sha256 in ids)].lesion_key)
    assert calls == [] and elapsed < 5.0, elapsed
    assert len(results) == 45 and new_run.settings["confidence"] == 0.95 and new_run.settings["regated_from"] == run_id
    changed = [n for n in stored if stored[n].ok and stored[n].decision != before[n].decision]
    assert changed, "the 0.95 gate decides some of these pictures differently"
    t95 = bundle.manifest.gate.thresholds(0.95)
    for r in stored.values():
        if r.ok and r.intake == "familiar":  # decided by the thresholds at 0.95, as a fresh screening would
            p = r.p_malignant
            expect = "benign" if p < t95.low else "suspicious" if p >= t95.high else "uncertain"
            assert r.decision.value == expect
    assert all(r.outcome_code == "not_dermoscopy" for n, r in stored.items() if n in day.not_dermoscopy)
    assert all(r.trial and r.confidence == 0.95 for r in trial if r.ok)
    assert n_runs == 2  # the trial stored nothing
    assert {e.confidence for e in timeline} == {0.95}  # the record says which confidence made the outcome


def test_regate_refuses_a_run_of_other_models(clinic, tmp_path):
    bundle_path, day, db, report, out = clinic
    other = load_bundle(make_bundle(tmp_path / "other", members=1, gate=GATE))
    with ReviewStore.open(db) as store, pytest.raises(RegateError, match="other models"):
        regate_run(other, store, store.runs()[-1].id, GateChoice(0.95))


def test_review_due_lists_a_lesion_whose_monitor_interval_ran_out_and_not_one_still_running(clinic, capsys):
    bundle, day, db, report, out = clinic
    with ReviewStore.open(db) as store:
        queue = store.queue()
        ids = identities_of(store, [q.sha256 for q in queue])
        second = [q for q in queue if ids[q.sha256].visit_date == date(2026, 12, 1)]
        due_case, later_case = second[0], second[1]
        store.add_review(due_case.result_id, "dr a", "monitor", follow_up_months=1)
        store.add_review(later_case.result_id, "dr a", "monitor", follow_up_months=12)
        items = due_follow_ups(store, before=date(2027, 1, 15), today=date(2027, 1, 10))
    assert [(f.patient_id, f.lesion_label) for f in items] == [
        (ids[due_case.sha256].patient_id, ids[due_case.sha256].lesion_label)
    ]
    f = items[0]
    assert f.due == add_months(date(2026, 12, 1), 1) == date(2027, 1, 1) and f.overdue(date(2027, 1, 10))
    assert f.last_visit == date(2026, 12, 1) and f.body_site == ids[due_case.sha256].body_site
    text = _cli(["review", "due", "--db", str(db), "--before", "2027-01-15", "--csv", str(report.with_name("d.csv"))])
    assert f"{ids[due_case.sha256].patient_id} lesion {ids[due_case.sha256].lesion_label}" in text
    assert (
        f"lesion {ids[later_case.sha256].lesion_label} (" not in text or ids[later_case.sha256].patient_id not in text
    )
    assert len(_rows(report.with_name("d.csv"))) == 1
    assert "no lesion is due" in _cli(["review", "due", "--db", str(db), "--before", "2026-12-20"])


def test_outcome_words_say_unfamiliar_first_and_never_name_a_class_for_a_picture_that_is_not_dermoscopy():
    assert outcome_label("uncertain", "mel", "high", "not_dermoscopy") == NOT_DERMOSCOPY.name
    assert outcome_label("uncertain", "mel", "high", "unfamiliar").startswith("unfamiliar picture, review (high risk)")
    assert outcome_label("suspicious", "bcc", None, "familiar") == "suspicious for basal cell carcinoma"


def test_the_record_shows_the_outcome_of_the_latest_run_and_its_confidence(clinic, tmp_path):
    """A run at 0.95, then the clinic's standard 0.99 again: the patient views show the 0.99 outcome."""
    bundle_path, day, db, report, out = clinic
    bundle = load_bundle(bundle_path)
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(db, copy)  # closed by every test before: the file is whole
    with ReviewStore.open(copy) as store:
        first = store.runs()[-1].id
        _, at95 = regate_run(bundle, store, first, GateChoice(0.95))
        _, at99 = regate_run(bundle, store, at95.run_id, GateChoice(0.99))
        entries = store.queue(include_reviewed=True)
        ids = identities_of(store, [q.sha256 for q in entries])
        lesion = ids[entries[0].sha256].lesion_key
        timeline = lesion_timeline(store, lesion)
        by_sha = {r.sha256: r for r in store.run_results(at99.run_id, with_cam=False)}
    assert {e.confidence for e in timeline} == {0.99}
    assert all(e.decision == by_sha[e.sha256].decision for e in timeline)
