"""The results store: runs, dedupe by image hash, review queue, append-only reviews, crash safety."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.common.errors import StoreError
from core.decision.results import Decision, QualityReport, ScreeningResult
from core.records.store import (
    APPLICATION_ID,
    CAM_MAX_SIDE,
    MIGRATIONS,
    REVIEW_DECISIONS,
    SCHEMA_VERSION,
    ReviewStore,
    decode_cam,
    encode_cam,
    local_time,
    migrate,
)

REPO = Path(__file__).resolve().parents[2]
FP = "fp-models-A"
FP_B = "fp-models-B"


def make_result(i: int, decision: Decision = Decision.NO_CANCER_SUSPECTED, folder: str = "/scans/a", cam: bool = True):
    """A plausible good result for synthetic image number i (its 'bytes' are b'image-i')."""
    p = {Decision.NO_CANCER_SUSPECTED: 0.05, Decision.REVIEW: 0.4, Decision.SUSPICIOUS: 0.93}[decision] + i * 1e-4
    yy, xx = np.mgrid[0:288, 0:384].astype(np.float32)
    heat = np.exp(-(((xx - 100 - i) / 60) ** 2 + ((yy - 150) / 40) ** 2)).astype(np.float32)
    return ScreeningResult(
        path=f"{folder}/img_{i:03d}.jpg",
        sha256=hashlib.sha256(f"image-{i}".encode()).hexdigest(),
        status="ok",
        decision=decision,
        reason=f"p={p:.3f}",
        p_melanoma=p,
        member_p=(p - 0.01, p + 0.01),
        spread=0.01,
        class_probs={"mel": p, "nv": 1 - p},
        quality=QualityReport(sharpness=120.5, brightness=140.0, dark_fraction=0.01, bright_fraction=0.0, flags=()),
        width=384,
        height=288,
        cam=heat if cam else None,
        p_malignant=p,
        likely_class="mel" if p > 0.5 else "nv",
        malignant_class="mel",
        band="moderate" if decision is Decision.REVIEW else None,
        details=f"p(malignant)={p:.3f}",
    )


def error_result(path: str, reason: str = "not an image"):
    return ScreeningResult(path=path, sha256=None, status="error", reason=reason)


def decision_for(i: int) -> Decision:
    return (Decision.NO_CANCER_SUSPECTED, Decision.REVIEW, Decision.SUSPICIOUS)[i % 3]


@pytest.fixture
def store(tmp_path):
    with ReviewStore.open(tmp_path / "sub" / "dir" / "results.sqlite") as s:
        yield s


def new_run(store, folder="/scans/a", fp=FP):
    return store.start_run(folder, "demo", "1.0", fp, {"tta": True, "threshold": 0.99})


# -- opening, pragmas, schema -----------------------------------------------------------------


def test_open_creates_file_and_folders_in_wal_mode(tmp_path):
    path = tmp_path / "a" / "b" / "results.sqlite"
    with ReviewStore.open(path) as s:
        assert path.is_file()
        assert s.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
        assert s.integrity_check() == "ok"
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert s._conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert s._conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_empty_v0_file_is_migrated_and_data_survives_reopen(tmp_path):
    path = tmp_path / "old.sqlite"
    path.write_bytes(b"")  # an empty file is a SQLite database at user_version 0
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION
        run = new_run(s)
        s.add_result(run, make_result(1, Decision.REVIEW), FP)
    with ReviewStore.open(path) as s:  # reopening an up-to-date file migrates nothing
        assert s.schema_version == SCHEMA_VERSION
        assert len(s.run_results(run)) == 1 and len(s.queue()) == 1


def test_migrations_apply_in_order_from_an_older_version(tmp_path):
    """A current file with data, run through a (test-only) next step: data kept, version bumped."""
    path = tmp_path / "v1.sqlite"
    with ReviewStore.open(path) as s:
        run = new_run(s)
        rid = s.add_result(run, make_result(7, Decision.SUSPICIOUS), FP)
        s.add_review(rid, "dr a", "refer")
    conn = sqlite3.connect(path, isolation_level=None)
    v2 = "ALTER TABLE reviews ADD COLUMN site TEXT;"
    n = len(MIGRATIONS)
    assert migrate(conn, MIGRATIONS + (v2,), str(path)) == n + 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == n + 1
    assert conn.execute("SELECT reviewer, decision, site FROM reviews").fetchall() == [("dr a", "refer", None)]
    # A step that fails leaves the file at the version before it.
    with pytest.raises(StoreError, match=f"schema version {n + 2}"):
        migrate(conn, MIGRATIONS + (v2, "CREATE TABLE broken (;"), str(path))
    assert conn.execute("PRAGMA user_version").fetchone()[0] == n + 1
    conn.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.sqlite"
    ReviewStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer MelaScreen"):
        ReviewStore.open(path)


def test_bad_files_raise_store_error(tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_bytes(b"this is a text file, not a database\n" * 200)
    with pytest.raises(StoreError, match="not a MelaScreen results file"):
        ReviewStore.open(junk)

    with pytest.raises(StoreError, match="is a folder"):
        ReviewStore.open(tmp_path)

    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the results file or its folder"):
        ReviewStore.open(blocker / "results.sqlite")

    other = tmp_path / "other_app.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="another program"):
        ReviewStore.open(other)
    assert sqlite3.connect(other).execute("PRAGMA user_version").fetchone()[0] == 0  # left untouched


# -- runs and results ---------------------------------------------------------------------------


def test_runs_record_settings_status_and_counts(store):
    run = new_run(store)
    info = store.get_run(run)
    assert info.status == "running" and info.finished is None and info.settings["tta"] is True
    assert info.started.endswith("+00:00")
    for i in range(6):
        store.add_result(run, make_result(i, decision_for(i)), FP)
    store.add_result(run, error_result("/scans/a/broken.jpg"), FP)
    store.finish_run(run, "finished", {"seconds": 12.5})

    (info,) = store.runs()
    assert info.id == run and info.status == "finished" and info.finished >= info.started
    assert info.summary == {"seconds": 12.5}
    c = info.counts
    assert (c.total, c.ok, c.error, c.benign, c.uncertain, c.suspicious, c.reused) == (7, 6, 1, 2, 2, 2, 0)

    with pytest.raises(ValueError, match="finished, cancelled, failed"):
        store.finish_run(run, "done")
    with pytest.raises(ValueError, match="no run with id 999"):
        store.finish_run(999)
    with pytest.raises(ValueError, match="no run with id 999"):
        store.add_result(999, make_result(1), FP)


def test_run_results_round_trip_in_order_with_errors(store):
    run = new_run(store)
    added = [make_result(5, Decision.SUSPICIOUS), error_result("/scans/a/x.txt", "not an image"), make_result(2)]
    ids = [store.add_result(run, r, FP) for r in added]
    assert len(set(ids)) == 3

    back = store.run_results(run)
    assert [r.path for r in back] == [r.path for r in added]
    good, err, good2 = back
    assert good == added[0]  # every compared field survives (cam is compared separately below)
    assert good.quality == added[0].quality and isinstance(good.quality.flags, tuple)
    assert not good.from_store  # this run screened it
    assert err.status == "error" and err.sha256 is None and err.reason == "not an image" and err.cam is None
    assert good2.decision is Decision.NO_CANCER_SUSPECTED

    entries = store.run_entries(run, with_cam=False)
    assert [e.result_id for e in entries] == ids and [e.position for e in entries] == [1, 2, 3]
    assert entries[0].result.cam is None  # skipped on request, for fast tables
    assert store.get_result(ids[0]).p_melanoma == pytest.approx(added[0].p_melanoma)


def test_same_image_reused_across_runs_and_not_queued_twice(store):
    run1 = new_run(store, "/scans/a")
    first = make_result(3, Decision.REVIEW, folder="/scans/a")
    rid = store.add_result(run1, first, FP)
    assert store.find_result(first.sha256, FP).from_store
    assert store.result_id_for(first.sha256, FP) == rid
    assert store.find_result(first.sha256, FP_B) is None  # other models: screen again

    # The same bytes, copied to another folder, screened again with the same models.
    run2 = new_run(store, "/scans/b")
    again = make_result(3, Decision.REVIEW, folder="/scans/b")
    assert store.add_result(run2, again, FP) == rid
    assert store._conn.execute("SELECT count(*) FROM results").fetchone()[0] == 1
    assert len(store.queue()) == 1

    (r2,) = store.run_results(run2)
    assert r2.path == "/scans/b/img_003.jpg" and r2.from_store
    assert store.get_run(run2).counts.reused == 1
    assert store.latest_run_for_folder("/scans/b", FP).id == run2
    assert store.latest_run_for_folder("/scans/b", FP_B) is None

    # A different model set gets its own row; the queue still lists the image once, with its newer result.
    run3 = new_run(store, "/scans/a", FP_B)
    newer = store.add_result(run3, first, FP_B)
    assert newer != rid
    assert [item.result_id for item in store.queue()] == [newer]


def test_add_result_twice_for_same_run_and_path_changes_nothing(store):
    run = new_run(store)
    res = make_result(1, Decision.SUSPICIOUS)
    assert store.add_result(run, res, FP) == store.add_result(run, res, FP)
    err = error_result("/scans/a/bad.jpg")
    assert store.add_result(run, err, FP) == store.add_result(run, err, FP)
    counts = [
        store._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("results", "run_items", "review_queue")
    ]
    assert counts == [2, 2, 1]


def test_retried_file_replaces_its_error_in_the_same_run(store):
    run = new_run(store)
    store.add_result(run, error_result("/scans/a/img_004.jpg", "file is locked"), FP)
    store.add_result(run, make_result(9), FP)
    rid = store.add_result(run, make_result(4, Decision.SUSPICIOUS), FP)
    back = store.run_entries(run)
    assert [(e.position, e.result.status) for e in back] == [(1, "ok"), (2, "ok")]
    assert back[0].result_id == rid
    assert store._conn.execute("SELECT count(*) FROM results WHERE status = 'error'").fetchone()[0] == 0


def test_error_results_are_kept_per_run(store):
    run1, run2 = new_run(store), new_run(store)
    e1 = store.add_result(run1, error_result("/scans/a/bad.jpg"), FP)
    e2 = store.add_result(run2, error_result("/scans/a/bad.jpg"), FP)
    assert e1 != e2
    assert store.queue() == []


def test_bad_results_are_refused(store):
    run = new_run(store)
    with pytest.raises(ValueError, match="sha256"):
        no_hash = ScreeningResult(path="/x.jpg", sha256=None, status="ok", decision=Decision.NO_CANCER_SUSPECTED)
        store.add_result(run, no_hash, FP)
    with pytest.raises(ValueError, match="status"):
        store.add_result(run, ScreeningResult(path="/x.jpg", sha256="ab", status="maybe"), FP)


def test_add_result_is_one_transaction(store):
    """If queueing fails, the result row and the run link are rolled back with it."""
    run = new_run(store)
    store._conn.execute(
        "CREATE TEMP TRIGGER fail_queue BEFORE INSERT ON review_queue BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    with pytest.raises(StoreError, match="undone"):
        store.add_result(run, make_result(1, Decision.SUSPICIOUS), FP)
    assert store.run_results(run) == []
    assert store._conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0
    store._conn.execute("DROP TRIGGER fail_queue")
    store.add_result(run, make_result(1, Decision.SUSPICIOUS), FP)
    assert len(store.run_results(run)) == 1 and len(store.queue()) == 1


# -- heat maps and thumbnails --------------------------------------------------------------------


def test_cam_round_trip_is_small_and_close(store):
    run = new_run(store)
    res = make_result(0, Decision.SUSPICIOUS)
    rid = store.add_result(run, res, FP)
    cam = store.get_result(rid).cam
    assert cam.dtype == np.float32 and cam.shape == (96, 128)  # 288x384 scaled to longest side 128
    assert 0.0 <= cam.min() and cam.max() <= 1.0
    expected = cv2.resize(res.cam, (128, 96), interpolation=cv2.INTER_AREA)
    assert np.abs(cam - expected).max() <= 1 / 255 + 1e-6
    # The peak stays where it was (x ~ 100/384 of the width, y ~ 150/288 of the height).
    y, x = np.unravel_index(np.argmax(cam), cam.shape)
    assert abs(x - 100 / 3) <= 2 and abs(y - 150 / 3) <= 2
    blob = store._conn.execute("SELECT length(cam_png) FROM results WHERE id = ?", (rid,)).fetchone()[0]
    assert blob < 16_000

    # Small maps are kept at their size; out-of-range values are clipped.
    small = decode_cam(encode_cam(np.array([[-0.5, 0.25], [0.5, 2.0]], np.float32)))
    assert small.shape == (2, 2)
    np.testing.assert_allclose(small, [[0.0, 64 / 255], [128 / 255, 1.0]], atol=1e-6)
    tall = decode_cam(encode_cam(np.zeros((1000, 10), np.float32)))
    assert max(tall.shape) == CAM_MAX_SIDE and tall.shape[1] >= 1

    rid2 = store.add_result(run, make_result(1, cam=False), FP)
    assert store.get_result(rid2).cam is None


def test_thumbnails_are_stored_and_returned(store):
    run = new_run(store)
    image = np.zeros((288, 384, 3), np.uint8)
    image[:, :, 2] = 200  # red in BGR
    jpeg = cv2.imencode(".jpg", cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA))[1].tobytes()
    rid = store.add_result(run, make_result(0), FP, thumbnail=jpeg)
    back = store.thumbnail(rid)
    assert back == jpeg
    decoded = cv2.imdecode(np.frombuffer(back, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (120, 160, 3) and decoded[60, 80, 2] > 180
    assert store.thumbnail(store.add_result(run, make_result(1), FP)) is None
    assert store.thumbnail(12345) is None


# -- review queue and reviews -------------------------------------------------------------------


def test_queue_holds_exactly_uncertain_and_suspicious_highest_risk_first(store):
    run = new_run(store)
    ids = {}
    for i in range(9):
        ids[i] = store.add_result(run, make_result(i, decision_for(i)), FP)
    store.add_result(run, error_result("/scans/a/bad.png"), FP)
    q = store.queue()
    in_queue = [i for i in range(9) if decision_for(i) is not Decision.NO_CANCER_SUSPECTED]
    # p(malignant) highest first: the suspicious ones (0.93 + i/1e4), then the uncertain (0.4 + i/1e4)
    expected = [ids[i] for i in sorted(in_queue, key=lambda i: -make_result(i, decision_for(i)).p_malignant)]
    assert [item.result_id for item in q] == expected
    assert {item.decision for item in q} == {Decision.REVIEW, Decision.SUSPICIOUS}
    assert q[0].path == "/scans/a/img_008.jpg" and q[0].p_malignant == pytest.approx(0.9308)
    assert q[-1].band == "moderate" and q[-1].likely_class == "nv" and q[0].malignant_class == "mel"
    assert [x.p_malignant for x in q] == sorted((x.p_malignant for x in q), reverse=True)
    assert all(item.last_review is None for item in q)

    review = store.add_review(q[0].result_id, "dr a", "no_action", "regular network")
    q2 = store.queue()
    assert [x.result_id for x in q2] == expected[1:]
    full = store.queue(include_reviewed=True)
    assert [x.result_id for x in full] == expected
    assert full[0].last_review == review


def test_reviews_validate_and_keep_history_in_order(store):
    run = new_run(store)
    rid = store.add_result(run, make_result(0, Decision.SUSPICIOUS), FP)
    with pytest.raises(ValueError, match="reviewer"):
        store.add_review(rid, "   ", "refer")
    with pytest.raises(ValueError, match="no_action, monitor, excise, refer, retake"):
        store.add_review(rid, "dr a", "malignant")
    with pytest.raises(ValueError, match="no_action, monitor, excise, refer, retake"):
        store.add_review(rid, "dr a", "biopsy")  # an old code: readable in old files, not written any more
    with pytest.raises(ValueError, match="no screening result"):
        store.add_review(999, "dr a", "refer")
    with pytest.raises(ValueError, match="months"):
        store.add_review(rid, "dr a", "monitor", follow_up_months=0)
    with pytest.raises(ValueError, match="only a 'monitor'"):
        store.add_review(rid, "dr a", "excise", follow_up_months=6)

    made = [
        store.add_review(rid, who, d, note, months)
        for who, d, note, months in [
            ("dr a", "refer", "asymmetric", None),
            ("dr b", "excise", "", None),
            ("dr a", "retake", "blurred", None),
            ("dr c", "monitor", "", 3),
            ("dr c", "monitor", "", None),
        ]
    ]
    hist = store.history(rid)
    assert hist == made
    assert [r.decision for r in hist] == ["refer", "excise", "retake", "monitor", "monitor"]
    assert [r.follow_up_months for r in hist] == [None, None, None, 3, 6]  # 6: the default interval
    assert hist[3].words == "monitor (follow up in 3 months)" and hist[1].words == "excise / biopsy"
    assert all(r.created.endswith("+00:00") for r in hist)
    assert [r.created for r in hist] == sorted(r.created for r in hist)
    assert store.queue(include_reviewed=True)[0].last_review == made[-1]
    assert REVIEW_DECISIONS == ("no_action", "monitor", "excise", "refer", "retake")
    assert local_time(hist[0].created)[-6] in "+-" and local_time(None) == ""


def test_reviews_are_append_only_in_the_database(store):
    run = new_run(store)
    rid = store.add_result(run, make_result(0, Decision.REVIEW), FP)
    store.add_review(rid, "dr a", "refer", "first look")
    # Even raw SQL, bypassing the API, cannot rewrite or remove a review.
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._conn.execute("UPDATE reviews SET decision = 'benign'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._conn.execute("DELETE FROM reviews")
    # Nor can the reviewed result vanish from under its review.
    with pytest.raises(sqlite3.IntegrityError):
        store._conn.execute("DELETE FROM results WHERE id = ?", (rid,))
    (only,) = store.history(rid)
    assert (only.decision, only.note) == ("refer", "first look")


# -- threads and crashes ------------------------------------------------------------------------


def test_one_store_shared_by_a_worker_and_a_reader_thread(store):
    run = new_run(store)
    errors = []

    def worker():
        try:
            for i in range(40):
                store.add_result(run, make_result(i, decision_for(i), cam=False), FP)
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    while t.is_alive():
        store.queue()
        store.runs()
    t.join()
    assert errors == []
    assert len(store.run_results(run)) == 40


CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {tests!r})
from test_store import make_result, decision_for, FP
from core.records.store import ReviewStore
store = ReviewStore.open({db!r})
for i in range({n}):
    store.add_result({run}, make_result(i, decision_for(i)), FP)
    print(i, flush=True)
    time.sleep({pause})
"""


