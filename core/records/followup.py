"""Follow-up that comes back: which lesions are due to be seen again ("monitor, 6 months").

A lesion is due when its latest review says "monitor" and the interval, counted from the visit of the
reviewed picture (or the review's day when the visit date is unknown), runs out by the cut-off: the end
of this month unless a date is given. A lesion seen again since (a later visit) is not due: its new
pictures are in the review queue instead. An image filed under no patient stands for its own lesion.

The CLI (`melascreen review due [--before DATE] [--csv FILE]`) and the app's Follow-up tab both read
`due_follow_ups`, and both export with `write_follow_up_csv`.
"""

from __future__ import annotations

import calendar
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from core.decision.vocabulary import review_choice
from core.records.patients import identities_of
from core.records.store import ReviewStore, _review

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
    rows = store._read(
        "SELECT v.id, v.result_id, v.reviewer, v.decision, v.note, v.created, v.follow_up_months, r.sha256, r.path"
        " FROM reviews v JOIN results r ON r.id = v.result_id ORDER BY v.id"
    )
    latest: dict[str, tuple] = {}  # sha256 -> (review, path): the image's latest review
    for row in rows:
        latest[row[7]] = (_review(row[:8]), row[8])
    ids = identities_of(store, list(latest))
    by_lesion: dict[tuple, tuple] = {}  # the lesion's latest review over all its pictures
    for sha, (review, path) in latest.items():
        a = ids.get(sha)
        key = ("lesion", a.lesion_key) if a else ("image", sha)
        if key not in by_lesion or review.id > by_lesion[key][0].id:
            by_lesion[key] = (review, path, a)
    last_visits = _last_visits(store, [k[1] for k in by_lesion if k[0] == "lesion"])
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


def _last_visits(store: ReviewStore, lesion_keys: Sequence[int]) -> dict[int, date]:
    found: dict[int, date] = {}
    keys = sorted(set(lesion_keys))
    for i in range(0, len(keys), 500):
        chunk = keys[i : i + 500]
        rows = store._read(
            f"SELECT lesion_id, max(visit_date) FROM visits WHERE lesion_id IN ({', '.join('?' * len(chunk))})"
            " GROUP BY lesion_id",
            chunk,
        )
        found.update((int(k), date.fromisoformat(d)) for k, d in rows if d)
    return found


def follow_up_row(f: FollowUp, today: date) -> dict[str, str]:
    from core.records.report import spreadsheet_safe

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
    from core.common.paths import atomic_target

    today = today or date.today()
    path = Path(path)
    with atomic_target(path, private=private) as temp:
        with open(temp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FOLLOW_UP_COLUMNS)
            writer.writeheader()
            writer.writerows(follow_up_row(item, today) for item in items)
    return path


# -- the command line ----------------------------------------------------------------------------


def _date_arg(text: str) -> date:
    import argparse

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-12-31") from None


def add_due_command(review_sub, open_store) -> None:
    """`review due [--before DATE] [--csv FILE]` under the CLI's `review` command."""

    def cmd(args) -> int:
        today = date.today()
        with open_store(args) as store:
            items = due_follow_ups(store, args.before, today)
        if args.csv:
            write_follow_up_csv(items, args.csv, today)
        cutoff = args.before or end_of_month(today)
        if not items:
            print(f"no lesion is due for follow-up by {cutoff.isoformat()}")
        for f in items:
            who = f.patient_id or "no patient"
            lesion = f" lesion {f.lesion_label}" if f.lesion_label else ""
            site = f" ({f.body_site})" if f.body_site else ""
            last = f", last visit {f.last_visit.isoformat()}" if f.last_visit else ""
            late = "  OVERDUE" if f.overdue(today) else ""
            print(
                f"{f.due.isoformat()}{late}  {who}{lesion}{site}{last}: monitor, follow up after {f.months} "
                f"month{'s' if f.months != 1 else ''} "
                f"(reviewed {f.reviewed.isoformat()} by {f.reviewer})  {f.path}"
            )
        return 0

    p = review_sub.add_parser("due", help="lesions due for follow-up (monitor interval run out or ending this month)")
    p.add_argument(
        "--before",
        type=_date_arg,
        default=None,
        help="list what is due on or before this date (default: the end of this month)",
    )
    p.add_argument("--csv", metavar="FILE", default=None, help="also write the list as a CSV")
    p.add_argument("--db", help="results database (default: the one screening writes)")
    p.set_defaults(func=cmd)
