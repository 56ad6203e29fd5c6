"""The results file's schema, version by version, and the step that brings a file to the newest.

The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` (one SQL script per version, as data)
takes a file from version i to i + 1, each in its own transaction. A new file runs every entry, so an old
file upgraded and a new one end with the same schema. Append; never edit a released entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from core.common.errors import StoreError

# "MELA" in ASCII: marks a SQLite file as a MelaScreen results store.
APPLICATION_ID = 0x4D454C41

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
# Queries live in core/records/store/patient_rows.py; what they mean in core/records/patients.py.
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
