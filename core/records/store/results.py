"""Screening results: one row per (image, result key), errors per run and path, each linked to the runs
that saw it; a result that needs review is queued as it is stored (core.records.store.reviews reads the queue).

An image is identified by the SHA-256 of its bytes. A result is kept once per (sha256, result key =
models + gate settings, `Screener.result_key`): screening the same image again with the same models and
gate reuses the stored row and never queues it twice. Error results ("error": unreadable, not an image)
are kept per run and per path, because a later run may well succeed. One transaction per result (result
row, run link, queue entry): re-adding the same results (resume) changes nothing already committed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from core.decision.results import Decision, QualityReport, ScreeningResult
from core.records.store.clock import utc_now
from core.records.store.connection import StoreConnection, json_text
from core.records.store.images import decode_cam, encode_cam

# Columns read back into a ScreeningResult, in the order `result_from_row` unpacks them.
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
_INSERT_RESULT = (
    "INSERT INTO results (sha256, result_key, first_run_id, path, status, decision, reason,"
    " p_melanoma, member_p_json, spread, class_probs_json, quality_json, width, height, cam_png,"
    " thumbnail_jpeg, created, p_malignant, likely_class, malignant_class, band, details,"
    " ood_score, intake, named_cam_class, named_cam_png)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class RunEntry:
    """One row of a run's results table."""

    result_id: int
    position: int  # 1, 2, ... in the order the run added them
    result: ScreeningResult  # path is this run's path; from_store is True if an earlier run made it


def _result_select(prefix: str = "", with_cam: bool = True) -> str:
    maps = ("cam_png", "named_cam_png")
    return ", ".join("NULL" if (c in maps and not with_cam) else prefix + c for c in _RESULT_COLUMNS)


def result_from_row(row: Sequence, from_store: bool) -> ScreeningResult:
    """A ScreeningResult from the columns of `_result_select`, heat maps decoded."""
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


def _check_storable(result: ScreeningResult) -> None:
    if result.status not in ("ok", "error"):
        raise ValueError(f"result status must be 'ok' or 'error', got {result.status!r} for {result.path}")
    if result.ok and (not result.sha256 or result.decision is None):
        raise ValueError(f"a good result needs its sha256 and a decision: {result.path}")


def _insert_values(run_id: int, result: ScreeningResult, result_key: str, thumbnail: bytes | None, now: str) -> tuple:
    """The values of `_INSERT_RESULT`, heat maps encoded (outside the transaction: keeps the write lock short)."""
    cam_png = encode_cam(result.cam) if (result.ok and result.cam is not None) else None
    named_class = result.named_cam_class if (cam_png is not None and result.named_cam is not None) else ""
    # the positive class named: its map is cam_png already (stored once)
    named_png = encode_cam(result.named_cam) if named_class and result.named_cam is not result.cam else None  # type: ignore[arg-type]  # named_class is set only with a named map
    decision = None if result.decision is None else Decision(result.decision).value
    quality = None if result.quality is None else json_text(asdict(result.quality))
    return (
        result.sha256,
        result_key,
        run_id,
        result.path,
        result.status,
        decision,
        result.reason,
        result.p_melanoma,
        json_text(list(result.member_p)),
        result.spread,
        json_text(result.class_probs),
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
    )


def _link_to_run(c: sqlite3.Connection, run_id: int, path: str, result_id: int, linked, now: str) -> None:
    """The run's row for `path`: a new one at the end, or (a retried file) the good result takes the
    error's place and position, and the error row goes when no run links it any more."""
    if linked is None:
        c.execute(
            "INSERT INTO run_items (run_id, path, result_id, position, added) VALUES"
            " (?, ?, ?, (SELECT coalesce(max(position), 0) + 1 FROM run_items WHERE run_id = ?), ?)",
            (run_id, path, result_id, run_id, now),
        )
        return
    old_error = int(linked[0])
    c.execute(
        "UPDATE run_items SET result_id = ?, added = ? WHERE run_id = ? AND path = ?",
        (result_id, now, run_id, path),
    )
    c.execute(
        "DELETE FROM results WHERE id = ? AND NOT EXISTS (SELECT 1 FROM run_items WHERE result_id = ?)",
        (old_error, old_error),
    )


