"""Figures of an evaluation report: each a PNG that stands on its own (title, axes, legend).

Every function takes plain arrays and a path and draws on its own `Figure` (no pyplot state), with
the Agg canvas, so reports draw on machines without a display and from threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.decision.results import Decision

# The gate's outcomes as the confusion figure's columns (stored codes, as the report's counts name them).
DECISION_ORDER = (Decision.NO_CANCER_SUSPECTED.value, Decision.REVIEW.value, Decision.SUSPICIOUS.value)
_ENSEMBLE_COLOUR = "#111111"


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    return path


def _fmt_auc(auc: float) -> str:
    return "n/a" if auc is None or not np.isfinite(auc) else f"{auc:.3f}"


def plot_roc(
    path: str | Path,
    fpr_tpr_members: dict[str, tuple[np.ndarray, np.ndarray, float]],
    fpr_tpr_ensemble: tuple[np.ndarray, np.ndarray, float],
    subtitle: str = "",
) -> Path:
    """ROC curves of melanoma vs rest: each member thin, the ensemble thick; AUC in the legend."""
    fig = _new_figure(6.2, 6.0)
    ax = fig.add_subplot()
    for name, (fpr, tpr, auc) in fpr_tpr_members.items():
        ax.plot(fpr, tpr, lw=1.0, alpha=0.75, label=f"{name} (AUC {_fmt_auc(auc)})")
    fpr, tpr, auc = fpr_tpr_ensemble
    ax.plot(fpr, tpr, lw=2.6, color=_ENSEMBLE_COLOUR, label=f"ensemble (AUC {_fmt_auc(auc)})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (non-melanomas called melanoma)")
    ax.set_ylabel("true positive rate (melanomas found)")
    ax.set_title("Melanoma vs rest: ROC per ensemble member and ensemble" + (f"\n{subtitle}" if subtitle else ""))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _matrix(ax, counts: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str]) -> None:
    """Counts with row percentages; colour is the row share so small classes stay readable."""
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if share[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{int(counts[i, j])}\n{100 * share[i, j]:.1f}%",
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
            )
    ax.set_xticks(range(len(col_labels)), labels=list(col_labels))
    ax.set_yticks(range(len(row_labels)), labels=[f"{r} (n={int(n)})" for r, n in zip(row_labels, rows[:, 0])])


def plot_gate_confusion(
    path: str | Path, counts: np.ndarray, confidence: float, low: float, high: float, subtitle: str = ""
) -> Path:
    """counts: 2 x 3, rows (melanoma, not melanoma), columns DECISION_ORDER."""
    fig = _new_figure(6.6, 3.8)
    ax = fig.add_subplot()
    _matrix(ax, np.asarray(counts), ("melanoma", "not melanoma"), DECISION_ORDER)
    ax.set_xlabel("gate decision (uncertain and suspicious go to a human)")
    ax.set_ylabel("truth")
    ax.set_title(
        f"Gate outcomes at confidence {confidence:g} (benign below p={low:.3g}, suspicious from p={high:.3g})"
        + (f"\n{subtitle}" if subtitle else ""),
        fontsize=10,
    )
    return _save(fig, path)


def plot_confusion_7class(
    path: str | Path, counts: np.ndarray, class_names: Sequence[str], balanced_accuracy: float, subtitle: str = ""
) -> Path:
    """counts: K x K, rows truth, columns the ensemble's most probable class."""
    k = len(class_names)
    fig = _new_figure(1.0 * k + 2.5, 0.85 * k + 1.8)
    ax = fig.add_subplot()
    _matrix(ax, np.asarray(counts), class_names, class_names)
    ax.set_xlabel("predicted class (argmax of the ensemble's calibrated probabilities)")
    ax.set_ylabel("true diagnosis")
    ax.set_title(
        f"Diagnosis confusion matrix, balanced accuracy {balanced_accuracy:.3f}"
        + (f"\n{subtitle}" if subtitle else ""),
        fontsize=10,
    )
    return _save(fig, path)


