"""The `melascreen` argument parser: each command's module registers its own sub-command."""

from __future__ import annotations

import argparse

from cli.bundle import add_bundle_commands
from cli.evidence import add_evidence_commands
from cli.exits import EXIT_CODES_HELP
from cli.patient import add_report_command
from cli.review import add_review_commands
from cli.runs import add_runs_command
from cli.screen import add_screen_command
from core import DISCLAIMER


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="melascreen",
        description=f"Melanoma screening of dermoscopy images. {DISCLAIMER}",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    add_screen_command(sub)
    add_review_commands(sub)  # review list / show / decide / due (cli/review.py)
    add_runs_command(sub)
    add_report_command(sub)  # one patient's report (cli/patient.py)
    add_evidence_commands(sub)  # outcome add / import, audit (cli/evidence.py)
    add_bundle_commands(sub)  # bundle info / verify (cli/bundle.py)
    return p