# With a pause the kill lands between results; without one it usually lands inside a write.
@pytest.mark.parametrize("n, k, pause", [(40, 5, 0.2), (1000, 25, 0.0)])
def test_kill_9_mid_batch_loses_nothing_committed_and_resume_adds_no_duplicates(tmp_path, n, k, pause):
    db = tmp_path / "results.sqlite"
    with ReviewStore.open(db) as s:
        run = new_run(s)
    code = CHILD.format(repo=str(REPO), tests=str(Path(__file__).parent), db=str(db), n=n, run=run, pause=pause)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(k):
            line = child.stdout.readline()
            assert line, child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    with ReviewStore.open(db) as s:
        assert s.integrity_check() == "ok"
        done = s.run_results(run)
        m = len(done)
        assert k <= m < n, m  # the k reported (maybe one more), never the whole batch
        assert [r.path for r in done] == [make_result(i).path for i in range(m)]
        assert s.get_run(run).status == "running"  # the kill left it unfinished: resumable

        # Resume: add the whole batch again, to the same run and to a fresh one.
        for i in range(n):
            s.add_result(run, make_result(i, decision_for(i)), FP)
        run2 = new_run(s)
        for i in range(n):
            s.add_result(run2, make_result(i, decision_for(i)), FP)
        s.finish_run(run, "finished")

        expected_queue = sum(decision_for(i) is not Decision.NO_CANCER_SUSPECTED for i in range(n))
        assert len(s.run_results(run)) == n and len(s.run_results(run2)) == n
        assert [r.path for r in s.run_results(run)] == [make_result(i).path for i in range(n)]
        assert s._conn.execute("SELECT count(*) FROM results").fetchone()[0] == n
        assert len(s.queue()) == expected_queue
        assert len({q.sha256 for q in s.queue()}) == expected_queue
        assert s.get_run(run2).counts.reused == n
        assert s.integrity_check() == "ok"


