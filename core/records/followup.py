"""Follow-up that comes back: which lesions are due to be seen again ("monitor, 6 months").

A lesion is due when its latest review says "monitor" and the interval, counted from the visit of the
reviewed picture (or the review's day when the visit date is unknown), runs out by the cut-off: the end
of this month unless a date is given. A lesion seen again since (a later visit) is not due: its new
pictures are in the review queue instead. An image filed under no patient stands for its own lesion.

The CLI (`melascreen review due [--before DATE] [--csv FILE]`, cli/review.py) and the app's Follow-up tab both read
`due_follow_ups`, and both export with `write_follow_up_csv`.
"""

from __future__ import annotations

import calendar
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from core.common.paths import atomic_target
from core.decision.vocabulary import review_choice
from core.records.patients import identities_of
from core.records.spreadsheet import spreadsheet_safe
from core.records.store import ReviewStore

FOLLOW_UP_COLUMNS = (
    "due",
    "overdue",
    "patient_id",
    "lesion_id",
    "body_site",
    "last_visit",
    "months",
    "reviewer",
    "reviewed",
    "file",
    "sha256",
)


@dataclass(frozen=True)
class FollowUp:
    due: date
    patient_id: str  # "" when the image is filed under no patient
    lesion_label: str
    body_site: str | None
    last_visit: date | None
    months: int
    reviewer: str
    reviewed: date  # the day of the "monitor" review (local time)
    path: str  # the reviewed picture
    sha256: str
    result_id: int

    def overdue(self, today: date) -> bool:
        return self.due < today


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it is shorter (31 Jan + 1 = 28/29 Feb)."""
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def end_of_month(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _review_day(stamp: str) -> date:
    return datetime.fromisoformat(stamp).astimezone().date()


def due_follow_ups(store: ReviewStore, before: date | None = None, today: date | None = None) -> list[FollowUp]:
    """Lesions whose "monitor" interval has run out or runs out by `before` (inclusive; default: the end
    of `today`'s month), earliest due first."""
    today = today or date.today()
    cutoff = before or end_of_month(today)
    latest: dict[str, tuple] = {}  # sha256 -> (review, path): the image's latest review
    for review, path in store.reviews_with_paths():
        latest[review.sha256] = (review, path)  # type: ignore[index]  # a review's result has a sha256
    ids = identities_of(store, list(latest))
    by_lesion: dict[tuple, tuple] = {}  # the lesion's latest review over all its pictures
    for sha, (review, path) in latest.items():
        a = ids.get(sha)
        key = ("lesion", a.lesion_key) if a else ("image", sha)
        if key not in by_lesion or review.id > by_lesion[key][0].id:
            by_lesion[key] = (review, path, a)
    last_visits = store.last_visit_dates([k[1] for k in by_lesion if k[0] == "lesion"])
    out = []
    for key, (review, path, a) in by_lesion.items():
        if not review_choice(review.decision).asks_months or not review.follow_up_months:
            continue
        base = (a.visit_date if a and a.visit_date else None) or _review_day(review.created)
        last = last_visits.get(key[1]) if a else None  # type: ignore[arg-type]  # with an identity the key holds the lesion id (int)
        if last is not None and last > base:
            continue  # seen again since: the new pictures wait in the review queue
        due = add_months(base, review.follow_up_months)
        if due > cutoff:
            continue
        out.append(
            FollowUp(
                due=due,
                patient_id=a.patient_id if a else "",
                lesion_label=(a.lesion_label if a else ""),
                body_site=a.body_site if a else None,
                last_visit=last if a else None,
                months=review.follow_up_months,
                reviewer=review.reviewer,
                reviewed=_review_day(review.created),
                path=path,
                sha256=review.sha256 or "",
                result_id=review.result_id,
            )
        )
    out.sort(key=lambda f: (f.due, f.patient_id, f.lesion_label))
    return out


def follow_up_row(f: FollowUp, today: date) -> dict[str, str]:
    row = {
        "due": f.due.isoformat(),
        "overdue": "yes" if f.overdue(today) else "",
        "patient_id": f.patient_id or "no patient",
        "lesion_id": f.lesion_label,
        "body_site": f.body_site or "",
        "last_visit": f.last_visit.isoformat() if f.last_visit else "",
        "months": str(f.months),
        "reviewer": f.reviewer,
        "reviewed": f.reviewed.isoformat(),
        "file": f.path,
        "sha256": f.sha256,
    }
    return {k: spreadsheet_safe(v) for k, v in row.items()}


def write_follow_up_csv(
    items: Sequence[FollowUp], path: str | Path, today: date | None = None, *, private: bool = True
) -> Path:
    """The follow-up list as a CSV, written whole or not at all, private to the user unless `private=False`."""
    today = today or date.today()
    path = Path(path)
    with atomic_target(path, private=private) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FOLLOW_UP_COLUMNS)
            writer.writeheader()
            writer.writerows(follow_up_row(item, today) for item in items)
    return path
