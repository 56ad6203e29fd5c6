"""The report in words: the printed summary, summary.md, predictions.csv, and the multi-set table
(one column per labelled set) that the model card carries."""

from __future__ import annotations

import csv
from pathlib import Path

from core.inference.bundle import Bundle
from evalkit.metrics import CLEARED, REVIEW, SUSPICIOUS

from .evaluation import BANDS, MALIGNANT_DX, Evaluation
from .scoring import CACHE_FILE, bundle_identity


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def summary_lines(metrics: dict, bundle: Bundle, used: str) -> list[str]:
    auc = metrics["melanoma_auc"]
    ci = auc["ensemble_ci95"]
    lines = [
        f"Bundle {bundle.manifest.name} {bundle.manifest.version} ({len(bundle.manifest.members)} members, "
        f"identity {bundle_identity(bundle)}) on {used}.",
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
            f"Gate at confidence {level}{default}: benign below p={t['low']:.4g}, "
            f"suspicious from p={t['high']:.4g} ({fitted}).",
            f"  benign {c[CLEARED]}, uncertain {c[REVIEW]}, suspicious {c[SUSPICIOUS]}; "
            f"{g['review_n']} ({_pct(g['review_share'])}) go to a human.",
            f"  Melanomas auto-cleared as benign: {g['melanomas_auto_cleared_n']} = "
            f"{_pct(g['melanomas_auto_cleared_share'])} of ALL melanomas (no human sees these).",
            f"  Non-melanomas auto-cleared: {_pct(g['benign_auto_cleared_share'])}; melanoma sensitivity "
            f"(suspicious + uncertain sent to a human): {_pct(g['sensitivity_sent_to_human'])}.",
            f"  All cases: 'suspicious' finds {_pct(al['melanoma_recall_suspicious_only'])} of melanomas with "
            f"precision {_pct(al['melanoma_precision_suspicious'])}; melanomas are "
            f"{_pct(al['melanoma_share_of_review_queue'])} of the review queue.",
            f"  Confident cases only (coverage {_pct(co['coverage'])}, {co['n']} images; the seed's style of "
            f"figure, NOT the whole picture): precision {_pct(co['melanoma_precision'])}, "
            f"recall {_pct(co['melanoma_recall'])}.",
        ]
    return lines


def summary_markdown(metrics: dict, bundle: Bundle, used: str) -> list[str]:
    """The headline list and the confident-only vs all-cases table (summary.md and the model card)."""
    # Indented summary lines are details of the line above: nested list items in Markdown.
    items = [
        ("  - " + x.strip()) if x.startswith("  ") else ("- " + x if x else "")
        for x in summary_lines(metrics, bundle, used)
    ]
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
        if (path.parent / name).is_file():  # no heat-map grid when scored from raw outputs
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
            [
                "image_id",
                "lesion_id",
                "dx",
                "melanoma",
                "p_melanoma",
                "spread",
                "decision",
                "reason",
                "quality_flags",
                "predicted_class",
                *[f"p_member{i}" for i in range(len(ev.member_names))],
            ]
        )
        for i, iid in enumerate(ev.image_ids):
            w.writerow(
                [
                    iid,
                    ev.lesion_ids[i],
                    ev.dx[i],
                    int(ev.melanoma[i]),
                    f"{ev.p[i]:.5f}",
                    f"{ev.spread[i]:.5f}",
                    ev.decisions[level][i],
                    ev.reasons[level][i],
                    ";".join(ev.quality_flags[i]),
                    ev.class_names[int(ev.class_probs[i].argmax())],
                    *[f"{mp[i]:.5f}" for mp in ev.member_p],
                ]
            )
        for iid, reason in ev.failed.items():
            w.writerow([iid, "", "", "", "", "", "error", reason, "", "", *[""] * len(ev.member_names)])


def _cell_share(g: dict, key: str, n_key: str | None = None) -> str:
    share = g.get(key)
    return "n/a" if share is None else f"{100 * share:.1f}%" + (f" ({g[n_key]})" if n_key else "")


