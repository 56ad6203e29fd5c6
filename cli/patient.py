"""The command line's patient parts: `screen --sidecar/--layout`, `review list --patient`, `report --patient`.

Kept beside cli/main.py so that the main command line only wires them in.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.terminal import printable
from core import LAYOUTS, SIDECAR_NAME, IdentitySettings, default_database_path


def add_screen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sidecar",
        metavar="FILE",
        help=f"CSV naming each file's patient_id, lesion_id, body_site, visit_date (default: FOLDER/{SIDECAR_NAME} "
        "if present)",
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="none",
        help="patient-visit: sub-folders are PATIENT/[VISIT_DATE/][LESION/]image (screened recursively); "
        "DICOM files carry their own patient id and date",
    )


def identity_settings(args) -> IdentitySettings:
    sidecar = getattr(args, "sidecar", None)
    if sidecar and not Path(sidecar).is_file():
        raise ValueError(f"the sidecar file {printable(sidecar)} does not exist")
    return IdentitySettings(sidecar=Path(sidecar) if sidecar else None, layout=getattr(args, "layout", "none"))


def print_identity_issues(summary, identities: dict, stream=None) -> None:
    """Every intake issue on its own line, then how many files were filed under patients."""
    stream = stream or sys.stderr
    for issue in summary.intake_issues:
        print(f"intake: {printable(issue)}", file=stream)
    patients = {a.patient_id for a in identities.values()}
    if identities or summary.intake_issues:
        print(
            f"patients: {len(identities)} images filed under {len(patients)} patients; "
            f"{len(summary.intake_issues)} intake issues",
            file=stream,
        )


def cmd_report(args) -> int:
    from core import ReviewStore, StoreError, write_patient_report

    db = Path(args.db) if args.db else default_database_path()
    if not db.exists():
        raise StoreError(f"no results database at {db}: screen a folder first or pass --db")
    with ReviewStore.open_for_reading(db) as store:  # a report changes nothing: a read-only file will do
        out = write_patient_report(
            store, args.patient, args.out, getattr(args, "pdf_writer", None), args.reviewer, summary=args.summary
        )
    print(f"report for patient {printable(args.patient)} written: {printable(out)}")
    return 0


def add_report_command(sub) -> argparse.ArgumentParser:
    rp = sub.add_parser("report", help="one patient's report: lesions, visits, decisions (PDF, HTML or CSV)")
    rp.add_argument("--patient", required=True, help="the clinic's patient id")
    rp.add_argument("--out", required=True, help="FILE.pdf (needs the desktop app's PySide6), FILE.html or FILE.csv")
    rp.add_argument("--reviewer", default="", help="who makes the report (printed on it)")
    rp.add_argument("--summary", default="", help="the clinician's summary, printed on the report")
    rp.add_argument("--db", help=f"results database (default: {default_database_path()})")
    rp.set_defaults(func=cmd_report)
    return rp
