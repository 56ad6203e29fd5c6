"""What a command opens: the model bundle (with the publishers it trusts) and the results database."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.terminal import printable
from core import (
    Bundle,
    BundleError,
    OutputPathError,
    StoreError,
    check_output_file,
    default_bundle_path,
    default_database_path,
    load_bundle,
)


def add_trust_options(parser: argparse.ArgumentParser) -> None:
    """--trust-key and --allow-unsigned, for every command that loads a bundle."""
    parser.add_argument(
        "--trust-key",
        action="append",
        metavar="FILE",
        help="also trust this publisher public key (.pub file or folder of them); repeatable",
    )
    parser.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="accept an unsigned or untrusted bundle (research only; output says 'unsigned')",
    )


def _trust(args):
    """Trusted signers: the project's and the user's keys plus --trust-key; --allow-unsigned for research."""
    from core import Trust

    return Trust.default(getattr(args, "trust_key", None) or (), allow_unsigned=getattr(args, "allow_unsigned", False))


def trust_line(bundle: Bundle) -> str:
    text = f"UNSIGNED BUNDLE ({bundle.trust_note}): research use only" if bundle.unsigned else bundle.trust_text
    return printable(text)


def load_bundle_or_default(path: str | None, args=None, verify: bool = True) -> Bundle:
    if path:
        return load_bundle(path, verify=verify, trust=_trust(args))
    default = default_bundle_path()
    if not (default / "manifest.json").exists():
        raise BundleError(
            "no default model bundle is installed with this copy of MelaScreen; pass --bundle PATH", str(default)
        )
    return load_bundle(default, verify=verify, trust=_trust(args))


def check_results_store(db: Path) -> None:
    """The results database, checked before the bundle loads (~20 s) without writing to it: its folder
    (and the file, if it exists) can be written, and an existing file passes SQLite's quick_check, is a
    MelaScreen store and not of a newer MelaScreen. It is opened for writing (created, upgraded) only
    once the bundle has loaded, so a command refused before leaves the file as it was."""
    from core import ReviewStore

    try:
        check_output_file(db, "--db")
    except OutputPathError as exc:
        raise StoreError(str(exc)) from None
    if db.exists():
        ReviewStore.open(db, read_only=True).close()


def open_store(args):
    from core import ReviewStore

    db = Path(args.db) if args.db else default_database_path()
    if not db.exists():
        raise StoreError(f"no results database at {db}: screen a folder first or pass --db")
    return ReviewStore.open(db)


def open_store_for_reading(args):
    """For commands that only list or report: works on a read-only file or folder, and changes nothing."""
    from core import ReviewStore

    db = Path(args.db).expanduser() if args.db else default_database_path()
    if not db.exists():
        raise StoreError(f"no results database at {db}: screen a folder first or pass --db")
    return ReviewStore.open_for_reading(db)
