"""Evaluate a model bundle on a labelled set, through `core`, exactly as the app screens.

Each image goes read_image -> assess_quality -> preprocess -> to_model_input -> Ensemble.run
(TTA-averaged member logits) -> Ensemble.to_predictions (temperature, mean of members) ->
gate.decide, so the numbers here are the numbers a clinic would see. The per-image raw outputs are
cached in the report folder (raw_outputs.npz), so figures and metrics can be redrawn, or an
interrupted run resumed, with --reuse.

    python -m training.evaluate --bundle BUNDLE --split-file split.csv --split test --out REPORT_DIR

No torch here: only core, numpy and matplotlib (for the figures, in training/plots.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.bundle import EVALUATION_BEGIN, EVALUATION_END, Bundle, load_bundle
from core.cam import overlay
from core.ensemble import Ensemble, EnsembleSettings, RawOutputs
from core.errors import ImageReadError, MelaScreenError
from core.gate import Thresholds, decide
from core.images import assess_quality, read_image
from core.preprocess import preprocess, to_model_input
from core.results import QualityReport

from . import plots
from .metrics import (
    ECE_BINS,
    balanced_accuracy,
    bootstrap_auc_ci,
    brier_score,
    clearing_curve,
    confusion_matrix,
    gate_metrics,
    reliability_bins,
    roc_auc,
    roc_curve,
    selective_risk_curve,
)
from .config import DEFAULT_DATA_DIR

DEFAULT_IMAGES = DEFAULT_DATA_DIR / "images"
CACHE_FILE = "raw_outputs.npz"
CAM_CACHE_FILE = "cams.npz"
CACHE_FORMAT = 1
FIGURES = (
    "roc.png",
    "confusion_gate.png",
    "confusion_7class.png",
    "ensemble_vs_members.png",
    "gradcam_grid.png",
    "risk_coverage.png",
    "reliability.png",
)


class EvaluationError(MelaScreenError):
    """The labelled set, the images or the cache cannot be used as asked."""


def image_path(images_dir: Path, image_id: str) -> Path:
    """<images>/<image_id> with its extension, or the first of .jpg/.jpeg/.png/... that exists
    (external test sets are not all JPEG); .jpg when none does, so the error names that file."""
    direct = Path(images_dir) / image_id
    if direct.suffix and direct.is_file():
        return direct
    for ext in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".tif", ".tiff"):
        candidate = Path(images_dir) / f"{image_id}{ext}"
        if candidate.is_file():
            return candidate
    return Path(images_dir) / f"{image_id}.jpg"


# ------------------------------------------------------------------------------ labelled cases


@dataclass(frozen=True)
class LabelledCase:
    image_id: str
    dx: str
    melanoma: bool
    lesion_id: str = ""


_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def read_cases(path: str | Path, split: str | None = None, positive_class: str = "mel") -> tuple[list[LabelledCase], str]:
    """Rows of a split CSV (image_id, lesion_id, dx, melanoma, split) or a plain labels CSV
    (image_id, dx, melanoma). Returns the cases and a sentence saying which rows were used."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise EvaluationError(f"{path}: the labels file cannot be read ({exc.strerror or exc})") from None
    columns = set(rows[0]) if rows else set()
    if "image_id" not in columns or not ({"dx", "melanoma"} & columns):
        raise EvaluationError(
            f"{path}: a labels file needs an image_id column and a dx or melanoma column; found {sorted(columns)}"
        )
    used = f"all {len(rows)} rows of {path.name}"
    if "split" in columns and split:
        names = sorted({r["split"] for r in rows})
        rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise EvaluationError(f"{path}: no rows in split {split!r}; the file has splits {names}")
        used = f"the {len(rows)} rows of split {split!r} in {path.name}"
    elif "split" in columns:
        used += " (every split: pass --split to pick one)"
    elif split:
        used += f" (the file has no split column, so --split {split} does not apply)"
    cases = []
    for line, r in enumerate(rows, start=2):
        dx = (r.get("dx") or "").strip()
        raw = (r.get("melanoma") or "").strip().lower()
        if raw in _TRUE:
            mel = True
        elif raw in _FALSE:
            mel = False
        elif dx:
            mel = dx == positive_class
        else:
            raise EvaluationError(f"{path}, row {line}: no diagnosis (dx) and no melanoma label for {r['image_id']!r}")
        cases.append(LabelledCase(r["image_id"].strip(), dx, mel, (r.get("lesion_id") or "").strip()))
    return cases, used


