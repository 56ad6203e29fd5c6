"""`melascreen outcome add|import|list` and `melascreen audit`: the clinic's confirmed diagnoses and its audit."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from cli.opening import load_bundle_or_default, open_store
from cli.terminal import printable
from core import (
    DIAGNOSES,
    METHODS,
    EvidenceError,
    add_confirmed,
    atomic_target,
    check_output_file,
    default_database_path,
    image_of_file,
    import_csv,
    lesion_key,
)


def cmd_outcome_add(args) -> int:
    with open_store(args) as store:
        try:
            target: dict[str, Any]
            if args.file:
                target = {"sha256": image_of_file(store, args.file)}
            elif args.lesion and args.patient:
                target = {"lesion": lesion_key(store, args.patient, args.lesion)}
            else:
                print("error: give --file PATH, or --patient ID with --lesion LABEL", file=sys.stderr)
                return EXIT_USAGE
            c = add_confirmed(
                store, args.diagnosis, args.method, args.by, confirmed_on=args.date, note=args.note, **target
            )
        except EvidenceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    print(f"recorded: {c.words}, entered by {c.entered_by} (confirmation {c.id})")
    return EXIT_OK


def cmd_outcome_import(args) -> int:
    with open_store(args) as store:
        report = import_csv(store, args.csv, args.by)
    for p in report.problems:
        print(f"error: {printable(args.csv)}, {printable(p)}", file=sys.stderr)
    print(
        f"imported {len(report.imported)} confirmed diagnoses from {printable(args.csv)}"
        + (f"; {len(report.problems)} rows not imported (listed above)" if report.problems else "")
    )
    return EXIT_FAILURE if report.problems else EXIT_OK


def cmd_audit(args) -> int:
    from core import audit_html, run_audit, write_audit_csv

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".csv", ".pdf"):
        print(f"error: --out must end in .html, .csv or .pdf, got {printable(out.name)}", file=sys.stderr)
        return EXIT_USAGE
    if suffix == ".pdf" and getattr(args, "pdf_writer", None) is None:
        print(
            "error: PDF needs the desktop's writer (run `melascreen` from the app install); use .html", file=sys.stderr
        )
        return EXIT_USAGE
    check_output_file(str(out), "--out")
    try:
        since = date.fromisoformat(args.since) if args.since else None
    except ValueError:
        print(f"error: --since {printable(args.since)} is not a date such as 2026-11-30", file=sys.stderr)
        return EXIT_USAGE
    try:
        bundle = load_bundle_or_default(args.bundle, args, verify=False)
    except Exception as exc:  # the audit stands without it: only the what-if and claimed columns need it
        print(f"note: no bundle for the what-if table ({printable(exc)})", file=sys.stderr)
        bundle = None
    with open_store(args) as store:
        audit = run_audit(store, bundle, since)
    if suffix == ".csv":
        write_audit_csv(audit, out)
    elif suffix == ".pdf":
        args.pdf_writer(audit_html(audit), str(out))
    else:
        with atomic_target(out) as temp:
            Path(temp).write_text(audit_html(audit), encoding="utf-8")
    for g, c in audit.missed:
        print(
            f"CLEARED MALIGNANCY: patient {printable(c.patient or '-')}, lesion {printable(c.lesion or '-')}, "
            f"{c.when}: {c.confirmed.diagnosis} ({printable(c.result.path)}; {g.bundle}, confidence {g.confidence})"
        )
    for g in audit.groups:
        f = g.figures
        auc = f["malignant_auc"]
        print(
            f"{g.bundle}, confidence {g.confidence}: {g.verdict}; {f['malignant_cleared_n']} malignancies and "
            f"{f['benign_cleared_n']} benign lesions cleared; p(malignant) AUC "
            + (f"{auc:.3f} ({f['malignant_auc_ci95'][0]:.3f}-{f['malignant_auc_ci95'][1]:.3f})" if auc == auc else "-")
        )
    if not audit.groups:
        print("no confirmed case has been screened yet: nothing to audit")
    print(f"audit written to {printable(out)}")
    return EXIT_OK


def add_evidence_commands(sub) -> None:
    """Registers `outcome` and `audit` on the melascreen parser's subcommands."""
    o = sub.add_parser("outcome", help="confirmed diagnoses (what lesions turned out to be)")
    osub = o.add_subparsers(dest="outcome_command", required=True)
    oa = osub.add_parser("add", help="record one confirmed diagnosis (appended, never overwritten)")
    oa.add_argument("--file", help="the screened picture it confirms")
    oa.add_argument("--patient", help="the patient's id (with --lesion)")
    oa.add_argument("--lesion", help="the clinic's lesion id (every picture of the lesion)")
    oa.add_argument("--diagnosis", required=True, help=f"one of {', '.join(DIAGNOSES)}")
    oa.add_argument("--method", required=True, choices=tuple(METHODS), help="how it was confirmed")
    oa.add_argument("--date", default=None, help="date of confirmation, e.g. 2026-11-30")
    oa.add_argument("--by", required=True, help="who enters it (name or initials)")
    oa.add_argument("--note", default="")
    oa.set_defaults(func=cmd_outcome_add)
    oi = osub.add_parser(
        "import",
        help="import a CSV: diagnosis, method, date and a lesion (with patient), file or image column; "
        "every bad row is reported with its line, the rest imported",
    )
    oi.add_argument("csv")
    oi.add_argument("--by", required=True, help="who enters them (a row's entered_by column wins)")
    oi.set_defaults(func=cmd_outcome_import)
    a = sub.add_parser(
        "audit",
        help="how the gate did on this clinic's confirmed cases (cleared malignancies first)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    a.add_argument("--out", required=True, help="FILE.html, FILE.csv or FILE.pdf")
    a.add_argument("--since", default=None, help="only results made since this date (e.g. 2026-01-01)")
    a.add_argument("--bundle", help="the bundle that made the results (default: the installed one)")
    a.add_argument("--allow-unsigned", action="store_true", help="accept an unsigned bundle (research only)")
    a.set_defaults(func=cmd_audit)
    for q in (oa, oi, a):
        q.add_argument("--db", help=f"results database (default: {default_database_path()})")
