"""The results store: runs, screening results, the review queue and reviews in one SQLite file.

- An image is identified by the SHA-256 of its bytes. A result is kept once per
  (sha256, result key = models + gate settings, `Screener.result_key`): screening the same image
  again with the same models and gate reuses the
  stored row and never queues it twice. Error results ("error": unreadable, not an image) are
  kept per run and per path, because a later run may well succeed.
- One transaction per result (result row, run link, queue entry), WAL journal and
  synchronous=FULL: a crash or `kill -9` loses at most the image in flight, and re-adding the
  same results (resume) changes nothing that was already committed.
- Reviews are append-only. Triggers in the database refuse UPDATE and DELETE on them, so no
  code path (ours or a stray SQL tool) can rewrite a clinician's review.
- Reviews follow the image: a review is stored against one result, but the history of a case is
  every review of any result of the same image (sha256), so screening it again with another
  confidence or another bundle shows the earlier reviews and does not queue it as new.
- The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` takes a file from version
  i to i + 1, each in its own transaction.

Threads: one `ReviewStore` holds one connection opened with check_same_thread=False, and every
method takes the store's lock, so the desktop app may share one store between its screening
worker thread and the GUI thread. Other processes (e.g. the CLI) may open the same file at the
same time; WAL and busy_timeout let them take turns.

Timestamps are UTC ISO-8601 strings with milliseconds, e.g. "2026-11-25T20:46:42.123+00:00";
`local_time` shows them in the local time zone with its offset.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from core.common.errors import StoreError
from core.common.paths import create_private_file, make_private_folder, os_error_words
from core.decision.results import Decision, QualityReport, ScreeningResult
from core.decision.vocabulary import (
    DEFAULT_FOLLOW_UP_MONTHS,
    MAX_FOLLOW_UP_MONTHS,
    REVIEW_CODES,
    review_choice,
    review_words,
)

# "MELA" in ASCII: marks a SQLite file as a MelaScreen results store.
APPLICATION_ID = 0x4D454C41
REVIEW_DECISIONS = REVIEW_CODES  # what a new review may say (core.decision.vocabulary.REVIEW_CHOICES)
RUN_STATUSES = ("running", "finished", "cancelled", "failed")
CAM_MAX_SIDE = 128  # heat maps are smooth; 128 px is plenty and keeps a row ~10 kB
BUSY_TIMEOUT_MS = 10_000

_SCHEMA_V1 = """
CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    folder             TEXT NOT NULL,
    bundle_name        TEXT NOT NULL,
    bundle_version     TEXT NOT NULL,
    bundle_fingerprint TEXT NOT NULL,
    settings_json      TEXT NOT NULL,
    started            TEXT NOT NULL,
    finished           TEXT,
    status             TEXT NOT NULL CHECK (status IN ('running', 'finished', 'cancelled', 'failed')),
    summary_json       TEXT
);
CREATE INDEX runs_by_folder ON runs (folder, bundle_fingerprint);

CREATE TABLE results (
    id                 INTEGER PRIMARY KEY,
    sha256             TEXT,
    bundle_fingerprint TEXT NOT NULL,
    first_run_id       INTEGER NOT NULL REFERENCES runs (id),
    path               TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    decision           TEXT CHECK (decision IN ('benign', 'suspicious', 'uncertain')),
    reason             TEXT NOT NULL DEFAULT '',
    p_melanoma         REAL,
    member_p_json      TEXT NOT NULL DEFAULT '[]',
    spread             REAL,
    class_probs_json   TEXT NOT NULL DEFAULT '{}',
    quality_json       TEXT,
    width              INTEGER,
    height             INTEGER,
    cam_png            BLOB,
    thumbnail_jpeg     BLOB,
    created            TEXT NOT NULL,
    CHECK (status = 'error' OR (sha256 IS NOT NULL AND decision IS NOT NULL))
);
-- One good result per image and model set; errors are per run (see run_items).
CREATE UNIQUE INDEX results_by_image ON results (sha256, bundle_fingerprint) WHERE status = 'ok';