def sample_cases(cases: list[LabelledCase], limit: int | None, seed: int = 0) -> list[LabelledCase]:
    """A seeded random subset in the original order: label files are often sorted by diagnosis,
    so the first N rows could hold a single class."""
    if limit is None or limit >= len(cases):
        return list(cases)
    keep = np.sort(np.random.default_rng(seed).choice(len(cases), size=limit, replace=False))
    return [cases[i] for i in keep]


# ------------------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class ScoredSet:
    """What the ensemble said about each image, before calibration: the report's cache."""

    image_ids: tuple[str, ...]
    member_logits: np.ndarray  # M x N x K, TTA-averaged, before temperature
    quality: tuple[QualityReport, ...]
    failed: dict[str, str] = field(default_factory=dict)  # image_id -> why it could not be scored
    fingerprint: str = ""

    def merged(self, other: "ScoredSet") -> "ScoredSet":
        return ScoredSet(
            self.image_ids + other.image_ids,
            np.concatenate([self.member_logits, other.member_logits], axis=1),
            self.quality + other.quality,
            {**self.failed, **other.failed},
            self.fingerprint or other.fingerprint,
        )

    def subset(self, image_ids: Sequence[str]) -> "ScoredSet":
        """The scored images among `image_ids`, in that order, and their failures."""
        where = {iid: i for i, iid in enumerate(self.image_ids)}
        idx = [where[i] for i in image_ids if i in where]
        return ScoredSet(
            tuple(self.image_ids[i] for i in idx),
            self.member_logits[:, idx],
            tuple(self.quality[i] for i in idx),
            {i: self.failed[i] for i in image_ids if i in self.failed},
            self.fingerprint,
        )


def empty_scored(n_members: int, n_classes: int, fingerprint: str) -> ScoredSet:
    return ScoredSet((), np.zeros((n_members, 0, n_classes), np.float32), (), {}, fingerprint)


def save_scored(path: str | Path, scored: ScoredSet) -> None:
    """Atomic write (temp file, then rename), so an interrupted run never leaves a broken cache."""
    path = Path(path)
    q = scored.quality
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            format=np.array(CACHE_FORMAT),
            fingerprint=np.array(scored.fingerprint),
            image_ids=np.array(scored.image_ids, dtype=str),
            member_logits=scored.member_logits.astype(np.float32),
            quality_measures=np.array(
                [[r.sharpness, r.brightness, r.dark_fraction, r.bright_fraction] for r in q], dtype=np.float64
            ).reshape(len(q), 4),
            quality_flags=np.array([";".join(r.flags) for r in q], dtype=str),
            failed_ids=np.array(list(scored.failed), dtype=str),
            failed_reasons=np.array(list(scored.failed.values()), dtype=str),
        )
    os.replace(tmp, path)


