"""The `melascreen` command line: screen a folder, work the review queue, inspect bundles."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from cli.evidence import add_evidence_commands
from cli.patient import add_report_command, add_screen_options
from cli.terminal import escaped_output, printable
from core.common.errors import BundleError, EngineError, ImageReadError, MelaScreenError, ProviderError, StoreError
from core.common.paths import (
    OutputPathError,
    atomic_target,
    check_output_file,
    check_output_folder,
    default_database_path,
)
from core.decision.gate import MELANOMA_ONLY_NOTE
from core.decision.vocabulary import (
    DEFAULT_FOLLOW_UP_MONTHS,
    REVIEW_CHOICES,
    REVIEW_CODES,
    class_name,
    outcome_label,
    outcome_words,
)
from core.inference.bundle import Bundle, default_bundle_path, load_bundle
from core.inference.manifest import DISCLAIMER
from core.records.provenance import Provenance, provenance_of_bundle

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES_HELP = """exit codes:
  0  done (files that could not be screened are listed as errors; the run itself succeeded)
  1  the work failed part-way or at the end, e.g. the report or some heat maps could not be written
     (the results are kept in the database), the database failed during the run, or a review could
     not be recorded
  2  nothing was done and nothing was written: a wrong argument or path (--db, report or heat-map
     folder not writable, --threshold out of range, a folder with nothing to screen), or a model bundle
     or results database that is damaged, unsigned or unusable; the message says which file and why
  130  stopped with Ctrl+C"""


def _trust(args):
    """Trusted signers: the project's and the user's keys plus --trust-key; --allow-unsigned for research."""
    from core.inference.signing import Trust

    return Trust.default(getattr(args, "trust_key", None) or (), allow_unsigned=getattr(args, "allow_unsigned", False))


def _trust_line(bundle: Bundle) -> str:
    text = f"UNSIGNED BUNDLE ({bundle.trust_note}): research use only" if bundle.unsigned else bundle.trust_text
    return printable(text)


def _load_bundle_or_default(path: str | None, args=None, verify: bool = True) -> Bundle:
    if path:
        return load_bundle(path, verify=verify, trust=_trust(args))
    default = default_bundle_path()
    if not (default / "manifest.json").exists():
        raise BundleError(
            "no default model bundle is installed with this copy of MelaScreen; pass --bundle PATH", str(default)
        )
    return load_bundle(default, verify=verify, trust=_trust(args))


class ProgressLine:
    """A one-line progress bar on stderr; plain periodic lines when stderr is not a terminal."""

    def __init__(self, stream=None, width: int = 28):
        self.stream = sys.stderr if stream is None else stream  # looked up now, not at import
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def __call__(self, progress) -> None:
        if self.stream is None:  # no console (pythonw)
            return
        now = time.monotonic()
        final = progress.done == progress.total
        if not final and now - self._last < (0.2 if self.tty else 5.0):
            return
        self._last = now
        filled = int(self.width * progress.done / max(progress.total, 1))
        eta = progress.eta_s
        text = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {progress.done}/{progress.total}"
            + (f" {progress.rate:.1f} img/s" if progress.rate is not None else "")
            + (f", {eta:.0f}s left" if eta is not None and not final else "")
        )
        self.stream.write(("\r" + text) if self.tty else (text + "\n"))
        if final and self.tty:
            self.stream.write("\n")
        self.stream.flush()


def _heatmap_name(result, unsigned: bool = False) -> str:
    stem = Path(result.path).stem
    tag = (result.sha256 or hashlib.sha256(result.path.encode()).hexdigest())[:8]
    return f"{stem}-{tag}-heatmap" + ("-UNSIGNED" if unsigned else "") + ".png"


def _write_heatmap(result, folder: Path, made_by: Provenance) -> None:
    """The overlay PNG, named -UNSIGNED for an unsigned bundle, carrying what made it in its text
    chunks; written whole (atomic), private to the user."""
    import cv2

    from core.common.png_text import png_with_text
    from core.files.images import read_image
    from core.imaging.cam import overlay

    image = read_image(result.path)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(overlay(image.rgb, result.cam), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"OpenCV could not encode the heat map of {result.path}")
    text = {"Software": "MelaScreen", "Description": made_by.line(), "Disclaimer": DISCLAIMER}
    with atomic_target(folder / _heatmap_name(result, made_by.unsigned)) as temp:  # never a truncated PNG
        temp.write_bytes(png_with_text(buf.tobytes(), text))


def _check_before_loading(args, folder: Path) -> str | None:
    """Everything that can be checked before the bundle loads and the batch starts; the problem in
    words, or None. Output paths are created (if missing) and test-written."""
    from core.files.scan import scan_candidates, visible_subfolders

    if not folder.is_dir():
        return f"{printable(folder)} is not a folder"
    if args.threshold is not None and not 0.5 <= args.threshold < 1.0:  # also refuses nan
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


def _check_results_store(db: Path) -> None:
    """The results database, checked before the bundle loads (~20 s) without writing to it: its folder
    (and the file, if it exists) can be written, and an existing file passes SQLite's quick_check, is a
    MelaScreen store and not of a newer MelaScreen. It is opened for writing (created, upgraded) only
    once the bundle has loaded, so a command refused before leaves the file as it was."""
    from core.records.store import ReviewStore

    try:
        check_output_file(db, "--db")
    except OutputPathError as exc:
        raise StoreError(str(exc)) from None
    if db.exists():
        ReviewStore.open(db, read_only=True).close()


def cmd_screen(args) -> int:
    from cli.patient import identity_settings, print_identity_issues
    from core.inference.ensemble import EnsembleSettings
    from core.records.patients import identities_of
    from core.records.report import write_run_csv  # the one run CSV of the app and the CLI
    from core.records.store import ReviewStore
    from core.screening.screener import GateChoice, RunSettings, Screener, cascade_status, screen_folder

    folder = Path(args.folder)
    problem = _check_before_loading(args, folder)
    try:
        intake = identity_settings(args)
    except ValueError as exc:
        problem = problem or str(exc)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    db = Path(args.db).expanduser() if args.db else default_database_path()
    _check_results_store(db)
    bundle = _load_bundle_or_default(args.bundle, args)
    session = EnsembleSettings(
        engine=args.engine, provider=args.provider, precision=args.precision, threads=args.threads
    )
    gate = GateChoice(
        confidence=args.threshold,
        auto_clearing=getattr(args, "auto_clearing", "on") == "on",
        cascade=getattr(args, "cascade", "off") == "on",
    )
    run = RunSettings(recursive=args.recursive, intake=intake)
    thresholds = bundle.manifest.gate.thresholds(gate.confidence)  # a bad --threshold fails before the engines
    screener = Screener(bundle, session)
    made_by = provenance_of_bundle(bundle, engine=screener.engine_in_use, confidence=gate.confidence)
    m = bundle.manifest
    print(f"MelaScreen: {DISCLAIMER}", file=sys.stderr)
    print(
        f"bundle {printable(m.name)} {printable(m.version)} ({len(m.members)} members), engine "
        f"{printable(screener.engine_in_use)}"
        + (f" ({printable(screener.engine.note)})" if screener.engine.note else "")
        + f", gate: {outcome_words('benign')} below {thresholds.low:.3f}, suspicious from {thresholds.high:.3f}, "
        + ("intake check on, " if m.ood is not None else "no intake check, ")
        + f"database {printable(db)}",
        file=sys.stderr,
    )
    print(_trust_line(bundle), file=sys.stderr)
    print(printable(cascade_status(bundle, gate)), file=sys.stderr)
    print(f"results made by: {printable(made_by.line())}", file=sys.stderr)
    heat_dir = Path(args.heatmaps) if args.heatmaps else None  # checked and created before the bundle loaded
    heat_failed: list[str] = []
    bar = ProgressLine()

    def on_progress(progress) -> None:
        r = progress.result  # heat maps are written as results arrive: the run keeps none in memory
        if heat_dir and r.ok and r.cam is not None:
            try:
                _write_heatmap(r, heat_dir, made_by)
            except (ImageReadError, OSError) as exc:
                heat_failed.append(str(exc))
                print(f"warning: heat map for {printable(r.path)} not written ({printable(exc)})", file=sys.stderr)
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
        try:  # written whole or not at all (atomic), private to the user, saying what made it
            with atomic_target(args.report) as temp:  # whole even if the writer were not atomic itself
                write_run_csv(
                    results, temp, m.class_names, identities, summary.intake_issues, reviews, provenance=made_by
                )
        except OSError as exc:
            report_failed = exc
    print_identity_issues(summary, identities)
    if summary.clearing and summary.clearing.get("words"):  # the camera check and auto-clearing (issue 25)
        print(f"camera check: {summary.clearing['words']}", file=sys.stderr)
    for r in results:
        if not r.ok:
            print(f"error: {printable(r.path)}: {printable(r.reason)}", file=sys.stderr)
    c = summary.counts
    print(
        f"screened {summary.total} files in {summary.elapsed_s:.1f}s: {c['benign']} no cancer suspected, "
        f"{c['suspicious']} suspicious, {c['uncertain']} to review, "
        f"{c.get('not_dermoscopy', 0)} not dermoscopy images (check the file), {summary.errors} errors "
        f"({summary.reused} taken from earlier runs)"
        + (f"; {summary.intake_flagged} unlike the training images (sent to review)" if summary.intake_flagged else "")
        + f"; run {summary.run_id} in {printable(db)}"
        + (f"; report {printable(args.report)}" if args.report and not report_failed else "")
        + (f"; heat maps in {printable(heat_dir)}" if heat_dir and not heat_failed else "")
        + ("; UNSIGNED BUNDLE" if bundle.unsigned else "")
    )
    status = EXIT_OK
    if heat_failed:
        print(
            f"error: {len(heat_failed)} heat map(s) could not be written to {printable(heat_dir)} (first: "
            f"{printable(heat_failed[0])}); the results themselves are stored in {printable(db)}",
            file=sys.stderr,
        )
        status = EXIT_FAILURE
    if report_failed:
        print(
            f"error: the report could not be written: {printable(report_failed)}. Every result "
            f"is stored in {printable(db)} (run {summary.run_id}): once that is fixed, the same screen command "
            "with --report writes it in seconds, taking the stored results instead of screening again",
            file=sys.stderr,
        )
        status = EXIT_FAILURE
    return status


def _open_store(args):
    from core.records.store import ReviewStore

    db = Path(args.db) if args.db else default_database_path()
    if not db.exists():
        raise StoreError(f"no results database at {db}: screen a folder first or pass --db")
    return ReviewStore.open(db)


def _open_store_for_reading(args):
    """For commands that only list or report: works on a read-only file or folder, and changes nothing."""
    from core.records.store import ReviewStore

    db = Path(args.db).expanduser() if args.db else default_database_path()
    if not db.exists():
        raise StoreError(f"no results database at {db}: screen a folder first or pass --db")
    return ReviewStore.open_for_reading(db)


def cmd_review_list(args) -> int:
    from core.records.patients import patient_queue
    from core.records.store import local_time

    with _open_store_for_reading(args) as store:
        if args.patient:
            items = patient_queue(store, args.patient, include_reviewed=args.all)
        else:
            items = store.queue(include_reviewed=args.all)
    if not items:
        print("the review queue is empty")
    for it in items:  # highest p(malignant) first, as the app's queue
        last = f" | reviewed: {it.last_review.words} by {it.last_review.reviewer}" if it.last_review else ""
        p = it.p_malignant if it.p_malignant is not None else it.p_melanoma
        words = outcome_label(it.decision, it.malignant_class, it.band)
        likely = f"  {class_name(it.likely_class)} most likely" if it.likely_class else ""
        print(
            f"{it.result_id:6d}  {words:32s}  p(malignant)={'-' if p is None else f'{p:.3f}'}{likely}"
            f"  {local_time(it.queued_at)}  {printable(it.path)}{printable(last)}"
        )
    return EXIT_OK


def cmd_review_show(args) -> int:
    from core.records.store import local_time

    with _open_store_for_reading(args) as store:
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
    from core.records.store import local_time

    with _open_store(args) as store:
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


def _run_signature(run) -> str:
    """'signed by key ...' or 'UNSIGNED BUNDLE', as the run recorded it (runs before the record: said so)."""
    from core.records.provenance import provenance_of_run

    if "bundle" not in (run.settings or {}):
        return "signature not recorded"
    return printable(provenance_of_run(run).signature_text)


def cmd_runs(args) -> int:
    from core.records.runs import shown_status
    from core.records.store import local_time

    with _open_store_for_reading(args) as store:
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


def _intake_line(m) -> str:
    from core.decision.vocabulary import NO_INTAKE_CHECK

    check = m.ood
    if check is None:
        return NO_INTAKE_CHECK
    fitted = f"; fitted on {check.fitted_on}" if check.fitted_on else ""
    return (
        f"intake check ({check.method}): unfamiliar above {check.threshold:.4g} "
        f"({100 * check.validation_flagged:.1f}% of validation images), not dermoscopy above "
        f"{check.clear_threshold:.4g}{fitted}"
    )


def _say_printable(text: str = "") -> None:
    """Print a line of bundle text with its control characters escaped (a manifest is anyone's text)."""
    print(printable(text))


def cmd_bundle_info(args) -> int:
    b = _load_bundle_or_default(args.path, args, verify=False)
    m = b.manifest
    t = m.gate.thresholds()
    say = _say_printable
    say(f"{m.name} {m.version} (schema {m.schema_version}, created {m.created})")
    say(f"  task {m.task}; classes {', '.join(m.class_names)}; positive {m.positive_class}")
    say(f"  input {m.input_size}px, mean {m.mean}, std {m.std}; TTA {', '.join(m.tta_views)}")
    say(
        f"  gate at {m.gate.default_confidence}: no cancer suspected < {t.low:.4f}, suspicious >= {t.high:.4f}"
        + (
            f"; review bands: moderate from {t.moderate_from:.4f}, high from {t.high_risk_from:.4f}"
            if t.has_bands
            else ""
        )
    )
    say(f"  {_intake_line(m)}")
    for mem in m.members:
        say(f"  member {mem.file}: {mem.arch}, seed {mem.seed}, T={mem.temperature:.3f}, sha256 {mem.sha256[:16]}...")
    if m.melanoma_only_gate:
        say(f"  {MELANOMA_ONLY_NOTE}")
    else:
        say(f"  malignant classes {', '.join(m.malignant_classes)}")
    say(f"  {_trust_line(b)}; identity {b.identity[:16]}")
    say(f"  {m.disclaimer}")
    return EXIT_OK


def cmd_bundle_verify(args) -> int:
    from core.inference.ensemble import Ensemble, EnsembleSettings

    b = _load_bundle_or_default(args.path, args, verify=True)
    say = _say_printable
    ens = Ensemble(b, EnsembleSettings(engine="onnxruntime", provider="cpu"))
    say(
        f"ok: {b.manifest.name} {b.manifest.version}: {len(b.manifest.members)} members, checksums verified, "
        f"all load in onnxruntime ({ens.provider_in_use})"
    )
    say(_trust_line(b))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="melascreen",
        description=f"Melanoma screening of dermoscopy images. {DISCLAIMER}",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("screen", help="screen every image in a folder")
    s.add_argument("folder")
    s.add_argument("--bundle", help="model bundle folder or .zip (default: the bundle installed with MelaScreen)")
    s.add_argument("--db", help=f"results database (default: {default_database_path()})")
    s.add_argument("--report", help="write a CSV with one row per file")
    s.add_argument("--heatmaps", help="folder for Grad-CAM overlay PNGs")
    s.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto")
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

    r = sub.add_parser("review", help="the review queue")
    rsub = r.add_subparsers(dest="review_command", required=True)
    rl = rsub.add_parser("list", help="cases waiting for review, oldest first")
    rl.add_argument("--all", action="store_true", help="include cases already reviewed")
    rl.add_argument("--patient", metavar="ID", help="only this patient's cases")
    rl.set_defaults(func=cmd_review_list)
    rs = rsub.add_parser("show", help="one case with its review history")
    rs.add_argument("id", type=int)
    rs.set_defaults(func=cmd_review_show)
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
    from core.records.followup import add_due_command  # `review due`: the follow-up list (core/records/followup.py)

    add_due_command(rsub, _open_store_for_reading)  # a listing: a read-only database will do
    ru = sub.add_parser("runs", help="screening runs, newest first (a killed run shows as interrupted)")
    ru.set_defaults(func=cmd_runs)
    for q in (rl, rs, rd, ru):
        q.add_argument("--db", help=f"results database (default: {default_database_path()})")

    add_report_command(sub)
    add_evidence_commands(sub)  # outcome add / import, audit (cli/evidence.py)

    b = sub.add_parser("bundle", help="inspect a model bundle")
    bsub = b.add_subparsers(dest="bundle_command", required=True)
    bi = bsub.add_parser("info", help="what the bundle holds")
    bi.add_argument("path", nargs="?")
    bi.set_defaults(func=cmd_bundle_info)
    bv = bsub.add_parser("verify", help="check every checksum and load every member")
    bv.add_argument("path", nargs="?")
    bv.set_defaults(func=cmd_bundle_verify)
    for q in (s, bi, bv):
        q.add_argument(
            "--trust-key",
            action="append",
            metavar="FILE",
            help="also trust this publisher public key (.pub file or folder of them); repeatable",
        )
        q.add_argument(
            "--allow-unsigned",
            action="store_true",
            help="accept an unsigned or untrusted bundle (research only; output says 'unsigned')",
        )
    return p


def main(argv: list[str] | None = None, pdf_writer=None) -> int:
    """`pdf_writer(html, path)`: given by the desktop launcher (Qt); without it `report` writes HTML/CSV only."""
    args = build_parser().parse_args(argv)
    args.pdf_writer = pdf_writer
    try:
        with escaped_output():  # a safety net under every line: stored or bundle text cannot drive the terminal
            return args.func(args)
    except (BundleError, StoreError, ProviderError, EngineError, OutputPathError) as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except (MelaScreenError, ValueError, OSError) as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("stopped (Ctrl+C); every result finished so far is stored", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