# -- schema 2: malignancy triage, reviews that follow the image -----------------------------------


def _write_version_1_file(path: Path) -> None:
    """A results file as MelaScreen wrote it before schema 2: version-1 SQL, one run, three results
    (one an error), reviews with the old codes."""
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:1], str(path))
    ex = conn.execute
    ex(
        "INSERT INTO runs (folder, bundle_name, bundle_version, bundle_fingerprint, settings_json, started, status)"
        " VALUES ('/scans/old', 'demo', '1.0', 'old-fp', '{}', '2026-11-20T10:00:00.000+00:00', 'finished')"
    )
    rows = [
        (
            "a" * 64,
            "ok",
            "uncertain",
            "p(melanoma)=0.300 between 0.027 and 0.878",
            0.3,
            '{"akiec": 0.05, "bcc": 0.4, "mel": 0.3, "nv": 0.25}',
        ),
        ("b" * 64, "ok", "benign", "p(melanoma)=0.010 < 0.027", 0.01, '{"mel": 0.01, "nv": 0.99}'),
        (None, "error", None, "not an image", None, "{}"),
    ]
    for i, (sha, status, decision, reason, p, probs) in enumerate(rows):
        ex(
            "INSERT INTO results (sha256, bundle_fingerprint, first_run_id, path, status, decision, reason, p_melanoma,"
            " class_probs_json, created) VALUES (?, 'old-fp', 1, ?, ?, ?, ?, ?, ?, '2026-11-20T10:00:01.000+00:00')",
            (sha, f"/scans/old/{i}.jpg", status, decision, reason, p, probs),
        )
        ex(
            "INSERT INTO run_items (run_id, path, result_id, position, added) VALUES (1, ?, ?, ?, 't')",
            (f"/scans/old/{i}.jpg", i + 1, i + 1),
        )
    ex("INSERT INTO review_queue (result_id, queued_at) VALUES (1, '2026-11-20T10:00:01.000+00:00')")
    for code in ("biopsy", "unclear_image", "benign", "refer"):
        ex(
            "INSERT INTO reviews (result_id, reviewer, decision, note, created)"
            " VALUES (1, 'dr old', ?, 'n', '2026-11-20T11:00:00.000+00:00')",
            (code,),
        )
    conn.close()