def plot_ensemble_vs_members(
    path: str | Path,
    member_aucs: dict[str, float],
    ensemble_auc: float,
    ensemble_ci: tuple[float, float] | None,
    subtitle: str = "",
) -> Path:
    """One dot per member, the ensemble as a line with its bootstrap 95% interval as a band."""
    names = list(member_aucs)
    values = [member_aucs[n] for n in names]
    fig = _new_figure(max(5.5, 1.1 * len(names) + 3), 4.6)
    ax = fig.add_subplot()
    x = np.arange(len(names))
    ax.scatter(x, values, s=60, zorder=3, label="single member")
    for xi, v in zip(x, values):
        ax.annotate(_fmt_auc(v), (xi, v), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    if ensemble_ci is not None and all(np.isfinite(ensemble_ci)):
        ax.axhspan(
            ensemble_ci[0],
            ensemble_ci[1],
            color="orange",
            alpha=0.2,
            label=f"ensemble 95% CI [{ensemble_ci[0]:.3f}, {ensemble_ci[1]:.3f}]",
        )
    ax.axhline(ensemble_auc, color="orange", lw=2.2, label=f"ensemble AUC {_fmt_auc(ensemble_auc)}")
    finite = [v for v in values + [ensemble_auc] + list(ensemble_ci or ()) if v is not None and np.isfinite(v)]
    lo = min(finite) if finite else 0.5
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_xticks(x, labels=names, rotation=20, ha="right")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel("melanoma AUC (melanoma vs rest)")
    ax.set_title("Single members vs the ensemble" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_cam_grid(path: str | Path, tiles: Sequence[tuple[np.ndarray, str]], title: str, columns: int = 4) -> Path:
    """tiles: (RGB uint8 image with its heat map drawn over it, caption)."""
    n = max(len(tiles), 1)
    rows = int(np.ceil(n / columns))
    fig = _new_figure(3.3 * columns, 2.9 * rows + 0.6)
    for i in range(rows * columns):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.axis("off")
        if i < len(tiles):
            image, caption = tiles[i]
            ax.imshow(image)
            ax.set_title(caption, fontsize=8)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def _label_beside(x_share: float) -> dict:
    """Annotation placement that keeps the text inside the axes at either end."""
    right = x_share > 0.6
    return dict(
        textcoords="offset points",
        xytext=(-8 if right else 8, 8),
        ha="right" if right else "left",
        fontsize=7,
        bbox=dict(boxstyle="round", fc="white", alpha=0.8, lw=0.3),
    )


def plot_risk_coverage(
    path: str | Path,
    cleared_coverage: np.ndarray,
    cleared_mel_rate: np.ndarray,
    cleared_mel_missed: np.ndarray,
    operating_points: dict[str, tuple[float, float, float]],
    selective_coverage: np.ndarray,
    selective_risk: np.ndarray,
    selective_points: dict[str, tuple[float, float]],
    subtitle: str = "",
) -> Path:
    """Left: moving the low (benign) threshold; right: selective risk of confident calls.

    operating_points: label -> (coverage, melanoma rate among cleared, share of melanomas missed).
    selective_points: label -> (coverage, risk) at the gate's levels.
    """
    fig = _new_figure(12.5, 5.0)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(100 * cleared_coverage, 100 * cleared_mel_rate, lw=1.8, label="melanomas among auto-cleared images")
    ax.plot(
        100 * cleared_coverage, 100 * cleared_mel_missed, lw=1.8, ls="--", label="share of all melanomas auto-cleared"
    )
    for label, (cov, rate, missed) in operating_points.items():
        ax.scatter([100 * cov, 100 * cov], [100 * rate, 100 * missed], s=40, zorder=3, color="black")
        ax.annotate(
            f"{label}: {100 * cov:.1f}% cleared,\n{100 * rate:.2f}% of them melanoma,\n"
            f"{100 * missed:.1f}% of melanomas missed",
            (100 * cov, 100 * rate),
            **_label_beside(cov),
        )
    ax.set_xlabel("coverage: % of all images auto-cleared as benign")
    ax.set_ylabel("%")
    ax.set_title("Moving the benign threshold: what auto-clearing costs", fontsize=10)
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)

    ax = fig.add_subplot(1, 2, 2)
    ax.plot(
        100 * selective_coverage,
        100 * selective_risk,
        lw=1.8,
        color="purple",
        label="error among the most confident calls",
    )
    for label, (cov, risk) in selective_points.items():
        ax.scatter([100 * cov], [100 * risk], s=45, zorder=3, color="black", label=f"{label} (benign + suspicious)")
        ax.annotate(
            f"{label}: {100 * cov:.1f}% decided,\n{100 * risk:.2f}% wrong",
            (100 * cov, 100 * risk),
            **_label_beside(cov),
        )
    ax.set_xlabel("coverage: % of images given a confident call (most confident first)")
    ax.set_ylabel("selective risk: % of these calls wrong")
    ax.set_title("Risk-coverage of confident calls (melanoma if p >= 0.5)", fontsize=10)
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle("Risk vs coverage" + (f" ({subtitle})" if subtitle else ""), fontsize=11)
    return _save(fig, path)


def plot_reliability(
    path: str | Path,
    bin_edges: np.ndarray,
    mean_predicted: np.ndarray,
    observed: np.ndarray,
    counts: np.ndarray,
    ece: float,
    subtitle: str = "",
) -> Path:
    """Reliability diagram of p(melanoma): observed melanoma share per bin vs mean predicted p."""
    fig = _new_figure(6.0, 7.0)
    ax = fig.add_axes((0.12, 0.36, 0.83, 0.56))
    hist = fig.add_axes((0.12, 0.08, 0.83, 0.2), sharex=ax)
    centres = (bin_edges[:-1] + bin_edges[1:]) / 2
    width = np.diff(bin_edges)
    filled = counts > 0
    ax.bar(
        centres[filled],
        observed[filled],
        width=width[filled] * 0.95,
        color="#4c72b0",
        alpha=0.8,
        edgecolor="black",
        lw=0.5,
        label="observed melanoma share",
    )
    ax.scatter(
        mean_predicted[filled], observed[filled], color="black", s=14, zorder=3, label="(mean predicted p, observed)"
    )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("observed share of melanomas in bin")
    ax.set_title(
        f"Reliability of p(melanoma), {len(centres)} bins, ECE {ece:.4f}" + (f"\n{subtitle}" if subtitle else ""),
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    hist.bar(centres, counts, width=width * 0.95, color="grey")
    hist.set_yscale("log" if counts.max(initial=0) > 50 else "linear")
    hist.set_xlabel("predicted p(melanoma) (calibrated ensemble)")
    hist.set_ylabel("images")
    return _save(fig, path)