def load_scored(path: str | Path) -> ScoredSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != CACHE_FORMAT:
                raise EvaluationError(f"{path}: cache format {int(z['format'])} is not {CACHE_FORMAT}; run without --reuse")
            quality = tuple(
                QualityReport(*(float(v) for v in m), flags=tuple(f for f in str(flags).split(";") if f))
                for m, flags in zip(z["quality_measures"], z["quality_flags"])
            )
            return ScoredSet(
                tuple(str(i) for i in z["image_ids"]),
                z["member_logits"].astype(np.float32),
                quality,
                {str(i): str(r) for i, r in zip(z["failed_ids"], z["failed_reasons"])},
                str(z["fingerprint"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise EvaluationError(f"{path}: the cached outputs cannot be read ({exc}); run without --reuse") from None


def prepare_image(path: Path, bundle: Bundle) -> tuple[np.ndarray, QualityReport]:
    """One file -> (model input 3 x S x S, quality), exactly as core.screening does it."""
    m = bundle.manifest
    image = read_image(path)
    quality = assess_quality(image.rgb)
    try:
        x = to_model_input(preprocess(image.rgb, m.preprocessing), m.input_size, m.mean, m.std)
    except (cv2.error, ValueError, MemoryError) as exc:
        raise ImageReadError(str(path), f"could not be analysed ({type(exc).__name__}: {exc})") from None
    return x, quality


def _prepare_or_reason(path: Path, bundle: Bundle) -> tuple[np.ndarray, QualityReport] | str:
    try:
        return prepare_image(path, bundle)
    except ImageReadError as exc:
        return exc.reason


def score_images(
    bundle: Bundle,
    ensemble: Ensemble,
    image_ids: Sequence[str],
    images_dir: Path,
    batch_size: int = 8,
    threads: int = 2,
    on_batch: Callable[[ScoredSet, int], None] | None = None,
) -> ScoredSet:
    """Run the ensemble (no heat maps) over the images, `batch_size` per session run.

    Decoding and preprocessing run on `threads` threads (OpenCV releases the GIL), one batch
    ahead of the ensemble. `on_batch(scored_so_far, n_done)` is called after each batch.
    """
    m = bundle.manifest
    result = empty_scored(len(m.members), len(m.class_names), bundle.fingerprint)
    batches = [list(image_ids[i : i + batch_size]) for i in range(0, len(image_ids), batch_size)]
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:

        def submit(batch):
            return [pool.submit(_prepare_or_reason, image_path(images_dir, iid), bundle) for iid in batch]

        pending = submit(batches[0]) if batches else []
        for b, batch in enumerate(batches):
            prepared = [f.result() for f in pending]
            pending = submit(batches[b + 1]) if b + 1 < len(batches) else []
            ok = [(iid, p) for iid, p in zip(batch, prepared) if not isinstance(p, str)]
            failed = {iid: p for iid, p in zip(batch, prepared) if isinstance(p, str)}
            if ok:
                logits = ensemble.run(np.stack([p[0] for _, p in ok]), with_cam=False).member_logits
            else:
                logits = np.zeros((len(m.members), 0, len(m.class_names)), np.float32)
            part = ScoredSet(tuple(i for i, _ in ok), logits, tuple(p[1] for _, p in ok), failed, bundle.fingerprint)
            result = result.merged(part)
            if on_batch is not None:
                on_batch(result, sum(len(x) for x in batches[: b + 1]))
    return result


# ---------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """Per-image truth and predictions, aligned, for the scored images only."""

    image_ids: tuple[str, ...]
    lesion_ids: tuple[str, ...]
    dx: tuple[str, ...]
    melanoma: np.ndarray  # bool N
    true_class: np.ndarray  # int N, index in the bundle's class names, -1 when not one of them
    p: np.ndarray  # N, calibrated ensemble p(melanoma)
    member_p: np.ndarray  # M x N, each member's calibrated p(melanoma)
    class_probs: np.ndarray  # N x K, ensemble mean of calibrated probabilities
    spread: np.ndarray  # N
    quality_flags: tuple[tuple[str, ...], ...]
    decisions: dict[float, tuple[str, ...]]  # confidence level -> decision per image
    reasons: dict[float, tuple[str, ...]]
    thresholds: dict[float, Thresholds]
    fitted: dict[float, bool]
    default_confidence: float
    max_member_spread: float
    member_names: tuple[str, ...]
    class_names: tuple[str, ...]
    failed: dict[str, str]


def member_names(bundle: Bundle) -> tuple[str, ...]:
    return tuple(f"#{i} {m.arch} seed {m.seed}" for i, m in enumerate(bundle.manifest.members))


def build_evaluation(
    bundle: Bundle, ensemble: Ensemble, cases: Sequence[LabelledCase], scored: ScoredSet, confidence: float | None = None
) -> Evaluation:
    """Calibrate and gate the cached outputs with core, at the default level and every fitted one."""
    m = bundle.manifest
    gate = m.gate
    default = float(confidence if confidence is not None else gate.default_confidence)
    levels = sorted({default, *gate.fitted})
    by_id = {c.image_id: c for c in cases}
    scored = scored.subset([c.image_id for c in cases])
    chosen = [by_id[i] for i in scored.image_ids]
    predictions = ensemble.to_predictions(RawOutputs(member_logits=scored.member_logits, cams=None))
    probs = ensemble.calibrated_member_probs(scored.member_logits)  # M x N x K
    decisions, reasons, thresholds = {}, {}, {}
    for level in levels:
        t = gate.thresholds(level)
        outcomes = [decide(p, t, q, gate.max_member_spread) for p, q in zip(predictions, scored.quality)]
        thresholds[level] = t
        decisions[level] = tuple(o.decision.value for o in outcomes)
        reasons[level] = tuple(o.reason for o in outcomes)
    index = {c: k for k, c in enumerate(m.class_names)}
    n = len(chosen)
    return Evaluation(
        image_ids=scored.image_ids,
        lesion_ids=tuple(c.lesion_id for c in chosen),
        dx=tuple(c.dx for c in chosen),
        melanoma=np.array([c.melanoma for c in chosen], dtype=bool),
        true_class=np.array([index.get(c.dx, -1) for c in chosen], dtype=np.int64),
        p=np.array([pr.p_melanoma for pr in predictions], dtype=np.float64),
        member_p=probs[:, :, m.positive_index].astype(np.float64).reshape(len(m.members), n),
        class_probs=probs.mean(axis=0).astype(np.float64).reshape(n, len(m.class_names)),
        spread=np.array([pr.spread for pr in predictions], dtype=np.float64),
        quality_flags=tuple(q.flags for q in scored.quality),
        decisions=decisions,
        reasons=reasons,
        thresholds=thresholds,
        fitted={level: level in gate.fitted for level in levels},
        default_confidence=default,
        max_member_spread=gate.max_member_spread,
        member_names=member_names(bundle),
        class_names=m.class_names,
        failed=scored.failed,
    )


def _round(x):
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    return x


def compute_metrics(ev: Evaluation, n_bootstrap: int = 2000, seed: int = 0) -> dict:
    y, p = ev.melanoma, ev.p
    has_lesions = all(ev.lesion_ids) and len(ev.lesion_ids) > 0
    lo, hi = bootstrap_auc_ci(y, p, ev.lesion_ids if has_lesions else None, n_bootstrap, seed)
    known = ev.true_class >= 0
    predicted_class = ev.class_probs.argmax(axis=1) if len(p) else np.zeros(0, int)
    rel = reliability_bins(y, p, ECE_BINS)
    gate = {}
    for level, decisions in ev.decisions.items():
        t = ev.thresholds[level]
        gate[f"{level:g}"] = {
            "thresholds": {"low": t.low, "high": t.high},
            "fitted_on_validation": ev.fitted[level],
            **gate_metrics(decisions, y),
        }
    metrics = {
        "n_images": len(ev.image_ids),
        "n_melanomas": int(y.sum()),
        "n_lesions": len(set(ev.lesion_ids)) if has_lesions else None,
        "n_failed": len(ev.failed),
        "failed": ev.failed,
        "melanoma_auc": {
            "ensemble": roc_auc(y, p),
            "ensemble_ci95": [lo, hi],
            "ci_method": (
                f"percentile bootstrap, {n_bootstrap} resamples of "
                + ("lesions (all images of a drawn lesion)" if has_lesions else "images")
            ),
            "members": {name: roc_auc(y, mp) for name, mp in zip(ev.member_names, ev.member_p)},
        },
        "balanced_accuracy_7class": balanced_accuracy(ev.true_class, predicted_class),
        "balanced_accuracy_n_images": int(known.sum()),
        "ece": rel.ece,
        "ece_bins": ECE_BINS,
        "brier": brier_score(y, p),
        "gate_default_confidence": ev.default_confidence,
        "gate": gate,
    }
    return _round(metrics)


# ----------------------------------------------------------------------------------- heat maps


def select_cam_cases(p: np.ndarray, melanoma: np.ndarray, per_group: int = 6) -> list[int]:
    """`per_group` melanomas and `per_group` others, spread evenly over each group's range of p
    (highest first), so the grid shows confident hits and the misses too."""
    chosen = []
    for group in (np.flatnonzero(melanoma), np.flatnonzero(~np.asarray(melanoma, bool))):
        if len(group) == 0:
            continue
        ranked = group[np.argsort(-p[group], kind="mergesort")]
        picks = np.unique(np.round(np.linspace(0, len(ranked) - 1, min(per_group, len(ranked)))).astype(int))
        chosen.extend(int(ranked[k]) for k in picks)
    return chosen


def cam_tiles(
    bundle: Bundle, ensemble: Ensemble, ev: Evaluation, images_dir: Path, indices: Sequence[int], cache: Path | None
) -> list[tuple[np.ndarray, str]]:
    """Heat maps for the chosen images only (CAMs cost a full run each); cached as uint8 maps."""
    cached: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["fingerprint"]) == bundle.fingerprint:
                cached = {k: z[k] for k in z.files if k != "fingerprint"}
    tiles, fresh = [], {}
    level = ev.default_confidence
    for i in indices:
        iid = ev.image_ids[i]
        image = read_image(image_path(images_dir, iid))
        cam8 = cached.get(iid)
        if cam8 is None:
            x, _ = prepare_image(image_path(images_dir, iid), bundle)
            pred = ensemble.predict(x[None], [(image.height, image.width)], with_cam=True)[0]
            cam8 = np.round(np.clip(pred.cam, 0, 1) * 255).astype(np.uint8)
            fresh[iid] = cam8
        truth = ev.dx[i] or ("melanoma" if ev.melanoma[i] else "not melanoma")
        caption = f"{iid}\ntruth {truth} | p(mel)={ev.p[i]:.3f}\ngate: {ev.decisions[level][i]}"
        tiles.append((overlay(image.rgb, cam8.astype(np.float32) / 255.0), caption))
    if cache is not None and fresh:
        with open(cache, "wb") as f:
            np.savez_compressed(f, fingerprint=np.array(bundle.fingerprint), **{**cached, **fresh})
    return tiles


# ------------------------------------------------------------------------------------- figures


def draw_figures(ev: Evaluation, metrics: dict, out: Path, tiles: list[tuple[np.ndarray, str]], subtitle: str) -> list[Path]:
    y, p = ev.melanoma, ev.p
    level = ev.default_confidence
    auc = metrics["melanoma_auc"]
    nan = float("nan")
    fnum = lambda v: nan if v is None else v  # noqa: E731  (JSON None -> NaN for plotting)
    members = {
        name: (*roc_curve(y, mp), fnum(auc["members"][name])) for name, mp in zip(ev.member_names, ev.member_p)
    }
    paths = [plots.plot_roc(out / "roc.png", members, (*roc_curve(y, p), fnum(auc["ensemble"])), subtitle)]

    d = np.asarray(ev.decisions[level])
    counts = np.array([[np.sum((y == truth) & (d == k)) for k in plots.DECISION_ORDER] for truth in (True, False)])
    t = ev.thresholds[level]
    paths.append(plots.plot_gate_confusion(out / "confusion_gate.png", counts, level, t.low, t.high, subtitle))

    k = len(ev.class_names)
    predicted = ev.class_probs.argmax(axis=1) if len(p) else np.zeros(0, int)
    paths.append(
        plots.plot_confusion_7class(
            out / "confusion_7class.png",
            confusion_matrix(ev.true_class, predicted, k),
            ev.class_names,
            fnum(metrics["balanced_accuracy_7class"]),
            subtitle,
        )
    )
    ci = tuple(fnum(v) for v in auc["ensemble_ci95"])
    paths.append(
        plots.plot_ensemble_vs_members(
            out / "ensemble_vs_members.png",
            {name: fnum(v) for name, v in auc["members"].items()},
            fnum(auc["ensemble"]),
            ci,
            subtitle,
        )
    )
    n_mel = int(y.sum())
    paths.append(
        plots.plot_cam_grid(
            out / "gradcam_grid.png",
            tiles,
            f"Grad-CAM of the melanoma class (ensemble): melanomas first, then others, each by falling p\n{subtitle}",
        )
    )
    # Only images without quality flags whose members agree can ever reach the benign branch.
    clearable = np.array([not flags for flags in ev.quality_flags], bool) & (ev.spread <= ev.max_member_spread)
    coverage, rate, missed = clearing_curve(p, y, clearable)
    points, sel_points = {}, {}
    for lvl, dec in ev.decisions.items():
        g = metrics["gate"][f"{lvl:g}"]
        cov = g["counts"]["benign"] / max(len(p), 1)
        mel_rate = g["melanomas_auto_cleared_n"] / max(g["counts"]["benign"], 1)
        points[f"gate {lvl:g}"] = (cov, mel_rate, g["melanomas_auto_cleared_n"] / max(n_mel, 1))
        decided = g["counts"]["benign"] + g["counts"]["suspicious"]
        dd = np.asarray(dec)
        wrong = int(np.sum(y & (dd == "benign")) + np.sum(~y & (dd == "suspicious")))
        sel_points[f"gate {lvl:g}"] = (decided / max(len(p), 1), wrong / max(decided, 1))
    sel_cov, sel_risk = selective_risk_curve(p, y)
    paths.append(
        plots.plot_risk_coverage(
            out / "risk_coverage.png", coverage, rate, missed, points, sel_cov, sel_risk, sel_points, subtitle
        )
    )
    rel = reliability_bins(y, p, ECE_BINS)
    paths.append(
        plots.plot_reliability(
            out / "reliability.png", rel.edges, rel.mean_predicted, rel.observed, rel.counts, rel.ece, subtitle
        )
    )
    return paths


# ------------------------------------------------------------------------------------- summary


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def summary_lines(metrics: dict, bundle: Bundle, used: str) -> list[str]:
    auc = metrics["melanoma_auc"]
    ci = auc["ensemble_ci95"]
    lines = [
        f"Bundle {bundle.manifest.name} {bundle.manifest.version} ({len(bundle.manifest.members)} members, "
        f"fingerprint {bundle.fingerprint}) on {used}.",
        f"{metrics['n_images']} images scored ({metrics['n_melanomas']} melanomas"
        + (f", {metrics['n_lesions']} lesions" if metrics.get("n_lesions") else "")
        + f"); {metrics['n_failed']} could not be scored.",
        f"Melanoma AUC (ensemble) {_num(auc['ensemble'])} (95% CI {_num(ci[0])}-{_num(ci[1])}, {auc['ci_method']}).",
        "Single members: " + ", ".join(f"{k} {_num(v)}" for k, v in auc["members"].items()) + ".",
        f"7-class balanced accuracy {_num(metrics['balanced_accuracy_7class'])}; ECE ({metrics['ece_bins']} bins, "
        f"p(melanoma)) {_num(metrics['ece'], 4)}; Brier {_num(metrics['brier'], 4)}.",
    ]
    for level, g in metrics["gate"].items():
        c = g["counts"]
        t = g["thresholds"]
        co, al = g["confident_only"], g["all_cases"]
        default = " (default)" if float(level) == metrics["gate_default_confidence"] else ""
        fitted = "fitted on validation" if g["fitted_on_validation"] else "NOT fitted: p itself used as thresholds"
        lines += [
            "",
            f"Gate at confidence {level}{default}: benign below p={t['low']:.4g}, suspicious from p={t['high']:.4g} ({fitted}).",
            f"  benign {c['benign']}, uncertain {c['uncertain']}, suspicious {c['suspicious']}; "
            f"{g['review_n']} ({_pct(g['review_share'])}) go to a human.",
            f"  Melanomas auto-cleared as benign: {g['melanomas_auto_cleared_n']} = {_pct(g['melanomas_auto_cleared_share'])} "
            "of ALL melanomas (no human sees these).",
            f"  Non-melanomas auto-cleared: {_pct(g['benign_auto_cleared_share'])}; melanoma sensitivity "
            f"(suspicious + uncertain sent to a human): {_pct(g['sensitivity_sent_to_human'])}.",
            f"  All cases: 'suspicious' finds {_pct(al['melanoma_recall_suspicious_only'])} of melanomas with precision "
            f"{_pct(al['melanoma_precision_suspicious'])}; melanomas are {_pct(al['melanoma_share_of_review_queue'])} "
            "of the review queue.",
            f"  Confident cases only (coverage {_pct(co['coverage'])}, {co['n']} images; the seed's style of figure, "
            f"NOT the whole picture): precision {_pct(co['melanoma_precision'])}, recall {_pct(co['melanoma_recall'])}.",
        ]
    return lines


def summary_markdown(metrics: dict, bundle: Bundle, used: str) -> list[str]:
    """The headline list and the confident-only vs all-cases table (summary.md and the model card)."""
    # Indented summary lines are details of the line above: nested list items in Markdown.
    items = [("  - " + x.strip()) if x.startswith("  ") else ("- " + x if x else "") for x in summary_lines(metrics, bundle, used)]
    body = [*items, ""]
    body += [
        "## Confident cases only vs all cases",
        "",
        "The seed reported precision and recall over the images its gate was confident about. That figure "
        "is shown here only beside its coverage and the all-cases numbers: an uncertain melanoma is not found "
        "until a human looks at it.",
        "",
        "| gate confidence | coverage (not uncertain) | recall, confident only | precision, confident only "
        "| recall of 'suspicious', all cases | sent to a human, all melanomas | melanomas auto-cleared, all |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for level, g in metrics["gate"].items():
        co, al = g["confident_only"], g["all_cases"]
        body.append(
            f"| {level} | {_pct(co['coverage'])} | {_pct(co['melanoma_recall'])} | {_pct(co['melanoma_precision'])} "
            f"| {_pct(al['melanoma_recall_suspicious_only'])} | {_pct(g['sensitivity_sent_to_human'])} "
            f"| {_pct(g['melanomas_auto_cleared_share'])} |"
        )
    body.append("")
    return body


def update_model_card(card: Path, metrics: dict, bundle: Bundle, used: str, command: str) -> None:
    """Replace the model card's evaluation section (between the markers) with these test figures."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    section = [EVALUATION_BEGIN, "", f"Reproduce with: `{command}`", "", *summary_markdown(metrics, bundle, used), EVALUATION_END]
    if EVALUATION_BEGIN in text and EVALUATION_END in text:
        head, rest = text.split(EVALUATION_BEGIN, 1)
        tail = rest.split(EVALUATION_END, 1)[1]
        text = head + "\n".join(section) + tail
    else:
        text = text.rstrip("\n") + "\n\n## Test-set evaluation\n" + "\n".join(section) + "\n"
    card.write_text(text, encoding="utf-8")


def write_summary_md(path: Path, metrics: dict, bundle: Bundle, used: str) -> None:
    body = ["# Evaluation report", "", *summary_markdown(metrics, bundle, used)]
    if metrics["failed"]:
        body += ["## Images that could not be scored", ""]
        body += [f"- `{iid}`: {reason}" for iid, reason in list(metrics["failed"].items())[:20]]
        if len(metrics["failed"]) > 20:
            body.append(f"- ... and {len(metrics['failed']) - 20} more (see predictions.csv)")
        body.append("")
    body += ["## Figures", ""]
    captions = {
        "roc.png": "ROC, melanoma vs rest: each member and the ensemble",
        "ensemble_vs_members.png": "AUC of each member vs the ensemble (with its 95% CI)",
        "confusion_gate.png": "Gate outcomes at the default confidence, by truth",
        "confusion_7class.png": "7-class confusion matrix (argmax)",
        "risk_coverage.png": "Auto-clearing cost as the benign threshold moves; selective risk",
        "reliability.png": "Reliability diagram of p(melanoma)",
        "gradcam_grid.png": "Grad-CAM heat maps of 6 melanomas and 6 others",
    }
    for name, caption in captions.items():
        body += [f"### {caption}", "", f"![{caption}]({name})", ""]
    body += [
        "Per-image predictions: `predictions.csv`. All numbers: `metrics.json`. Raw ensemble outputs: "
        f"`{CACHE_FILE}` (redraw with `--reuse`).",
        "",
        f"_{bundle.manifest.disclaimer}_",
        "",
    ]
    path.write_text("\n".join(body), encoding="utf-8")


def write_predictions_csv(path: Path, ev: Evaluation) -> None:
    level = ev.default_confidence
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["image_id", "lesion_id", "dx", "melanoma", "p_melanoma", "spread", "decision", "reason", "quality_flags",
             "predicted_class", *[f"p_member{i}" for i in range(len(ev.member_names))]]
        )
        for i, iid in enumerate(ev.image_ids):
            w.writerow(
                [iid, ev.lesion_ids[i], ev.dx[i], int(ev.melanoma[i]), f"{ev.p[i]:.5f}", f"{ev.spread[i]:.5f}",
                 ev.decisions[level][i], ev.reasons[level][i], ";".join(ev.quality_flags[i]),
                 ev.class_names[int(ev.class_probs[i].argmax())], *[f"{mp[i]:.5f}" for mp in ev.member_p]]
            )
        for iid, reason in ev.failed.items():
            w.writerow([iid, "", "", "", "", "", "error", reason, "", "", *[""] * len(ev.member_names)])


# ----------------------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class EvaluationSettings:
    images_dir: Path = DEFAULT_IMAGES
    confidence: float | None = None  # None: the bundle's default
    provider: str = "auto"
    threads: int = 2
    batch_size: int = 8
    n_bootstrap: int = 2000
    reuse: bool = False
    cams_per_group: int = 6


def _progress_printer(total: int, stream=None) -> Callable[[ScoredSet, int], None]:
    stream = stream or sys.stderr
    start = time.monotonic()
    last = [0.0]

    def report(scored: ScoredSet, done: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 10:
            return
        last[0] = now
        rate = done / max(now - start, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0
        stream.write(f"scored {done}/{total} images ({rate:.2f} img/s, about {eta / 60:.1f} min left)\n")
        stream.flush()

    return report


def run_evaluation(
    bundle_path: str | Path,
    cases: Sequence[LabelledCase],
    out: str | Path,
    settings: EvaluationSettings = EvaluationSettings(),
    used: str = "",
    stream=None,
) -> dict:
    """Score (or reuse), compute metrics, draw figures, write the report folder; returns the metrics."""
    stream = stream or sys.stdout
    out = Path(out)
    images_dir = Path(settings.images_dir)
    if not images_dir.is_dir():
        raise EvaluationError(f"{images_dir}: the images folder does not exist; pass --images")
    ids = [c.image_id for c in cases]
    if len(set(ids)) != len(ids):
        raise EvaluationError("the labels list an image_id more than once; each image must appear once")
    bundle = load_bundle(bundle_path)
    ensemble = Ensemble(bundle, EnsembleSettings(provider=settings.provider, threads=settings.threads))
    out.mkdir(parents=True, exist_ok=True)
    cache = out / CACHE_FILE
    done = empty_scored(len(bundle.manifest.members), len(bundle.manifest.class_names), bundle.fingerprint)
    if settings.reuse and cache.is_file():
        done = load_scored(cache)
        if done.fingerprint != bundle.fingerprint:
            raise EvaluationError(
                f"{cache} was made with another bundle (fingerprint {done.fingerprint}, this one is "
                f"{bundle.fingerprint}); run without --reuse or use another --out folder"
            )
    known = set(done.image_ids) | set(done.failed)
    todo = [i for i in ids if i not in known]
    if todo:
        print(f"scoring {len(todo)} images ({len(ids) - len(todo)} from the cache) on {ensemble.provider_in_use}",
              file=sys.stderr)
        progress = _progress_printer(len(todo))
        last_save = [time.monotonic()]

        def checkpoint(partial: ScoredSet, n_done: int) -> None:
            progress(partial, n_done)
            if time.monotonic() - last_save[0] > 60:  # a long run can be resumed with --reuse
                save_scored(cache, done.merged(partial))
                last_save[0] = time.monotonic()

        new = score_images(bundle, ensemble, todo, images_dir, settings.batch_size, settings.threads, checkpoint)
        done = done.merged(new)
        save_scored(cache, done)
    ev = build_evaluation(bundle, ensemble, cases, done, settings.confidence)
    if len(ev.image_ids) == 0:
        raise EvaluationError("no image could be scored; see the reasons in predictions.csv")
    metrics = compute_metrics(ev, settings.n_bootstrap)
    metrics["bundle"] = {
        "name": bundle.manifest.name,
        "version": bundle.manifest.version,
        "fingerprint": bundle.fingerprint,
        "path": str(bundle_path),
        "members": [m.file for m in bundle.manifest.members],
        "tta_views": list(bundle.manifest.tta_views),
        "max_member_spread": bundle.manifest.gate.max_member_spread,
    }
    metrics["data"] = {"rows_used": used, "images_dir": str(images_dir), "provider": ensemble.provider_in_use}
    indices = select_cam_cases(ev.p, ev.melanoma, settings.cams_per_group)
    tiles = cam_tiles(bundle, ensemble, ev, images_dir, indices, out / CAM_CACHE_FILE)
    subtitle = f"{bundle.manifest.name} {bundle.manifest.version}, n={metrics['n_images']} ({metrics['n_melanomas']} mel.)"
    draw_figures(ev, metrics, out, tiles, subtitle)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_predictions_csv(out / "predictions.csv", ev)
    write_summary_md(out / "summary.md", metrics, bundle, used)
    print("\n".join(summary_lines(metrics, bundle, used)), file=stream)
    print(f"\nReport: {out.resolve()}", file=stream)
    return metrics


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Evaluate a model bundle through core on a labelled set and write a report folder.",
    )
    ap.add_argument("--bundle", required=True, help="bundle folder or .zip")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--split-file", help="split CSV: image_id, lesion_id, dx, melanoma, split")
    src.add_argument("--labels", help="plain labels CSV (image_id, dx, melanoma[, lesion_id]): every row is used")
    ap.add_argument("--split", default=None, help="which split of --split-file to use (default: test)")
    ap.add_argument("--out", required=True, help="report folder (created)")
    ap.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of <image_id>.jpg (or .png, ...) files")
    ap.add_argument("--limit", type=int, default=None, help="evaluate a seeded random sample of N images")
    ap.add_argument("--confidence", type=float, default=None, help="gate confidence (default: the bundle's)")
    ap.add_argument("--provider", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--threads", type=int, default=2, help="preprocessing and onnxruntime threads")
    ap.add_argument("--batch-size", type=int, default=8, help="images per ensemble run")
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the AUC interval")
    ap.add_argument("--reuse", action="store_true", help=f"reuse (and complete) the outputs cached in OUT/{CACHE_FILE}")
    ap.add_argument("--model-card", action="store_true",
                    help="write the figures into the bundle's model_card.md (test split of the training run only)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
        settings = EvaluationSettings(
            images_dir=Path(args.images),
            confidence=args.confidence,
            provider=args.provider,
            threads=args.threads,
            batch_size=args.batch_size,
            n_bootstrap=args.bootstrap,
            reuse=args.reuse,
        )
        metrics = run_evaluation(args.bundle, cases, args.out, settings, used)
        if args.model_card:
            bundle = load_bundle(args.bundle, verify=False)
            command = "python -m training.evaluate " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
            update_model_card(bundle.root / "model_card.md", metrics, bundle, used, command)
    except (MelaScreenError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