def test_a_version_1_file_opens_with_every_result_and_review(tmp_path):
    path = tmp_path / "v1.sqlite"
    _write_version_1_file(path)
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION and s.integrity_check() == "ok"
        (run,) = s.runs()
        assert run.result_key == "old-fp" and run.counts.total == 3 and run.counts.uncertain == 1
        results = s.run_results(1)
        assert [r.status for r in results] == ["ok", "ok", "error"]
        first, second = results[0], results[1]
        # p(malignant) of an old row: its stored malignant classes (akiec + bcc + mel)
        assert first.p_malignant == pytest.approx(0.75) and first.likely_class == "bcc"
        assert first.malignant_class == "bcc" and first.band is None
        assert second.p_malignant == pytest.approx(0.01) and second.likely_class == "nv"
        assert first.details == "p(melanoma)=0.300 between 0.027 and 0.878"
        hist = s.history(1)
        assert [r.id for r in hist] == [1, 2, 3, 4]
        assert [r.decision for r in hist] == ["biopsy", "unclear_image", "benign", "refer"]
        assert [r.words for r in hist] == [
            "excise / biopsy",
            "image unusable (retake)",
            "no action (benign)",
            "refer to a specialist",
        ]
        assert s.queue(include_reviewed=True)[0].last_review == hist[-1]
        # Still append-only after the table was rebuilt.
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            s._conn.execute("DELETE FROM reviews")
        # The old key still finds the old result: the column was renamed, not emptied.
        assert s.find_result("a" * 64, "old-fp").p_melanoma == pytest.approx(0.3)
        s.add_review(1, "dr new", "monitor", follow_up_months=12)
        assert s.history(1)[-1].follow_up_months == 12


