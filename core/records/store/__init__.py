"""The results store: runs, screening results, the review queue, reviews and the clinic's records in one
SQLite file. `ReviewStore` is the front door (open it with `ReviewStore.open(path)`, use it as a context
manager); each part of it is a module of one job:

- connection: opening, SQLite's quick check, the lock, one transaction per write (WAL, synchronous=FULL);
- migrations: the schema, one entry per version (`PRAGMA user_version`);
- runs, results, reviews (the queue and the append-only reviews), images (thumbnails, the heat-map codec);
- patient_rows, evidence_rows: the queries on patients, lesions, visits and confirmed diagnoses, whose
  meaning lives beside this package (core.records.patients, core.records.evidence);
- clock: the stored UTC stamps and how they are shown.

This module names what the rest of MelaScreen uses of the store.
"""

from __future__ import annotations

from core.records.store.clock import local_time, utc_now
from core.records.store.evidence_rows import EvidenceRecords
from core.records.store.images import CAM_MAX_SIDE, ImageRecords, decode_cam, encode_cam
from core.records.store.migrations import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, migrate
from core.records.store.patient_rows import PatientRecords
from core.records.store.results import ResultRecords, RunEntry
from core.records.store.reviews import REVIEW_DECISIONS, QueueItem, Review, ReviewRecords
from core.records.store.runs import RUN_STATUSES, RunCounts, RunInfo, RunRecords

__all__ = [
    "APPLICATION_ID",
    "CAM_MAX_SIDE",
    "MIGRATIONS",
    "REVIEW_DECISIONS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "QueueItem",
    "Review",
    "ReviewStore",
    "RunCounts",
    "RunEntry",
    "RunInfo",
    "decode_cam",
    "encode_cam",
    "local_time",
    "migrate",
    "utc_now",
]


class ReviewStore(RunRecords, ResultRecords, ReviewRecords, ImageRecords, PatientRecords, EvidenceRecords):
    """The results database. Open with `ReviewStore.open(path)`; use as a context manager."""
