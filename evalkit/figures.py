"""The report's figures: ROC, gate and class confusion, members vs ensemble, Grad-CAM grid,
risk-coverage and reliability (drawn by evalkit/plots.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.files.images import read_image
from core.imaging.cam import overlay
from core.imaging.model_input import InputSpec
from core.inference.bundle import Bundle
from core.inference.ensemble import Ensemble
from evalkit.labelled import image_path
from evalkit.metrics import (
    CLEARED,
    ECE_BINS,
    SUSPICIOUS,
    clearing_curve,
    confusion_matrix,
    reliability_bins,
    roc_curve,
    selective_risk_curve,
)

from . import plots
from .evaluation import Evaluation
from .scoring import bundle_identity, load_case

CAM_CACHE_FILE = "cams.npz"
FIGURES = (
    "roc.png",
    "confusion_gate.png",
    "confusion_7class.png",
    "ensemble_vs_members.png",
    "gradcam_grid.png",
    "risk_coverage.png",
    "reliability.png",
)


def select_cam_cases(p: np.ndarray, melanoma: np.ndarray, per_group: int = 6) -> list[int]:
    """`per_group` melanomas and `per_group` others, spread evenly over each group's range of p
    (highest first), so the grid shows confident hits and the misses too."""
    chosen: list[int] = []
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
            if str(z["identity"]) == bundle_identity(bundle):
                cached = {k: z[k] for k in z.files if k != "identity"}
    tiles, fresh = [], {}
    level = ev.default_confidence
    for i in indices:
        iid = ev.image_ids[i]
        image = read_image(image_path(images_dir, iid))
        cam8 = cached.get(iid)
        if cam8 is None:
            x, _ = load_case(image_path(images_dir, iid), InputSpec.from_manifest(bundle.manifest))
            pred = ensemble.predict(x[None], [(image.height, image.width)], with_cam=True)[0]
            cam8 = np.round(np.clip(pred.cam, 0, 1) * 255).astype(np.uint8)  # type: ignore[arg-type]  # with_cam=True: set
            fresh[iid] = cam8
        truth = ev.dx[i] or ("melanoma" if ev.melanoma[i] else "not melanoma")
        caption = f"{iid}\ntruth {truth} | p(mel)={ev.p[i]:.3f}\ngate: {ev.decisions[level][i]}"
        tiles.append((overlay(image.rgb, cam8.astype(np.float32) / 255.0), caption))
    if cache is not None and fresh:
        with open(cache, "wb") as f:
            maps: dict[str, Any] = {**cached, **fresh}
            np.savez_compressed(f, identity=np.array(bundle_identity(bundle)), **maps)
    return tiles


# ------------------------------------------------------------------------------------- figures


def draw_figures(
    ev: Evaluation, metrics: dict, out: Path, tiles: list[tuple[np.ndarray, str]] | None, subtitle: str
) -> list[Path]:
    y, p = ev.melanoma, ev.p
    level = ev.default_confidence
    auc = metrics["melanoma_auc"]
    nan = float("nan")
    fnum = lambda v: nan if v is None else v  # noqa: E731  (JSON None -> NaN for plotting)
    members = {name: (*roc_curve(y, mp), fnum(auc["members"][name])) for name, mp in zip(ev.member_names, ev.member_p)}
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
    lo, hi = auc["ensemble_ci95"]
    ci = (fnum(lo), fnum(hi))
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
    if tiles is not None:  # None: scored from raw outputs, no model run for heat maps
        paths.append(
            plots.plot_cam_grid(
                out / "gradcam_grid.png",
                tiles,
                "Grad-CAM of the melanoma class (ensemble): melanomas first, then others, each by falling p\n"
                + subtitle,
            )
        )
    # Only images without quality flags whose members agree can ever reach the benign branch.
    clearable = np.array([not flags for flags in ev.quality_flags], bool) & (ev.spread <= ev.max_member_spread)
    coverage, rate, missed = clearing_curve(p, y, clearable)
    points, sel_points = {}, {}
    for lvl, dec in ev.decisions.items():
        g = metrics["gate"][f"{lvl:g}"]
        cov = g["counts"][CLEARED] / max(len(p), 1)
        mel_rate = g["melanomas_auto_cleared_n"] / max(g["counts"][CLEARED], 1)
        points[f"gate {lvl:g}"] = (cov, mel_rate, g["melanomas_auto_cleared_n"] / max(n_mel, 1))
        decided = g["counts"][CLEARED] + g["counts"][SUSPICIOUS]
        dd = np.asarray(dec)
        wrong = int(np.sum(y & (dd == CLEARED)) + np.sum(~y & (dd == SUSPICIOUS)))
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