def test_rescreening_a_reviewed_image_with_another_gate_keeps_its_review_and_does_not_requeue(store):
    run = new_run(store)
    first = store.add_result(run, make_result(3, Decision.REVIEW), FP)
    review = store.add_review(first, "dr a", "monitor", "flat, regular", 6)
    # The same image screened again with another confidence (another result key): a new result ...
    run2 = new_run(store, fp=FP_B)
    second = store.add_result(run2, make_result(3, Decision.SUSPICIOUS), FP_B)
    assert second != first
    # ... that is not queued as new, and whose history shows the earlier review.
    assert store.queue() == []
    assert store.history(second) == [review]
    assert store.queue(include_reviewed=True)[0].last_review == review
    assert store.latest_reviews([make_result(3).sha256, "unknown"]) == {make_result(3).sha256: review}
    # A review of the new result is part of the same history, for both results.
    later = store.add_review(second, "dr b", "excise")
    assert store.history(first) == [review, later] == store.image_history(make_result(3).sha256)


# -- schema 4: the intake check -------------------------------------------------------------------


def test_a_version_3_file_gains_the_intake_columns_and_old_rows_stay_unchecked(tmp_path):
    path = tmp_path / "v3.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, MIGRATIONS[:3], str(path)) == 3
    conn.execute(
        "INSERT INTO runs (folder, bundle_name, bundle_version, result_key, settings_json, started, status)"
        " VALUES ('/scans/old', 'demo', '1.0', 'old-key', '{}', '2026-11-28T10:00:00.000+00:00', 'finished')"
    )
    conn.execute(
        "INSERT INTO results (sha256, result_key, first_run_id, path, status, decision, reason, p_melanoma,"
        " p_malignant, created) VALUES (?, 'old-key', 1, '/scans/old/a.jpg', 'ok', 'benign', 'clear', 0.01,"
        " 0.02, '2026-11-28T10:00:01.000+00:00')",
        ("c" * 64,),
    )
    conn.execute(
        "INSERT INTO run_items (run_id, path, result_id, position, added) VALUES (1, '/scans/old/a.jpg', 1, 1, 't')"
    )
    conn.close()
    with ReviewStore.open(path) as s:
        assert s.schema_version == SCHEMA_VERSION >= 4 and s.integrity_check() == "ok"
        old = s.find_result("c" * 64, "old-key")
        assert old.ood_score is None and old.intake is None  # never checked: not shown as familiar
        assert old.decision is Decision.NO_CANCER_SUSPECTED and old.p_malignant == pytest.approx(0.02)
        run = new_run(s, fp="new-key")
        flagged = replace(make_result(1, Decision.REVIEW), ood_score=41.5, intake="not_dermoscopy")
        rid = s.add_result(run, flagged, "new-key")
        back = s.get_result(rid)
        assert back.ood_score == pytest.approx(41.5) and back.intake == "not_dermoscopy"
        # A broken score (inf) is kept as it is, not turned into a number that looks familiar.
        rid = s.add_result(
            run, replace(make_result(2, Decision.REVIEW), ood_score=float("inf"), intake="unfamiliar"), "new-key"
        )
        assert s.get_result(rid).ood_score == float("inf")
        with pytest.raises(StoreError, match="CHECK"):
            s.add_result(run, replace(make_result(3), intake="maybe"), "new-key")


