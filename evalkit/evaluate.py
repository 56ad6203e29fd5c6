"""The command: evaluate a bundle through core on one labelled set, or on several at once.

    python -m evalkit.evaluate --bundle B --split-file split.csv --split test --out REPORT
    python -m evalkit.evaluate --bundle B --sets ham10000,isic2017,derm7pt --out REPORT
    python -m evalkit.evaluate --bundle B --sets ham10000,derm7pt --raw-npz derm7pt=RAW.npz --out REPORT

(`python -m training.evaluate`, which README and the recipes name, is the same command.)

Each image goes read_image -> assess_quality -> core.imaging.model_input -> Ensemble.run (TTA-averaged
member logits) -> Ensemble.to_predictions -> gate.decide, so the numbers are those a clinic would
see. Raw member logits are cached per set (raw_outputs.npz; --reuse redraws from it), or read from
a file computed elsewhere (--raw-npz SET=FILE: arrays ids, logits N x members x classes), so another
gate can be scored without running the models. No torch here.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.common.errors import MelaScreenError
from core.inference.bundle import Bundle, load_bundle
from core.inference.engine_choices import PROVIDER_CHOICES
from core.inference.ensemble import Ensemble, EnsembleSettings
from evalkit.labelled import DEFAULT_DATA_DIR, PROJECT_ROOT, SHARED_DATA, LabelledCase, read_cases

from . import model_card, report
from .evaluation import build_evaluation, compute_metrics, triage_metrics
from .figures import CAM_CACHE_FILE, cam_tiles, draw_figures, select_cam_cases
from .scoring import (
    CACHE_FILE,
    EvaluationError,
    ScoredSet,
    bundle_identity,
    check_raw_labels,
    empty_scored,
    load_raw_npz,
    load_scored,
    sample_cases,
    save_scored,
    score_images,
)

DEFAULT_IMAGES = DEFAULT_DATA_DIR / "images"


@dataclass(frozen=True)
class LabelledSet:
    """A labelled test set: its labels file, its images, and which rows are the test part."""

    name: str
    labels: Path
    images: Path
    split: str | None  # None: every row
    split_column: str = "split"
    about: str = ""


# The project's standing test sets (issue 16): never trained or calibrated on.
TEST_SETS = {
    "ham10000": LabelledSet(
        "ham10000",
        PROJECT_ROOT / "configs" / "splits" / "ham10000_lesion_split.csv",
        DEFAULT_IMAGES,
        "test",
        about="HAM10000 lesion-grouped test split",
    ),
    "isic2017": LabelledSet(
        "isic2017",
        SHARED_DATA / "isic2017" / "labels.csv",
        SHARED_DATA / "isic2017" / "images",
        "test",
        "challenge_split",
        about="ISIC 2017 challenge test part (no lesion ids)",
    ),
    "derm7pt": LabelledSet(
        "derm7pt",
        SHARED_DATA / "derm7pt" / "labels.csv",
        SHARED_DATA / "derm7pt" / "images",
        None,
        about="Derm7pt, every image (another clinic and dermoscope)",
    ),
}


@dataclass(frozen=True)
class EvaluationSettings:
    images_dir: Path = DEFAULT_IMAGES
    confidence: float | None = None  # None: the bundle's default
    provider: str = "auto"
    engine: str = "auto"  # core.inference.engines: "auto", "onnxruntime" or "openvino" (compare engines on a whole set)
    threads: int = 2
    batch_size: int = 8
    n_bootstrap: int = 2000
    reuse: bool = False
    cams_per_group: int = 6
    raw_npz: Path | None = None  # score from these raw outputs instead of running the models


def _progress_printer(total: int, stream=None) -> Callable[[ScoredSet, int], None]:
    stream = stream or sys.stderr
    start = time.monotonic()
    last = [0.0]

    def progress(scored: ScoredSet, done: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 10:
            return
        last[0] = now
        rate = done / max(now - start, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0
        stream.write(f"scored {done}/{total} images ({rate:.2f} img/s, about {eta / 60:.1f} min left)\n")
        stream.flush()

    return progress


def _scored(
    bundle: Bundle, ensemble: Ensemble, cases: Sequence[LabelledCase], out: Path, settings: EvaluationSettings
) -> ScoredSet:
    """The set's raw outputs: from --raw-npz, else the cache completed by running the models."""
    if settings.raw_npz is not None:
        return check_raw_labels(settings.raw_npz, load_raw_npz(settings.raw_npz, bundle), cases)
    ids = [c.image_id for c in cases]
    cache = out / CACHE_FILE
    identity = bundle_identity(bundle)
    done = empty_scored(len(bundle.manifest.members), len(bundle.manifest.class_names), identity)
    if settings.reuse and cache.is_file():
        done = load_scored(cache)
        if done.identity != identity:
            raise EvaluationError(
                f"{cache} was made with another bundle (identity {done.identity}, this one is {identity}); "
                "run without --reuse or use another --out folder"
            )
    if done.image_ids and bundle.manifest.ood is not None and done.ood is None:
        print(
            f"{cache}: cached without the intake check's scores (an older evaluation): its images are gated without "
            "the intake finding; run without --reuse to apply it as the app does",
            file=sys.stderr,
        )
    known = set(done.image_ids) | set(done.failed)
    todo = [i for i in ids if i not in known]
    if todo:
        print(
            f"scoring {len(todo)} images ({len(ids) - len(todo)} from the cache) on {ensemble.provider_in_use}",
            file=sys.stderr,
        )
        progress = _progress_printer(len(todo))
        last_save = [time.monotonic()]

        def checkpoint(partial: ScoredSet, n_done: int) -> None:
            progress(partial, n_done)
            if time.monotonic() - last_save[0] > 60:  # a long run can be resumed with --reuse
                save_scored(cache, done.merged(partial))
                last_save[0] = time.monotonic()

        new = score_images(
            bundle, ensemble, todo, Path(settings.images_dir), settings.batch_size, settings.threads, checkpoint
        )
        done = done.merged(new)
        save_scored(cache, done)
    return done


