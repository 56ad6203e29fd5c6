"""`melascreen screen FOLDER`: screen every image in a folder into the results database, with an
optional CSV report and heat maps; everything that can be refused is refused before the bundle loads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from cli.heatmaps import HeatMapWriter
from cli.opening import add_trust_options, check_results_store, load_bundle_or_default, trust_line
from cli.patient import add_screen_options, identity_settings, print_identity_issues
from cli.progress import ProgressLine
from cli.terminal import printable
from core import (
    DISCLAIMER,
    NOT_DERMOSCOPY,
    PROVIDER_CHOICES,
    Decision,
    StoreError,
    atomic_target,
    check_confidence,
    check_output_file,
    check_output_folder,
    default_database_path,
    outcome_words,
    provenance_of_bundle,
)


def add_screen_command(sub) -> argparse.ArgumentParser:
    s = sub.add_parser("screen", help="screen every image in a folder")
    s.add_argument("folder")
    s.add_argument("--bundle", help="model bundle folder or .zip (default: the bundle installed with MelaScreen)")
    s.add_argument("--db", help=f"results database (default: {default_database_path()})")
    s.add_argument("--report", help="write a CSV with one row per file")
    s.add_argument("--heatmaps", help="folder for Grad-CAM overlay PNGs")
    s.add_argument("--provider", choices=PROVIDER_CHOICES, default="auto")
    s.add_argument(
        "--engine",
        choices=("auto", "onnxruntime", "openvino"),
        default="auto",
        help="inference engine (auto: OpenVINO when installed and it reproduces onnxruntime, else onnxruntime)",
    )
    s.add_argument(
        "--precision",
        choices=("exact", "fast"),
        default="exact",
        help="exact: f32, checked against onnxruntime at load; fast: bf16 where the CPU supports it (OpenVINO)",
    )
    s.add_argument("--threshold", type=float, default=None, help="gate confidence (default: the bundle's, 0.99)")
    s.add_argument(
        "--auto-clearing",
        choices=("on", "off"),
        default="on",
        help="off (until this camera is validated): no image is 'no cancer suspected', it is review (low risk)",
    )
    s.add_argument(
        "--cascade",
        choices=("on", "off"),
        default="off",
        help="on: a small part of the ensemble settles the clear cases first, when the bundle has cascade margins; "
        "off (default): the whole ensemble screens every image, and the run can be decided again at another "
        "confidence without a model run",
    )
    s.add_argument("--recursive", action="store_true", help="include sub-folders")
    s.add_argument("--threads", type=int, default=0, help="inference threads (0: automatic)")
    add_screen_options(s)
    s.set_defaults(func=cmd_screen)
    add_trust_options(s)
    return s


def _check_before_loading(args, folder: Path) -> str | None:
    """Everything that can be checked before the bundle loads and the batch starts; the problem in
    words, or None. Output paths are created (if missing) and test-written."""
    from core import scan_candidates, visible_subfolders

    if not folder.is_dir():
        return f"{printable(folder)} is not a folder"
    if args.threshold is not None:
        try:
            check_confidence(args.threshold, "--threshold")  # also refuses nan
        except ValueError:
            return f"--threshold must be at least 0.5 and below 1 (e.g. 0.99), got {args.threshold}"
    if args.report:
        check_output_file(args.report, "--report")
    if args.heatmaps:
        check_output_folder(args.heatmaps, "--heatmaps")
    recursive = args.recursive or getattr(args, "layout", "none") != "none"  # patient folders are sub-folders
    if not scan_candidates(folder, recursive=recursive):
        subfolders = 0 if recursive else visible_subfolders(folder)
        hint = f"; it has {subfolders} sub-folder(s): add --recursive to screen them" if subfolders else ""
        return f"there are no files to screen in {printable(folder)}{hint}"
    return None


def _print_setup(bundle, screener, thresholds, gate, made_by, db: Path) -> None:
    """What this run screens with, on stderr before the batch starts."""
    from core import cascade_status

    m = bundle.manifest
    print(f"MelaScreen: {DISCLAIMER}", file=sys.stderr)
    print(
        f"bundle {printable(m.name)} {printable(m.version)} ({len(m.members)} members), engine "
        f"{printable(screener.engine_in_use)}"
        + (f" ({printable(screener.engine.note)})" if screener.engine.note else "")
        + f", gate: {outcome_words(Decision.NO_CANCER_SUSPECTED.value)} below {thresholds.low:.3f}, "
        + f"suspicious from {thresholds.high:.3f}, "
        + ("intake check on, " if m.ood is not None else "no intake check, ")
        + f"database {printable(db)}",
        file=sys.stderr,
    )
    print(trust_line(bundle), file=sys.stderr)
    print(printable(cascade_status(bundle, gate)), file=sys.stderr)
    print(f"results made by: {printable(made_by.line())}", file=sys.stderr)


def _print_errors_and_counts(args, results, summary, bundle, db, report_failed, heat: HeatMapWriter) -> None:
    if summary.clearing and summary.clearing.get("words"):  # the camera check and auto-clearing (issue 25)
        print(f"camera check: {summary.clearing['words']}", file=sys.stderr)
    for r in results:
        if not r.ok:
            print(f"error: {printable(r.path)}: {printable(r.reason)}", file=sys.stderr)
    c = summary.counts
    print(
        f"screened {summary.total} files in {summary.elapsed_s:.1f}s: "
        f"{c[Decision.NO_CANCER_SUSPECTED.value]} no cancer suspected, "
        f"{c[Decision.SUSPICIOUS.value]} suspicious, {c[Decision.REVIEW.value]} to review, "
        f"{c.get(NOT_DERMOSCOPY.code, 0)} not dermoscopy images (check the file), {summary.errors} errors "
        f"({summary.reused} taken from earlier runs)"
        + (f"; {summary.intake_flagged} unlike the training images (sent to review)" if summary.intake_flagged else "")
        + f"; run {summary.run_id} in {printable(db)}"
        + (f"; report {printable(args.report)}" if args.report and not report_failed else "")
        + (f"; heat maps in {printable(heat.folder)}" if heat.folder and not heat.failed else "")
        + ("; UNSIGNED BUNDLE" if bundle.unsigned else "")
    )


def _exit_status(db, run_id, report_failed, heat: HeatMapWriter) -> int:
    """EXIT_OK, or EXIT_FAILURE with what could not be written (the results are stored either way)."""
    status = EXIT_OK
    if heat.failed:
        print(
            f"error: {len(heat.failed)} heat map(s) could not be written to {printable(heat.folder)} (first: "
            f"{printable(heat.failed[0])}); the results themselves are stored in {printable(db)}",
            file=sys.stderr,
        )
        status = EXIT_FAILURE
    if report_failed:
        print(
            f"error: the report could not be written: {printable(report_failed)}. Every result "
            f"is stored in {printable(db)} (run {run_id}): once that is fixed, the same screen command "
            "with --report writes it in seconds, taking the stored results instead of screening again",
            file=sys.stderr,
        )
        status = EXIT_FAILURE
    return status


def _write_report(path, results, class_names, identities, summary, reviews, made_by) -> OSError | None:
    """The run's CSV, written whole or not at all (atomic), private to the user, saying what made it;
    the error when it could not be written."""
    from core import write_run_csv  # the one run CSV of the app and the CLI

    try:
        with atomic_target(path) as temp:  # whole even if the writer were not atomic itself
            write_run_csv(results, temp, class_names, identities, summary.intake_issues, reviews, provenance=made_by)
    except OSError as exc:
        return exc
    return None


def cmd_screen(args) -> int:
    from core import EnsembleSettings, GateChoice, ReviewStore, RunSettings, Screener, identities_of, screen_folder

    folder = Path(args.folder)
    problem = _check_before_loading(args, folder)
    try:
        identity = identity_settings(args)
    except ValueError as exc:
        problem = problem or str(exc)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    db = Path(args.db).expanduser() if args.db else default_database_path()
    check_results_store(db)
    bundle = load_bundle_or_default(args.bundle, args)
    session = EnsembleSettings(
        engine=args.engine, provider=args.provider, precision=args.precision, threads=args.threads
    )
    gate = GateChoice(
        confidence=args.threshold,
        auto_clearing=getattr(args, "auto_clearing", "on") == "on",
        cascade=getattr(args, "cascade", "off") == "on",
    )
    run = RunSettings(recursive=args.recursive, intake=identity)
    thresholds = bundle.manifest.gate.thresholds(gate.confidence)  # a bad --threshold fails before the engines
    screener = Screener(bundle, session)
    made_by = provenance_of_bundle(bundle, engine=screener.engine_in_use, confidence=gate.confidence)
    _print_setup(bundle, screener, thresholds, gate, made_by, db)
    heat = HeatMapWriter(Path(args.heatmaps) if args.heatmaps else None, made_by)  # checked and created already
    bar = ProgressLine()

    def on_progress(progress) -> None:
        heat(progress.result)  # heat maps are written as results arrive: the run keeps none in memory
        bar(progress)

    with ReviewStore.open(db) as store:  # created or upgraded only now that the bundle has loaded
        try:
            results, summary = screen_folder(screener, folder, store, on_progress=on_progress, gate=gate, run=run)
            identities = identities_of(store, [r.sha256 for r in results if r.sha256])
            reviews = store.latest_reviews([r.sha256 for r in results if r.sha256])  # reviews follow the image
        except StoreError as exc:  # the run had begun: what was stored before the fault is kept (exit 1, not 2)
            print(
                f"error: {printable(exc)}. The results stored before this are kept in {printable(db)}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
    report_failed = None
    if args.report:
        report_failed = _write_report(
            args.report, results, bundle.manifest.class_names, identities, summary, reviews, made_by
        )
    print_identity_issues(summary, identities)
    _print_errors_and_counts(args, results, summary, bundle, db, report_failed, heat)
    return _exit_status(db, summary.run_id, report_failed, heat)
