"""`melascreen runs`: the screening runs in the database, newest first."""

from __future__ import annotations

from cli.exits import EXIT_OK
from cli.opening import open_store_for_reading
from cli.terminal import printable
from core import default_database_path


def _run_signature(run) -> str:
    """'signed by key ...' or 'UNSIGNED BUNDLE', as the run recorded it (runs before the record: said so)."""
    from core import provenance_of_run

    if "bundle" not in (run.settings or {}):
        return "signature not recorded"
    return printable(provenance_of_run(run).signature_text)


def cmd_runs(args) -> int:
    from core import local_time, shown_status

    with open_store_for_reading(args) as store:
        runs = store.runs()
    if not runs:
        print("no runs yet")
    for run in runs:  # newest first; a run whose process was killed shows as interrupted
        c = run.counts
        print(
            f"{run.id:5d}  {shown_status(run.status, run.settings):11s}  {local_time(run.started)}  "
            f"{c.total} files, {c.error} errors  {printable(run.bundle_name)} {printable(run.bundle_version)} "
            f"({_run_signature(run)})  {printable(run.folder)}"
        )
    return EXIT_OK


def add_runs_command(sub) -> None:
    ru = sub.add_parser("runs", help="screening runs, newest first (a killed run shows as interrupted)")
    ru.set_defaults(func=cmd_runs)
    ru.add_argument("--db", help=f"results database (default: {default_database_path()})")