CREATE TABLE run_items (
    run_id    INTEGER NOT NULL REFERENCES runs (id),
    path      TEXT NOT NULL,
    result_id INTEGER NOT NULL REFERENCES results (id),
    position  INTEGER NOT NULL,
    added     TEXT NOT NULL,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX run_items_by_result ON run_items (result_id);

CREATE TABLE review_queue (
    result_id INTEGER PRIMARY KEY REFERENCES results (id),
    queued_at TEXT NOT NULL
);

CREATE TABLE reviews (
    id        INTEGER PRIMARY KEY,
    result_id INTEGER NOT NULL REFERENCES results (id),
    reviewer  TEXT NOT NULL CHECK (length(trim(reviewer)) > 0),
    decision  TEXT NOT NULL CHECK (decision IN ('benign', 'refer', 'biopsy', 'unclear_image')),
    note      TEXT NOT NULL DEFAULT '',
    created   TEXT NOT NULL
);
CREATE INDEX reviews_by_result ON reviews (result_id, id);

CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: add a new review instead of changing one');
END;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: they cannot be deleted');
END;
"""

# Version 2 (malignancy triage, issue 11): results carry p(malignant), the most likely class, the
# most probable malignant class and the risk band; the column that holds Screener.result_key gets
# its name; the gate's numbers move to `details` (old rows: their numeric reason); reviews gain the
# clinic's choices (monitor, excise, retake, no action) and an optional follow-up in months. Old
# review codes stay valid values, shown through core.decision.vocabulary. Old rows get p_malignant from their
# stored class probabilities (mel + bcc + akiec, the HAM10000 malignant classes, those present), or
# p_melanoma when none of them was stored.
_SCHEMA_V2 = """
ALTER TABLE runs RENAME COLUMN bundle_fingerprint TO result_key;
ALTER TABLE results RENAME COLUMN bundle_fingerprint TO result_key;
ALTER TABLE results ADD COLUMN p_malignant REAL;
ALTER TABLE results ADD COLUMN likely_class TEXT;
ALTER TABLE results ADD COLUMN malignant_class TEXT;
ALTER TABLE results ADD COLUMN band TEXT CHECK (band IS NULL OR band IN ('high', 'moderate', 'low'));
ALTER TABLE results ADD COLUMN details TEXT NOT NULL DEFAULT '';
UPDATE results SET details = reason WHERE status = 'ok';
UPDATE results SET
    p_malignant = CASE
        WHEN EXISTS (SELECT 1 FROM json_each(class_probs_json) WHERE key IN ('mel', 'bcc', 'akiec'))
        THEN (SELECT sum(value) FROM json_each(class_probs_json) WHERE key IN ('mel', 'bcc', 'akiec'))
        ELSE p_melanoma END,
    likely_class = (SELECT key FROM json_each(class_probs_json) ORDER BY value DESC, key LIMIT 1),
    malignant_class = (SELECT key FROM json_each(class_probs_json) WHERE key IN ('mel', 'bcc', 'akiec')
                       ORDER BY value DESC, key LIMIT 1)
WHERE status = 'ok' AND json_valid(class_probs_json);
CREATE INDEX results_by_sha256 ON results (sha256);

CREATE TABLE reviews_v2 (
    id               INTEGER PRIMARY KEY,
    result_id        INTEGER NOT NULL REFERENCES results (id),
    reviewer         TEXT NOT NULL CHECK (length(trim(reviewer)) > 0),
    decision         TEXT NOT NULL CHECK (decision IN (
                         'no_action', 'monitor', 'excise', 'refer', 'retake',
                         'benign', 'biopsy', 'unclear_image')),
    follow_up_months INTEGER CHECK (follow_up_months IS NULL OR follow_up_months BETWEEN 1 AND 120),
    note             TEXT NOT NULL DEFAULT '',
    created          TEXT NOT NULL
);
INSERT INTO reviews_v2 (id, result_id, reviewer, decision, follow_up_months, note, created)
    SELECT id, result_id, reviewer, decision, NULL, note, created FROM reviews ORDER BY id;
DROP TABLE reviews;
ALTER TABLE reviews_v2 RENAME TO reviews;
CREATE INDEX reviews_by_result ON reviews (result_id, id);
CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: add a new review instead of changing one');
END;
CREATE TRIGGER reviews_no_delete BEFORE DELETE ON reviews
BEGIN
    SELECT RAISE(ABORT, 'reviews are append-only: they cannot be deleted');
END;
"""

# Version 3 (patients, issue 13): the clinic's unit of work. A patient (id: whatever the clinic
# uses; names are never stored) has lesions (the clinic's lesion id, unique per patient), a lesion
# has visits (one per date; NULL: date unknown), and an image (by sha256) belongs to at most one
# lesion visit. Results and reviews stay keyed by the image, so they follow it as before.
# Queries live in core/records/patients.py.
_SCHEMA_V3 = """
CREATE TABLE patients (
    id      TEXT PRIMARY KEY CHECK (length(trim(id)) > 0),
    sex     TEXT CHECK (sex IS NULL OR sex IN ('F', 'M', 'O')),
    created TEXT NOT NULL
);
CREATE TABLE lesions (
    id         INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients (id),
    label      TEXT NOT NULL CHECK (length(trim(label)) > 0),
    body_site  TEXT,
    labelled   INTEGER NOT NULL DEFAULT 1 CHECK (labelled IN (0, 1)),
    created    TEXT NOT NULL,
    UNIQUE (patient_id, label)
);
CREATE TABLE visits (
    id         INTEGER PRIMARY KEY,
    lesion_id  INTEGER NOT NULL REFERENCES lesions (id),
    visit_date TEXT CHECK (visit_date IS NULL OR date(visit_date) = visit_date),
    created    TEXT NOT NULL
);
CREATE UNIQUE INDEX visits_by_lesion_date ON visits (lesion_id, coalesce(visit_date, ''));
CREATE TABLE image_visits (
    sha256   TEXT PRIMARY KEY,
    visit_id INTEGER NOT NULL REFERENCES visits (id),
    age      INTEGER CHECK (age IS NULL OR age BETWEEN 0 AND 130),
    note     TEXT NOT NULL DEFAULT '',
    source   TEXT NOT NULL CHECK (source IN ('sidecar', 'folder', 'dicom')),
    attached TEXT NOT NULL
);
CREATE INDEX image_visits_by_visit ON image_visits (visit_id);
"""

# Version 4 (the intake check, issue 15): a result carries the intake check's score and its level
# (core.decision.vocabulary.INTAKE_LEVELS). Both stay NULL for results of bundles without the check and for
# every row written before it: "not checked" is never shown as "familiar".
_SCHEMA_V4 = """
ALTER TABLE results ADD COLUMN ood_score REAL;
ALTER TABLE results ADD COLUMN intake TEXT
    CHECK (intake IS NULL OR intake IN ('familiar', 'unfamiliar', 'not_dermoscopy'));
"""

# Version 5 (the clinic's evidence, issue 25): what a lesion or an image turned out to be. One row names
# a lesion or an image (by sha256), never both; append-only like reviews (a correction is a newer row).
# Diagnosis codes are checked in core/records/evidence.py (they follow the bundle's classes).
_SCHEMA_V5 = """
CREATE TABLE confirmed_diagnoses (
    id           INTEGER PRIMARY KEY,
    lesion_id    INTEGER REFERENCES lesions (id),
    sha256       TEXT,
    diagnosis    TEXT NOT NULL CHECK (length(trim(diagnosis)) > 0),
    method       TEXT NOT NULL CHECK (method IN ('histopathology', 'follow_up', 'consensus')),
    confirmed_on TEXT CHECK (confirmed_on IS NULL OR date(confirmed_on) = confirmed_on),
    entered_by   TEXT NOT NULL CHECK (length(trim(entered_by)) > 0),
    note         TEXT NOT NULL DEFAULT '',
    created      TEXT NOT NULL,
    CHECK ((lesion_id IS NULL) != (sha256 IS NULL))
);
CREATE INDEX confirmed_by_lesion ON confirmed_diagnoses (lesion_id, id);
CREATE INDEX confirmed_by_image ON confirmed_diagnoses (sha256, id);
CREATE TRIGGER confirmed_no_update BEFORE UPDATE ON confirmed_diagnoses
BEGIN
    SELECT RAISE(ABORT, 'confirmed diagnoses are append-only: add a corrected one instead of changing one');
END;
CREATE TRIGGER confirmed_no_delete BEFORE DELETE ON confirmed_diagnoses
BEGIN
    SELECT RAISE(ABORT, 'confirmed diagnoses are append-only: they cannot be deleted');
END;
"""

# Version 6 (issue 24 item 5): the heat map of the class the outcome names, with that class. A NULL class:
# a row written before (only cam_png, melanoma's, is known). A class with a NULL map: cam_png is that
# class's map (the outcome named the positive class), so it is not stored twice. Same size limit as cam_png.
_SCHEMA_V6 = """
ALTER TABLE results ADD COLUMN named_cam_class TEXT;
ALTER TABLE results ADD COLUMN named_cam_png BLOB;
"""

# MIGRATIONS[i] takes the schema from version i to i + 1. Append; never edit a released entry.
MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5, _SCHEMA_V6)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class RunCounts:
    total: int = 0
    ok: int = 0
    error: int = 0
    benign: int = 0
    uncertain: int = 0
    suspicious: int = 0
    reused: int = 0  # results taken from an earlier run instead of screened again


@dataclass(frozen=True)
class RunInfo:
    id: int
    folder: str
    started: str
    finished: str | None
    status: str  # one of RUN_STATUSES; "running" also marks a run that was killed
    counts: RunCounts
    bundle_name: str
    bundle_version: str
    result_key: str  # models + gate settings (Screener.result_key)
    settings: dict
    summary: dict | None


@dataclass(frozen=True)
class RunEntry:
    """One row of a run's results table."""

    result_id: int
    position: int  # 1, 2, ... in the order the run added them
    result: ScreeningResult  # path is this run's path; from_store is True if an earlier run made it


@dataclass(frozen=True)
class Review:
    id: int
    result_id: int
    reviewer: str
    decision: str  # a review code (core.decision.vocabulary; old files may hold legacy codes)
    note: str
    created: str  # UTC ISO-8601
    follow_up_months: int | None = None  # "monitor": see again in this many months
    sha256: str | None = None  # the image reviewed (reviews follow the image across results)

    @property
    def words(self) -> str:
        """ "monitor (follow up in 6 months)", "excise / biopsy", ... (old codes mapped)."""
        return review_words(self.decision, self.follow_up_months)


@dataclass(frozen=True)
class QueueItem:
    result_id: int
    path: str  # where the image was first seen
    sha256: str
    decision: Decision
    p_melanoma: float | None
    reason: str
    queued_at: str
    last_review: Review | None  # the image's latest review, from any result of the same sha256
    p_malignant: float | None = None
    likely_class: str = ""
    malignant_class: str = ""
    band: str | None = None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def local_time(stamp: str | None, seconds: bool = False) -> str:
    """A stored UTC stamp in the local time zone with its offset, e.g. "2026-11-25 21:46 +01:00"."""
    if not stamp:
        return ""
    try:
        t = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    t = t.astimezone()
    offset = t.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}" if len(offset) == 5 else offset
    return t.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + f" {offset}"


