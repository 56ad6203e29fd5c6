"""The `melascreen` command line: screen a folder, work the review queue, inspect bundles."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from .bundle import DISCLAIMER, Bundle, default_bundle_path, load_bundle
from .errors import BundleError, ImageReadError, MelaScreenError, ProviderError, StoreError
from .paths import default_database_path

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _load_bundle_or_default(path: str | None) -> Bundle:
    if path:
        return load_bundle(path)
    default = default_bundle_path()
    if not (default / "manifest.json").exists():
        raise BundleError(
            "no default model bundle is installed with this copy of MelaScreen; pass --bundle PATH", str(default)
        )
    return load_bundle(default)


class ProgressLine:
    """A one-line progress bar on stderr; plain periodic lines when stderr is not a terminal."""

    def __init__(self, stream=sys.stderr, width: int = 28):
        self.stream = stream
        self.width = width
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0

    def __call__(self, progress) -> None:
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


def _heatmap_name(result) -> str:
    stem = Path(result.path).stem
    tag = (result.sha256 or hashlib.sha256(result.path.encode()).hexdigest())[:8]
    return f"{stem}-{tag}-heatmap.png"


def _write_heatmap(result, folder: Path) -> None:
    from .cam import overlay, write_png
    from .images import read_image

    image = read_image(result.path)
    write_png(folder / _heatmap_name(result), overlay(image.rgb, result.cam))


def cmd_screen(args) -> int:
    from .report import write_csv
    from .screening import Screener, ScreeningSettings, screen_folder
    from .store import ReviewStore

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    bundle = _load_bundle_or_default(args.bundle)
    settings = ScreeningSettings(
        confidence=args.threshold, provider=args.provider, recursive=args.recursive, threads=args.threads
    )
    screener = Screener(bundle, settings)
    db = Path(args.db) if args.db else default_database_path()
    m = bundle.manifest
    print(f"MelaScreen: {DISCLAIMER}", file=sys.stderr)
    print(
        f"bundle {m.name} {m.version} ({len(m.members)} members), provider {screener.provider_in_use}, "
        f"gate: benign below {screener.thresholds.low:.3f}, suspicious from {screener.thresholds.high:.3f}, "
        f"database {db}",
        file=sys.stderr,
    )
    heat_dir = Path(args.heatmaps) if args.heatmaps else None
    if heat_dir:
        heat_dir.mkdir(parents=True, exist_ok=True)
    bar = ProgressLine()
    with ReviewStore.open(db) as store:
        results, summary = screen_folder(screener, folder, store, on_progress=bar)
        if heat_dir:
            for r in results:
                if r.ok and r.cam is not None:
                    try:
                        _write_heatmap(r, heat_dir)
                    except (ImageReadError, OSError) as exc:
                        print(f"warning: heat map for {r.path} not written ({exc})", file=sys.stderr)
    if args.report:
        write_csv(results, args.report, m.class_names)
    for r in results:
        if not r.ok:
            print(f"error: {r.path}: {r.reason}", file=sys.stderr)
    c = summary.counts
    print(
        f"screened {summary.total} files in {summary.elapsed_s:.1f}s: {c['benign']} benign, "
        f"{c['suspicious']} suspicious, {c['uncertain']} uncertain, {summary.errors} errors "
        f"({summary.reused} taken from earlier runs); run {summary.run_id} in {db}"
        + (f"; report {args.report}" if args.report else "")
    )
    return EXIT_OK


def _open_store(args):
    from .store import ReviewStore

    db = Path(args.db) if args.db else default_database_path()
    if not db.exists():
        raise StoreError(f"no results database at {db}: screen a folder first or pass --db")
    return ReviewStore.open(db)


def cmd_review_list(args) -> int:
    with _open_store(args) as store:
        items = store.queue(include_reviewed=args.all)
    if not items:
        print("the review queue is empty")
    for it in items:
        last = f" | reviewed: {it.last_review.decision} by {it.last_review.reviewer}" if it.last_review else ""
        p = f"{it.p_melanoma:.3f}" if it.p_melanoma is not None else "-"
        print(f"{it.result_id:6d}  {it.decision.value:10s}  p={p}  {it.queued_at}  {it.path}{last}")
    return EXIT_OK


def cmd_review_show(args) -> int:
    with _open_store(args) as store:
        r = store.get_result(args.id)
        if r is None:
            print(f"error: no result with id {args.id}", file=sys.stderr)
            return EXIT_FAILURE
        history = store.history(args.id)
    print(f"result {args.id}: {r.path}")
    print(f"  status {r.status}; decision {r.decision.value if r.decision else '-'}; {r.reason}")
    if r.p_melanoma is not None:
        print(f"  p(melanoma) {r.p_melanoma:.4f}, member spread {r.spread:.4f}, members {list(r.member_p)}")
        top = sorted(r.class_probs.items(), key=lambda kv: -kv[1])
        print("  classes: " + ", ".join(f"{k} {v:.3f}" for k, v in top))
    if r.quality and r.quality.flags:
        print(f"  quality flags: {', '.join(r.quality.flags)}")
    print("  reviews:" if history else "  not reviewed yet")
    for h in history:
        print(f"    {h.created}  {h.reviewer}: {h.decision}" + (f" - {h.note}" if h.note else ""))
    return EXIT_OK


def cmd_review_decide(args) -> int:
    with _open_store(args) as store:
        review = store.add_review(args.id, args.reviewer, args.decision, args.note or "")
    print(f"recorded: result {review.result_id} {review.decision} by {review.reviewer} at {review.created}")
    return EXIT_OK


def cmd_bundle_info(args) -> int:
    b = load_bundle(args.path or default_bundle_path(), verify=False)
    m = b.manifest
    t = m.gate.thresholds()
    print(f"{m.name} {m.version} (schema {m.schema_version}, created {m.created})")
    print(f"  task {m.task}; classes {', '.join(m.class_names)}; positive {m.positive_class}")
    print(f"  input {m.input_size}px, mean {m.mean}, std {m.std}; TTA {', '.join(m.tta_views)}")
    print(f"  gate at {m.gate.default_confidence}: benign < {t.low:.4f}, suspicious >= {t.high:.4f}")
    for mem in m.members:
        print(f"  member {mem.file}: {mem.arch}, seed {mem.seed}, T={mem.temperature:.3f}, sha256 {mem.sha256[:16]}...")
    print(f"  {m.disclaimer}")
    return EXIT_OK


def cmd_bundle_verify(args) -> int:
    from .ensemble import Ensemble, EnsembleSettings

    b = load_bundle(args.path or default_bundle_path(), verify=True)
    ens = Ensemble(b, EnsembleSettings(provider="cpu"))
    print(
        f"ok: {b.manifest.name} {b.manifest.version}: {len(b.manifest.members)} members, checksums verified, "
        f"all load in onnxruntime ({ens.provider_in_use})"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="melascreen", description=f"Melanoma screening of dermoscopy images. {DISCLAIMER}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("screen", help="screen every image in a folder")
    s.add_argument("folder")
    s.add_argument("--bundle", help="model bundle folder or .zip (default: the bundle installed with MelaScreen)")
    s.add_argument("--db", help=f"results database (default: {default_database_path()})")
    s.add_argument("--report", help="write a CSV with one row per file")
    s.add_argument("--heatmaps", help="folder for Grad-CAM overlay PNGs")
    s.add_argument("--provider", choices=("auto", "cpu", "cuda"), default="auto")
    s.add_argument("--threshold", type=float, default=None, help="gate confidence (default: the bundle's, 0.99)")
    s.add_argument("--recursive", action="store_true", help="include sub-folders")
    s.add_argument("--threads", type=int, default=0, help="inference threads (0: automatic)")
    s.set_defaults(func=cmd_screen)

    r = sub.add_parser("review", help="the review queue")
    rsub = r.add_subparsers(dest="review_command", required=True)
    rl = rsub.add_parser("list", help="cases waiting for review, oldest first")
    rl.add_argument("--all", action="store_true", help="include cases already reviewed")
    rl.set_defaults(func=cmd_review_list)
    rs = rsub.add_parser("show", help="one case with its review history")
    rs.add_argument("id", type=int)
    rs.set_defaults(func=cmd_review_show)
    rd = rsub.add_parser("decide", help="record a review decision (appended, never overwritten)")
    rd.add_argument("id", type=int)
    rd.add_argument("--decision", required=True, choices=("benign", "refer", "biopsy", "unclear_image"))
    rd.add_argument("--reviewer", required=True)
    rd.add_argument("--note", default="")
    rd.set_defaults(func=cmd_review_decide)
    for q in (rl, rs, rd):
        q.add_argument("--db", help=f"results database (default: {default_database_path()})")

    b = sub.add_parser("bundle", help="inspect a model bundle")
    bsub = b.add_subparsers(dest="bundle_command", required=True)
    bi = bsub.add_parser("info", help="what the bundle holds")
    bi.add_argument("path", nargs="?")
    bi.set_defaults(func=cmd_bundle_info)
    bv = bsub.add_parser("verify", help="check every checksum and load every member")
    bv.add_argument("path", nargs="?")
    bv.set_defaults(func=cmd_bundle_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (BundleError, StoreError, ProviderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MelaScreenError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
