"""The review queue and the clinicians' reviews.

Reviews are append-only: triggers in the database refuse UPDATE and DELETE on them, so no code path
(ours or a stray SQL tool) can rewrite a clinician's review. Reviews follow the image: a review is stored
against one result, but the history of a case is every review of any result of the same image (sha256),
so screening it again with another confidence or another bundle shows the earlier reviews and does not
queue it as new.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.decision.results import Decision
from core.decision.vocabulary import (
    DEFAULT_FOLLOW_UP_MONTHS,
    MAX_FOLLOW_UP_MONTHS,
    REVIEW_CODES,
    review_choice,
    review_words,
)
from core.records.store.clock import utc_now
from core.records.store.connection import StoreConnection

REVIEW_DECISIONS = REVIEW_CODES  # what a new review may say (core.decision.vocabulary.REVIEW_CHOICES)
_REVIEW_COLUMNS = "v.id, v.result_id, v.reviewer, v.decision, v.note, v.created, v.follow_up_months, r.sha256"
# Most urgent first: p(malignant) (old rows without it: p(melanoma)), unscored last.
_RISK_ORDER = "coalesce(r.p_malignant, r.p_melanoma) IS NULL, coalesce(r.p_malignant, r.p_melanoma) DESC, r.id"
# One entry per image: screening it again (another confidence or bundle) queues a newer result of the same
# picture, which replaces the older entry in the list instead of standing beside it. And the latest run that
# saw the image decides whether it is listed at all: a run at another confidence that clears it (issue 24:
# the confidence re-applied) takes it off the list.
_QUEUE_WHERE = (
    " WHERE q.result_id = (SELECT MAX(q3.result_id) FROM review_queue q3 JOIN results r3"
    " ON r3.id = q3.result_id WHERE r3.sha256 = r.sha256)"
    " AND (SELECT r4.decision FROM run_items i4 JOIN results r4 ON r4.id = i4.result_id"
    " WHERE r4.sha256 = r.sha256 AND r4.status = 'ok' ORDER BY i4.run_id DESC, r4.id DESC LIMIT 1)"
    " != 'benign'"
    # A picture the intake check calls not dermoscopy is not a patient's case: it is listed as an
    # image to check (core.decision.vocabulary.NOT_DERMOSCOPY), never in the review queue.
    " AND coalesce(r.intake, '') != 'not_dermoscopy'"
)
_NOT_REVIEWED = (
    " AND NOT EXISTS (SELECT 1 FROM reviews v2 JOIN results r2 ON r2.id = v2.result_id WHERE r2.sha256 = r.sha256)"
)


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


def _review(row: Sequence) -> Review:
    rid, result_id, reviewer, decision, note, created, months, sha = row
    return Review(
        int(rid), int(result_id), reviewer, decision, note, created, None if months is None else int(months), sha
    )


def _follow_up_months(decision: str, follow_up_months: int | None) -> int | None:
    """The months a review keeps: "monitor" takes follow_up_months (DEFAULT_FOLLOW_UP_MONTHS when not given),
    other choices none; ValueError says what is wrong."""
    if review_choice(decision).asks_months:
        months = DEFAULT_FOLLOW_UP_MONTHS if follow_up_months is None else follow_up_months
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_FOLLOW_UP_MONTHS:
            raise ValueError(
                f"follow-up must be a whole number of months from 1 to {MAX_FOLLOW_UP_MONTHS}, got {follow_up_months!r}"
            )
        return months
    if follow_up_months is not None:
        raise ValueError(f"only a 'monitor' review takes a follow-up interval, not {decision!r}")
    return None


class ReviewRecords(StoreConnection):
    """The review queue (filled as results are stored) and the append-only reviews."""

    def queue(self, include_reviewed: bool = False) -> list[QueueItem]:
        """Review and suspicious results, highest p(malignant) first, one per image (its latest queued
        result); by default only images not yet reviewed (a review of the same image under another
        result counts: reviews follow it)."""
        where = _QUEUE_WHERE if include_reviewed else _QUEUE_WHERE + _NOT_REVIEWED
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
        rows = self._read_chunked(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews v JOIN results r ON r.id = v.result_id"
            " WHERE r.sha256 IN ({marks}) ORDER BY v.id",
            sorted({s for s in sha256s if s}),
        )
        return {row[7]: _review(row) for row in rows}  # ascending ids: the last one wins

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
        months = _follow_up_months(decision, follow_up_months)
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

    def reviews_with_paths(self) -> list[tuple[Review, str]]:
        """Every review, oldest first, with the path of the result it was given to."""
        rows = self._read(
            "SELECT v.id, v.result_id, v.reviewer, v.decision, v.note, v.created, v.follow_up_months, r.sha256, r.path"
            " FROM reviews v JOIN results r ON r.id = v.result_id ORDER BY v.id"
        )
        return [(_review(row[:8]), row[8]) for row in rows]