def _bundle_record(bundle: Bundle) -> dict:
    return {
        "name": bundle.manifest.name,
        "version": bundle.manifest.version,
        "identity": bundle_identity(bundle),
        "members": [m.file for m in bundle.manifest.members],
        "tta_views": list(bundle.manifest.tta_views),
        "max_member_spread": bundle.manifest.gate.max_member_spread,
    }


def run_evaluation(
    bundle_path: str | Path,
    cases: Sequence[LabelledCase],
    out: str | Path,
    settings: EvaluationSettings = EvaluationSettings(),
    used: str = "",
    stream=None,
    bundle: Bundle | None = None,
    ensemble: Ensemble | None = None,
) -> dict:
    """Score (or reuse), compute metrics, draw figures, write the report folder; returns the metrics
    (with a `triage` block: the set's column of the multi-set table)."""
    stream = stream or sys.stdout
    out = Path(out)
    images_dir = Path(settings.images_dir)
    if settings.raw_npz is None and not images_dir.is_dir():
        raise EvaluationError(f"{images_dir}: the images folder does not exist; pass --images")
    ids = [c.image_id for c in cases]
    if len(set(ids)) != len(ids):
        raise EvaluationError("the labels list an image_id more than once; each image must appear once")
    bundle = bundle or load_bundle(bundle_path)
    ensemble = ensemble or Ensemble(
        bundle, EnsembleSettings(engine=settings.engine, provider=settings.provider, threads=settings.threads)
    )
    out.mkdir(parents=True, exist_ok=True)
    done = _scored(bundle, ensemble, cases, out, settings)
    ev = build_evaluation(bundle, ensemble, cases, done, settings.confidence)
    if len(ev.image_ids) == 0:
        raise EvaluationError("no image could be scored; see the reasons in predictions.csv")
    metrics = compute_metrics(ev, settings.n_bootstrap)
    metrics["triage"] = triage_metrics(ev, settings.n_bootstrap)
    metrics["bundle"] = _bundle_record(bundle)
    metrics["data"] = {
        "rows_used": used,
        "images_dir": images_dir.name,
        "provider": ensemble.provider_in_use,
        "engine": ensemble.engine_in_use,
        "raw_outputs": settings.raw_npz.name if settings.raw_npz is not None else CACHE_FILE,
    }
    tiles = None
    if settings.raw_npz is None:
        indices = select_cam_cases(ev.p, ev.melanoma, settings.cams_per_group)
        tiles = cam_tiles(bundle, ensemble, ev, images_dir, indices, out / CAM_CACHE_FILE)
    subtitle = (
        f"{bundle.manifest.name} {bundle.manifest.version}, n={metrics['n_images']} ({metrics['n_melanomas']} mel.)"
    )
    draw_figures(ev, metrics, out, tiles, subtitle)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    report.write_predictions_csv(out / "predictions.csv", ev)
    report.write_summary_md(out / "summary.md", metrics, bundle, used)
    print("\n".join(report.summary_lines(metrics, bundle, used)), file=stream)
    print(f"\nReport: {out.resolve()}", file=stream)
    return metrics


def run_sets(
    bundle_path: str | Path,
    sets: Sequence[LabelledSet],
    out: str | Path,
    settings: EvaluationSettings,
    raw: dict[str, Path],
    stream=None,
) -> tuple[dict[str, dict], dict[str, str]]:
    """Every set into OUT/<set>/, then OUT/summary.md and OUT/metrics.json with one column per set."""
    out = Path(out)
    bundle = load_bundle(bundle_path)
    ensemble = Ensemble(
        bundle, EnsembleSettings(engine=settings.engine, provider=settings.provider, threads=settings.threads)
    )
    columns, used = {}, {}
    for s in sets:
        cases, rows = read_cases(s.labels, s.split, split_column=s.split_column)
        one = EvaluationSettings(**{**settings.__dict__, "images_dir": s.images, "raw_npz": raw.get(s.name)})
        metrics = run_evaluation(bundle_path, cases, out / s.name, one, rows, stream, bundle, ensemble)
        columns[s.name] = metrics["triage"]
        used[s.name] = f"{s.about}: {rows}" + (f", raw outputs {raw[s.name].name}" if s.name in raw else "")
    report.write_multiset_md(out / "summary.md", columns, bundle, used)
    (out / "metrics.json").write_text(
        json.dumps({"bundle": _bundle_record(bundle), "sets": columns, "rows_used": used}, indent=2) + "\n",
        encoding="utf-8",
    )
    print("\n".join(report.multiset_table(columns)), file=stream or sys.stdout)
    return columns, used