def encode_cam(cam: np.ndarray, max_side: int = CAM_MAX_SIDE) -> bytes:
    """Float heat map (HxW, 0..1) -> PNG bytes of uint8, longest side <= max_side."""
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 2 or cam.size == 0:
        raise ValueError(f"a heat map must be a non-empty 2-D array, got shape {cam.shape}")
    h, w = cam.shape
    scale = max_side / max(h, w)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        cam = cv2.resize(cam, size, interpolation=cv2.INTER_AREA)
    q = np.rint(np.clip(np.nan_to_num(cam), 0.0, 1.0) * 255.0).astype(np.uint8)
    ok, buf = cv2.imencode(".png", q)
    if not ok:
        raise StoreError("OpenCV could not encode a heat map as PNG; check the OpenCV installation")
    return buf.tobytes()


def decode_cam(png: bytes) -> np.ndarray:
    """PNG bytes from `encode_cam` -> float32 HxW in 0..1 at the stored size."""
    q = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if q is None:
        raise StoreError("a stored heat map is damaged; screen the image again to replace it")
    return q.astype(np.float32) / 255.0


def migrate(conn: sqlite3.Connection, migrations: Sequence[str], where: str) -> int:
    """Bring the file to len(migrations), one transaction per step; returns the final version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(migrations):
        raise StoreError(
            f"{where}: this results file has schema version {version}, but this MelaScreen only knows "
            f"versions up to {len(migrations)}. It was written by a newer MelaScreen: update MelaScreen, "
            "or choose another results file."
        )
    if version == 0:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        n_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if app_id != APPLICATION_ID and n_tables:
            raise StoreError(
                f"{where}: this is a SQLite database of another program (it has tables but no "
                "MelaScreen schema). Choose a new file name for the MelaScreen results."
            )
    for target in range(version + 1, len(migrations) + 1):
        try:
            # executescript would commit an open transaction first, so BEGIN lives in the script.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{migrations[target - 1]}\n"
                f"PRAGMA application_id = {APPLICATION_ID};\nPRAGMA user_version = {target};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise StoreError(
                f"{where}: could not upgrade the results file to schema version {target}: {exc}. "
                "The file was left at its previous version; check free disk space and permissions."
            ) from exc
        version = target
    return version


# Columns read back into a ScreeningResult, in the order `_result` unpacks them.
_RESULT_COLUMNS = (
    "id",
    "sha256",
    "first_run_id",
    "path",
    "status",
    "decision",
    "reason",
    "p_melanoma",
    "member_p_json",
    "spread",
    "class_probs_json",
    "quality_json",
    "width",
    "height",
    "cam_png",
    "p_malignant",
    "likely_class",
    "malignant_class",
    "band",
    "details",
    "ood_score",
    "intake",
    "named_cam_class",
    "named_cam_png",
)
_RUN_COLUMNS = (
    "id, folder, bundle_name, bundle_version, result_key, settings_json, started, finished, status, summary_json"
)
_REVIEW_COLUMNS = "v.id, v.result_id, v.reviewer, v.decision, v.note, v.created, v.follow_up_months, r.sha256"
# Most urgent first: p(malignant) (old rows without it: p(melanoma)), unscored last.
_RISK_ORDER = "coalesce(r.p_malignant, r.p_melanoma) IS NULL, coalesce(r.p_malignant, r.p_melanoma) DESC, r.id"


def _review(row: Sequence) -> Review:
    rid, result_id, reviewer, decision, note, created, months, sha = row
    return Review(
        int(rid), int(result_id), reviewer, decision, note, created, None if months is None else int(months), sha
    )


def _result_select(prefix: str = "", with_cam: bool = True) -> str:
    maps = ("cam_png", "named_cam_png")
    return ", ".join("NULL" if (c in maps and not with_cam) else prefix + c for c in _RESULT_COLUMNS)


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


def _sqlite_cause(exc: sqlite3.Error) -> str:
    """What went wrong, in words, from SQLite's error code: a read-only file is not a full disk."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    words = {
        "SQLITE_READONLY": "the results file or its folder is read-only",
        "SQLITE_FULL": "the disk is full; free disk space",
        "SQLITE_BUSY": "another program holds the results file locked; close it and try again",
        "SQLITE_LOCKED": "another program holds the results file locked; close it and try again",
        "SQLITE_CORRUPT": "the results file is damaged; restore a backup or choose another file",
        "SQLITE_NOTADB": "the file is not a MelaScreen results file",
        "SQLITE_IOERR": "the disk reported a read or write error",
        "SQLITE_CANTOPEN": "the file cannot be opened (its folder is missing or not accessible)",
        "SQLITE_PERM": "permission denied",
    }
    for code, text in words.items():
        if name == code or name.startswith(code + "_"):
            return f"{text} ({exc})"
    return str(exc)


