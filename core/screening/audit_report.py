"""The audit written out: an HTML page and a CSV of the clinic's confirmed cases (core/screening/audit.py),
the cleared malignancies first."""

from __future__ import annotations

import csv
import html
import json

import numpy as np

from core.common.paths import atomic_target
from core.decision.vocabulary import outcome_label
from core.records.evidence import diagnosis_words
from core.screening.audit import Audit, AuditCase


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _auc(x, ci) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    lo, hi = ci
    return f"{x:.3f}" + (f" ({lo:.3f}-{hi:.3f})" if lo is not None and np.isfinite(lo) else "")


def _case_row(c: AuditCase) -> list[str]:
    return [
        c.patient or "(no patient)",
        c.lesion or "-",
        c.when,
        c.result.path,
        diagnosis_words(c.confirmed.diagnosis),
        f"{c.result.p_malignant:.3f}",
    ]


FIGURE_ROWS = (
    ("confirmed cases", "n", str),
    ("malignant / melanoma", None, None),
    ("p(malignant) AUC (95% CI)", "malignant_auc", None),
    ("p(melanoma) AUC (95% CI)", "melanoma_auc", None),
    ("malignancies cleared", "malignant_cleared_n", str),
    ("benign lesions cleared", "benign_cleared_n", str),
    ("share of images cleared", "cleared_share", _pct),
    ("sensitivity (malignant not cleared)", "sensitivity_not_cleared", _pct),
    ("specificity (benign cleared)", "specificity_not_cleared", _pct),
    ("sensitivity (malignant called suspicious)", "sensitivity_suspicious", _pct),
    ("specificity (benign not called suspicious)", "specificity_suspicious", _pct),
    ("held back by auto-clearing off (malignant)", "held_n", None),
)


def _figure_value(f: dict, key: str | None, fmt, label: str) -> str:
    if label.startswith("malignant / melanoma"):
        return f"{f.get('n_malignant', '-')} / {f.get('n_melanoma', '-')}"
    if key in ("malignant_auc", "melanoma_auc"):
        return _auc(f.get(key), f.get(f"{key}_ci95", [None, None]))
    if key == "held_n":
        return f"{f['held_n']} ({f['held_malignant_n']})"
    v = f.get(key)
    return "-" if v is None else fmt(v)


def _claimed_value(c: dict, key: str | None, fmt, label: str) -> str:
    if not c:
        return "-"
    if label.startswith("malignant / melanoma"):
        return str(c.get("n_malignant", "-"))
    if key == "n":
        return str(c.get("n", "-"))
    if key == "malignant_auc":
        return ", ".join(f"{k} {v:.3f}" for k, v in c.get("malignant_auc_by_source", {}).items()) or "-"
    v = c.get(key)
    return "-" if v is None else fmt(v)