def _queue_if_new(c: sqlite3.Connection, result: ScreeningResult, result_id: int, now: str) -> None:
    """Queue a result that needs review, unless its image (same sha256) was reviewed already: the review follows it."""
    if not result.ok or not Decision(result.decision).needs_review:  # type: ignore[arg-type]  # ok: a decision is set
        return
    reviewed = c.execute(
        "SELECT 1 FROM reviews v JOIN results r ON r.id = v.result_id WHERE r.sha256 = ? LIMIT 1",
        (result.sha256,),
    ).fetchone()
    if reviewed is None:
        c.execute("INSERT OR IGNORE INTO review_queue (result_id, queued_at) VALUES (?, ?)", (result_id, now))


class ResultRecords(StoreConnection):
    """The results table, its links to runs, and the queue entry a stored result may need."""

    def add_result(self, run_id: int, result: ScreeningResult, result_key: str, thumbnail: bytes | None = None) -> int:
        """Stores one result of a run in one transaction; returns the result's id.

        A good result reuses the stored row for (sha256, result_key) when there is one.
        Results that need review are queued once, unless the image (same sha256) already has a
        review from an earlier screening: its review follows it instead. Adding the same run + path again returns the
        id already linked and changes nothing, except that a good result replaces an error
        recorded for that path earlier in the same run (a retried file).
        """
        _check_storable(result)
        now = utc_now()
        values = _insert_values(run_id, result, result_key, thumbnail, now)
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
            row = None
            if result.ok:
                row = c.execute(
                    "SELECT id FROM results WHERE sha256 = ? AND result_key = ? AND status = 'ok'",
                    (result.sha256, result_key),
                ).fetchone()
            result_id = int(row[0]) if row is not None else int(c.execute(_INSERT_RESULT, values).lastrowid)  # type: ignore[arg-type]  # set after an INSERT
            _link_to_run(c, run_id, result.path, result_id, linked, now)
            _queue_if_new(c, result, result_id, now)
            return result_id

    def find_result(self, sha256: str, result_key: str) -> ScreeningResult | None:
        """The stored good result of this image with these models and gate (from_store=True), or None."""
        rows = self._read(
            f"SELECT {_result_select()} FROM results WHERE sha256 = ? AND result_key = ? AND status = 'ok'",
            (sha256, result_key),
        )
        return result_from_row(rows[0], from_store=True) if rows else None

    def result_id_for(self, sha256: str, result_key: str) -> int | None:
        rows = self._read(
            "SELECT id FROM results WHERE sha256 = ? AND result_key = ? AND status = 'ok'",
            (sha256, result_key),
        )
        return int(rows[0][0]) if rows else None

    def get_result(self, result_id: int) -> ScreeningResult | None:
        """The stored result (path: where it was first seen; from_store=True), or None."""
        rows = self._read(f"SELECT {_result_select()} FROM results WHERE id = ?", (result_id,))
        return result_from_row(rows[0], from_store=True) if rows else None

    def first_run_of(self, result_id: int) -> int | None:
        """The id of the run that made the result, or None when there is no such result."""
        rows = self._read("SELECT first_run_id FROM results WHERE id = ?", (result_id,))
        return int(rows[0][0]) if rows else None

    def good_results_of_images(self, sha256s: Sequence[str]) -> list[tuple[int, str, str]]:
        """(result id, result key, created) of every good result of these images, by id within each
        500 images (SQLite's parameter limit)."""
        rows = self._read_chunked(
            "SELECT id, result_key, created FROM results WHERE status = 'ok' AND sha256 IN ({marks}) ORDER BY id",
            list(sha256s),
        )
        return [(int(rid), key, created) for rid, key, created in rows]

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
            res = result_from_row(rest, from_store=first_run_id != run_id)
            entries.append(RunEntry(result_id=int(rest[0]), position=int(position), result=replace(res, path=path)))
        return entries

    def run_results(self, run_id: int, with_cam: bool = True) -> list[ScreeningResult]:
        """A run's results in the order added, errors included; path is this run's path."""
        return [e.result for e in self.run_entries(run_id, with_cam=with_cam)]