def _open_problem(exc: sqlite3.DatabaseError) -> str:
    msg = str(exc)
    if "not a database" in msg or "malformed" in msg or "encrypted" in msg:
        return f"{msg}; it is not a MelaScreen results file (or it is damaged); choose another file or restore a backup"
    return _sqlite_cause(exc)


def _quick_check(conn: sqlite3.Connection, where: str) -> None:
    """SQLite's quick_check (page structure, no index cross-check: a fraction of integrity_check's
    time) before anything is written: a damaged file is refused as it is, never written into."""
    rows = conn.execute("PRAGMA quick_check(3)").fetchall()
    found = [str(r[0]) for r in rows]
    if found != ["ok"]:
        raise StoreError(
            f"{where}: the results file is damaged (SQLite's check: {'; '.join(found)[:300]}); nothing was "
            "written to it. Restore a backup, or choose another results file"
        )


def _connect_read_only(path: Path, where: str) -> sqlite3.Connection:
    """A connection that cannot change the file. mode=ro still needs to create the -shm file of a WAL
    database; where the folder is read-only too, immutable=1 reads the file as it is, which is right
    only when no un-merged -wal file holds newer results (then we say so instead)."""
    if not path.is_file():
        raise StoreError(f"{where}: there is no results file here; screen a folder first or give its path")
    base = path.absolute().as_uri()
    conn = None
    try:
        try:
            conn = sqlite3.connect(f"{base}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            _quick_check(conn, where)
        except sqlite3.OperationalError as exc:
            if conn is not None:
                conn.close()
                conn = None
            name = getattr(exc, "sqlite_errorname", "") or ""
            if not name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
                raise
            wal = path.with_name(path.name + "-wal")
            if wal.is_file() and wal.stat().st_size > 0:
                raise StoreError(
                    f"{where}: the results file is read-only and its newest results are still in {wal.name}, "
                    "which only a MelaScreen that may write there can merge; open it once where it can be "
                    "written (or copy the file with its -wal file to a folder you can write to)"
                ) from exc
            conn = sqlite3.connect(f"{base}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            _quick_check(conn, where)
        conn.execute("PRAGMA query_only = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{where}: this results file has schema version {version}, but this MelaScreen only knows "
                f"versions up to {len(MIGRATIONS)}. It was written by a newer MelaScreen: update MelaScreen."
            )
        n_tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if app_id != APPLICATION_ID and (version or n_tables):  # an empty file is a new store, not a stranger
            raise StoreError(
                f"{where}: this is a SQLite database of another program (it has tables but no "
                "MelaScreen schema). Choose a new file name for the MelaScreen results."
            )
        return conn
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise StoreError(f"{where}: cannot read the results file: {_open_problem(exc)}") from exc


class ReviewStore:
    """The results database. Open with `ReviewStore.open(path)`; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path, read_only: bool = False):
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path
        self.read_only = read_only  # opened for reading only: every write is refused with a reason

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, read_only: bool = False) -> ReviewStore:
        """Open (and create, or upgrade) the results file. SQLite's quick_check runs before anything is
        written: a damaged file is refused untouched, so a refusal means nothing was written to it.

        read_only: for listings and reports; never creates, upgrades or changes the file, and works on a
        file (or folder) the user may only read. `open_for_reading` picks this when it must."""
        path = Path(path).expanduser()
        where = str(path)
        if path.is_dir():
            raise StoreError(f"{where}: is a folder; give the path of a results file, e.g. {path / 'results.sqlite'}")
        if read_only:
            return cls(_connect_read_only(path, where), path, read_only=True)
        try:
            # Private (0700 folder it creates, 0600 file and -wal/-shm): it holds names, paths, thumbnails.
            make_private_folder(path.parent)
            create_private_file(path)
        except OSError as exc:
            raise StoreError(f"{where}: cannot create the results file or its folder: {os_error_words(exc)}") from exc
        conn = None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per result.
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
            )
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            # The first real read (a file that is not SQLite fails here), before the first write.
            _quick_check(conn, where)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"{where}: SQLite could not switch this file to WAL mode (got {mode!r}); "
                    "network drives often cannot do this: keep the results file on a local disk"
                )
            # FULL: a commit survives power loss too; the cost is small next to screening an image.
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn, MIGRATIONS, where)
        except StoreError:
            if conn is not None:
                conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise StoreError(f"{where}: cannot open the results file: {_open_problem(exc)}") from exc
        return cls(conn, path)

    @classmethod
    def open_for_reading(cls, path: str | Path) -> ReviewStore:
        """For listings and reports: read-only when the file or its folder cannot be written (a file on
        a read-only disk, a colleague's file) or always, never creating a file; an older file is
        upgraded first when it can be."""
        path = Path(path).expanduser()
        if not path.is_file():
            raise StoreError(f"{path}: there is no results file here; screen a folder first or give its path")
        store = cls.open(path, read_only=True)
        if store.schema_version < len(MIGRATIONS):  # written by an older MelaScreen: upgrade it if we may
            store.close()
            try:
                return cls.open(path)
            except StoreError as exc:
                raise StoreError(
                    f"{exc}. This results file was written by an older MelaScreen and must be upgraded once "
                    "before it can be read: open it where it can be written"
                ) from exc
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._read("PRAGMA user_version")[0][0]

    def integrity_check(self) -> str:
        """SQLite's own check of the whole file: "ok" when healthy."""
        rows = self._read("PRAGMA integrity_check")
        return "\n".join(str(r[0]) for r in rows)

    # -- plumbing --------------------------------------------------------------------------

    def _read(self, sql: str, args: Sequence = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: reading the results file failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (IMMEDIATE) so it cannot deadlock on upgrade."""
        with self._lock:
            if self.read_only:
                raise StoreError(f"{self.path}: the results file was opened for reading only; nothing was written")
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self.path}: cannot write to the results file: {_sqlite_cause(exc)}; nothing was written"
                ) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(
                        f"{self.path}: writing to the results file failed and was undone: {_sqlite_cause(exc)}"
                    ) from exc
                raise

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, folder: str, bundle_name: str, bundle_version: str, result_key: str, settings: dict) -> int:
        """Records a new run with status "running"; returns its id."""
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO runs (folder, bundle_name, bundle_version, result_key, settings_json, started, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (str(folder), bundle_name, bundle_version, result_key, _json(settings), utc_now()),
            )
            return int(cur.lastrowid)  # type: ignore[arg-type]  # set after an INSERT

    def finish_run(self, run_id: int, status: str = "finished", summary: dict | None = None) -> None:
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"run status must be one of finished, cancelled, failed; got {status!r}")
        with self._write() as c:
            cur = c.execute(
                "UPDATE runs SET status = ?, finished = ?, summary_json = ? WHERE id = ?",
                (status, utc_now(), None if summary is None else _json(summary), run_id),
            )
            if cur.rowcount == 0:
                raise ValueError(f"there is no run with id {run_id} in {self.path}")

    def runs(self) -> list[RunInfo]:
        """Every run, newest first."""
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC")
        return [self._run_info(r) for r in rows]

    def get_run(self, run_id: int) -> RunInfo | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return self._run_info(rows[0]) if rows else None

    def latest_run_for_folder(self, folder: str, result_key: str) -> RunInfo | None:
        """The newest run of this folder with these models and gate, e.g. to offer "resume"."""
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE folder = ? AND result_key = ? ORDER BY id DESC LIMIT 1",
            (str(folder), result_key),
        )
        return self._run_info(rows[0]) if rows else None

    def _run_info(self, row: Sequence) -> RunInfo:
        (run_id, folder, b_name, b_version, key, settings_json, started, finished, status, summary_json) = row
        c = self._read(
            "SELECT count(*),"
            " coalesce(sum(r.status = 'ok'), 0), coalesce(sum(r.status = 'error'), 0),"
            " coalesce(sum(r.decision = 'benign'), 0), coalesce(sum(r.decision = 'uncertain'), 0),"
            " coalesce(sum(r.decision = 'suspicious'), 0), coalesce(sum(r.first_run_id != i.run_id), 0)"
            " FROM run_items i JOIN results r ON r.id = i.result_id WHERE i.run_id = ?",
            (run_id,),
        )[0]
        return RunInfo(
            id=run_id,
            folder=folder,
            started=started,
            finished=finished,
            status=status,
            counts=RunCounts(*(int(x) for x in c)),
            bundle_name=b_name,
            bundle_version=b_version,
            result_key=key,
            settings=json.loads(settings_json),
            summary=None if summary_json is None else json.loads(summary_json),
        )

    # -- results ---------------------------------------------------------------------------

    def add_result(self, run_id: int, result: ScreeningResult, result_key: str, thumbnail: bytes | None = None) -> int:
        """Stores one result of a run in one transaction; returns the result's id.

        A good result reuses the stored row for (sha256, result_key) when there is one.
        Results that need review are queued once, unless the image (same sha256) already has a
        review from an earlier screening: its review follows it instead. Adding the same run + path again returns the
        id already linked and changes nothing, except that a good result replaces an error
        recorded for that path earlier in the same run (a retried file).
        """
        if result.status not in ("ok", "error"):
            raise ValueError(f"result status must be 'ok' or 'error', got {result.status!r} for {result.path}")
        if result.ok and (not result.sha256 or result.decision is None):
            raise ValueError(f"a good result needs its sha256 and a decision: {result.path}")
        # Encode outside the transaction: keeps the write lock short.
        cam_png = encode_cam(result.cam) if (result.ok and result.cam is not None) else None
        named_class = result.named_cam_class if (cam_png is not None and result.named_cam is not None) else ""
        # the positive class named: its map is cam_png already (stored once)
        named_png = encode_cam(result.named_cam) if named_class and result.named_cam is not result.cam else None  # type: ignore[arg-type]  # named_class is set only with a named map
        decision = None if result.decision is None else Decision(result.decision).value
        quality = None if result.quality is None else _json(asdict(result.quality))
        now = utc_now()
        with self._write() as c:
            if c.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise ValueError(f"there is no run with id {run_id} in {self.path}; call start_run first")
            linked = c.execute(
                "SELECT i.result_id, r.status FROM run_items i JOIN results r ON r.id = i.result_id"
                " WHERE i.run_id = ? AND i.path = ?",
                (run_id, result.path),
            ).fetchone()
            if linked is not None and not (linked[1] == "error" and result.ok):
                return int(linked[0])

            result_id = None
            if result.ok:
                row = c.execute(
                    "SELECT id FROM results WHERE sha256 = ? AND result_key = ? AND status = 'ok'",
                    (result.sha256, result_key),
                ).fetchone()
                result_id = None if row is None else int(row[0])
            if result_id is None:
                result_id = int(
                    c.execute(  # type: ignore[arg-type]  # set after an INSERT
                        "INSERT INTO results (sha256, result_key, first_run_id, path, status, decision, reason,"
                        " p_melanoma, member_p_json, spread, class_probs_json, quality_json, width, height, cam_png,"
                        " thumbnail_jpeg, created, p_malignant, likely_class, malignant_class, band, details,"
                        " ood_score, intake, named_cam_class, named_cam_png)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            result.sha256,
                            result_key,
                            run_id,
                            result.path,
                            result.status,
                            decision,
                            result.reason,
                            result.p_melanoma,
                            _json(list(result.member_p)),
                            result.spread,
                            _json(result.class_probs),
                            quality,
                            result.width,
                            result.height,
                            cam_png,
                            thumbnail,
                            now,
                            result.p_malignant,
                            result.likely_class or None,
                            result.malignant_class or None,
                            result.band,
                            result.details or "",
                            result.ood_score,
                            result.intake,
                            named_class or None,
                            named_png,
                        ),
                    ).lastrowid
                )

            if linked is None:
                c.execute(
                    "INSERT INTO run_items (run_id, path, result_id, position, added) VALUES"
                    " (?, ?, ?, (SELECT coalesce(max(position), 0) + 1 FROM run_items WHERE run_id = ?), ?)",
                    (run_id, result.path, result_id, run_id, now),
                )
            else:  # a retried file: the good result takes the error's place and position
                old_error = int(linked[0])
                c.execute(
                    "UPDATE run_items SET result_id = ?, added = ? WHERE run_id = ? AND path = ?",
                    (result_id, now, run_id, result.path),
                )
                c.execute(
                    "DELETE FROM results WHERE id = ? AND NOT EXISTS (SELECT 1 FROM run_items WHERE result_id = ?)",
                    (old_error, old_error),
                )

            already_reviewed = (
                result.ok
                and c.execute(
                    "SELECT 1 FROM reviews v JOIN results r ON r.id = v.result_id WHERE r.sha256 = ? LIMIT 1",
                    (result.sha256,),
                ).fetchone()
                is not None
            )
            if result.ok and Decision(decision).needs_review and not already_reviewed:
                c.execute("INSERT OR IGNORE INTO review_queue (result_id, queued_at) VALUES (?, ?)", (result_id, now))
            return result_id

    def find_result(self, sha256: str, result_key: str) -> ScreeningResult | None:
        """The stored good result of this image with these models and gate (from_store=True), or None."""
        rows = self._read(
            f"SELECT {_result_select()} FROM results WHERE sha256 = ? AND result_key = ? AND status = 'ok'",
            (sha256, result_key),
        )
        return self._result(rows[0], from_store=True) if rows else None

    def result_id_for(self, sha256: str, result_key: str) -> int | None:
        rows = self._read(
            "SELECT id FROM results WHERE sha256 = ? AND result_key = ? AND status = 'ok'",
            (sha256, result_key),
        )
        return int(rows[0][0]) if rows else None

    def get_result(self, result_id: int) -> ScreeningResult | None:
        """The stored result (path: where it was first seen; from_store=True), or None."""
        rows = self._read(f"SELECT {_result_select()} FROM results WHERE id = ?", (result_id,))
        return self._result(rows[0], from_store=True) if rows else None

    def thumbnail(self, result_id: int) -> bytes | None:
        """The JPEG bytes given to add_result, or None."""
        rows = self._read("SELECT thumbnail_jpeg FROM results WHERE id = ?", (result_id,))
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])

    def run_entries(self, run_id: int, with_cam: bool = True) -> list[RunEntry]:
        """A run's results in the order added, errors included, with their result ids."""
        cols = _result_select("r.", with_cam)
        rows = self._read(
            f"SELECT i.position, i.path, {cols} FROM run_items i JOIN results r ON r.id = i.result_id"
            " WHERE i.run_id = ? ORDER BY i.position",
            (run_id,),
        )
        entries = []
        for row in rows:
            position, path, rest = row[0], row[1], row[2:]
            first_run_id = rest[2]
            res = self._result(rest, from_store=first_run_id != run_id)
            entries.append(RunEntry(result_id=int(rest[0]), position=int(position), result=replace(res, path=path)))
        return entries

    def run_results(self, run_id: int, with_cam: bool = True) -> list[ScreeningResult]:
        """A run's results in the order added, errors included; path is this run's path."""
        return [e.result for e in self.run_entries(run_id, with_cam=with_cam)]

    @staticmethod
    def _result(row: Sequence, from_store: bool) -> ScreeningResult:
        (
            _id,
            sha256,
            _first_run,
            path,
            status,
            decision,
            reason,
            p_mel,
            member_p_json,
            spread,
            class_probs_json,
            quality_json,
            width,
            height,
            cam_png,
            p_mal,
            likely,
            mal_class,
            band,
            details,
            ood_score,
            intake,
            named_class,
            named_png,
        ) = row
        quality = None
        if quality_json is not None:
            q = json.loads(quality_json)
            quality = QualityReport(**{**q, "flags": tuple(q.get("flags", ()))})
        cam = None if cam_png is None else decode_cam(bytes(cam_png))
        named_cam = cam if named_png is None else decode_cam(bytes(named_png))
        return ScreeningResult(
            path=path,
            sha256=sha256,
            status=status,
            decision=None if decision is None else Decision(decision),
            reason=reason,
            p_melanoma=p_mel,
            member_p=tuple(json.loads(member_p_json)),
            spread=spread,
            class_probs=json.loads(class_probs_json),
            quality=quality,
            width=width,
            height=height,
            cam=cam,
            named_cam=named_cam if named_class else None,
            named_cam_class=named_class or "" if named_cam is not None else "",
            from_store=from_store,
            p_malignant=p_mal,
            likely_class=likely or "",
            malignant_class=mal_class or "",
            band=band,
            details=details or "",
            ood_score=ood_score,
            intake=intake,
        )

    # -- review queue and reviews ------------------------------------------------------------

    def queue(self, include_reviewed: bool = False) -> list[QueueItem]:
        """Review and suspicious results, highest p(malignant) first, one per image (its latest queued
        result); by default only images not yet reviewed (a review of the same image under another
        result counts: reviews follow it)."""
        # One entry per image: screening it again (another confidence or bundle) queues a newer result of
        # the same picture, which replaces the older entry in the list instead of standing beside it.
        # And the latest run that saw the image decides whether it is listed at all: a run at another
        # confidence that clears it (issue 24: the confidence re-applied) takes it off the list.
        where = (
            " WHERE q.result_id = (SELECT MAX(q3.result_id) FROM review_queue q3 JOIN results r3"
            " ON r3.id = q3.result_id WHERE r3.sha256 = r.sha256)"
            " AND (SELECT r4.decision FROM run_items i4 JOIN results r4 ON r4.id = i4.result_id"
            " WHERE r4.sha256 = r.sha256 AND r4.status = 'ok' ORDER BY i4.run_id DESC, r4.id DESC LIMIT 1)"
            " != 'benign'"
            # A picture the intake check calls not dermoscopy is not a patient's case: it is listed as an
            # image to check (core.decision.vocabulary.NOT_DERMOSCOPY), never in the review queue.
            " AND coalesce(r.intake, '') != 'not_dermoscopy'"
        )
        if not include_reviewed:
            where += (
                " AND NOT EXISTS (SELECT 1 FROM reviews v2 JOIN results r2 ON r2.id = v2.result_id"
                " WHERE r2.sha256 = r.sha256)"
            )
        rows = self._read(
            "SELECT q.result_id, r.path, r.sha256, r.decision, r.p_melanoma, r.reason, q.queued_at,"
            " r.p_malignant, r.likely_class, r.malignant_class, r.band"
            f" FROM review_queue q JOIN results r ON r.id = q.result_id{where} ORDER BY {_RISK_ORDER}",
        )
        latest = self.latest_reviews([r[2] for r in rows])
        return [
            QueueItem(
                result_id=int(r[0]),
                path=r[1],
                sha256=r[2],
                decision=Decision(r[3]),
                p_melanoma=r[4],
                reason=r[5],
                queued_at=r[6],
                last_review=latest.get(r[2]),
                p_malignant=r[7],
                likely_class=r[8] or "",
                malignant_class=r[9] or "",
                band=r[10],
            )
            for r in rows
        ]

    def latest_reviews(self, sha256s: Sequence[str]) -> dict[str, Review]:
        """sha256 -> the image's latest review (from any of its results); images without one are left out."""
        wanted = sorted({s for s in sha256s if s})
        found: dict[str, Review] = {}
        for i in range(0, len(wanted), 500):  # SQLite limits the number of parameters
            chunk = wanted[i : i + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._read(
                f"SELECT {_REVIEW_COLUMNS} FROM reviews v JOIN results r ON r.id = v.result_id"
                f" WHERE r.sha256 IN ({marks}) ORDER BY v.id",
                chunk,
            )
            for row in rows:
                found[row[7]] = _review(row)  # ascending ids: the last one wins
        return found

    def add_review(
        self, result_id: int, reviewer: str, decision: str, note: str = "", follow_up_months: int | None = None
    ) -> Review:
        """Appends a review; earlier reviews of the case stay as they were.

        "monitor" takes follow_up_months (DEFAULT_FOLLOW_UP_MONTHS when not given); other choices none.
        """
        reviewer = (reviewer or "").strip()
        if not reviewer:
            raise ValueError("a review needs the reviewer's name or initials")
        if decision not in REVIEW_DECISIONS:
            raise ValueError(f"review decision must be one of {', '.join(REVIEW_DECISIONS)}; got {decision!r}")
        if review_choice(decision).asks_months:
            months = DEFAULT_FOLLOW_UP_MONTHS if follow_up_months is None else follow_up_months
            if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_FOLLOW_UP_MONTHS:
                raise ValueError(
                    f"follow-up must be a whole number of months from 1 to {MAX_FOLLOW_UP_MONTHS}, "
                    f"got {follow_up_months!r}"
                )
        elif follow_up_months is not None:
            raise ValueError(f"only a 'monitor' review takes a follow-up interval, not {decision!r}")
        else:
            months = None
        now = utc_now()
        with self._write() as c:
            row = c.execute("SELECT sha256, status FROM results WHERE id = ?", (result_id,)).fetchone()
            if row is None:
                raise ValueError(f"there is no screening result with id {result_id} in {self.path}")
            if row[1] == "error":  # never listed for review, so a review of it would never be seen
                raise ValueError(
                    f"result {result_id} is a file that could not be screened, so it cannot be reviewed; "
                    "fix or copy the file again and screen it"
                )
            review_id = c.execute(
                "INSERT INTO reviews (result_id, reviewer, decision, follow_up_months, note, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (result_id, reviewer, decision, months, note or "", now),
            ).lastrowid
        return Review(int(review_id), result_id, reviewer, decision, note or "", now, months, row[0])  # type: ignore[arg-type]  # set after an INSERT

    def history(self, result_id: int) -> list[Review]:
        """Every review of the case's image, oldest first: reviews of other results of the same
        image (another confidence, another bundle) are part of it."""
        rows = self._read(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews v JOIN results r ON r.id = v.result_id"
            " WHERE v.result_id = ? OR (r.sha256 IS NOT NULL AND r.sha256 = (SELECT sha256 FROM results WHERE id = ?))"
            " ORDER BY v.id",
            (result_id, result_id),
        )
        return [_review(r) for r in rows]

    def image_history(self, sha256: str) -> list[Review]:
        """Every review of an image (by its sha256), oldest first."""
        rows = self._read(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews v JOIN results r ON r.id = v.result_id WHERE r.sha256 = ?"
            " ORDER BY v.id",
            (sha256,),
        )
        return [_review(r) for r in rows]