def _auc_cell(block: dict) -> str:
    if block["auc"] is None:
        return "n/a"
    lo, hi = block["ci95"]
    return f"{_num(block['auc'])} ({_num(lo)}-{_num(hi)})"


def _gate_rows(tag: str, gates: list[dict]) -> list[tuple[str, list[str]]]:
    """The rows of one gate level; `gates` holds each set's block for that level ({} when absent)."""
    rows = [
        (
            f"{tag}: melanomas auto-cleared",
            [_cell_share(g, "melanomas_auto_cleared_share", "melanomas_auto_cleared_n") for g in gates],
        ),
        (
            f"{tag}: all malignancies auto-cleared",
            [_cell_share(g, "malignant_auto_cleared_share", "malignant_auto_cleared_n") for g in gates],
        ),
    ]
    for dx in MALIGNANT_DX:
        rows.append(
            (f"{tag}: {dx} auto-cleared", [_pct(g.get("auto_cleared_share_by_class", {}).get(dx)) for g in gates])
        )
    rows.append(
        (f"{tag}: benign lesions cleared", [_cell_share(g, "benign_cleared_share", "benign_cleared_n") for g in gates])
    )
    rows.append((f"{tag}: suspicious", [str(g.get("suspicious_n", "n/a")) for g in gates]))
    bands = [" / ".join(str(g.get("review_by_band", {}).get(b, 0)) for b in (*BANDS, "no band")) for g in gates]
    rows.append(
        (
            f"{tag}: to review (high / moderate / low / no band)",
            [f"{g.get('review_n', 'n/a')} ({b})" for g, b in zip(gates, bands)],
        )
    )
    return rows


def multiset_table(columns: dict[str, dict], level: str | None = None) -> list[str]:
    """Markdown: one column per labelled set (triage_metrics of each), one row per figure, at the
    gate level `level` (default: the first set's default confidence) and then at every other level."""
    names = list(columns)
    sets = [columns[n] for n in names]
    default = level or f"{sets[0]['gate_default_confidence']:g}"
    rows = [
        (
            "images (melanomas / all malignant)",
            [f"{c['n_images']} ({c['n_melanomas']} / {c['n_malignant']})" for c in sets],
        ),
        ("melanoma AUC (95% CI)", [_auc_cell(c["melanoma_auc"]) for c in sets]),
        ("p(malignant) AUC, all malignancies (95% CI)", [_auc_cell(c["malignant_auc"]) for c in sets]),
        (
            "ECE p(melanoma) / p(malignant)",
            [f"{_num(c['ece_melanoma'], 4)} / {_num(c['ece_malignant'], 4)}" for c in sets],
        ),
    ]
    for lvl in [default, *[x for x in sets[0]["gate"] if x != default]]:
        tag = f"gate {lvl}" + (" (default)" if lvl == default else "")
        rows += _gate_rows(tag, [c["gate"].get(lvl, {}) for c in sets])
    lines = ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    return lines + [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]


def write_multiset_md(path: Path, columns: dict[str, dict], bundle: Bundle, used: dict[str, str]) -> None:
    body = [
        "# Evaluation on every labelled set",
        "",
        f"Bundle {bundle.manifest.name} {bundle.manifest.version} (identity {bundle_identity(bundle)}).",
        "",
        *[f"- {name}: {text}" for name, text in used.items()],
        "",
        *multiset_table(columns),
        "",
        "Auto-cleared: called 'no cancer suspected' by the gate, so no human looks at it; shares are of ALL "
        "images of that diagnosis in the set. All malignancies: " + ", ".join(MALIGNANT_DX) + ".",
        "Each set's own report (figures, predictions.csv) is in its sub-folder.",
        "",
        f"_{bundle.manifest.disclaimer}_",
        "",
    ]
    path.write_text("\n".join(body), encoding="utf-8")
