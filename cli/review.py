"""`melascreen review list|show|decide|due`: the review queue, one case with its history, a clinician's
decision (appended, never overwritten), and the lesions due for follow-up."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from cli.opening import open_store, open_store_for_reading
from cli.terminal import printable
from core import (
    DEFAULT_FOLLOW_UP_MONTHS,
    REVIEW_CHOICES,
    REVIEW_CODES,
    class_name,
    default_database_path,
    outcome_label,
    risk_probability,
)


def cmd_review_list(args) -> int:
    from core import local_time, patient_queue

    with open_store_for_reading(args) as store:
        if args.patient:
            items = patient_queue(store, args.patient, include_reviewed=args.all)
        else:
            items = store.queue(include_reviewed=args.all)
    if not items:
        print("the review queue is empty")
    for it in items:  # highest p(malignant) first, as the app's queue
        last = f" | reviewed: {it.last_review.words} by {it.last_review.reviewer}" if it.last_review else ""
        p = risk_probability(it)
        words = outcome_label(it.decision, it.malignant_class, it.band)
        likely = f"  {class_name(it.likely_class)} most likely" if it.likely_class else ""
        print(
            f"{it.result_id:6d}  {words:32s}  p(malignant)={'-' if p is None else f'{p:.3f}'}{likely}"
            f"  {local_time(it.queued_at)}  {printable(it.path)}{printable(last)}"
        )
    return EXIT_OK


def cmd_review_show(args) -> int:
    from core import local_time

    with open_store_for_reading(args) as store:
        r = store.get_result(args.id)
        if r is None:
            print(f"error: no result with id {args.id}", file=sys.stderr)
            return EXIT_FAILURE
        history = store.history(args.id)
    print(f"result {args.id}: {printable(r.path)}")
    words = outcome_label(r.decision, r.malignant_class, r.band) if r.ok else "not screened"
    print(f"  {words}: {printable(r.reason)}")
    if r.details:
        print(f"  details: {printable(r.details)}")
    if r.p_malignant is not None:
        print(f"  p(malignant) {r.p_malignant:.4f}; most likely {class_name(r.likely_class) or '-'}")
    if r.p_melanoma is not None:
        print(f"  p(melanoma) {r.p_melanoma:.4f}, member spread {r.spread:.4f}, members {list(r.member_p)}")
        top = sorted(r.class_probs.items(), key=lambda kv: -kv[1])
        print("  classes: " + printable(", ".join(f"{k} {v:.3f}" for k, v in top)))
    if r.quality and r.quality.flags:
        print(f"  quality flags: {printable(', '.join(r.quality.flags))}")
    print("  reviews:" if history else "  not reviewed yet")
    for h in history:
        note = f" - {printable(h.note)}" if h.note else ""
        print(f"    {local_time(h.created)}  {printable(h.reviewer)}: {h.words}{note}")
    return EXIT_OK


def cmd_review_decide(args) -> int:
    from core import local_time

    with open_store(args) as store:
        r = store.get_result(args.id)
        if r is not None and not r.ok:
            print(
                f"error: result {args.id} ({printable(r.path)}) could not be screened ({printable(r.reason)}), "
                "so it cannot be reviewed; fix or copy the file again and screen it",
                file=sys.stderr,
            )
            return EXIT_USAGE
        review = store.add_review(args.id, args.reviewer, args.decision, args.note or "", args.months)
    print(
        f"recorded: result {review.result_id} {review.words} by {printable(review.reviewer)} "
        f"at {local_time(review.created)}"
    )
    return EXIT_OK


def cmd_review_due(args) -> int:
    """The lesions due for follow-up by --before (default: the end of this month), optionally as a CSV."""
    from core import due_follow_ups, end_of_month, write_follow_up_csv

    today = date.today()
    with open_store_for_reading(args) as store:  # a listing: a read-only database will do
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
    return EXIT_OK


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2026-12-31") from None


def _add_db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help=f"results database (default: {default_database_path()})")


def add_review_commands(sub) -> None:
    """Registers `review list|show|decide|due` on the melascreen parser's subcommands."""
    r = sub.add_parser("review", help="the review queue")
    rsub = r.add_subparsers(dest="review_command", required=True)
    rl = rsub.add_parser("list", help="cases waiting for review, oldest first")
    rl.add_argument("--all", action="store_true", help="include cases already reviewed")
    rl.add_argument("--patient", metavar="ID", help="only this patient's cases")
    rl.set_defaults(func=cmd_review_list)
    _add_db_option(rl)
    rs = rsub.add_parser("show", help="one case with its review history")
    rs.add_argument("id", type=int)
    rs.set_defaults(func=cmd_review_show)
    _add_db_option(rs)
    rd = rsub.add_parser("decide", help="record a review decision (appended, never overwritten)")
    rd.add_argument("id", type=int)
    rd.add_argument(
        "--decision",
        required=True,
        choices=REVIEW_CODES,
        help="; ".join(f"{c.code}: {c.label}" for c in REVIEW_CHOICES),
    )
    rd.add_argument(
        "--months",
        type=int,
        default=None,
        help=f"monitor: follow up in this many months (default {DEFAULT_FOLLOW_UP_MONTHS})",
    )
    rd.add_argument("--reviewer", required=True)
    rd.add_argument("--note", default="")
    rd.set_defaults(func=cmd_review_decide)
    _add_db_option(rd)
    due = rsub.add_parser("due", help="lesions due for follow-up (monitor interval run out or ending this month)")
    due.add_argument(
        "--before",
        type=_date_arg,
        default=None,
        help="list what is due on or before this date (default: the end of this month)",
    )
    due.add_argument("--csv", metavar="FILE", default=None, help="also write the list as a CSV")
    due.add_argument("--db", help="results database (default: the one screening writes)")
    due.set_defaults(func=cmd_review_due)