# -- store faults said right (issue 26) --------------------------------------------------------------


def fill_and_damage(path: Path) -> bytes:
    """A store with a few pages of runs and results, then 4 KiB of random bytes over a page in the middle of
    the file (as the red team did); returns the damaged file's bytes."""
    with ReviewStore.open(path) as s:
        run = new_run(s)
        for i in range(40):
            s.add_result(run, make_result(i, decision_for(i), cam=False), FP)
    data = bytearray(path.read_bytes())
    middle = (len(data) // 2) // 4096 * 4096
    data[middle : middle + 4096] = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_damaged_file_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "r.sqlite"
    damaged = fill_and_damage(path)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="damaged") as info:
            ReviewStore.open(path, read_only=read_only)
        assert str(path) in str(info.value)
        assert path.read_bytes() == damaged  # not a byte written: no run, no WAL switch, no upgrade
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0


def test_a_read_only_store_lists_everything_and_refuses_writes_with_the_reason(tmp_path):
    path = tmp_path / "r.sqlite"
    with ReviewStore.open(path) as s:
        run = new_run(s)
        s.add_result(run, make_result(1, Decision.SUSPICIOUS), FP)
    before = path.read_bytes()
    with ReviewStore.open_for_reading(path) as s:
        assert s.read_only and len(s.runs()) == 1 and len(s.queue()) == 1
        with pytest.raises(StoreError, match="opened for reading only; nothing was written"):
            s.start_run("/x", "b", "1", FP, {})
    assert path.read_bytes() == before
    with pytest.raises(StoreError, match="no results file here"):
        ReviewStore.open_for_reading(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_read_only_open_of_an_older_file_upgrades_it_when_it_may(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    migrate(conn, MIGRATIONS[:3], str(path))
    conn.close()
    with ReviewStore.open_for_reading(path) as s:
        assert s.schema_version == SCHEMA_VERSION and s.runs() == []


def test_a_full_disk_is_called_a_full_disk_and_a_read_only_file_read_only(tmp_path):
    path = tmp_path / "r.sqlite"
    with ReviewStore.open(path) as s:
        run = new_run(s)
        pages = s._conn.execute("PRAGMA page_count").fetchone()[0]
        s._conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full"
        with pytest.raises(StoreError, match="the disk is full") as info:
            for i in range(50):
                s.add_result(run, make_result(i), FP)
        assert "undone" in str(info.value) and "read-only" not in str(info.value)
    from core.records.store.connection import _sqlite_cause

    ro = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as raised:
        ro.execute("INSERT INTO runs (folder) VALUES ('x')")
    ro.close()
    words = _sqlite_cause(raised.value)
    assert "read-only" in words and "disk" not in words and "full" not in words


def test_the_named_class_map_is_kept_with_its_class_and_older_rows_keep_melanomas(tmp_path):
    """Schema 6: the map of the class the outcome names, with that class; the positive class's is not stored
    twice; a row from a version 5 file has none (only melanoma's map, and the reader knows it)."""
    path = tmp_path / "r.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:5], str(path))
    conn.close()
    old = make_result(1, Decision.REVIEW)
    with ReviewStore.open(path) as s:  # upgraded to the current schema on open
        assert s.schema_version == SCHEMA_VERSION >= 6
        run = new_run(s)
        old_id = s.add_result(run, old, FP)
        s._conn.execute("UPDATE results SET named_cam_class = NULL, named_cam_png = NULL WHERE id = ?", (old_id,))
        bcc_map = np.tile(np.linspace(0, 1, 384, dtype=np.float32), (288, 1))
        bcc = replace(make_result(2, Decision.REVIEW), likely_class="bcc", named_cam=bcc_map, named_cam_class="bcc")
        mel = make_result(3, Decision.SUSPICIOUS)
        mel = replace(mel, named_cam=mel.cam, named_cam_class="mel")
        ids = [s.add_result(run, r, FP) for r in (bcc, mel)]
        got_old, got_bcc, got_mel = (s.get_result(i) for i in (old_id, *ids))
        assert got_old.named_cam is None and got_old.heat_map("mel") == (got_old.cam, "mel")
        assert got_bcc.named_cam_class == "bcc" and got_bcc.named_cam.shape == got_bcc.cam.shape
        assert max(got_bcc.named_cam.shape) <= CAM_MAX_SIDE  # the same size limit as the melanoma map
        assert np.abs(got_bcc.named_cam - cv2.resize(bcc_map, got_bcc.cam.shape[::-1], cv2.INTER_AREA)).max() < 0.01
        assert got_mel.heat_map("mel") == (got_mel.cam, "mel") and got_mel.named_cam is got_mel.cam
        rows = dict(s._conn.execute("SELECT id, named_cam_png IS NULL FROM results").fetchall())
        assert rows[ids[1]] == 1 and rows[ids[0]] == 0  # melanoma's map stored once
        no_maps = s.run_results(run, with_cam=False)
        assert all(r.cam is None and r.named_cam is None for r in no_maps)


# -- the store's public queries (issue 27: no caller reaches into its connection) ---------------------------


def test_run_labels_and_good_results_of_images_answer_without_sql_from_the_caller(store):
    first = new_run(store)
    second = store.start_run("/scans/b", "demo", "2.0", FP_B, {"confidence": 0.97})
    good = make_result(1, Decision.REVIEW)
    ids = [store.add_result(first, good, FP), store.add_result(second, good, FP_B)]
    store.add_result(second, error_result("/scans/b/broken.jpg"), FP_B)
    assert store.run_labels() == [
        (FP, "demo", "1.0", {"tta": True, "threshold": 0.99}),
        (FP_B, "demo", "2.0", {"confidence": 0.97}),
    ]  # oldest first
    found = store.good_results_of_images([good.sha256, "0" * 64])
    assert [(rid, key) for rid, key, _ in found] == list(zip(ids, (FP, FP_B)))  # errors and unknown images left out
    assert store.first_run_of(ids[1]) == second and store.first_run_of(10_000) is None


def test_only_the_store_s_own_modules_use_its_private_read_and_write():
    found = set()
    for package in ("core", "cli", "desktop", "evalkit", "training", "export", "benchmarks", "scripts"):
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith("core/records/store/"):
                continue
            text = path.read_text(encoding="utf-8")
            if "._read(" in text or "._write(" in text or "._read_chunked(" in text:
                found.add(rel)
    assert found == set(), "use (or add) a public query of ReviewStore instead"
