"""The results store: runs, screening results, the review queue and reviews in one SQLite file.

- An image is identified by the SHA-256 of its bytes. A result is kept once per
  (sha256, bundle fingerprint): screening the same image again with the same models reuses the
  stored row and never queues it twice. Error results ("error": unreadable, not an image) are
  kept per run and per path, because a later run may well succeed.
- One transaction per result (result row, run link, queue entry), WAL journal and
  synchronous=FULL: a crash or `kill -9` loses at most the image in flight, and re-adding the
  same results (resume) changes nothing that was already committed.
- Reviews are append-only. Triggers in the database refuse UPDATE and DELETE on them, so no
  code path (ours or a stray SQL tool) can rewrite a clinician's review.
- The schema version lives in `PRAGMA user_version`; `MIGRATIONS[i]` takes a file from version
  i to i + 1, each in its own transaction.

Threads: one `ReviewStore` holds one connection opened with check_same_thread=False, and every
method takes the store's lock, so the desktop app may share one store between its screening
worker thread and the GUI thread. Other processes (e.g. the CLI) may open the same file at the
same time; WAL and busy_timeout let them take turns.

Timestamps are UTC ISO-8601 strings with milliseconds, e.g. "2026-11-25T20:46:42.123+00:00".
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from .errors import StoreError
from .results import Decision, QualityReport, ScreeningResult

# "MELA" in ASCII: marks a SQLite file as a MelaScreen results store.
APPLICATION_ID = 0x4D454C41
REVIEW_DECISIONS = ("benign", "refer", "biopsy", "unclear_image")
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

# MIGRATIONS[i] takes the schema from version i to i + 1. Append; never edit a released entry.
MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1,)
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
    bundle_fingerprint: str
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
    decision: str  # one of REVIEW_DECISIONS
    note: str
    created: str


@dataclass(frozen=True)
class QueueItem:
    result_id: int
    path: str  # where the image was first seen
    sha256: str
    decision: Decision
    p_melanoma: float | None
    reason: str
    queued_at: str
    last_review: Review | None


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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


def encode_thumbnail(image_bgr: np.ndarray, max_side: int = 160, quality: int = 85) -> bytes:
    """A BGR (or grey) image -> JPEG bytes, longest side <= max_side, for `add_result`."""
    h, w = image_bgr.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1.0:
        image_bgr = cv2.resize(
            image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise StoreError("OpenCV could not encode a thumbnail as JPEG; check the OpenCV installation")
    return buf.tobytes()


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
    "id", "sha256", "first_run_id", "path", "status", "decision", "reason", "p_melanoma", "member_p_json",
    "spread", "class_probs_json", "quality_json", "width", "height", "cam_png",
)
_RUN_COLUMNS = (
    "id, folder, bundle_name, bundle_version, bundle_fingerprint, settings_json, started, finished, status, summary_json"
)


def _result_select(prefix: str = "", with_cam: bool = True) -> str:
    return ", ".join("NULL" if (c == "cam_png" and not with_cam) else prefix + c for c in _RESULT_COLUMNS)


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)


class ReviewStore:
    """The results database. Open with `ReviewStore.open(path)`; use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> "ReviewStore":
        path = Path(path).expanduser()
        where = str(path)
        if path.is_dir():
            raise StoreError(f"{where}: is a folder; give the path of a results file, e.g. {path / 'results.sqlite'}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{where}: cannot create the folder for the results file ({exc.strerror or exc}); "
                "choose a location you can write to"
            ) from exc
        conn = None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per result.
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            # The first real read: a file that is not SQLite fails here.
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
            msg = str(exc)
            if "not a database" in msg or "malformed" in msg or "encrypted" in msg:
                hint = "it is not a MelaScreen results file (or it is damaged); choose another file or restore a backup"
            else:
                hint = "check that the path exists and that you may read and write it"
            raise StoreError(f"{where}: cannot open the results file ({msg}); {hint}") from exc
        return cls(conn, path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "ReviewStore":
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
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self.path}: cannot write to the results file ({exc}); another program may "
                    "hold it locked, or the disk is read-only or full"
                ) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"{self.path}: writing to the results file failed and was undone: {exc}") from exc
                raise

    # -- runs ------------------------------------------------------------------------------

    def start_run(
        self, folder: str, bundle_name: str, bundle_version: str, bundle_fingerprint: str, settings: dict
    ) -> int:
        """Records a new run with status "running"; returns its id."""
        with self._write() as c:
            cur = c.execute(
                "INSERT INTO runs (folder, bundle_name, bundle_version, bundle_fingerprint, settings_json, started, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (str(folder), bundle_name, bundle_version, bundle_fingerprint, _json(settings), utc_now()),
            )
            return int(cur.lastrowid)

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

    def latest_run_for_folder(self, folder: str, bundle_fingerprint: str) -> RunInfo | None:
        """The newest run of this folder with these models, e.g. to offer "resume"."""
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE folder = ? AND bundle_fingerprint = ? ORDER BY id DESC LIMIT 1",
            (str(folder), bundle_fingerprint),
        )
        return self._run_info(rows[0]) if rows else None

    def _run_info(self, row: tuple) -> RunInfo:
        (run_id, folder, b_name, b_version, b_fp, settings_json, started, finished, status, summary_json) = row
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
            bundle_fingerprint=b_fp,
            settings=json.loads(settings_json),
            summary=None if summary_json is None else json.loads(summary_json),
        )

    # -- results ---------------------------------------------------------------------------

    def add_result(
        self, run_id: int, result: ScreeningResult, bundle_fingerprint: str, thumbnail: bytes | None = None
    ) -> int:
        """Stores one result of a run in one transaction; returns the result's id.

        A good result reuses the stored row for (sha256, bundle_fingerprint) when there is one.
        Results that need review are queued once. Adding the same run + path again returns the
        id already linked and changes nothing, except that a good result replaces an error
        recorded for that path earlier in the same run (a retried file).
        """
        if result.status not in ("ok", "error"):
            raise ValueError(f"result status must be 'ok' or 'error', got {result.status!r} for {result.path}")
        if result.ok and (not result.sha256 or result.decision is None):
            raise ValueError(f"a good result needs its sha256 and a decision: {result.path}")
        # Encode outside the transaction: keeps the write lock short.
        cam_png = encode_cam(result.cam) if (result.ok and result.cam is not None) else None
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
                    "SELECT id FROM results WHERE sha256 = ? AND bundle_fingerprint = ? AND status = 'ok'",
                    (result.sha256, bundle_fingerprint),
                ).fetchone()
                result_id = None if row is None else int(row[0])
            if result_id is None:
                result_id = int(
                    c.execute(
                        "INSERT INTO results (sha256, bundle_fingerprint, first_run_id, path, status, decision, reason,"
                        " p_melanoma, member_p_json, spread, class_probs_json, quality_json, width, height, cam_png,"
                        " thumbnail_jpeg, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            result.sha256, bundle_fingerprint, run_id, result.path, result.status, decision,
                            result.reason, result.p_melanoma, _json(list(result.member_p)), result.spread,
                            _json(result.class_probs), quality, result.width, result.height, cam_png,
                            thumbnail, now,
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

            if result.ok and Decision(decision).needs_review:
                c.execute(
                    "INSERT OR IGNORE INTO review_queue (result_id, queued_at) VALUES (?, ?)", (result_id, now)
                )
            return result_id

    def find_result(self, sha256: str, bundle_fingerprint: str) -> ScreeningResult | None:
        """The stored good result of this image with these models (from_store=True), or None."""
        rows = self._read(
            f"SELECT {_result_select()} FROM results WHERE sha256 = ? AND bundle_fingerprint = ? AND status = 'ok'",
            (sha256, bundle_fingerprint),
        )
        return self._result(rows[0], from_store=True) if rows else None

    def result_id_for(self, sha256: str, bundle_fingerprint: str) -> int | None:
        rows = self._read(
            "SELECT id FROM results WHERE sha256 = ? AND bundle_fingerprint = ? AND status = 'ok'",
            (sha256, bundle_fingerprint),
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
    def _result(row: tuple, from_store: bool) -> ScreeningResult:
        (_id, sha256, _first_run, path, status, decision, reason, p_mel, member_p_json, spread,
         class_probs_json, quality_json, width, height, cam_png) = row
        quality = None
        if quality_json is not None:
            q = json.loads(quality_json)
            quality = QualityReport(**{**q, "flags": tuple(q.get("flags", ()))})
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
            cam=None if cam_png is None else decode_cam(bytes(cam_png)),
            from_store=from_store,
        )

    # -- review queue and reviews ------------------------------------------------------------

    def queue(self, include_reviewed: bool = False) -> list[QueueItem]:
        """Uncertain and suspicious results, oldest first; by default only those not yet reviewed."""
        where = "" if include_reviewed else " WHERE NOT EXISTS (SELECT 1 FROM reviews v WHERE v.result_id = q.result_id)"
        rows = self._read(
            "SELECT q.result_id, r.path, r.sha256, r.decision, r.p_melanoma, r.reason, q.queued_at,"
            " v.id, v.reviewer, v.decision, v.note, v.created"
            " FROM review_queue q JOIN results r ON r.id = q.result_id"
            " LEFT JOIN reviews v ON v.id = (SELECT max(id) FROM reviews WHERE result_id = q.result_id)"
            f"{where} ORDER BY q.queued_at, q.result_id",
        )
        return [
            QueueItem(
                result_id=int(r[0]),
                path=r[1],
                sha256=r[2],
                decision=Decision(r[3]),
                p_melanoma=r[4],
                reason=r[5],
                queued_at=r[6],
                last_review=None if r[7] is None else Review(int(r[7]), int(r[0]), r[8], r[9], r[10], r[11]),
            )
            for r in rows
        ]

    def add_review(self, result_id: int, reviewer: str, decision: str, note: str = "") -> Review:
        """Appends a review; earlier reviews of the case stay as they were."""
        reviewer = (reviewer or "").strip()
        if not reviewer:
            raise ValueError("a review needs the reviewer's name or initials")
        if decision not in REVIEW_DECISIONS:
            raise ValueError(f"review decision must be one of {', '.join(REVIEW_DECISIONS)}; got {decision!r}")
        now = utc_now()
        with self._write() as c:
            if c.execute("SELECT 1 FROM results WHERE id = ?", (result_id,)).fetchone() is None:
                raise ValueError(f"there is no screening result with id {result_id} in {self.path}")
            review_id = c.execute(
                "INSERT INTO reviews (result_id, reviewer, decision, note, created) VALUES (?, ?, ?, ?, ?)",
                (result_id, reviewer, decision, note or "", now),
            ).lastrowid
        return Review(int(review_id), result_id, reviewer, decision, note or "", now)

    def history(self, result_id: int) -> list[Review]:
        """Every review of a case, oldest first."""
        rows = self._read(
            "SELECT id, result_id, reviewer, decision, note, created FROM reviews WHERE result_id = ? ORDER BY id",
            (result_id,),
        )
        return [Review(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in rows]