def audit_html(audit: Audit) -> str:
    e = html.escape
    out = [
        "<html><head><meta charset='utf-8'><title>MelaScreen audit</title></head><body>",
        "<h1>MelaScreen: audit on this clinic's confirmed cases</h1>",
        f"<p>{audit.n_confirmed} images with a confirmed diagnosis"
        + (f"; results made since {audit.since.isoformat()}" if audit.since else "")
        + ".</p>",
    ]
    missed = audit.missed
    out.append("<h2 style='color:#c62828'>Confirmed malignancies that were cleared (no cancer suspected)</h2>")
    if missed:
        out.append("<table border='1' cellspacing='0' cellpadding='3' style='color:#c62828;font-weight:bold'>")
        out.append(
            "<tr><th>patient</th><th>lesion</th><th>date</th><th>file</th><th>diagnosis</th>"
            "<th>p(malignant)</th><th>bundle, confidence</th></tr>"
        )
        for g, c in missed:
            cells = [*_case_row(c), f"{g.bundle}, {g.confidence}"]
            out.append("<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in cells) + "</tr>")
        out.append("</table>")
    else:
        out.append("<p>None.</p>")
    if not audit.groups:
        out.append("<p><b>No confirmed case has been screened: nothing to audit yet.</b></p>")
    for g in audit.groups:
        f = g.figures
        out.append(f"<h2>{e(g.bundle)}, confidence {g.confidence}</h2>")
        out.append(f"<p><b>{e(g.verdict)}</b></p>")
        if g.held_malignant:
            out.append(
                f"<p style='color:#c62828;font-weight:bold'>Auto-clearing off held back {f['held_n']} images that "
                f"would have been cleared, {len(g.held_malignant)} of them confirmed malignant (these cancers would "
                "have been missed with auto-clearing on):</p><ul style='color:#c62828;font-weight:bold'>"
                + "".join(f"<li>{e(' / '.join(_case_row(c)))}</li>" for c in g.held_malignant)
                + "</ul>"
            )
        elif f["held_n"]:
            out.append(
                f"<p>Auto-clearing off held back {f['held_n']} images that would have been cleared; "
                "no confirmed malignancy among them.</p>"
            )
        out.append(
            "<table border='1' cellspacing='0' cellpadding='3'><tr><th>figure</th><th>this clinic</th>"
            "<th>the bundle's claim (validation)</th></tr>"
        )
        for label, key, fmt in FIGURE_ROWS:
            out.append(
                f"<tr><td>{e(label)}</td><td>{e(_figure_value(f, key, fmt, label))}</td>"
                f"<td>{e(_claimed_value(g.claimed, key, fmt, label))}</td></tr>"
            )
        out.append(f"</table><p><small>AUC interval: {e(f['ci_method'])}.</small></p>")
        if g.what_if:
            out.append("<h3>What if the confidence were different (stored probabilities, gate re-applied)</h3>")
            out.append(
                "<table border='1' cellspacing='0' cellpadding='3'><tr><th>confidence</th><th>low</th>"
                "<th>malignant cleared</th><th>melanomas cleared</th><th>benign cleared</th>"
                "<th>share cleared</th><th>suspicious</th><th>review</th></tr>"
            )
            for w in g.what_if:
                cells = [
                    f"{w['confidence']:g}",
                    f"{w['low']:.3f}",
                    w["malignant_cleared_n"],
                    w["melanoma_cleared_n"],
                    w["benign_cleared_n"],
                    _pct(w["cleared_share"]),
                    w["suspicious_n"],
                    w["review_n"],
                ]
                out.append("<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in cells) + "</tr>")
            out.append("</table>")
        elif g.what_if_note:
            out.append(f"<p><small>{e(g.what_if_note)}</small></p>")
    out.append("</body></html>")
    return "\n".join(out)


AUDIT_CSV_COLUMNS = (
    "bundle",
    "confidence",
    "result_id",
    "patient",
    "lesion",
    "date",
    "file",
    "diagnosis",
    "method",
    "malignant",
    "outcome",
    "p_malignant",
    "p_melanoma",
    "cleared_malignant",
    "held",
)


def write_audit_csv(audit: Audit, path, *, private: bool = True) -> None:
    """One row per confirmed case (the cleared malignancies first), then the figures per group; written
    whole or not at all, private (0600) unless `private=False`."""
    with atomic_target(path, private=private) as temp, open(temp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(AUDIT_CSV_COLUMNS)
        rows = [(g, c) for g in audit.groups for c in g.cases]
        rows.sort(key=lambda gc: not (gc[1].malignant and gc[1].cleared))
        for g, c in rows:
            r = c.result
            w.writerow(
                [
                    g.bundle,
                    g.confidence,
                    c.result_id,
                    c.patient,
                    c.lesion,
                    c.when,
                    r.path,
                    c.confirmed.diagnosis,
                    c.confirmed.method,
                    int(c.malignant),
                    outcome_label(r.decision, r.malignant_class, r.band),
                    f"{r.p_malignant:.6f}",
                    f"{r.p_melanoma:.6f}",
                    int(c.malignant and c.cleared),
                    int(c.held),
                ]
            )
        w.writerow([])
        w.writerow(["bundle", "confidence", "figure", "value"])
        for g in audit.groups:
            w.writerow([g.bundle, g.confidence, "verdict", g.verdict])
            for k, v in g.figures.items():
                w.writerow([g.bundle, g.confidence, k, v])
            for row in g.what_if:
                w.writerow([g.bundle, g.confidence, f"what-if {row['confidence']:g}", json.dumps(row)])