PROG = "python -m evalkit.evaluate"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Evaluate a model bundle through core on labelled sets and write a report folder.",
    )
    ap.add_argument("--bundle", required=True, help="bundle folder or .zip")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--split-file", help="split CSV: image_id, lesion_id, dx, melanoma, split")
    src.add_argument("--labels", help="plain labels CSV (image_id, dx, melanoma[, lesion_id]): every row is used")
    src.add_argument("--sets", help=f"comma-separated test sets scored in one report: {', '.join(TEST_SETS)}")
    ap.add_argument("--split", default=None, help="which split of --split-file to use (default: test)")
    ap.add_argument("--out", required=True, help="report folder (created)")
    ap.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of <image_id>.jpg (or .png, ...) files")
    ap.add_argument(
        "--raw-npz",
        action="append",
        default=[],
        metavar="[SET=]FILE",
        help="score from raw outputs (arrays ids, logits N x members x classes) instead of the models",
    )
    ap.add_argument("--limit", type=int, default=None, help="evaluate a seeded random sample of N images")
    ap.add_argument("--confidence", type=float, default=None, help="gate confidence (default: the bundle's)")
    ap.add_argument("--provider", default="auto", choices=PROVIDER_CHOICES)
    ap.add_argument("--engine", default="auto", choices=("auto", "onnxruntime", "openvino"))
    ap.add_argument("--threads", type=int, default=2, help="preprocessing and inference threads")
    ap.add_argument("--batch-size", type=int, default=8, help="images per ensemble run")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the AUC interval")
    ap.add_argument("--reuse", action="store_true", help=f"reuse (and complete) the outputs cached in OUT/{CACHE_FILE}")
    ap.add_argument(
        "--model-card", action="store_true", help="write the figures into the bundle's model_card.md (test sets only)"
    )
    return ap


def _raw_files(items: list[str], multi: bool) -> dict[str, Path]:
    raw = {}
    for item in items:
        name, sep, file = item.rpartition("=")
        if multi and not sep:
            raise EvaluationError(f"--raw-npz {item}: with --sets, name the set: SET=FILE")
        if multi and name not in TEST_SETS:
            raise EvaluationError(f"--raw-npz {item}: unknown set {name!r}; sets: {', '.join(TEST_SETS)}")
        if not Path(file).is_file():
            raise EvaluationError(f"--raw-npz {item}: no file at {file}")
        raw[name or "-"] = Path(file)
    return raw


def _evaluate_sets(args: argparse.Namespace, settings: EvaluationSettings, command: str) -> None:
    """--sets: one report column per standing test set."""
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TEST_SETS]
    if unknown or not names:
        raise EvaluationError(f"unknown test sets {unknown}; choose from {', '.join(TEST_SETS)}")
    raw = _raw_files(args.raw_npz, multi=True)
    columns, used = run_sets(args.bundle, [TEST_SETS[n] for n in names], args.out, settings, raw)
    if args.model_card:
        bundle = load_bundle(args.bundle)
        model_card.update_model_card_multiset(bundle.root / "model_card.md", columns, used, command)


def _evaluate_one(args: argparse.Namespace, settings: EvaluationSettings, command: str) -> None:
    """--split-file or --labels: one labelled set."""
    if args.split_file:
        cases, used = read_cases(args.split_file, args.split or "test")
    else:
        cases, used = read_cases(args.labels, args.split)
    if args.limit is not None:
        if args.limit <= 0:
            raise EvaluationError("--limit must be a positive number of images")
        if args.limit < len(cases):
            cases = sample_cases(cases, args.limit)
            used += f", random sample of {args.limit} (seed 0)"
    raw = _raw_files(args.raw_npz, multi=False)
    if len(raw) > 1:
        raise EvaluationError("one --raw-npz file per set")
    if raw:
        settings = EvaluationSettings(**{**settings.__dict__, "raw_npz": next(iter(raw.values()))})
    metrics = run_evaluation(args.bundle, cases, args.out, settings, used)
    if args.model_card:
        bundle = load_bundle(args.bundle)
        model_card.update_model_card(bundle.root / "model_card.md", metrics, bundle, used, command)


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """The command line; `prog` is the command as it was typed (written into the model card with its arguments)."""
    args = build_parser(prog).parse_args(argv)
    command = f"{prog} " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        settings = EvaluationSettings(
            images_dir=Path(args.images),
            confidence=args.confidence,
            provider=args.provider,
            engine=args.engine,
            threads=args.threads,
            batch_size=args.batch_size,
            n_bootstrap=args.bootstrap,
            reuse=args.reuse,
        )
        (_evaluate_sets if args.sets else _evaluate_one)(args, settings, command)
    except (MelaScreenError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
